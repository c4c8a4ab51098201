"""Speed-up of upscaling a folder with N processes (torchrun) against one, on this machine (docs/benchmarks.md).

    python scripts/benchmark_ranks.py                       # 20 photos of BSD200 at half size, gan-translate-x4
    python scripts/benchmark_ranks.py --processes 2 --repeats 2 --json ranks.json

The photos are the first --count of ../shared/data/sr_train/BSD200 (481x321 JPEG; --photos for another folder),
downscaled by --downscale with the literature's bicubic (modcrop first) and saved as PNG. Each configuration is
the command a user runs, timed from start to exit: `python scripts/upscale.py -i IN -o OUT -n gan-translate-x4`
for one process (torch's default threads: every core), `torchrun --standalone --nproc_per_node N
scripts/upscale.py ...` for N (each rank takes cores // N threads, util/sharding.share_threads). Right after each,
the same command again finds every result there and upscales nothing: its time is the fixed cost (starting
Python and torch, loading the model, listing, the rendezvous), and the difference is the upscaling itself.
Reported per configuration: the median of --repeats (interleaved: 1, N, 1, N...), the speed-up of the whole
command and of the upscaling, and the share of the machine's CPU other processes used meanwhile (a timing taken
beside other work is an upper bound). The results of N processes are checked against one process's: the same
files, within one 8-bit level. Not byte for byte: a rank here computes with fewer threads than the single
process, and oneDNN's convolutions sum in another order with another thread count (with equal threads the
results are equal byte for byte: tests/scripts/test_upscale_distributed.py).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from benchmarking.inputs import SHARED_PHOTOS
from benchmarking.machine import cpu_mark, machine_info, others_busy_since

from models.inference import ensure_installed
from util.cli import run_cli
from util.errors import OptionError
from util.images import bicubic_downscale, is_image_file, modcrop, read_image, write_image

ROOT = Path(__file__).resolve().parents[1]
MODEL = "gan-translate-x4"


def make_photos(source: Path, folder: Path, count: int, downscale: int) -> List[str]:
    """The first `count` images of `source` (sorted), bicubic-downscaled by `downscale`, as PNG in `folder`."""
    names = sorted(n for n in os.listdir(source) if is_image_file(n))[:count] if source.is_dir() else []
    if len(names) < count:
        raise OptionError(f"--photos {source}: {len(names)} images, {count} needed (../shared/data holds BSD200; "
                          f"pass --photos DIR with at least --count images)")
    folder.mkdir(parents=True)
    sizes = []
    for name in names:
        img = read_image(str(source / name))
        if downscale > 1:
            img = bicubic_downscale(modcrop(img, downscale), downscale)
        write_image(str(folder / (Path(name).stem + ".png")), img)
        sizes.append("x".join(map(str, img.size)))
    return sizes


def command(processes: int, photos: Path, out: Path, checkpoints: str, gpu_ids: str) -> List[str]:
    launch = ([sys.executable] if processes == 1 else
              [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)])
    return [*launch, "scripts/upscale.py", "-i", str(photos), "-o", str(out), "-n", MODEL, "--checkpoints_dir",
            checkpoints, "-g", gpu_ids]


def timed(argv: List[str]) -> Dict[str, Optional[float]]:
    """Wall seconds of `argv` (which must succeed) and the share of the machine other processes used meanwhile."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    mark, start = cpu_mark(), time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    busy = others_busy_since(mark)
    return {"seconds": round(seconds, 2), "others_busy": None if busy is None else round(busy, 3)}


def difference(one: Path, other: Path) -> Tuple[int, float]:
    """The largest difference between the results in two folders, in 8-bit levels, and the share of values that
    differ; the folders must hold the same file names."""
    names = sorted(os.listdir(one))
    if names != sorted(os.listdir(other)):
        raise RuntimeError(f"{one} and {other} hold different files")
    largest, differing, values = 0, 0, 0
    for name in names:
        with Image.open(one / name) as a, Image.open(other / name) as b:
            d = np.abs(np.asarray(a, dtype=np.int32) - np.asarray(b, dtype=np.int32))
        largest, differing, values = max(largest, int(d.max())), differing + int((d > 0).sum()), values + d.size
    return largest, differing / values


def summarise(runs: List[Dict[str, Dict[str, Optional[float]]]]) -> Dict[str, Optional[float]]:
    wall = statistics.median(r["run"]["seconds"] for r in runs)
    fixed = statistics.median(r["rerun"]["seconds"] for r in runs)
    busy = [r["run"]["others_busy"] for r in runs if r["run"]["others_busy"] is not None]
    return {"wall_s": round(wall, 2), "fixed_s": round(fixed, 2), "upscaling_s": round(wall - fixed, 2),
            "others_busy": round(max(busy), 3) if busy else None}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", type=Path, default=SHARED_PHOTOS, help="folder of photos (default: %(default)s)")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--downscale", type=int, default=2, help="bicubic factor applied to each photo first")
    p.add_argument("--processes", type=int, default=2, help="N, compared with 1")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--gpu_ids", default="-1", help="-1: the CPU")
    p.add_argument("--checkpoints_dir", default="./checkpoints")
    p.add_argument("--json", default=None, help="also write the report here")
    args = p.parse_args(argv)
    if args.count < 1 or args.downscale < 1 or args.processes < 2 or args.repeats < 1:
        raise OptionError("--count, --downscale and --repeats must be >= 1, --processes >= 2")
    ensure_installed(MODEL, args.checkpoints_dir, "latest")  # not inside the first timing
    machine = machine_info("cpu" if args.gpu_ids == "-1" else "cuda")
    runs: Dict[int, List[Dict[str, Dict[str, Optional[float]]]]] = {1: [], args.processes: []}
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        sizes = make_photos(args.photos, photos, args.count, args.downscale)
        for repeat in range(args.repeats):
            for n in runs:
                out = Path(tmp) / f"out{n}_{repeat}"
                argv_n = command(n, photos, out, args.checkpoints_dir, args.gpu_ids)
                runs[n].append({"run": timed(argv_n), "rerun": timed(argv_n)})
                print(f"{n} process(es), repeat {repeat + 1}: {runs[n][-1]}", file=sys.stderr)
        diffs = [difference(Path(tmp) / "out1_0", Path(tmp) / f"out{n}_{r}") for n in runs
                 for r in range(args.repeats)]
    same = max(d[0] for d in diffs) <= 1
    rows = {n: summarise(r) for n, r in runs.items()}
    one, many = rows[1], rows[args.processes]
    report = {"machine": machine, "model": MODEL, "photos": f"{args.count} of {args.photos}, /{args.downscale} "
              f"bicubic ({sizes[0]} ... {sizes[-1]})", "repeats": args.repeats,
              "largest_difference_levels": max(d[0] for d in diffs),
              "share_of_values_differing": max(d[1] for d in diffs),
              "processes": rows, "runs": runs,
              "speedup_wall": round(one["wall_s"] / many["wall_s"], 3),
              "speedup_upscaling": round(one["upscaling_s"] / many["upscaling_s"], 3)}
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(run_cli(main))
