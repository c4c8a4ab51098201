"""scripts/serve.py as a real server process on a free loopback port: SIGTERM with a request in flight (it
completes, the process exits 0), a client sending a byte a second (cut off at the time limit), the access log,
--workers; and the command line's refusals (one line, exit code 2)."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, List, Tuple

import httpx
import pytest
from helpers import ROOT, free_port, load_script
from serve_clients import image_bytes, serving_module

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


@contextlib.contextmanager
def server(checkpoints: Path, *flags: str) -> Iterator[Tuple[subprocess.Popen, str, List[str]]]:
    """serve.py serving tiny_srvgg on a free port, once /readyz says 200: the process, its URL, its output lines
    (filled as they come)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "serve.py"), "-n", "tiny_srvgg",
                             "--checkpoints_dir", str(checkpoints), "--gpu_ids", "-1", "--fp32", "--port", str(port),
                             *flags],
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: List[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 120
        while True:
            assert proc.poll() is None, "".join(lines)
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            assert time.monotonic() < end, "".join(lines)
            time.sleep(0.2)
        yield proc, url, lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        reader.join(10)


def computing(pool: ThreadPoolExecutor, url: str) -> Future:
    """A 600x600 image sent (x4 takes a second or more), once the service computes it: its future answer."""
    answer = pool.submit(httpx.post, f"{url}/v1/upscale", content=image_bytes(600, 600),
                         headers={"content-type": "image/png"}, timeout=120)
    end = time.monotonic() + 60
    while "serve_busy_slots 1.0" not in httpx.get(f"{url}/metrics").text:
        assert time.monotonic() < end and not answer.done()
        time.sleep(0.02)
    return answer


def test_sigterm_finishes_the_request_in_flight_and_exits_0(runs) -> None:
    checkpoints, _ = runs
    with server(checkpoints) as (proc, url, lines):
        with ThreadPoolExecutor(1) as pool:
            answer = computing(pool, url)
            proc.send_signal(signal.SIGTERM)
            assert answer.result().status_code == 200
            assert answer.result().headers["x-output-size"] == "2400x2400"
        assert proc.wait(60) == 0
    log = "".join(lines)
    assert "bound to 127.0.0.1: this machine only" in log
    access = [line for line in lines if line.startswith("POST /v1/upscale 200 ")]
    assert len(access) == 1 and access[0].split()[-1] == "tiny_srvgg"
    assert int(access[0].split()[3]) == len(answer.result().content)


def test_a_client_gone_while_queued_is_never_computed(runs) -> None:
    checkpoints, _ = runs
    with server(checkpoints) as (proc, url, lines):
        port = int(url.rsplit(":", 1)[1])
        with ThreadPoolExecutor(1) as pool:
            busy = computing(pool, url)
            end = time.monotonic() + 60
            body = image_bytes(seed=5)
            with socket.create_connection(("127.0.0.1", port), timeout=30) as leaving:
                leaving.sendall(b"POST /v1/upscale HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                                b"Content-Length: %d\r\n\r\n" % len(body) + body)
                while "serve_queue_length 1.0" not in httpx.get(f"{url}/metrics").text:
                    assert time.monotonic() < end
                    time.sleep(0.02)
            assert busy.result().status_code == 200
        while not any(" 499 " in line for line in lines):
            assert time.monotonic() < end, "".join(lines)
            time.sleep(0.05)
    assert sum(line.startswith("POST /v1/upscale 200 ") for line in lines) == 1  # the one that stayed
    assert any("client left while its request waited: dropped" in line for line in lines)


def test_a_byte_a_second_is_cut_at_the_time_limit(runs) -> None:
    """serve_hostile.slow_client's connection gets 408 at --timeout_s 2; /healthz answers meanwhile."""
    checkpoints, _ = runs
    serving_module()  # scripts/serving, which serve_hostile.py imports
    slow_client = load_script("scripts/serve_hostile.py").slow_client
    with server(checkpoints, "--timeout_s", "2") as (proc, url, lines):
        with ThreadPoolExecutor(1) as pool:
            start = time.monotonic()
            slow = pool.submit(slow_client, url)
            while not slow.done():
                assert httpx.get(f"{url}/healthz", timeout=2).status_code == 200
                time.sleep(0.2)
            elapsed = time.monotonic() - start
        assert slow.result() == (408, "upload_timeout")
        assert 1.5 < elapsed < 5


def test_workers_each_load_their_model(runs) -> None:
    checkpoints, _ = runs
    with server(checkpoints, "--workers", "2", "--num_threads", "2") as (proc, url, lines):
        answers = [httpx.post(f"{url}/v1/upscale", content=image_bytes(seed=i), headers={"content-type": "image/png"},
                              timeout=60) for i in range(4)]
        assert [a.status_code for a in answers] == [200] * 4
        end = time.monotonic() + 120
        while sum("serving tiny_srvgg (x4" in line for line in lines) < 2:  # the second may still be loading
            assert time.monotonic() < end, "".join(lines)
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    log = "".join(lines)
    assert log.count("serving tiny_srvgg (x4") == 2  # each worker loaded it, once
    assert "2 worker(s) of 1 thread(s)" in log


@pytest.fixture(scope="module")
def serve_script():
    serving_module()  # scripts/serving, which serve.py imports
    return load_script("scripts/serve.py")


@pytest.mark.parametrize("argv, message", [
    (["--queue", "-1"], "--queue: must be >= 0, got -1"),
    (["--max_upload_mb", "0"], "--max_upload_mb: must be a positive number"),
    (["--workers", "3", "--num_threads", "2"], "cannot give each of --workers 3 a thread"),
    (["--tile", "3"], "--tile"),
    (["--api_key", " "], "--api_key is empty"),
    (["-n", "no_such_model"], "-n no_such_model: no model"),
])
def test_bad_flags_are_one_line_and_exit_2(serve_script, runs, capsys, argv, message) -> None:
    from util.cli import run_cli
    checkpoints, _ = runs
    code = run_cli(serve_script.main, argv + ["--checkpoints_dir", str(checkpoints)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err


def test_offline_zoo_model_says_how_to_install_it(serve_script, forbid_network, tmp_path, capsys) -> None:
    from util.cli import run_cli
    code = run_cli(serve_script.main, ["-n", "realesrgan-x4plus", "--checkpoints_dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "python scripts/download.py model sr realesrgan-x4plus --from-file PATH" in err


def test_without_the_serve_extra_one_line_says_how_to_install_it() -> None:
    hide = ("import runpy, sys; sys.modules['fastapi'] = None; sys.path.insert(0, 'scripts'); "
            "sys.argv = ['serve.py']; runpy.run_path('scripts/serve.py', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", hide], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr == "error: serve.py needs fastapi: pip install -e '.[serve]'\n"


def test_serve_hostile_script_gets_every_expected_status(runs, capsys) -> None:
    """scripts/serve_hostile.py against a real server: exit 0 (each upload got the corpus's status), a row each."""
    from util.cli import run_cli
    checkpoints, _ = runs
    corpus = serving_module("serving.hostile").hostile_corpus(1)  # imported first: the script imports it
    hostile_script = load_script("scripts/serve_hostile.py")
    with server(checkpoints, "--max_upload_mb", "0.2", "--timeout_s", "2") as (proc, url, lines):
        code = run_cli(hostile_script.main, ["--url", url])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line]
    assert code == 0 and len(rows) == len(corpus) + 2  # the header, a row each and the slow client's
    assert "| upload one byte over the limit | 413 | upload_too_large |" in "\n".join(rows)
    assert rows[-1].startswith("| a byte a second (declares 1000 bytes) | 408 | upload_timeout |")
