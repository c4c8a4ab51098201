"""scripts/serve.py's app through the framework's TestClient: every route, the answers equal to upscale.py's,
the fields and their refusals. Tiny random networks (conftest.py's `runs`), so each request takes milliseconds."""
from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from fastapi.testclient import TestClient
from serve_clients import client, decoded, image_bytes, serving_module
from upscale_runs import CPU, GENERAL, WDN, run

from models import networks
from models.inference import interpolate_state_dicts


@pytest.fixture(scope="module")
def serving():
    return serving_module()


@pytest.fixture(scope="module")
def api(serving, runs) -> Iterator:
    checkpoints, _ = runs
    yield from client(serving, checkpoints, ["tiny_srvgg", "tiny_srresnet", GENERAL])


def test_health_ready_and_models(api) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").status_code == 200
    listing = api.get("/v1/models").json()
    assert [m["name"] for m in listing["models"]] == ["tiny_srvgg", "tiny_srresnet", GENERAL]
    assert [(m["scale"], m["architecture"], m["denoise"]) for m in listing["models"]] == [
        (4, "srvgg", False), (2, "srresnet", False), (4, "srvgg", True)]
    assert listing["limits"]["queue"] == 8


def test_png_equals_upscale_py_byte_for_byte(api, runs, script, capsys, tmp_path: Path) -> None:
    checkpoints, _ = runs
    photo = tmp_path / "photo.png"
    photo.write_bytes(image_bytes(17, 11, "RGBA", seed=3))
    for model, outscale in (("tiny_srvgg", None), ("tiny_srresnet", 3.5)):
        flags = ["-s", str(outscale)] if outscale else []
        code, _, err = run(script, capsys, ["-i", photo, "-o", tmp_path / model, "-n", model, "--checkpoints_dir",
                                            checkpoints, *CPU, *flags])
        assert code == 0, err
        expected = (tmp_path / model / "photo_out.png").read_bytes()
        query = {"model": model, **({"outscale": outscale} if outscale else {})}
        answer = api.post("/v1/upscale", params=query, files={"file": ("photo.png", photo.read_bytes())})
        assert answer.status_code == 200, answer.text
        assert answer.content == expected
        assert answer.headers["content-type"] == "image/png"
        out = decoded(answer.content)
        assert answer.headers["x-model"] == model
        assert answer.headers["x-input-size"] == "17x11"
        assert answer.headers["x-output-size"] == "%dx%d" % out.size
        assert float(answer.headers["x-scale"]) == (outscale or 4)
        assert int(answer.headers["x-time-ms"]) >= 0


def test_onnxruntime_backend_equals_upscale_py_byte_for_byte(serving, runs, script, capsys, tmp_path: Path) -> None:
    """serve.py --backend onnxruntime answers what upscale.py --backend onnxruntime writes (one export, cached in
    the run's folder, serves both)."""
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install -e '.[onnx]')")
    checkpoints, _ = runs
    photo = tmp_path / "photo.png"
    photo.write_bytes(image_bytes(19, 12, "RGB", seed=4))
    code, _, err = run(script, capsys, ["-i", photo, "-o", tmp_path / "out", "-n", "tiny_srvgg", "--checkpoints_dir",
                                        checkpoints, *CPU, "--backend", "onnxruntime"])
    assert code == 0, err
    served = serving.load_models(["tiny_srvgg"], str(checkpoints), "-1", True, backend="onnxruntime")
    assert type(served["tiny_srvgg"].upscaler.net).__name__ == "OnnxGenerator"
    for api in client(serving, checkpoints, ["tiny_srvgg"], backend="onnxruntime"):
        answer = api.post("/v1/upscale", files={"file": ("photo.png", photo.read_bytes())})
        assert answer.status_code == 200, answer.text
        assert answer.content == (tmp_path / "out" / "photo_out.png").read_bytes()


def test_raw_body_and_form_fields(api) -> None:
    data = image_bytes(12, 9, "L", fmt="JPEG")
    raw = api.post("/v1/upscale", content=data, headers={"content-type": "image/jpeg"})
    assert raw.status_code == 200 and raw.headers["content-type"] == "image/jpeg"  # auto: the upload's format
    assert decoded(raw.content).size == (48, 36) and decoded(raw.content).mode == "L"
    form = api.post("/v1/upscale", files={"file": ("x.jpg", data)}, data={"format": "png", "model": "tiny_srvgg"})
    assert form.status_code == 200 and form.headers["content-type"] == "image/png"
    assert decoded(form.content).size == (48, 36)


