"""The reference's smoke suite (its scripts/test_before_push.py): train.py then test.py for cycle_gan, pix2pix,
template and colorization on mini datasets, each command as the reference runs it, made tiny (8-filter networks,
32-pixel crops, two training images, one epoch) so that the eight run in seconds on one core.

The datasets are the shared samples: horse2zebra_mini (cycle_gan), facades (pix2pix, template), and a folder of
colour photos made from horse2zebra_mini's (colorization). Skipped without ../shared/data.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, List

import pytest

from test_cli import CPU, FACADES, HORSE2ZEBRA, assert_links_resolve, require
from test_parity_models import photo_folders

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

TINY = ["--ngf", "8", "--netG", "resnet_6blocks", *CPU]
TRAIN = ["--n_epochs", "1", "--n_epochs_decay", "0", "--save_latest_freq", "10", "--print_freq", "1",
         "--display_id", "0", "--ndf", "8", "--crop_size", "32", "--load_size", "36", "--max_dataset_size", "2",
         "--seed", "0"]

# model: (its mini dataset, the reference's test.py flags); train.py runs with --model <model> and TRAIN.
SMOKE = {
    "cycle_gan": ("horse2zebra_mini", ["--model", "test", "--num_test", "1", "--model_suffix", "_A", "--no_dropout"]),
    "pix2pix": ("facades", ["--model", "pix2pix", "--num_test", "1", "--direction", "BtoA"]),
    "template": ("facades", ["--model", "template", "--num_test", "1"]),
    "colorization": ("photos", ["--model", "colorization", "--num_test", "1"]),
}


def _dataroot(kind: str, tmp_path: Path) -> Path:
    if kind == "photos":  # colour photos in train/ and test/
        return photo_folders(tmp_path / "mini_colorization")
    return require({"horse2zebra_mini": HORSE2ZEBRA, "facades": FACADES}[kind])


@pytest.mark.parametrize("model", list(SMOKE))
def test_train_then_test(train_main, test_main, tmp_path, model: str) -> None:
    kind, test_flags = SMOKE[model]
    where = ["--name", "temp", "--dataroot", _dataroot(kind, tmp_path), "--checkpoints_dir", tmp_path / "ck"]

    def run(main: Callable, flags: List[object]) -> None:
        assert main([str(a) for a in [*where, *flags, *TINY]]) == 0, flags

    run(train_main, ["--model", model, *TRAIN])
    assert list((tmp_path / "ck" / "temp").glob("latest_net_G*.pth")), "train.py saved no generator"
    run(test_main, [*test_flags, "--results_dir", tmp_path / "results"])
    page = tmp_path / "results" / "temp" / "test_latest" / "index.html"
    assert len(assert_links_resolve(page)) >= 2  # one row: the input and the output at least
