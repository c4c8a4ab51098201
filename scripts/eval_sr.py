"""The super-resolution evaluation table of the README and docs: PSNR / SSIM per test set, bicubic and a model.

    python scripts/eval_sr.py                                       # bicubic x4 on Set5 and Set14
    python scripts/eval_sr.py --name srgan_291                      # + the model's row (options: its train_opt.json)
    python scripts/eval_sr.py --name srgan_291 --sets ~/data/Set5 ~/data/BSD100 --json eval.json --markdown eval.md
    python scripts/eval_sr.py --name srgan_291 -- --tile 256 --tile_pad 40   # flags after -- go to test.py

Why a script: published SR figures follow one protocol (Y channel of BT.601, `scale` border pixels cropped,
LR by bicubic downscaling; util/images/metrics.py), and a figure computed any other way is not comparable. The
table must therefore come from exactly the code `test.py --model srgan --eval_metrics` runs, not from numbers
copied by hand from several metrics.json files. With `--name` the script runs test.py (in-process) on every
set and reads its metrics.json, which holds the model's and bicubic's scores of the same LR inputs. Without
`--name` it needs no checkpoint: it computes the bicubic baseline with the very functions test.py's bicubic
path uses (util.images modcrop / bicubic_downscale / bicubic_upscale / sr_metrics), so both ways agree exactly.

The default sets are `../shared/data/sr_eval/Set5` and `Set14` from the repository root. Results (images,
pages, metrics.json) go to a temporary folder that is removed afterwards, or to `--results_dir`, never into
the repository. The network options of a checkpoint (models.network_options: netG, ngf, norm, scale and the
generator's own, e.g. SRResNet's n_blocks) come from its `train_opt.json` as test.py takes them
(options.run_options), so a plain `--name` is enough for a run trained with this toolkit or installed from the
zoo; flags given here or after `--` take precedence. Errors: one `error: ...` line on stderr, exit code 2.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import logging
import math
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch

from models import network_options
from models.networks import sr_scales
from options import read_saved_options, run_options, saved_options_path
from util.cli import OptionParser, run_cli
from util.errors import DataError, OptionError
from util.fileio import atomic_write_text
from util.images import bicubic_downscale, bicubic_upscale, make_dataset, modcrop, read_image, sr_metrics

ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger("eval_sr")

SR_EVAL = ROOT.parent / "shared" / "data" / "sr_eval"
DEFAULT_SETS: Tuple[Path, ...] = (SR_EVAL / "Set5", SR_EVAL / "Set14")
BICUBIC = "bicubic"
PROTOCOL = "Y channel (ITU-R BT.601), {scale} border pixels cropped, LR by bicubic downscaling (PIL)"


class SetScores:
    """Scores of one method on one test set: the means and the per-image values they average.

    (A plain class, not a dataclass: tests import this script by path, without a sys.modules entry, which
    dataclasses need to resolve postponed annotations.)
    """

    def __init__(self, psnr: float, ssim: float, images: List[Dict[str, Any]]) -> None:
        self.psnr = psnr
        self.ssim = ssim
        self.images = images

    @property
    def count(self) -> int:
        return len(self.images)

    def to_dict(self) -> Dict[str, Any]:
        return {"psnr": self.psnr, "ssim": self.ssim, "count": self.count, "images": self.images}


# ---- command line -------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = OptionParser(prog="eval_sr.py", description="PSNR / SSIM table (bicubic and a trained srgan generator) on "
                                               "SR test sets. Flags after -- are passed on to test.py.")
    p.add_argument("--name", default=None,
                   help="experiment whose generator to evaluate (<checkpoints_dir>/<name>); without it: bicubic "
                        "only, no checkpoint needed")
    p.add_argument("--label", default=None, help="the model's row in the table (default: --name)")
    p.add_argument("--checkpoints_dir", default="./checkpoints", help="(default: %(default)s)")
    p.add_argument("--epoch", default="latest", help="which checkpoint: latest or an epoch (default: %(default)s)")
    p.add_argument("--netG", default=None, help="generator architecture (default: from train_opt.json)")
    p.add_argument("--ngf", type=int, default=None, help="generator width (default: from train_opt.json)")
    p.add_argument("--n_blocks", type=int, default=None, help="residual blocks (default: from train_opt.json)")
    p.add_argument("--norm", default=None, help="normalisation layers (default: from train_opt.json)")
    p.add_argument("--scale", type=int, default=None, choices=sr_scales(),
                   help="upscaling factor (default: from train_opt.json, else 4)")
    p.add_argument("--gpu_ids", default=None,
                   help="test.py's --gpu_ids (default: 0 when CUDA is available, else -1)")
    p.add_argument("--sets", nargs="+", default=None, metavar="DIR",
                   help="folders of HR test images (default: ../shared/data/sr_eval/Set5 and Set14 from the "
                        "repository root)")
    p.add_argument("--results_dir", default=None,
                   help="keep test.py's pages and metrics.json here (default: a temporary folder, removed)")
    p.add_argument("--json", default=None, metavar="OUT.json", help="also write the scores (with per-image values)")
    p.add_argument("--markdown", default=None, metavar="OUT.md", help="also write the table")
    p.add_argument("--verbose", action="store_true", help="show test.py's own output")
    return p


def split_passthrough(argv: Sequence[str]) -> Tuple[List[str], List[str]]:
    """The script's flags and, after the first `--`, those for test.py."""
    args = list(argv)
    if "--" in args:
        cut = args.index("--")
        return args[:cut], args[cut + 1:]
    return args, []


