"""Fixtures shared by several test modules."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
import torch
from helpers import ROOT, free_port, load_script, require_or_skip

def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked `cuda` are skipped, with the reason, where there is no CUDA GPU."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (bash scripts/gpu_check.sh runs these on one)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def train_main():
    return load_script("train.py").main


@pytest.fixture(scope="session")
def test_main():
    return load_script("test.py").main


@pytest.fixture
def forbid_network(monkeypatch) -> List[tuple]:
    """Make every outgoing connection attempt fail, and record it: the returned list must stay empty."""
    attempts: List[tuple] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("test: network access is forbidden here")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


@pytest.fixture(scope="session")
def visdom_server(tmp_path_factory) -> Iterator[Tuple[int, Path]]:
    """A visdom server on 127.0.0.1 with the offline static files: (port, path of its output log).

    Proxies point at a closed loopback port, so any download attempt would fail instead of leaving the
    machine; tests check the log for it.
    """
    check = subprocess.run([sys.executable, "scripts/visdom_static.py", "--check"], cwd=ROOT,
                           capture_output=True, text=True)
    require_or_skip(check.returncode == 0, "visdom's static files are not installed: run python "
                    f"scripts/visdom_static.py ({check.stdout.strip() or check.stderr.strip()})")
    port, folder = free_port(), tmp_path_factory.mktemp("visdom")
    log = folder / "server.log"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update({var: "http://127.0.0.1:9" for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")})
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "visdom.server", "-port", str(port), "-bind_local",
                                   "-env_path", str(folder / "env")], cwd=folder, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # straight to 127.0.0.1
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with opener.open(f"http://127.0.0.1:{port}/", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("visdom server did not start:\n" + log.read_text())
                time.sleep(0.3)
        yield port, log
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """In-process CLI runs use one intra-op thread, like the subprocesses (OMP_NUM_THREADS=1): on 2 shared cores
    two OpenMP threads spin against each other and run many times slower. Restored after the module."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def generator_devices(monkeypatch) -> List[str]:
    """The device type of every generator `networks.define_G` builds from now on ("meta" for a shape check)."""
    from models import networks

    built: List[str] = []
    real_define_G = networks.define_G

    def define_G(*args, **kwargs):
        net = real_define_G(*args, **kwargs)
        built.append(next(net.parameters()).device.type)
        return net

    monkeypatch.setattr(networks, "define_G", define_G)
    return built
