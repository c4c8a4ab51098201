"""scripts/serve_ray.py on a local Ray instance with 2 replicas of a tiny model: simultaneous uploads of different
images each get their own correct answer (byte for byte the in-process app's), both replicas answer, and a
request beyond the replicas' slots and Ray's queue (1 slot, no queue, 1 in Ray's queue here) gets 503 with Retry-After at once.
Skipped, with the reason, where Ray Serve is not installed (pip install -e .[cluster])."""
from __future__ import annotations

import concurrent.futures
from typing import Dict, List, Tuple

import httpx
import pytest
from serve_clients import client, image_bytes, serving_module

REPLICAS = 2
REQUESTS = 10


@pytest.fixture(scope="module")
def ray_service(runs, tmp_path_factory):
    pytest.importorskip("ray.serve", reason="Ray Serve is not installed: pip install -e .[cluster]")
    checkpoints, _ = runs
    started_service = serving_module("loadtesting.service").started_service
    args = ["-n", "tiny_srvgg", "--checkpoints_dir", str(checkpoints), "-g", "-1", "--fp32", "--min_replicas",
            str(REPLICAS), "--max_replicas", str(REPLICAS), "--slots", "1", "--queue", "0", "--max_queued", "1"]
    log = tmp_path_factory.mktemp("ray") / "serve_ray.log"
    with started_service(args, log, timeout=300, script="serve_ray.py") as (url, _):
        yield url


def _post(url: str, body: bytes) -> httpx.Response:
    return httpx.post(url + "v1/upscale", files={"file": ("photo.png", body)}, timeout=120, trust_env=False)


def test_two_replicas_answer_each_request_correctly_and_overflow_is_503(ray_service, runs, one_torch_thread) -> None:
    checkpoints, _ = runs
    images = [image_bytes(160 + 8 * i, 120, seed=i) for i in range(REQUESTS)]  # each request its own image
    serving = serving_module()
    expected: List[bytes] = []
    for c in client(serving, checkpoints, ["tiny_srvgg"]):  # the same app in this process: the reference
        expected = [c.post("/v1/upscale", files={"file": ("photo.png", body)}).content for body in images]

    replicas: Dict[str, int] = {}
    statuses: List[Tuple[int, str]] = []
    # Rounds of simultaneous uploads until both replicas have answered and one upload found no room (at most 5).
    for _ in range(5):
        with concurrent.futures.ThreadPoolExecutor(REQUESTS) as pool:
            answers = list(pool.map(lambda body: _post(ray_service, body), images))
        for i, answer in enumerate(answers):
            statuses.append((answer.status_code, answer.headers.get("Retry-After", "")))
            assert answer.status_code in (200, 503), answer.text
            if answer.status_code == 200:
                assert answer.content == expected[i], f"request {i} got another image's answer or a wrong one"
                replicas[answer.headers["X-Replica"]] = replicas.get(answer.headers["X-Replica"], 0) + 1
        if len(replicas) == REPLICAS and any(s == 503 for s, _ in statuses):
            break
    assert len(replicas) == REPLICAS, f"answers came from {replicas}"
    overflow = [retry for status, retry in statuses if status == 503]
    assert overflow and all(retry.isdigit() for retry in overflow), statuses
