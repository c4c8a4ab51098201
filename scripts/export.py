"""Export an upscaling model for use outside the toolkit: ONNX (onnxruntime, any runtime) or safetensors.

    python scripts/export.py -n gan-translate-x4 --format onnx                  # -> gan-translate-x4.onnx + .json
    python scripts/export.py -n realesr-general-x4v3 --format onnx --fp16 -o general-fp16.onnx
    python scripts/export.py -n realesrgan-x4plus --format safetensors           # BasicSR's keys, opens in spandrel

`-n NAME` is resolved as scripts/upscale.py's: a run trained with --model srgan, or an SR zoo model (installed
when missing); the network is built by options.upscale_options and models.inference.load_upscaler, on the CPU
in fp32. ONNX files take any height and width, compute on the network's own value range (written in the
metadata and in the JSON beside the file, with the scale), and are checked against PyTorch before they take
their name (models/inference/export.py). A model that cannot be exported: one line, exit code 2, no file.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from models.inference import default_denoise, load_upscaler, model_name
from models.inference.export import export_onnx, export_safetensors, model_metadata
from options import upscale_options
from util.cli import OptionParser, run_cli
from util.errors import OptionError

FORMATS = ("onnx", "safetensors")


def build_parser() -> argparse.ArgumentParser:
    p = OptionParser(prog="export.py", description=__doc__.split("\n\n")[0])
    p.add_argument("-n", "--name", required=True,
                   help="the model: a folder of --checkpoints_dir (an srgan run, an installed model) or an SR zoo name")
    p.add_argument("--format", choices=FORMATS, default="onnx", help="what to write (default: %(default)s)")
    p.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="the file to write, a JSON of its metadata beside it (default: NAME.onnx / NAME.safetensors)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's, 18 or more)")
    p.add_argument("--fp16", action="store_true", help="ONNX with float16 weights, input and output")
    p.add_argument("--checkpoints_dir", default="./checkpoints", help="where models are (default: %(default)s)")
    p.add_argument("--epoch", default="latest", help="which checkpoint of a run (default: %(default)s)")
    p.add_argument("-dn", "--denoise", type=float, default=None,
                   help="for realesr-general-x4v3: the --denoise blend to export (default: as upscale.py's)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.format != "onnx" and (args.fp16 or args.opset is not None):
        raise OptionError("--fp16 and --opset are for --format onnx; safetensors keeps the weights in float32")
    name = model_name(args.name, args.checkpoints_dir)
    output = args.output or f"{name}.{args.format}"
    if os.path.isdir(output):
        raise OptionError(f"-o {output} is a folder: name the file to write")
    opt = upscale_options(name, args.checkpoints_dir, args.epoch, ["--gpu_ids", "-1", "--amp", "none"])
    denoise = default_denoise(name) if args.denoise is None else args.denoise
    net = load_upscaler(opt, denoise, tile=0).net
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    metadata = model_metadata(opt)
    if args.format == "onnx":
        export_onnx(net, output, metadata, args.opset, args.fp16)
    else:
        export_safetensors(net, output, metadata)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
