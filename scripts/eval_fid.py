"""FID and KID of a folder of generated images against a folder of real ones (pix2pix / CycleGAN results).

    python scripts/eval_fid.py datasets/horse2zebra/testB results/horse2zebra/test_latest/fake_B
    python scripts/eval_fid.py REAL_DIR FAKE_DIR --json fid.json --gpu_ids 0 --batch_size 100
    python scripts/eval_fid.py REAL_DIR FAKE_DIR --inception_weights ~/weights/pt_inception-2015-12-05-6726825d.pth

Prints the FID, the KID mean ± std over random subsets, and the image counts; `--json FILE` writes them with a
description of the network and weights. `test.py --fid` puts the same numbers on a results page.

The library: torch-fidelity, for its agreement with the standard TensorFlow-Inception FID (the TF graph and
weights `inception-2015-12-05`, TF 1.x's bilinear resize to 299x299, TTUR's formula) and because it is
maintained and small; torchmetrics' FID / KID run the same network but resize with antialiasing by default,
pytorch-fid and clean-fid resize differently by default and are no longer released. util/fid.py gives the
full comparison, and what this toolkit adds around the library (its folder walk, mixed image sizes and modes,
loading the weights with weights_only=True).

Images: every image file under each folder (recursive; hidden files skipped), read as 8-bit RGB (greyscale
replicated, alpha dropped, 16-bit scaled), any size: the network resizes each to 299x299 itself. The Inception
weights come from `--inception_weights PATH` or torch's hub cache (~/.cache/torch/hub/checkpoints, where the
library downloads them; downloaded there when missing); offline with neither, one error line gives the URL and
both ways to provide the file. Random weights are never used.

Small sets: FID is biased upward below a few thousand images (compare FIDs only at equal counts); KID is
unbiased and its std over subsets says how far to trust it. `--kid_subset_size` defaults to half the smaller
folder, at most 1000. Errors (a missing or empty folder, an unreadable image, a bad option or weights file):
one `error: ...` line on stderr, exit code 2.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

import torch

from util import fid
from util.cli import OptionParser, run_cli
from util.device import resolve_placement
from util.errors import OptionError
from util.fileio import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger("eval_fid")


def build_parser() -> argparse.ArgumentParser:
    p = OptionParser(prog="eval_fid.py", description="FID and KID (mean ± std) of generated images against real ones, "
                                                "with the TensorFlow-Inception protocol (torch-fidelity).")
    p.add_argument("real_dir", help="folder of real images (e.g. the test set's target domain)")
    p.add_argument("fake_dir", help="folder of generated images")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the results (and how they were measured)")
    p.add_argument("--batch_size", type=int, default=50, help="images per Inception batch (default: %(default)s)")
    p.add_argument("--gpu_ids", default=None,
                   help="GPU id, or -1 for the CPU (default: 0 when CUDA is available, else -1)")
    p.add_argument("--inception_weights", default=None, metavar="PATH",
                   help="the FID Inception weights file (default: torch's hub cache, downloaded there when missing)")
    p.add_argument("--kid_subset_size", type=int, default=None,
                   help="images per KID subset (default: half the smaller folder, at most 1000)")
    p.add_argument("--kid_subsets", type=int, default=fid.KID_SUBSETS,
                   help="random subsets KID is averaged over (default: %(default)s)")
    return p


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.batch_size < 1:
        raise OptionError(f"--batch_size must be >= 1, got {args.batch_size}")
    if args.kid_subsets < 1:
        raise OptionError(f"--kid_subsets must be >= 1, got {args.kid_subsets}")
    if args.gpu_ids is None:
        args.gpu_ids = "0" if torch.cuda.is_available() else "-1"
    return args


def summary(result: fid.FIDResult, real_dir: str, fake_dir: str) -> str:
    return (f"FID {result.fid:.4f}\n"
            f"KID {result.kid_mean:.6f} ± {result.kid_std:.6f} ({result.kid_subsets} subsets of "
            f"{result.kid_subset_size} images)\n"
            f"images: {result.n_real} real in {real_dir}, {result.n_fake} generated in {fake_dir}\n"
            f"note: {fid.BIAS_NOTE}\n")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    real_paths = fid.folder_images(args.real_dir, "real images")
    fake_paths = fid.folder_images(args.fake_dir, "generated images")
    subset = fid.kid_subset_size(len(real_paths), len(fake_paths), args.kid_subset_size)  # before the network
    device = resolve_placement(args.gpu_ids, training=False).device
    network = fid.InceptionFeatures(fid.resolve_weights(args.inception_weights), device, args.batch_size)
    result = fid.fid_kid(network(real_paths, desc="real"), network(fake_paths, desc="generated"), subset,
                         args.kid_subsets)
    print(summary(result, args.real_dir, args.fake_dir), end="", flush=True)
    if args.json:
        report = {"real_dir": args.real_dir, "fake_dir": args.fake_dir, **result.to_dict(), **network.describe(),
                  "note": fid.BIAS_NOTE}
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")
        logger.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