@pytest.mark.parametrize("query, detail", [
    ({"model": "nope"}, "is not served"),
    ({"outscale": "0"}, "outscale must be a number over 0"),
    ({"outscale": "abc"}, "outscale must be a number"),
    ({"format": "bmp"}, "format must be one of"),
    ({"denoise": "0.5"}, "takes no denoise"),
    ({"model": GENERAL, "denoise": "2"}, "denoise must be a number in [0, 1]"),
    ({"colour": "red"}, "unknown field"),
    ({"outscale": "0.01"}, "under one pixel"),
])
def test_bad_fields_are_400(api, query, detail) -> None:
    answer = api.post("/v1/upscale", params=query, files={"file": ("x.png", image_bytes())})
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_field" and detail in answer.json()["detail"]


def test_output_over_the_limit_is_413_and_a_format_that_cannot_hold_it_gives_png(api) -> None:
    answer = api.post("/v1/upscale", params={"outscale": "2000"}, files={"file": ("x.png", image_bytes())})
    assert answer.status_code == 413 and answer.json()["error"] == "output_too_large"
    assert "26000x20000" in answer.json()["detail"]
    rgba = api.post("/v1/upscale", params={"format": "jpg"}, files={"file": ("x.png", image_bytes(mode="RGBA"))})
    assert rgba.status_code == 200 and rgba.headers["content-type"] == "image/png"
    assert rgba.headers["x-format-note"] == "written as PNG: JPEG has no alpha channel"
    assert decoded(rgba.content).mode == "RGBA"


def test_denoise_blends_the_twin_per_request(serving, api, runs, monkeypatch) -> None:
    """A request's denoise runs dn * model + (1 - dn) * twin (as upscale.py's -dn); 0.5 is the loaded default."""
    checkpoints, states = runs
    model = serving.load_models([GENERAL], str(checkpoints), "-1", True)[GENERAL]
    for strength in (0.3, 0.0):
        loaded = networks.unwrap(model.upscaler_for(strength).net).state_dict()
        mixed = interpolate_state_dicts(states[GENERAL], states[WDN], strength)
        assert list(loaded) == list(mixed) and all(torch.equal(mixed[k], loaded[k]) for k in mixed)
    assert model.upscaler_for(0.5) is model.upscaler and model.upscaler_for(0.3) is model.upscaler_for(0.3)
    seen = []
    real = serving.ServedModel.upscaler_for
    monkeypatch.setattr(serving.ServedModel, "upscaler_for", lambda self, d: seen.append(d) or real(self, d))
    answer = api.post("/v1/upscale", params={"model": GENERAL, "denoise": "0.3"},
                      files={"file": ("x.png", image_bytes())})
    assert answer.status_code == 200 and seen == [0.3]


def test_models_load_before_any_request_and_not_ready_without_them(serving, runs) -> None:
    checkpoints, _ = runs
    loads = []

    def load():
        loads.append(time.monotonic())
        return serving.load_models(["tiny_srvgg"], str(checkpoints), "-1", True)

    app = serving.create_app(load, serving.ServeConfig())
    bare = TestClient(app)  # no lifespan: nothing loaded
    for answer in (bare.get("/readyz"), bare.post("/v1/upscale", content=image_bytes(),
                                                  headers={"content-type": "image/png"})):
        assert answer.status_code == 503 and answer.json()["error"] == "not_ready"
        assert answer.headers["retry-after"] == "5"
    assert loads == []
    with TestClient(app) as c:
        assert len(loads) == 1  # loaded at start, before the first request
        assert c.get("/readyz").json() == {"status": "ready", "models": ["tiny_srvgg"]}


def test_not_an_image_is_415(api) -> None:
    answer = api.post("/v1/upscale", files={"file": ("x.png", b"hello, not a png")})
    assert answer.status_code == 415 and answer.json()["error"] == "not_an_image"
    assert api.get("/no/such/route").json()["error"] == "not_found"


