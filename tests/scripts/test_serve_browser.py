"""The service's upload page (scripts/serving/static/) in a real browser: headless Chromium through Selenium
against `python scripts/serve.py` on a free loopback port, serving the shipped gan-translate-x4.

1. a real photo from ../shared/data, uploaded as it is, comes back at 4x its size;
2. the page's download is the API's answer for the same file and options, byte for byte;
3. a text file is refused and the page shows the API's own `detail` line.

Where Chromium, chromedriver or Selenium are missing (a laptop), the tests skip with the reason; under CI
(`CI=true`) they fail instead. Without ../shared/data they skip. `DOCS_SCREENSHOTS=<folder>` also saves the
whole page with its result as serving_page.png (how docs/serving_page.png was made), in 256 colours.
"""
from __future__ import annotations

import base64
import io
import os
import shutil
import time
from pathlib import Path
from typing import Iterator, Tuple

import httpx
import pytest
from helpers import SHARED_DATA, require_or_skip
from PIL import Image
from serve_clients import serving_module

PHOTO = SHARED_DATA / "sr_eval" / "Set5" / "bird.png"  # 288 x 288 RGB: a few seconds x4 on a busy 2-core CPU
WAIT_S = 300  # the slowest step: one x4 of the photo with other work on the machine
TEXT = b"These are the minutes of the meeting, not a photo.\n"


@pytest.fixture(scope="module")
def photo() -> Path:
    if not PHOTO.is_file():
        pytest.skip(f"shared test images are absent ({PHOTO}; expected at ../shared/data from the project root)")
    return PHOTO


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[str]:
    """`scripts/serve.py` with no -n (the shipped gan-translate-x4) on a free loopback port: its base URL."""
    folder = tmp_path_factory.mktemp("serve")
    started_service = serving_module("loadtesting.service").started_service
    # One thread: on 2 shared cores two OpenMP threads spin against each other (see conftest.one_torch_thread).
    args = ["--checkpoints_dir", str(folder / "checkpoints"), "--num_threads", "1"]
    with started_service(args, folder / "serve.log", timeout=120) as (url, _):
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Tuple[object, Path]]:
    """Headless Chromium driven by Selenium, downloads going into a folder of their own: (driver, folder)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="Selenium is not installed: pip install -e .[test]")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    require_or_skip(binary is not None and driver_path is not None,
                    "headless Chromium and chromedriver are not installed (Debian: apt-get install chromium "
                    "chromium-driver)")
    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1000,1000", "--no-proxy-server"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield driver, downloads
    finally:
        driver.quit()


def _wait(driver, condition: str, timeout: float = 30) -> object:
    """Poll the JavaScript expression `condition` until it is truthy; its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: d.execute_script(f"return {condition}"))


def _open_and_upload(driver, url: str, path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url)
    _wait(driver, "document.getElementById('model').options.length > 0 && !document.getElementById('model').disabled")
    driver.find_element(By.ID, "file").send_keys(str(path))
    driver.find_element(By.ID, "go").click()


def _api(url: str, path: Path, **fields: str) -> httpx.Response:
    with open(path, "rb") as f:
        return httpx.post(url + "v1/upscale", params=fields, files={"file": (path.name, f)}, timeout=WAIT_S,
                          trust_env=False)


def _downloaded(folder: Path, name: str, timeout: float = 30) -> bytes:
    """The bytes of a finished download (Chromium writes `<name>.crdownload` until it is whole)."""
    deadline = time.monotonic() + timeout
    target = folder / name
    while not target.is_file() or any(folder.glob("*.crdownload")):
        assert time.monotonic() < deadline, f"no download {name} in {sorted(p.name for p in folder.iterdir())}"
        time.sleep(0.2)
    return target.read_bytes()


def _save_screenshot(driver, folder: Path) -> None:
    """The whole page with its result, as docs/serving_page.png: 256 dithered colours keep the file small."""
    width, height = driver.execute_script("return [document.documentElement.scrollWidth,"
                                          " document.documentElement.scrollHeight]")
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    page = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
    palette = page.quantize(256)
    page.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG).save(folder / "serving_page.png", optimize=True)


def test_a_photo_comes_back_upscaled_and_the_download_is_the_apis_answer(service, browser, photo):
    driver, downloads = browser
    _open_and_upload(driver, service, photo)
    size = _wait(driver, "(() => { const a = document.getElementById('after');"
                         " return a.complete && a.naturalWidth > 0 && [a.naturalWidth, a.naturalHeight]; })()",
                 timeout=WAIT_S)
    with Image.open(photo) as original:
        width, height = original.size
    assert size == [4 * width, 4 * height]
    # Before and after are shown at one size, so the slider compares the same places.
    shown = driver.execute_script("return ['before', 'after'].map(id => {"
                                  " const r = document.getElementById(id).getBoundingClientRect();"
                                  " return [Math.round(r.width), Math.round(r.height)]; })")
    assert shown[0] == shown[1] and shown[0][0] > 0
    assert driver.find_element("id", "error").get_attribute("hidden") is not None

    link = driver.find_element("id", "download")
    name = link.get_attribute("download")
    assert name == "bird_x4.png"
    link.click()
    page_bytes = _downloaded(downloads, name)
    answer = _api(service, photo, outscale="4", format="auto")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    assert page_bytes == answer.content
    assert driver.find_element("id", "facts").text.startswith(answer.headers["X-Model"])

    folder = os.environ.get("DOCS_SCREENSHOTS")
    if folder:
        _save_screenshot(driver, Path(folder))


def test_a_refused_file_shows_the_apis_detail_on_the_page(service, browser, tmp_path):
    driver, _ = browser
    text = tmp_path / "minutes.png"  # a text file with an image's name
    text.write_bytes(TEXT)
    answer = _api(service, text)
    assert 400 <= answer.status_code < 500
    detail = answer.json()["detail"]
    assert detail
    _open_and_upload(driver, service, text)
    shown = _wait(driver, "!document.getElementById('error').hidden && document.getElementById('error').textContent")
    assert shown == detail
    assert driver.find_element("id", "result").get_attribute("hidden") is not None
    assert not driver.find_element("id", "go").get_attribute("disabled")  # ready for another file
