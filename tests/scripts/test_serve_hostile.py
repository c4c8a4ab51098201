"""Hostile and awkward uploads (scripts/serving/hostile.py's corpus) through the TestClient: each gets its
documented status and error code, /healthz keeps answering, and nothing is left on disk."""
from __future__ import annotations

import os
import tempfile
from typing import Iterator

import pytest
from serve_clients import client, decoded, serving_module

LIMIT = 200_000


@pytest.fixture(scope="module")
def api(runs) -> Iterator:
    checkpoints, _ = runs
    yield from client(serving_module(), checkpoints, ["tiny_srvgg"], max_upload_bytes=LIMIT)


def corpus():
    return serving_module("serving.hostile").hostile_corpus(LIMIT)


@pytest.mark.parametrize("case", corpus(), ids=lambda c: c.name)
def test_each_hostile_upload_gets_its_status(api, case) -> None:
    before = set(os.listdir(tempfile.gettempdir()))
    answer = api.post("/v1/upscale", content=case.body, headers={"content-type": case.content_type})
    assert answer.status_code == case.status, answer.text
    if case.error:
        body = answer.json()
        assert body["error"] == case.error and "\n" not in body["detail"] and body["detail"]
    else:
        assert decoded(answer.content).size == tuple(int(v) for v in answer.headers["x-output-size"].split("x"))
    assert api.get("/healthz").status_code == 200
    assert set(os.listdir(tempfile.gettempdir())) <= before  # nothing spooled to disk


def test_kinds_are_kept(api) -> None:
    """16-bit stays 16-bit, palette + transparency comes back with alpha, EXIF rotation is applied."""
    cases = {c.name: c for c in corpus()}

    def post(name: str):
        c = cases[name]
        answer = api.post("/v1/upscale", content=c.body, headers={"content-type": c.content_type})
        assert answer.status_code == 200
        return decoded(answer.content)

    assert post("16-bit grey PNG").mode in ("I;16", "I")
    assert post("palette PNG with transparency").mode == "RGBA"
    assert post("EXIF-rotated JPEG").size == (16 * 4, 24 * 4)
    assert post("CMYK JPEG").mode == "RGB"


def test_upload_without_length_is_capped_while_it_streams(api) -> None:
    def chunks():
        for _ in range(100):
            yield b"\0" * 10_000

    answer = api.post("/v1/upscale", content=chunks(), headers={"content-type": "image/png"})
    assert answer.status_code == 413 and answer.json()["error"] == "upload_too_large"
    assert answer.json()["detail"].startswith("the upload passed 200,000 bytes")
