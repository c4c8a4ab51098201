"""The dashboard and the HTML pages, checked in a real browser (headless Chromium) and through visdom's HTTP API.

1. a visdom server on 127.0.0.1 with the offline static files (scripts/visdom_static.py);
2. a few training iterations of a tiny pix2pix with the display on;
3. visdom's /win_data holds the logged losses (equal to loss_log.txt) and the image grid;
4. Chromium renders the dashboard: plot traces and the image are in the DOM;
5. the training and test pages, served from a copy of their folders (relative links), load every image;
6. every process started here is stopped.

Where Chromium or the offline visdom files are missing (a laptop), the tests skip with the reason; under CI
(`CI=true`) they fail instead, so the browser checks always run there. `DOCS_SCREENSHOTS=<folder>` also saves
the screenshots (how docs/dashboard.png and docs/results_page.png were made).
"""
from __future__ import annotations

import base64
import functools
import http.server
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
from helpers import ROOT, require_or_skip
from PIL import Image

REPO = ROOT

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=10000",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    require_or_skip(False, "headless Chromium is not installed (Debian: apt-get install chromium)")
    return ""


def _run_chromium(chromium: str, profile: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    profile.mkdir(parents=True, exist_ok=True)
    return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=timeout, check=True)


def dump_dom(chromium: str, profile: Path, url: str) -> str:
    return _run_chromium(chromium, profile, "--dump-dom", url).stdout


def screenshot(chromium: str, profile: Path, url: str, out: Path, size: str = "1280,900") -> Path:
    _run_chromium(chromium, profile, f"--screenshot={out}", f"--window-size={size}", "--hide-scrollbars", url)
    image = Image.open(out).convert("L")
    assert image.getextrema()[0] != image.getextrema()[1], f"{out} is blank"
    docs = os.environ.get("DOCS_SCREENSHOTS")
    if docs:
        shutil.copyfile(out, Path(docs) / out.name)
    return out


def post_json(port: int, endpoint: str, payload: Dict) -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/{endpoint}", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "shapes"
    subprocess.run([sys.executable, "scripts/make_demo_data.py", "--out", str(out), "--n_train", "4",
                    "--n_test", "2"], cwd=REPO, check=True, capture_output=True)
    return out


TINY = ["--model", "pix2pix", "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load_size", "64",
        "--crop_size", "64", "--gpu_ids", "-1", "--num_threads", "0", "--seed", "1"]


def _windows(port: int, env: str) -> Dict[str, Dict]:
    return json.loads(post_json(port, "win_data", {"eid": env, "win": None}))


def test_dashboard_shows_losses_and_images(chromium, visdom_server, demo_data, tmp_path, train_main):
    (port, log), env = visdom_server, "pytest_dashboard"
    checkpoints = tmp_path / "checkpoints"
    rc = train_main(["--dataroot", str(demo_data), "--name", "dash", *TINY, "--n_epochs", "2",
                            "--n_epochs_decay", "0", "--display_id", "1", "--display_server", "http://127.0.0.1",
                            "--display_port", str(port), "--display_env", env, "--display_freq", "2",
                            "--print_freq", "2", "--checkpoints_dir", str(checkpoints)])
    assert rc == 0
    windows = _windows(port, env)
    by_type = {w["type"]: w for w in windows.values()}
    assert set(by_type) == {"plot", "image"}, windows.keys()
    for win in windows:  # /win_exists agrees with /win_data
        assert post_json(port, "win_exists", {"eid": env, "win": win}) == "true"

    # Loss window: one trace per loss, holding exactly the values written to loss_log.txt.
    logged = [dict(re.findall(r"(\w+): (-?[\d.]+)", line.split(")", 1)[1]))
              for line in (checkpoints / "dash" / "loss_log.txt").read_text().splitlines() if line.startswith("(")]
    assert len(logged) == 4  # 4 images x 2 epochs, printed every 2 images
    traces = {trace["name"]: trace["y"] for trace in by_type["plot"]["content"]["data"]}
    assert set(traces) == {"G_GAN", "G_L1", "D_real", "D_fake"}
    for name, values in traces.items():
        assert [f"{v:.3f}" for v in values] == [entry[name] for entry in logged]

    # Image window: the grid of real_A | fake_B | real_B (64x64 tiles, 2 px padding), as a PNG.
    src = by_type["image"]["content"]["src"]
    grid = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
    assert grid.size == (3 * 64 + 4 * 2, 64 + 2 * 2)

    # The browser renders both windows from the offline static files.
    dom = dump_dom(chromium, tmp_path / "profile", f"http://127.0.0.1:{port}/env/{env}")
    assert dom.count('class="scatterlayer') >= 1 and dom.count('class="trace scatter') == 4, "no plotted traces"
    assert 'src="data:image/png;base64,' in dom, "the image grid is not in the page"
    screenshot(chromium, tmp_path / "profile", f"http://127.0.0.1:{port}/env/{env}", tmp_path / "dashboard.png")
    assert "Downloading" not in log.read_text()  # offline: the server fetched nothing from CDNs


