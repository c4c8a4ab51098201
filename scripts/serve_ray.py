"""Serve super-resolution on Ray Serve: the same FastAPI app as scripts/serve.py, one copy per replica, replicas
added and removed by Ray on the requests in progress (README "Past one machine: Ray Serve").

    python scripts/serve_ray.py                                   # a local Ray instance, 1 to 2 replicas
    python scripts/serve_ray.py --address auto --max_replicas 8 -n realesr-general-x4v3 --port 8000
    python scripts/serve_ray.py --address ray://head-node:10001 --host 0.0.0.0 ...

Every flag of scripts/serve.py that says what is served and its limits works here too (-n, --checkpoints_dir,
--gpu_ids, --fp32, --slots, --queue, --max_upload_mb, --max_input_pixels, --max_output_pixels, --timeout_s,
--tile, --api_key); --workers and --num_threads are Ray's to decide (--replica_cpus threads per replica). Each
replica builds the app in its own process (`serving.worker.app_from_env`), so it loads its own models and keeps
its own inference slots and queue (a full queue answers 503 + Retry-After as serve.py does). Ray routes at most
--slots + --queue requests to a replica at once, keeps up to --max_queued more waiting in its router, and
answers 503 with Retry-After beyond that (Ray's BackpressureConfig; the body is Ray's one line, not JSON).
Autoscaling: between --min_replicas and --max_replicas, aiming at --target_ongoing requests per replica. Each
answer says which replica made it (X-Replica: host:pid). Ctrl-C or SIGTERM: the app is deleted, Ray stopped
when this command started it, exit code 0.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from typing import Any, List, Optional, Sequence, Tuple

import serve as serve_py
from serving import ServeConfig, model_options
from serving.worker import SPEC_ENV, app_from_env, spec_json

from models.inference import model_name
from util.cli import OptionParser, run_cli
from util.errors import OptionError

logger = logging.getLogger("serve_ray")


def build_parser() -> argparse.ArgumentParser:
    """Ray's own flags; the rest of the command line goes to scripts/serve.py's parser."""
    p = OptionParser(prog="serve_ray.py", description=__doc__.split("\n\n")[0], add_help=False)
    p.add_argument("--address", default=None,
                   help="a Ray cluster: auto (this node's), ray://HEAD:10001, ...; default: start a local instance")
    p.add_argument("--min_replicas", type=int, default=1, help="(default: %(default)s)")
    p.add_argument("--max_replicas", type=int, default=2, help="(default: %(default)s)")
    p.add_argument("--target_ongoing", type=float, default=None,
                   help="requests in progress per replica the autoscaler aims at (default: --slots)")
    p.add_argument("--max_queued", type=int, default=16,
                   help="requests Ray keeps waiting for a replica; more get 503 (default: %(default)s)")
    p.add_argument("--replica_cpus", type=int, default=1,
                   help="CPUs Ray reserves for each replica, and its torch threads (default: %(default)s)")
    return p


def parse_args(argv: Optional[Sequence[str]]) -> Tuple[argparse.Namespace, argparse.Namespace]:
    """(Ray's flags, serve.py's flags) from one command line."""
    ray_args, rest = build_parser().parse_known_args(argv)
    if {"-h", "--help"} & set(rest):
        print(build_parser().format_help().replace("usage: serve_ray.py", "Ray flags:", 1))
        print("Every other flag is scripts/serve.py's:")
    served = serve_py.parse_args(rest)
    if served.workers != 1 or served.num_threads is not None:
        raise OptionError("--workers and --num_threads are serve.py's; on Ray use --min_replicas, --max_replicas "
                          "and --replica_cpus")
    if not 1 <= ray_args.min_replicas <= ray_args.max_replicas:
        raise OptionError(f"need 1 <= --min_replicas <= --max_replicas, got {ray_args.min_replicas} and "
                          f"{ray_args.max_replicas}")
    if ray_args.max_queued < 1 or ray_args.replica_cpus < 1:
        raise OptionError("--max_queued and --replica_cpus must be >= 1")
    return ray_args, served


def replica_app(spec: str) -> Any:
    """Build the app inside a replica (its own process): its own models, and X-Replica on every answer."""
    os.environ[SPEC_ENV] = spec
    app = app_from_env()
    replica = f"{socket.gethostname()}:{os.getpid()}"

    @app.middleware("http")
    async def name_the_replica(request: Any, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers["X-Replica"] = replica
        return response

    return app


def deployment(ray_args: argparse.Namespace, served: argparse.Namespace, names: List[str]) -> Any:
    """The Ray Serve application: serve.py's app behind serve.ingress, with the autoscaling and queue limits."""
    from ray import serve
    from ray.serve.config import AutoscalingConfig, BackpressureConfig

    config = ServeConfig(slots=served.slots, queue=served.queue, max_upload_bytes=int(served.max_upload_mb * 1e6),
                         max_input_pixels=served.max_input_pixels, max_output_pixels=served.max_output_pixels,
                         timeout_s=served.timeout_s, api_key=served.api_key)
    spec = spec_json(names, served.checkpoints_dir, served.gpu_ids, served.fp32, served.tile, ray_args.replica_cpus,
                     config, served.backend)

    def build() -> Any:  # evaluated in each replica
        return replica_app(spec)

    ingress = serve.ingress(build)(type("Upscaling", (), {"__doc__": "serve.py's app, one copy per replica"}))
    autoscaling = AutoscalingConfig(min_replicas=ray_args.min_replicas, max_replicas=ray_args.max_replicas,
                                    target_ongoing_requests=ray_args.target_ongoing or served.slots)
    return serve.deployment(ingress, name="upscale", autoscaling_config=autoscaling,
                            max_ongoing_requests=served.slots + served.queue, max_queued_requests=ray_args.max_queued,
                            backpressure_config=BackpressureConfig(status_code=503, retry_after_s=1),
                            ray_actor_options={"num_cpus": ray_args.replica_cpus},
                            graceful_shutdown_timeout_s=served.timeout_s + 1).bind()


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM as Ctrl-C: serve.run's loop ends, the finally below cleans up


