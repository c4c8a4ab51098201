"""Load the upscaling service and measure it, in one bounded command on this machine only:

    python scripts/load_serve.py                          # starts scripts/serve.py (gan-translate-x4) itself
    python scripts/load_serve.py -c 32 -t 60 --json load.json --markdown load.md
    python scripts/load_serve.py --url http://127.0.0.1:8000/ --pid 12345   # a service already running here

N clients (-c, default 32) upload for T seconds (-t, default 120) a mix of real photos of 0.1 to 2 MP (--images,
default ../shared/data/sr_eval; the images outside the range are listed as skipped) with 10% hostile files (the
refused cases of the service's own corpus, scripts/serving/hostile.py: truncated and 0-byte files, text named
.png, a PNG header claiming 60000x60000, a 200-part multipart, an upload over the limit, ...). Requests in
flight at the end may finish within --drain_s. The report: requests by status (only 200, a hostile file's documented 4xx and 503
for overflow are acceptable), accepted images/s and output MP/s, p50/p95/p99 latency of accepted requests and of
503s, the slowest /healthz answer (probed every 0.25 s), the service's peak RSS (its processes' VmRSS, polled;
needs the pid: known when started here, --pid otherwise); then, in the same run, scripts/upscale.py on the same
photos (its images/s with its start-up left out; loadtesting/baseline.py) and one 512x384 photo x4 on the warm
service against upscale.py warm. JSON (--json) and a markdown table (--markdown, and the standard output).
Only loopback URLs are accepted: a load run against another machine is refused (exit code 2).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple

try:
    import httpx
except ImportError:  # in the test extra; the service's own extra does not need it
    print("error: load_serve.py needs httpx: pip install -e '.[test]' (or pip install httpx)", file=sys.stderr)
    sys.exit(2)
from benchmarking.machine import load_average, machine_info
from loadtesting import (hostile_uploads, loopback_url, markdown_table, photo_of_size, photo_uploads, pick_photos,
                         run_load, single_latency, started_service, summarize, upscale_py_baseline)
from loadtesting.service import ROOT, tree_peak_mib, wait_ready

from util.cli import OptionParser, at_least, positive_number, run_cli
from util.errors import OptionError
from util.fileio import atomic_write_text

logger = logging.getLogger("load_serve")
SINGLE_SIZE = (512, 384)


def build_parser() -> argparse.ArgumentParser:
    p = OptionParser(prog="load_serve.py", description=__doc__.split("\n\n")[0])
    p.add_argument("-c", "--clients", type=at_least(1), default=32, help="concurrent clients (default: %(default)s)")
    p.add_argument("-t", "--seconds", type=positive_number, default=120, help="how long they upload (default: %(default)s)")
    p.add_argument("--drain_s", type=float, default=120,
                   help="how long requests in flight at the end may take to finish (default: %(default)s)")
    p.add_argument("--hostile_share", type=float, default=0.1, help="share of hostile uploads (default: %(default)s)")
    p.add_argument("--images", default=str(ROOT.parent / "shared" / "data" / "sr_eval"),
                   help="folder of real photos, its subfolders too (default: %(default)s)")
    p.add_argument("--min_mp", type=float, default=0.1, help="smallest photo uploaded, MP (default: %(default)s)")
    p.add_argument("--max_mp", type=float, default=2.0, help="largest photo uploaded, MP (default: %(default)s)")
    p.add_argument("-n", "--name", default="gan-translate-x4",
                   help="the model served and given to upscale.py (default: %(default)s)")
    p.add_argument("--checkpoints_dir", default="./checkpoints", help="where the model is (default: %(default)s)")
    p.add_argument("--serve_args", default="", help="more arguments for scripts/serve.py, one string")
    p.add_argument("--upscale_args", default="", help="more arguments for scripts/upscale.py, one string")
    p.add_argument("--url", default=None, help="a service already running on this machine (loopback only)")
    p.add_argument("--pid", type=int, default=None, help="with --url: its process, for the memory figures")
    p.add_argument("--request_timeout", type=float, default=600, help="one request's limit, s (default: %(default)s)")
    p.add_argument("--retry_cap", type=float, default=1.0,
                   help="longest wait after a 503 before the next upload, s (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the clients' choices (default: %(default)s)")
    p.add_argument("--json", default=None, help="write the full report here")
    p.add_argument("--markdown", default=None, help="write the markdown table here")
    return p


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.drain_s < 0 or not 0 <= args.hostile_share <= 1:
        raise OptionError("--drain_s must be >= 0 and --hostile_share in [0, 1]")
    if args.url is not None:
        args.url = loopback_url(args.url)
    elif args.pid is not None:
        raise OptionError("--pid goes with --url (a service started here is measured without it)")
    if not os.path.isdir(args.images):
        raise OptionError(f"--images {args.images}: no such folder (give a folder of photos)")
    return args


@contextlib.contextmanager
def service(args: argparse.Namespace, folder: Path) -> Iterator[Tuple[str, Optional[int]]]:
    """The service's URL and pid: the one --url names, or scripts/serve.py started here for the run."""
    if args.url is not None:
        wait_ready(args.url, None, 30)
        yield args.url, args.pid
        return
    serve_args = ["-n", args.name, "--checkpoints_dir", args.checkpoints_dir, *shlex.split(args.serve_args)]
    with started_service(serve_args, folder / "serve.log") as (url, pid):
        logger.info("serve.py is ready at %s (pid %d, log %s)", url, pid, folder / "serve.log")
        yield url, pid


