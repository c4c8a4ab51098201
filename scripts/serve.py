"""Serve super-resolution over HTTP: POST an image, get it upscaled (README "Serve over HTTP", docs/serving.md).

    python scripts/serve.py                                    # the shipped gan-translate-x4 on 127.0.0.1:8000
    python scripts/serve.py -n realesr-general-x4v3 -n my_srgan_run --port 8080 --api_key SECRET

Each `-n NAME` is loaded once at start as scripts/upscale.py loads it (a run of --checkpoints_dir, or an SR zoo
model, installed first when missing; offline, one line says how to install it, exit code 2). The service is a
FastAPI app under uvicorn (scripts/serving/): N inference slots, a bounded queue (503 beyond it), limits on
upload bytes, input pixels (from the header, before decoding) and output pixels, a time limit per request. It
binds 127.0.0.1 unless --host says otherwise. SIGTERM or Ctrl-C: no new connections, the requests in progress
finish (at most --timeout_s), exit code 0. Bad flags: one line, exit code 2.
"""
from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from typing import List, Optional, Sequence

from models.inference import MAX_OUTPUT_PIXELS, model_name, tile_problem
from models.inference.onnx_backend import BACKEND_HELP, BACKENDS
from util.cli import OptionParser, at_least, positive_number, run_cli
from util.errors import OptionError
from util.sharding import cpu_cores

# The optional extra (setup.py's `serve`): without it, one line that says how to install it, exit code 2.
SERVE_EXTRA = ("fastapi", "starlette", "uvicorn", "python_multipart", "prometheus_client")
try:
    import uvicorn
    from serving import DEFAULT_MAX_INPUT_PIXELS, DEFAULT_MAX_UPLOAD_MB, ServeConfig, model_options
    from serving.worker import SPEC_ENV, exit_cleanly_on_stop, spec_json
except ImportError as e:
    if (e.name or "").split(".")[0] not in SERVE_EXTRA:
        raise
    print(f"error: serve.py needs {e.name}: pip install -e '.[serve]'", file=sys.stderr)
    sys.exit(2)

logger = logging.getLogger("serve")

DEFAULT_MODEL = "gan-translate-x4"
KEY_ENV = "GAN_TRANSLATE_API_KEY"
# How long a --workers process may take to start answering its parent's health pings: importing torch on a busy
# 2-core machine takes longer than uvicorn's default 5 s, after which the parent kills the worker and starts another.
WORKER_START_S = 120


def build_parser() -> argparse.ArgumentParser:
    p = OptionParser(prog="serve.py", description=__doc__.split("\n\n")[0])
    p.add_argument("-n", "--name", action="append", default=None,
                   help=f"a model to serve, repeatable, the first the default: a folder of --checkpoints_dir or an "
                        f"SR zoo name, installed when missing (default: {DEFAULT_MODEL}, shipped, offline)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    p.add_argument("--port", type=at_least(0), default=8000, help="(default: %(default)s)")
    p.add_argument("--checkpoints_dir", default="./checkpoints", help="where models are (default: %(default)s)")
    p.add_argument("-g", "--gpu_ids", default="0",
                   help="GPU id, or -1 for the CPU, used when CUDA is absent (default: %(default)s)")
    p.add_argument("--fp32", action="store_true", help="compute in fp32 even where bf16 is native")
    p.add_argument("--backend", choices=BACKENDS, default="torch", help=BACKEND_HELP)
    p.add_argument("--slots", type=at_least(1), default=1,
                   help="images upscaled at once per process (default: %(default)s)")
    p.add_argument("--queue", type=at_least(0), default=8,
                   help="requests that may wait for a slot; more get 503 at once (default: %(default)s)")
    p.add_argument("--max_upload_mb", type=positive_number, default=DEFAULT_MAX_UPLOAD_MB,
                   help="largest upload in MB (10^6 bytes) (default: %(default)s)")
    p.add_argument("--max_input_pixels", type=at_least(1), default=DEFAULT_MAX_INPUT_PIXELS,
                   help="largest input image in pixels, read from its header (default: %(default)s, 4096 x 4096)")
    p.add_argument("--max_output_pixels", type=at_least(1), default=MAX_OUTPUT_PIXELS,
                   help="largest result in pixels (default: %(default)s, 16384 x 16384)")
    p.add_argument("--timeout_s", type=positive_number, default=60.0,
                   help="most seconds a request may take, upload included: 408 for a slow upload, 504 for "
                        "waiting or upscaling (default: %(default)s)")
    p.add_argument("-t", "--tile", type=at_least(0), default=None,
                   help="LR tile size, so memory stays bounded; 0: whole images (default: the model's)")
    p.add_argument("--api_key", default=None,
                   help=f"require this key on POST (Authorization: Bearer KEY); default: ${KEY_ENV} when set")
    p.add_argument("--workers", type=at_least(1), default=1,
                   help="server processes, each with its own models (default: %(default)s)")
    p.add_argument("--num_threads", type=at_least(1), default=None,
                   help="CPU threads in all, shared fairly by the workers (default: the CPUs this process may use)")
    return p


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    problem = tile_problem(args.tile or 0)
    if problem is not None:
        raise OptionError(problem)
    if args.api_key is None:
        args.api_key = os.environ.get(KEY_ENV) or None
    if args.api_key is not None and not args.api_key.strip():
        raise OptionError("--api_key is empty; give a key or leave the flag out")
    threads = args.num_threads or cpu_cores()
    if threads < args.workers:
        raise OptionError(f"--num_threads {threads} cannot give each of --workers {args.workers} a thread")
    args.threads_per_worker = threads // args.workers
    return args


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    names: List[str] = [model_name(n, args.checkpoints_dir) for n in (args.name or [DEFAULT_MODEL])]
    for name in names:  # before serving: a missing zoo model is installed, a bad name or offline says so
        model_options(name, args.checkpoints_dir, args.gpu_ids, args.fp32)
    config = ServeConfig(slots=args.slots, queue=args.queue, max_upload_bytes=int(args.max_upload_mb * 1e6),
                         max_input_pixels=args.max_input_pixels, max_output_pixels=args.max_output_pixels,
                         timeout_s=args.timeout_s, api_key=args.api_key)
    os.environ[SPEC_ENV] = spec_json(names, args.checkpoints_dir, args.gpu_ids, args.fp32, args.tile,
                                     args.threads_per_worker, config, args.backend)
    where = "this machine only" if _is_loopback(args.host) else "REACHABLE FROM OTHER MACHINES"
    logger.info("serving %s on http://%s:%d (bound to %s: %s), %d worker(s) of %d thread(s), %d slot(s) and a "
                "queue of %d each%s", ", ".join(names), args.host, args.port, args.host, where, args.workers,
                args.threads_per_worker, args.slots, args.queue, ", API key required" if args.api_key else "")
    exit_cleanly_on_stop()
    uvicorn.run("serving.worker:app_from_env", factory=True, host=args.host, port=args.port, workers=args.workers,
                log_config=None, access_log=False, timeout_graceful_shutdown=int(args.timeout_s) + 1,
                server_header=False, timeout_worker_healthcheck=WORKER_START_S)
    logger.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