def parse_args(argv: Sequence[str]) -> Tuple[argparse.Namespace, List[str]]:
    own, extra = split_passthrough(argv)
    args = build_parser().parse_args(own)
    if args.name is None:
        if args.label is not None:
            raise OptionError("--label names the model's row: it needs --name (the experiment to evaluate)")
        if extra:
            raise OptionError(f"the flags after -- ({' '.join(extra)}) are for test.py, which only runs with --name")
    if args.label is not None and not args.label.strip():
        raise OptionError("--label must not be empty")
    if (args.label or args.name) == BICUBIC:
        raise OptionError(f"the model's row cannot be called '{BICUBIC}': pass another --label")
    return args, extra


def resolve_sets(folders: Optional[Sequence[str]]) -> List[Path]:
    """The test-set folders, checked to exist and to have distinct names (they label the table's columns)."""
    sets = [Path(f) for f in folders] if folders else list(DEFAULT_SETS)
    for folder in sets:
        if not folder.is_dir():
            hint = (f" (the default sets are expected in {SR_EVAL}; pass --sets DIR ... to use others)"
                    if folders is None else "")
            raise DataError(f"test set folder {folder} does not exist{hint}", path=str(folder))
    names = [s.name for s in sets]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise OptionError(f"--sets: two folders are named {repeated[0]}; the table tells sets apart by folder name")
    return sets


# ---- bicubic, without a model -------------------------------------------------------------------------------


def mean_scores(images: List[Dict[str, Any]]) -> SetScores:
    psnr = math.fsum(r["psnr"] for r in images) / len(images)
    ssim = math.fsum(r["ssim"] for r in images) / len(images)
    return SetScores(psnr, ssim, images)


def bicubic_scores(folder: Path, scale: int) -> SetScores:
    """Bicubic upscaling of each image's bicubic LR against the HR, as test.py --eval_metrics computes it.

    Same steps as data/sr_pairs.test_sample + SRGANModel.test: modcrop the HR, downscale it, upscale the LR
    back to the HR size, score with util.images.sr_metrics (Y channel, `scale` border).
    """
    images = []
    for path in make_dataset(str(folder)):
        hr = modcrop(read_image(path), scale)
        up = bicubic_upscale(bicubic_downscale(hr, scale), scale)
        try:
            score = sr_metrics(up.pixels, hr.pixels, border=scale)
        except ValueError as e:  # too small for the border and SSIM's window
            raise DataError(f"{path}: {e}; remove the image from the test set", path=path) from e
        images.append({"image": os.path.basename(path), **score})
    logger.info("%s: bicubic x%d on %d images", folder.name, scale, len(images))
    return mean_scores(images)


