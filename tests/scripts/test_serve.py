"""scripts/serve.py's app through the framework's TestClient: every route, the answers equal to upscale.py's,
the fields and their refusals. Tiny random networks (conftest.py's `runs`), so each request takes milliseconds."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from serve_clients import client, decoded, image_bytes, serving_package
from upscale_runs import CPU, GENERAL, run


@pytest.fixture(scope="module")
def serving():
    yield from serving_package()


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
])
def test_bad_fields_are_400(api, query, detail) -> None:
    answer = api.post("/v1/upscale", params=query, files={"file": ("x.png", image_bytes())})
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_field" and detail in answer.json()["detail"]


def test_not_an_image_is_415(api) -> None:
    answer = api.post("/v1/upscale", files={"file": ("x.png", b"hello, not a png")})
    assert answer.status_code == 415 and answer.json()["error"] == "not_an_image"
    assert api.get("/no/such/route").json()["error"] == "not_found"