def test_every_kind_equals_upscale_py(api, runs, script, capsys, tmp_path: Path) -> None:
    """Grey, alpha, 16-bit RGB, palette + transparency, EXIF rotation, CMYK: PNG bytes equal to upscale.py's."""
    checkpoints, _ = runs
    photos = tmp_path / "in"
    photos.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 8
    rgb16 = np.random.default_rng(1).integers(0, 65536, (9, 14, 3), dtype=np.uint16)
    cv2.imwrite(str(photos / "rgb16.png"), rgb16)
    (photos / "grey.png").write_bytes(image_bytes(11, 7, "L"))
    (photos / "rgba.png").write_bytes(image_bytes(11, 7, "RGBA", seed=2))
    decoded(image_bytes(15, 9, seed=4)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(
        photos / "palette.png", transparency=1)
    (photos / "rotated.jpg").write_bytes(image_bytes(15, 9, fmt="JPEG", seed=5, exif=exif.tobytes()))
    (photos / "cmyk.jpg").write_bytes(image_bytes(10, 8, "CMYK", fmt="JPEG", seed=6))
    code, _, err = run(script, capsys, ["-i", photos, "-o", tmp_path / "out", "-n", "tiny_srvgg", "--ext", "png",
                                        "--checkpoints_dir", checkpoints, *CPU])
    assert code == 0, err
    for photo in sorted(photos.iterdir()):
        answer = api.post("/v1/upscale", params={"format": "png"}, files={"file": (photo.name, photo.read_bytes())})
        assert answer.status_code == 200, (photo.name, answer.text)
        assert answer.content == (tmp_path / "out" / f"{photo.stem}_out.png").read_bytes(), photo.name
    assert decoded((tmp_path / "out" / "rotated_out.png").read_bytes()).size == (9 * 4, 15 * 4)


def test_simultaneous_requests_each_get_their_own_image(serving, runs) -> None:
    """Different images at once on 3 slots: each answer equals that image's answer when sent alone."""
    checkpoints, _ = runs
    images = [image_bytes(10 + i, 8 + i, seed=10 + i) for i in range(6)]
    for c in client(serving, checkpoints, ["tiny_srresnet"], slots=3):
        alone = [c.post("/v1/upscale", content=data, headers={"content-type": "image/png"}).content for data in images]
        with ThreadPoolExecutor(6) as pool:
            together = list(pool.map(lambda d: c.post("/v1/upscale", content=d,
                                                      headers={"content-type": "image/png"}).content, images))
        assert together == alone
        assert len(set(alone)) == len(images)


@pytest.fixture
def blocked(serving, monkeypatch) -> Iterator[threading.Event]:
    """While the event is unset, every upscale waits in its slot (set at the end so no thread is left waiting)."""
    release = threading.Event()
    real = serving.ServedModel.upscale

    def waiting(self, *args, **kwargs):
        release.wait(30)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(serving.ServedModel, "upscale", waiting)
    yield release
    release.set()


def _wait_busy(c, slots: int) -> None:
    end = time.monotonic() + 30
    while 'serve_busy_slots %d.0' % slots not in c.get("/metrics").text:
        assert time.monotonic() < end
        time.sleep(0.02)


def test_full_queue_is_503_at_once_with_retry_after(serving, runs, blocked) -> None:
    checkpoints, _ = runs
    for c in client(serving, checkpoints, ["tiny_srvgg"], slots=1, queue=1):
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(c.post, "/v1/upscale", content=image_bytes(), headers={"content-type": "image/png"})
            _wait_busy(c, 1)
            queued = pool.submit(c.post, "/v1/upscale", content=image_bytes(), headers={"content-type": "image/png"})
            end = time.monotonic() + 30
            while "serve_queue_length 1.0" not in c.get("/metrics").text:
                assert time.monotonic() < end
                time.sleep(0.02)
            # Refused as it arrives, before its upload is read: a body that is no image gets 503, not 415.
            refused = c.post("/v1/upscale", content=b"not an image", headers={"content-type": "image/png"})
            assert refused.status_code == 503 and refused.json()["error"] == "queue_full"
            assert refused.headers["retry-after"] == "1"
            assert c.get("/healthz").status_code == 200  # the event loop answers while the slot computes
            blocked.set()
            assert first.result().status_code == 200 and queued.result().status_code == 200
        metrics = c.get("/metrics").text
        assert 'serve_rejected_total{reason="queue_full"} 1.0' in metrics
        assert 'serve_requests_total{route="/v1/upscale",status="200"} 2.0' in metrics
        assert 'serve_requests_total{route="/v1/upscale",status="503"} 1.0' in metrics
        assert "serve_input_megapixels_count 2.0" in metrics  # two uploads read; the refused one never was


def test_time_limit_is_504(serving, runs, blocked) -> None:
    checkpoints, _ = runs
    for c in client(serving, checkpoints, ["tiny_srvgg"], timeout_s=0.5):
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _: c.post("/v1/upscale", content=image_bytes(),
                                                     headers={"content-type": "image/png"}), range(2)))
        assert sorted(a.status_code for a in answers) == [504, 504]
        details = sorted(a.json()["detail"] for a in answers)
        assert details == ["no inference slot became free within the time limit",
                           "the upscaling did not finish within the time limit"]
        blocked.set()