# ---- a model, through test.py --------------------------------------------------------------------------------


def load_test_main() -> Callable[[Optional[Sequence[str]]], int]:
    """test.py's `main`, imported by path (`import test` would find the standard library's package)."""
    path = ROOT / "test.py"
    spec = importlib.util.spec_from_file_location("_eval_sr_test_script", path)
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_gpu_ids(args: argparse.Namespace) -> str:
    """test.py's --gpu_ids: the one given, else 0 when CUDA is available, else -1."""
    if args.gpu_ids is not None:
        return args.gpu_ids
    return "0" if torch.cuda.is_available() else "-1"


def architecture(args: argparse.Namespace, extra: Sequence[str] = ()) -> Dict[str, Any]:
    """The network options test.py will build the generator with: those of the run's train_opt.json, where
    this script's flags or those after -- do not give them, as test.py itself resolves them (options.run_options),
    so the table's row says what ran."""
    path = saved_options_path(args.checkpoints_dir, args.name)
    saved = read_saved_options(path) if os.path.isfile(path) else {}
    if saved.get("model", "srgan") != "srgan":
        raise OptionError(f"--name {args.name} was trained with --model {saved['model']} ({path}); "
                          f"this script evaluates --model srgan generators")
    flags = ["--model", "srgan", "--epoch", args.epoch, "--gpu_ids", test_gpu_ids(args)]
    for key in ("netG", "ngf", "n_blocks", "norm", "scale"):
        if getattr(args, key) is not None:
            flags += [f"--{key}", str(getattr(args, key))]
    opt = run_options(args.name, args.checkpoints_dir, [*flags, *extra])
    return {key: getattr(opt, key) for key in network_options(opt, "G")}


def metrics_files(results_dir: Path) -> Dict[Path, int]:
    """Every metrics.json under `results_dir` with its modification time (ns)."""
    return {p: p.stat().st_mtime_ns for p in results_dir.rglob("metrics.json")}


def find_metrics(results_dir: Path, before: Dict[Path, int]) -> Path:
    """The metrics.json test.py has just written: new or changed since `before` (a reused --results_dir may
    hold older ones; where test.py puts it depends on --phase, --epoch and --load_iter)."""
    found = sorted(p for p, mtime in metrics_files(results_dir).items() if before.get(p) != mtime)
    if len(found) != 1:
        raise DataError(f"test.py wrote {len(found)} metrics.json files under {results_dir}, expected one: check "
                        f"the flags passed after --", path=str(results_dir))
    return found[0]


def run_test_py(test_main: Callable[[Optional[Sequence[str]]], int], folder: Path, args: argparse.Namespace,
                arch: Dict[str, Any], extra: Sequence[str], results_dir: Path) -> Dict[str, Any]:
    """test.py --model srgan --eval_metrics on every image of `folder`; returns its metrics.json."""
    argv = ["--dataroot", str(folder), "--name", args.name, "--checkpoints_dir", args.checkpoints_dir,
            "--epoch", args.epoch, "--model", "srgan", "--eval_metrics", "--num_test", "100000",
            "--gpu_ids", test_gpu_ids(args), "--num_threads", "0", "--results_dir", str(results_dir)]
    for key, value in arch.items():
        if isinstance(value, bool):  # a switch (store_true): present or absent
            argv += [f"--{key}"] if value else []
        else:
            argv += [f"--{key}", str(value)]
    argv += list(extra)  # last, so they win over the options above
    logger.info("%s: test.py %s", folder.name, " ".join(argv))
    results_dir.mkdir(parents=True, exist_ok=True)
    before = metrics_files(results_dir)
    output = io.StringIO()
    redirect = contextlib.nullcontext() if args.verbose else contextlib.redirect_stdout(output)
    try:
        with redirect:
            rc = test_main(argv)
    finally:
        if not args.verbose:
            (results_dir / "test_log.txt").write_text(output.getvalue(), encoding="utf-8")
    for line in output.getvalue().splitlines():  # the options table stays in the log, warnings do not
        if line.startswith("warning: "):
            logger.warning("%s: test.py: %s", folder.name, line[len("warning: "):])
    if rc != 0:
        raise DataError(f"test.py on {folder} exited with {rc}; see its output in {results_dir} (test_log.txt)")
    with open(find_metrics(results_dir, before), encoding="utf-8") as f:
        return json.load(f)


