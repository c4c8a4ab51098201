"""Peak memory of a whole `test.py --model srgan` run on one large photo: the measurement behind issue 13, item 8.

    python scripts/measure_test_rss.py                      # 2000x1500 photo, x4, SRResNet 16 blocks, defaults
    python scripts/measure_test_rss.py --ngf 16 --n_blocks 1 --keep /tmp/rss   # 16x quicker: the page's part

What it does: makes a photo of `--size` in a temporary folder (a mosaic of the BSD200 photos in
../shared/data/sr_train when present, else smooth procedural content with noise), saves a randomly initialised
SRResNet x4 generator (the time depends on its weights, the memory does not) as a run's `latest_net_G.pth`, runs
test.py on it as a separate process at test.py's default settings (tile, --amp auto, --num_threads), and reports
the peak resident set size (RSS) of the largest process of the run (what `/usr/bin/time -v` calls the maximum
RSS) against the target, the wall time, and whether the results page is intact: every image it shows or links
to exists and opens. Exit code 0 when the peak is within `--target_mib` and the page is intact, else 1.

The peak is a high-water mark, so only a process of its own measures it: nothing runs before it in test.py's
process. Not a test: it takes minutes on a CPU, and its figure belongs in docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Dict, List, Tuple
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "sr_train" / "BSD200"
TARGET_MIB = 2048.0  # issue 13: test.py's whole run <= 2 GB on a 2000x1500 input at the default settings


def make_photo(path: Path, size: Tuple[int, int]) -> str:
    """An RGB photo of `size` (W, H) at `path`; returns where its content comes from."""
    import numpy as np
    from PIL import Image

    width, height = size
    files = sorted(PHOTOS.glob("*.jpg")) if PHOTOS.is_dir() else []
    if files:
        canvas = Image.new("RGB", size)
        cell_w, cell_h = 480, 320
        cols, rows = -(-width // cell_w), -(-height // cell_h)
        for i in range(cols * rows):
            with Image.open(files[i % len(files)]) as image:
                tile = image.convert("RGB").resize((cell_w, cell_h), Image.Resampling.BICUBIC)
            canvas.paste(tile, ((i % cols) * cell_w, (i // cols) * cell_h))
        canvas.save(path)
        return f"mosaic of BSD200 photos ({PHOTOS})"
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = [np.sin(x / (37 + 11 * c)) * np.cos(y / (23 + 7 * c)) for c in range(3)]  # (H, W) each
    pixels = np.stack(base, axis=2) * 90 + 128 + rng.normal(0, 12, (height, width, 3))  # (H, W, 3)
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)
    return "procedural (sinusoids and noise)"


def save_generator(run_dir: Path, ngf: int, n_blocks: int, scale: int) -> None:
    """A randomly initialised SRResNet as the run's `latest_net_G.pth`, built as test.py will build it."""
    import torch

    from models import networks

    torch.manual_seed(0)
    net = networks.define_G(3, 3, ngf, "srresnet", "batch", False, "normal", 0.02, (), n_blocks=n_blocks, scale=scale)
    run_dir.mkdir(parents=True)
    torch.save(net.state_dict(), run_dir / "latest_net_G.pth")


class _PageImages(HTMLParser):
    """The `src` of every <img> and the `href` of every <a> of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: List[str] = []

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Any]]) -> None:
        for key, value in attrs:
            if (tag, key) in (("img", "src"), ("a", "href")) and value:
                self.targets.append(unquote(value))


def page_problems(page: Path) -> List[str]:
    """What is wrong with a results page: a missing page, or images it shows or links to that do not open."""
    from PIL import Image

    if not page.is_file():
        return [f"no page at {page}"]
    parser = _PageImages()
    parser.feed(page.read_text())
    problems = []
    for target in sorted(set(parser.targets)):
        path = page.parent / target
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception as e:  # any failure means the page is not intact
            problems.append(f"{target}: {e}")
    return problems if parser.targets else [f"{page} shows no image"]


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="2000x1500", help="W x H of the photo (default: %(default)s)")
    parser.add_argument("--scale", type=int, default=4, help="upscaling factor (default: %(default)s)")
    parser.add_argument("--n_blocks", type=int, default=16, help="SRResNet blocks (default: %(default)s)")
    parser.add_argument("--ngf", type=int, default=64,
                        help="SRResNet filters (default: %(default)s); 16 computes 16x less and leaves the network's "
                             "tiles a quarter of their memory, so the peak is the results page's part")
    parser.add_argument("--target_mib", type=float, default=TARGET_MIB, help="peak RSS target (default: %(default)s)")
    parser.add_argument("--keep", default=None, help="folder for the photo, run and results (default: temporary)")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("test_args", nargs="*", help="more test.py flags after --, e.g. -- --tile 128")
    args = parser.parse_args(argv)
    match = re.fullmatch(r"(\d+)x(\d+)", args.size)
    if not match:
        parser.error(f"--size {args.size!r}: expected WxH, e.g. 2000x1500")
    size = (int(match.group(1)), int(match.group(2)))

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        (work / "photo").mkdir(parents=True, exist_ok=True)
        source = make_photo(work / "photo" / "photo.png", size)
        save_generator(work / "checkpoints" / "rss", args.ngf, args.n_blocks, args.scale)
        command = [sys.executable, str(ROOT / "test.py"), "--dataroot", str(work / "photo"), "--name", "rss",
                   "--checkpoints_dir", str(work / "checkpoints"), "--results_dir", str(work / "results"),
                   "--model", "srgan", "--netG", "srresnet", "--ngf", str(args.ngf), "--norm", "batch",
                   "--n_blocks", str(args.n_blocks), "--scale", str(args.scale), "--gpu_ids", "-1", *args.test_args]
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=str(ROOT), capture_output=True, text=True)
        seconds = time.perf_counter() - start
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        problems = page_problems(work / "results" / "rss" / "test_latest" / "index.html") if proc.returncode == 0 \
            else [f"test.py exited with {proc.returncode}: {proc.stderr.strip()[-2000:]}"]
    report: Dict[str, Any] = {
        "photo": f"{size[0]}x{size[1]}", "photo_source": source, "scale": args.scale, "ngf": args.ngf,
        "n_blocks": args.n_blocks,
        "test_args": args.test_args, "peak_rss_mib": round(peak_mib, 1), "target_mib": args.target_mib,
        "seconds": round(seconds, 1), "page_problems": problems,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if peak_mib <= args.target_mib and not problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
