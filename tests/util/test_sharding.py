"""util/sharding.py's split and util/images/folders.existing_result, the two rules a many-process upscale rests on."""
from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from util import sharding
from util.distributed import World
from util.images.folders import existing_result


def _best_makespan(sizes, parts: int) -> int:
    """The smallest possible largest share, by trying every assignment (small inputs only)."""
    return min(max(sum(s for s, p in zip(sizes, assign) if p == part) for part in range(parts))
               for assign in itertools.product(range(parts), repeat=len(sizes)))


@pytest.mark.parametrize("parts", [1, 2, 3])
def test_split_gives_every_index_once_within_lpt_s_bound_and_the_same_split_each_time(parts) -> None:
    rng = random.Random(parts)
    for _ in range(20):
        sizes = [rng.choice([0, 1, 7, 64, 300, 1000]) for _ in range(rng.randint(0, 8))]
        shares = sharding.split_by_size(sizes, parts)
        assert len(shares) == parts and all(share == sorted(share) for share in shares)
        assert sorted(i for share in shares for i in share) == list(range(len(sizes)))
        makespan = max(sum(sizes[i] for i in share) for share in shares)
        assert makespan <= _best_makespan(sizes, parts) * 4 / 3 + 1e-9  # Graham's bound for largest-first
        assert sharding.split_by_size(list(sizes), parts) == shares


def test_split_balances_pixels_not_counts() -> None:
    # Two large photos and six small ones: `i % 2` would give rank 0 both large ones.
    sizes = [1000, 1, 1000, 1, 1, 1, 1, 1]
    assert sharding.split_by_size(sizes, 2) == [[0, 1, 4, 6], [2, 3, 5, 7]]


def test_each_rank_takes_its_share_of_the_cores(monkeypatch) -> None:
    import torch

    old = torch.get_num_threads()
    monkeypatch.setattr(sharding, "cpu_cores", lambda: 16)
    try:
        assert sharding.share_threads(World(rank=3, local_rank=1, size=4, local_size=2)) == 8
        assert sharding.share_threads(World(rank=5, local_rank=5, size=6, local_size=32)) == 1
        assert sharding.share_threads(World(rank=3, local_rank=1, size=4, local_size=2), threads=5) == 5  # told
        torch.set_num_threads(3)
        assert sharding.share_threads(World()) == 3  # one process: left as it is
    finally:
        torch.set_num_threads(old)


def test_an_existing_result_is_a_whole_file_in_the_format_asked_for_or_png(tmp_path: Path) -> None:
    stem = str(tmp_path / "photo_out")
    (tmp_path / ".photo_out.jpg.a1b2.tmp").write_bytes(b"half")  # an interrupted atomic write
    assert existing_result(stem, "auto", "in/photo.jpg") is None
    (tmp_path / "photo_out.webp").write_bytes(b"x")  # another --ext's result does not count
    assert existing_result(stem, "auto", "in/photo.jpg") is None
    (tmp_path / "photo_out.png").write_bytes(b"x")  # what a JPEG that cannot hold the result falls back to
    assert existing_result(stem, "auto", "in/photo.jpg") == stem + ".png"
    (tmp_path / "photo_out.jpg").write_bytes(b"x")
    assert existing_result(stem, "auto", "in/photo.jpg") == stem + ".jpg"
    assert existing_result(stem, "webp", "in/photo.jpg") == stem + ".webp"
    assert existing_result(stem, "tiff", "in/photo.jpg") == stem + ".png"
    (tmp_path / "photo_out.tiff").mkdir()  # not a file
    assert existing_result(str(tmp_path / "photo_out"), "tiff", "x.bmp") == stem + ".png"