IMAGE_PROBE = """<!DOCTYPE html><html><body><pre id="result">pending</pre>
<iframe id="page" src="{page}" width="1200" height="800"></iframe>
<script>
const frame = document.getElementById("page");
frame.onload = () => {{
  const doc = frame.contentDocument, imgs = Array.from(doc.images);
  Promise.all(imgs.map(i => i.complete ? null : new Promise(r => {{ i.onload = r; i.onerror = r; }})))
    .then(() => {{
      const tables = Array.from(doc.querySelectorAll("table")).map(t => t.innerText);
      document.getElementById("result").textContent =
        JSON.stringify({{images: imgs.map(i => [i.getAttribute("src"), i.naturalWidth]), tables: tables}});
    }});
}};
</script></body></html>"""


@pytest.fixture
def static_server(tmp_path) -> Iterator[tuple]:
    """An HTTP server on 127.0.0.1 over a fresh folder (same origin for the probe page and the pages)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # type: ignore[assignment]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def probe_page(chromium: str, profile: Path, root: Path, port: int, page: str) -> Dict[str, List]:
    (root / "probe.html").write_text(IMAGE_PROBE.format(page=page))
    dom = dump_dom(chromium, profile, f"http://127.0.0.1:{port}/probe.html")
    match = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    assert match and match.group(1) != "pending", "the probe did not finish:\n" + dom[:2000]
    return json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def test_training_and_test_pages_load_every_image(chromium, static_server, demo_data, tmp_path, train_main,
                                                  test_main):
    root, port = static_server
    checkpoints, results = tmp_path / "checkpoints", tmp_path / "results"
    common = ["--dataroot", str(demo_data), "--name", "pages", *TINY, "--checkpoints_dir", str(checkpoints)]
    assert train_main([*common, "--n_epochs", "2", "--n_epochs_decay", "0", "--display_id", "0",
                              "--display_freq", "2", "--print_freq", "100"]) == 0
    assert test_main([*common, "--results_dir", str(results)]) == 0
    # Move both folders elsewhere: relative links must keep working.
    shutil.copytree(checkpoints / "pages" / "web", root / "web")
    shutil.copytree(results / "pages" / "test_latest", root / "results")

    train_page = probe_page(chromium, tmp_path / "profile", root, port, "web/index.html")
    assert len(train_page["images"]) == 2 * 3  # 2 epochs x (real_A, fake_B, real_B)
    assert [src for src, _ in train_page["images"][:3]] == [f"images/epoch002_{k}.png"
                                                            for k in ("real_A", "fake_B", "real_B")]  # newest first
    assert all(width == 64 for _, width in train_page["images"]), train_page["images"]

    test_page = probe_page(chromium, tmp_path / "profile", root, port, "results/index.html")
    assert len(test_page["images"]) == 2 * 3  # 2 test images x 3 visuals
    assert all(width > 0 for _, width in test_page["images"]), test_page["images"]
    screenshot(chromium, tmp_path / "profile", f"http://127.0.0.1:{port}/results/index.html",
               tmp_path / "results_page.png")