def main(argv: Optional[Sequence[str]] = None) -> int:
    ray_args, served = parse_args(argv)
    try:
        import ray
        from ray import serve
    except ImportError:
        raise OptionError("Ray Serve is not installed: pip install -e '.[cluster]'") from None
    names = [model_name(n, served.checkpoints_dir) for n in (served.name or [serve_py.DEFAULT_MODEL])]
    for name in names:  # here first: a missing zoo model is installed, a bad name or offline says so
        model_options(name, served.checkpoints_dir, served.gpu_ids, served.fp32)
    # Replicas import serving/ (beside this script) and the toolkit from the same paths as here: on a cluster,
    # every node has the project at this path (README "Past one machine: Ray Serve").
    here = os.path.dirname(os.path.abspath(__file__))
    paths = [here, os.path.dirname(here)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    ray.init(address=ray_args.address, include_dashboard=False, logging_level=logging.WARNING,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}})
    signal.signal(signal.SIGTERM, _stop)  # after ray.init, which installs its own
    try:
        serve.start(http_options={"host": served.host, "port": served.port})
        logger.info("Ray Serve: %s on http://%s:%d, %d to %d replica(s) of %d CPU(s), Ray's queue %d",
                    ", ".join(names), served.host, served.port, ray_args.min_replicas, ray_args.max_replicas,
                    ray_args.replica_cpus, ray_args.max_queued)
        serve.run(deployment(ray_args, served, names), name="gan-translate", route_prefix="/", blocking=True)
    except KeyboardInterrupt:
        logger.info("stopping")
    finally:
        serve.delete("gan-translate")
        ray.shutdown()
    logger.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