def measure(args: argparse.Namespace, folder: Path) -> Dict[str, Any]:
    photos, skipped = pick_photos(Path(args.images), args.min_mp, args.max_mp)
    for skip in skipped:
        logger.info("skipped %s: %s", skip["path"], skip["reason"])
    if not photos:
        raise OptionError(f"--images {args.images}: no image of {args.min_mp}..{args.max_mp} MP in it")
    single = folder / "single_512x384.png"
    single.write_bytes(photo_of_size(max(photos, key=lambda p: p.stat().st_size), SINGLE_SIZE))
    machine = machine_info("cpu")
    with service(args, folder) as (url, pid):
        served = httpx.get(url + "v1/models", timeout=30, trust_env=False).json()
        model = next((m for m in served["models"] if m["name"] == args.name), served["models"][0])
        fields = {"model": model["name"]}
        logger.info("%d clients for %.0f s on %d photos (%d skipped), %s", args.clients, args.seconds, len(photos),
                    len(skipped), model["name"])
        options = {"clients": args.clients, "seconds": args.seconds, "drain_s": args.drain_s, "fields": fields,
                   "hostile_share": args.hostile_share, "request_timeout": args.request_timeout,
                   "retry_cap": args.retry_cap, "seed": args.seed}
        hostile = hostile_uploads(int(served["limits"]["max_upload_bytes"]))
        load = run_load(url, photo_uploads(photos), hostile, options, pid)
        single_s = single_latency(url, photo_uploads([single])[0], fields, args.request_timeout)
        peak = tree_peak_mib(pid) if pid is not None else None
        if peak is not None:  # the high-water marks also catch a peak between two polls
            load.rss_peak_mib = max(load.rss_peak_mib or 0.0, peak)
    logger.info("upscale.py on the same photos (the baseline)")
    upscale_args = ["-n", model["name"], "--checkpoints_dir", args.checkpoints_dir, *shlex.split(args.upscale_args)]
    baseline = upscale_py_baseline(photos, single, int(model["scale"]), folder / "baseline", upscale_args,
                                   args.request_timeout * (len(photos) + 2))
    settings = {"clients": args.clients, "seconds": args.seconds, "drain_s": args.drain_s, "model": model["name"],
                "hostile_share": args.hostile_share, "images": args.images, "url": url,
                "photos": [str(p) for p in photos], "skipped": skipped, "retry_cap_s": args.retry_cap,
                "serve_args": args.serve_args, "upscale_args": args.upscale_args}
    return {"settings": settings, "machine": machine, "load_avg_at_end": load_average(),
            "summary": summarize(load, baseline, single_s)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    with tempfile.TemporaryDirectory(prefix="load_serve_") as tmp:
        report = measure(args, Path(tmp))
    table = markdown_table(report)
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")
    if args.markdown:
        atomic_write_text(args.markdown, table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
