"""Download the reference's published datasets and pretrained generators, and the SR model zoo.

    python scripts/download.py dataset pix2pix facades          # -> datasets/facades/{train,val,test}
    python scripts/download.py dataset cyclegan horse2zebra     # -> datasets/horse2zebra/{trainA,...}
    python scripts/download.py model cyclegan horse2zebra       # -> checkpoints/horse2zebra_pretrained/latest_net_G.pth
    python scripts/download.py model pix2pix facades_label2photo
    python scripts/download.py model sr --list                  # the super-resolution zoo
    python scripts/download.py model sr realesrgan-x4plus       # -> checkpoints/realesrgan-x4plus/{latest_net_G.pth,train_opt.json}

Without internet, fetch the file on another machine (the address is in the error message) and pass it with
`--from-file PATH`; `--url URL` uses a mirror instead of the published address. On success the script
prints where the files are and the command that uses them. Errors: one line on stderr, exit code 2.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence

from util import download
from util.cli import OptionParser, run_cli
from util.errors import OptionError


def _fetch_dataset(args: argparse.Namespace) -> List[str]:
    path = download.fetch_dataset(args.kind, args.name, args.root, from_file=args.from_file, url=args.url,
                                  overwrite=args.overwrite, timeout=args.timeout)
    return [f"dataset {args.name} is in {path}", "train on it with:",
            "  " + download.train_command(args.kind, args.name, args.root)]


def _fetch_sr_model(args: argparse.Namespace) -> List[str]:
    if args.list:
        return download.sr_model_table()
    if args.name is None:
        raise OptionError("model sr: give a NAME, or --list to see them (see download.py model sr --help)")
    # Imported here: converting published weights needs the architectures (torch), datasets do not.
    from models.inference.published_weights import to_toolkit_state_dict

    folder = download.install_sr_model(args.name, args.checkpoints_dir, convert=to_toolkit_state_dict,
                                       from_file=args.from_file, url=args.url, timeout=args.timeout)
    return [f"SR model {args.name} is in {folder}", "upscale your photos (a folder PHOTOS) with:",
            "  " + download.sr_test_command(args.name, args.checkpoints_dir),
            "  " + download.sr_upscale_command(args.name, args.checkpoints_dir)]


def _fetch_model(args: argparse.Namespace) -> List[str]:
    if args.kind == "sr":
        return _fetch_sr_model(args)
    path = download.fetch_pretrained(args.kind, args.name, args.checkpoints_dir, from_file=args.from_file,
                                     url=args.url, timeout=args.timeout)
    commands = download.test_commands(args.kind, args.name, args.checkpoints_dir, args.root)
    return [f"generator {args.name} is in {path}", "test it with:", *("  " + c for c in commands)]


# what -> (table of names per kind, the function that fetches one and says what to do next)
_WHAT: Dict[str, Callable[[argparse.Namespace], List[str]]] = {"dataset": _fetch_dataset, "model": _fetch_model}
_TABLES = {"dataset": download.DATASETS, "model": download.PRETRAINED}


def _dataset_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", default="datasets", help="datasets folder (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing <root>/<name> folder")


def _model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoints_dir", default="checkpoints", help="checkpoints folder (default: %(default)s)")
    p.add_argument("--root", default="datasets",
                   help="datasets folder, for the test command printed at the end (default: %(default)s)")


_OWN_ARGUMENTS = {"dataset": _dataset_arguments, "model": _model_arguments}


def _source_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from-file", dest="from_file", metavar="PATH",
                   help="use this local file (archive or .pth) instead of downloading")
    p.add_argument("--url", help="download from this address (a mirror) instead of the published one")
    p.add_argument("--timeout", type=float, default=60,
                   help="seconds to wait for the server on connect and on each read (default: %(default)s)")


def _sr_parser(kinds: Any) -> None:
    names = download.sr_model_names()
    p = kinds.add_parser("sr", help=f"super-resolution models (--list describes them): {', '.join(names)}")
    p.add_argument("name", nargs="?", choices=names, metavar="NAME", help=f"one of: {', '.join(names)}")
    p.add_argument("--list", action="store_true",
                   help="show every name with its scale, architecture, size and what it is for")
    _source_arguments(p)
    p.add_argument("--checkpoints_dir", default="checkpoints",
                   help="checkpoints folder; the model becomes the run <checkpoints_dir>/NAME (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    parser = OptionParser(prog="download.py", description=__doc__.split("\n\n")[0],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    whats = parser.add_subparsers(dest="what", required=True, metavar="{dataset,model}")
    for what, table in _TABLES.items():
        what_parser = whats.add_parser(what, help=f"fetch a published {what}")
        kind_names = table.names() + (["sr"] if what == "model" else [])
        kinds = what_parser.add_subparsers(dest="kind", required=True, metavar="{" + ",".join(kind_names) + "}")
        for kind in table.names():
            names = table.get(kind).names()
            p = kinds.add_parser(kind, help=f"{kind} {what}s: {', '.join(names)}")
            p.add_argument("name", choices=names, metavar="NAME", help=f"one of: {', '.join(names)}")
            _source_arguments(p)
            _OWN_ARGUMENTS[what](p)
        if what == "model":
            _sr_parser(kinds)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    for line in _WHAT[args.what](args):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