def test_api_key_is_required_on_post(serving, runs) -> None:
    checkpoints, _ = runs
    for c in client(serving, checkpoints, ["tiny_srvgg"], api_key="s3cret"):
        for headers in ({}, {"authorization": "Bearer wrong"}, {"x-api-key": "s3cre"}):
            answer = c.post("/v1/upscale", content=image_bytes(), headers={"content-type": "image/png", **headers})
            assert answer.status_code == 401 and answer.json()["error"] == "unauthorized"
            assert answer.headers["www-authenticate"] == "Bearer"
        for headers in ({"authorization": "Bearer s3cret"}, {"x-api-key": "s3cret"}):
            answer = c.post("/v1/upscale", content=image_bytes(), headers={"content-type": "image/png", **headers})
            assert answer.status_code == 200
        assert c.get("/v1/models").status_code == 200


def test_a_client_gone_while_queued_is_dropped(serving) -> None:
    """Slots: a waiting request whose client left is dropped; its function never runs."""
    slots_module = serving_module("serving.slots")
    slots = slots_module.Slots(1, 4, serving_module("serving.metrics").Metrics())
    release, ran = threading.Event(), []

    async def scenario() -> None:
        async def here() -> bool:
            return False

        async def gone() -> bool:
            return True

        deadline = time.monotonic() + 30
        first = asyncio.ensure_future(slots.run(lambda: release.wait(30), here, deadline))
        while slots.busy == 0:
            await asyncio.sleep(0.01)
        with pytest.raises(slots_module.ClientGone):
            await slots.run(lambda: ran.append(1), gone, deadline)
        assert slots.waiting == 0
        release.set()
        assert await first is True

    asyncio.run(scenario())
    slots.shutdown()
    assert ran == []


def test_openapi_is_served_and_no_page_needs_a_cdn(api) -> None:
    spec = api.get("/openapi.json").json()
    assert {"/v1/upscale", "/v1/models", "/healthz", "/readyz", "/metrics"} <= set(spec["paths"])
    assert "multipart/form-data" in spec["paths"]["/v1/upscale"]["post"]["requestBody"]["content"]
    assert api.get("/docs").status_code == 404  # Swagger UI would load its scripts from a CDN
    assert api.put("/healthz").json()["error"] == "method_not_allowed"


def test_the_shipped_model_equals_upscale_py(serving, script, capsys, tmp_path: Path, forbid_network) -> None:
    """gan-translate-x4, installed offline from the repository into an empty folder, as `serve.py` serves it."""
    photo = tmp_path / "photo.png"
    photo.write_bytes(image_bytes(24, 16, seed=9))
    checkpoints = tmp_path / "checkpoints"
    for c in client(serving, checkpoints, ["gan-translate-x4"]):
        answer = c.post("/v1/upscale", files={"file": ("photo.png", photo.read_bytes())})
        assert answer.status_code == 200 and answer.headers["x-output-size"] == "96x64"
        code, _, err = run(script, capsys, ["-i", photo, "-o", tmp_path / "out", "-n", "gan-translate-x4",
                                            "--checkpoints_dir", checkpoints, *CPU])
        assert code == 0, err
        assert answer.content == (tmp_path / "out" / "photo_out.png").read_bytes()