def scores_from_report(report: Dict[str, Any], prefix: str) -> SetScores:
    """`prefix` 'SR' or 'bicubic' of a test.py metrics.json."""
    images = [{"image": r["image"], "psnr": r[f"{prefix}_psnr"], "ssim": r[f"{prefix}_ssim"]}
              for r in report["images"]]
    return SetScores(report["mean"][f"{prefix}_psnr"], report["mean"][f"{prefix}_ssim"], images)


@contextlib.contextmanager
def results_root(results_dir: Optional[str]) -> Iterator[Path]:
    if results_dir is not None:
        Path(results_dir).mkdir(parents=True, exist_ok=True)
        yield Path(results_dir)
        logger.info("test.py's results are in %s", results_dir)
        return
    with tempfile.TemporaryDirectory(prefix="eval_sr_") as tmp:
        yield Path(tmp)


# ---- output -------------------------------------------------------------------------------------------------


def markdown_table(results: Dict[str, Dict[str, SetScores]], sets: Sequence[str], scale: int, protocol: str) -> str:
    """Rows = methods (bicubic first), one column per set holding 'PSNR / SSIM', and a caption line."""
    header = [f"x{scale}", *(f"{s} PSNR / SSIM" for s in sets)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * len(sets)) + "|"]
    for label, per_set in results.items():
        cells = [f"{per_set[s].psnr:.2f} / {per_set[s].ssim:.4f}" for s in sets]
        lines.append("| " + " | ".join([label, *cells]) + " |")
    counts = ", ".join(f"{s} {results[BICUBIC][s].count}" for s in sets)
    lines += ["", f"PSNR (dB) / SSIM, {protocol}; images: {counts}."]
    return "\n".join(lines) + "\n"


def write_text(path: str, text: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    atomic_write_text(path, text)
    logger.info("wrote %s", path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    sets = resolve_sets(args.sets)
    names = [s.name for s in sets]
    results: Dict[str, Dict[str, SetScores]] = {BICUBIC: {}}
    report: Dict[str, Any] = {"sets": {s.name: str(s) for s in sets}}
    protocol = None  # test.py's, from its metrics.json (it names the degradation); the bicubic one without it
    if args.name is None:
        scale = args.scale or 4
        for folder in sets:
            results[BICUBIC][folder.name] = bicubic_scores(folder, scale)
    else:
        arch = architecture(args, extra)
        scale = int(arch["scale"])
        label = args.label or args.name
        results[label] = {}
        test_main = load_test_main()
        with results_root(args.results_dir) as root:
            for folder in sets:
                metrics = run_test_py(test_main, folder, args, arch, extra, root / folder.name)
                scale = int(metrics.get("scale", scale))
                protocol = metrics.get("protocol", protocol)
                results[BICUBIC][folder.name] = scores_from_report(metrics, "bicubic")
                results[label][folder.name] = scores_from_report(metrics, "SR")
        report["model"] = {"label": label, "name": args.name, "checkpoints_dir": args.checkpoints_dir,
                           "epoch": args.epoch, "options": arch, "test_py_flags": list(extra)}
    protocol = protocol or PROTOCOL.format(scale=scale)
    table = markdown_table(results, names, scale, protocol)
    print(table, end="", flush=True)
    if args.markdown:
        write_text(args.markdown, table)
    if args.json:
        report.update(scale=scale, protocol=protocol,
                      results={label: {s: v.to_dict() for s, v in per_set.items()}
                               for label, per_set in results.items()})
        write_text(args.json, json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
