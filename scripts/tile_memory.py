"""Peak memory of tiled x4 upscaling of one photo per tile size: where each generator's default --tile comes from.

    python scripts/tile_memory.py --netG srresnet --tiles 192 512 768            # split tiles, fp32, torch
    python scripts/tile_memory.py --netG srresnet --tiles 192 256 --backend onnxruntime   # plain tiles
    python scripts/tile_memory.py --netG rrdbnet --tiles 512 --rows 1             # first row of tiles only

Each setting runs in a fresh process (peak RSS, `resource.getrusage(...).ru_maxrss`, is a high-water mark of the
whole process, so nothing else may run before it there): it builds `--netG` at its registered default size
(srresnet and msrresnet 16 blocks, rrdbnet 23, srvgg 32 convolutions; 64 features) with random weights (memory
does not depend on them), upscales a random `--size` image x4 through `Upscaler` at `--amp` with the generator's
default tile context, and prints one JSON line: tile, head tile, peak RSS in MiB, seconds, and the overlap
factor, the convolution work the tiles compute over the work of one pass over the image (from the windows'
areas and the trunk's and head's FLOPs per LR pixel, torch.utils.flop_counter). `--rows N` upscales only the
first N rows of outer tiles (RRDBNet takes about 25 minutes a photo on a 2-core CPU) and adds the rest of the
output's integer levels to the estimate (`rss_full_mib`). Times are only what this machine gave: not a speed
figure (scripts/benchmark.py measures speed). Not a test; its results go to docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from models import networks  # noqa: E402
from models.inference.split_tiles import HEAD_TILE, spans, splittable  # noqa: E402

SCALE = 4


def build(netG: str, n_blocks: int = 0) -> nn.Module:
    """`netG` x4 at its registered default size (the builders' defaults) or with `n_blocks`, 64 features, eval
    mode, random weights."""
    torch.manual_seed(0)
    depth = {"n_blocks": n_blocks} if n_blocks else {}
    return networks.define_G(3, 3, 64, netG, "batch", False, "normal", 0.02, scale=SCALE, **depth).eval()


def flops_per_pixel(net: nn.Module) -> Tuple[float, float]:
    """FLOPs per LR pixel of the trunk and of the head (the whole network and 0 for one without a split)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(1, 3, 32, 32)
    counts = []
    with torch.no_grad():
        for run in ((lambda: net.trunk(x)), (lambda: net.hr_head(net.trunk(x), x))) if splittable(net) \
                else ((lambda: net(x)),):
            with FlopCounterMode(display=False) as counter:
                run()
            counts.append(counter.get_total_flops() / 32 / 32)
    return (counts[0], counts[1] - counts[0]) if len(counts) == 2 else (counts[0], 0.0)


def window_area(h: int, w: int, tile: int, pad: int, start: Tuple[int, int] = (0, 0),
                end: Tuple[int, int] = (0, 0)) -> int:
    """LR pixels the windows of `tile` with `pad` of context cover over [start, end) of an h x w image, summed."""
    end = end if end != (0, 0) else (h, w)
    rows = [b - a for _, (a, b) in spans(start[0], end[0], tile, pad, 0, h)]
    cols = [b - a for _, (a, b) in spans(start[1], end[1], tile, pad, 0, w)]
    return sum(rows) * sum(cols)


def overlap(h: int, w: int, tile: int, pad: int, head_tile: int, head_pad: int, fpp: Tuple[float, float]) -> float:
    """Convolution work of the tiling over one pass's: plain tiles compute each window's area at the whole
    network's cost; split tiles the outer windows (tile + all the context) at the trunk's, the head windows at
    the head's."""
    trunk, head = fpp
    if not head_tile or not head:
        return window_area(h, w, tile, pad) / (h * w)
    head_work = 0
    for (y0, y1), _ in spans(0, h, tile, 0, 0, h):
        for (x0, x1), _ in spans(0, w, tile, 0, 0, w):
            head_work += window_area(h, w, head_tile, head_pad, (y0, x0), (y1, x1))
    return (window_area(h, w, tile, pad) * trunk + head_work * head) / (h * w * (trunk + head))


def child(spec: Dict[str, Any]) -> Dict[str, Any]:
    """One measurement, in this process: the photo through `Upscaler`, and the process's peak RSS."""
    from models.inference.onnx_backend import OnnxGenerator
    from models.inference.tiles import default_tile_pad
    from models.inference.upscaler import Upscaler
    from util.images import SRImage

    netG, tile, head_tile = spec["netG"], spec["tile"], spec["head_tile"]
    w, h = spec["size"]
    rows_h = min(h, spec["rows"] * tile) if spec["rows"] and tile else h
    if spec["backend"] == "torch":
        net: nn.Module = build(netG, spec["n_blocks"])
    else:
        net = OnnxGenerator(spec["onnx"], torch.get_num_threads())
    pad = default_tile_pad(netG, {"scale": SCALE})
    layout = spec["channels_last"] if spec["backend"] == "torch" else "off"
    upscaler = Upscaler(net, SCALE, torch.device("cpu"), spec["amp"], tile, pad, layout, head_tile=head_tile)
    image = SRImage(torch.rand(3, rows_h, w), None, 8)  # (3, h, w) in [0, 1]
    start = time.perf_counter()
    upscaler(image)
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    rest = 3 * (h - rows_h) * w * SCALE * SCALE / 2**20  # the uint8 levels of the rows not run
    return {"netG": netG, "backend": spec["backend"], "amp": spec["amp"], "tile": tile,
            "head_tile": upscaler.head_tile, "n_blocks": spec["n_blocks"], "pad": pad, "rows_run": rows_h,
            "rss_mib": round(rss),
            "rss_full_mib": round(rss + rest), "seconds": round(seconds, 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--netG", choices=[n for n in networks.GENERATORS.names() if networks.upscales(n)])
    p.add_argument("--tiles", type=int, nargs="+", help="outer (trunk) tile sizes to try, LR pixels")
    p.add_argument("--head_tile", type=int, default=HEAD_TILE,
                   help="LR pixels of a head tile; 0: plain tiles (default: %(default)s)")
    p.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch",
                   help="onnxruntime: plain tiles, fp32, exported once into a temporary folder")
    p.add_argument("--amp", choices=("none", "bf16"), default="none", help="precision (default: %(default)s)")
    p.add_argument("--channels_last", choices=("on", "off"), default="on",
                   help="memory layout (default: %(default)s, test.py's for --model srgan on a CPU)")
    p.add_argument("--size", type=int, nargs=2, default=(1920, 1080), metavar=("W", "H"),
                   help="the LR image (default: 1920 1080)")
    p.add_argument("--rows", type=int, default=0, help="run only this many rows of outer tiles (0: all)")
    p.add_argument("--n_blocks", type=int, default=0,
                   help="blocks of srresnet, msrresnet or rrdbnet instead of the default (0); the context stays the "
                        "default network's. Without gradients the blocks run one after another, so the peak is one "
                        "block's whatever their number: rrdbnet with 1 block measures 23 blocks' activations in "
                        "minutes instead of half an hour (add the 22 blocks' weights, 64 MiB in fp32)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))), flush=True)
        return 0
    if not args.netG or not args.tiles:
        p.error("--netG and --tiles are required")
    net = build(args.netG, args.n_blocks)
    fpp = flops_per_pixel(net)
    head_pad = getattr(net, "head_context", 0)
    with tempfile.TemporaryDirectory(prefix="tile_memory-") as tmp:
        onnx = os.path.join(tmp, f"{args.netG}.onnx")
        if args.backend == "onnxruntime":
            from models.inference.export import export_onnx, value_range

            export_onnx(net, onnx, {"netG": args.netG, "scale": str(SCALE), "value_range": value_range(args.netG)})
        del net
        for tile in args.tiles:
            spec = {"netG": args.netG, "tile": tile, "head_tile": 0 if args.backend != "torch" else args.head_tile,
                    "backend": args.backend, "amp": args.amp, "size": list(args.size), "rows": args.rows,
                    "n_blocks": args.n_blocks, "channels_last": args.channels_last, "onnx": onnx}
            done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                                  text=True)
            if done.returncode:
                sys.stderr.write(done.stderr)
                return done.returncode
            result = json.loads(done.stdout.strip().splitlines()[-1])
            w, h = args.size
            result["overlap"] = round(overlap(h, w, tile, result["pad"], result["head_tile"], head_pad, fpp), 3)
            result["trunk_flop_share"] = round(fpp[0] / (fpp[0] + fpp[1]), 3)
            print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
