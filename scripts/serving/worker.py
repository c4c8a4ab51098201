"""What each server process runs: the app built from the spec scripts/serve.py leaves in the environment.

uvicorn starts its worker processes (`--workers N`) from an import string, so the served models and limits
travel as JSON in SPEC_ENV; each process loads its own models and takes its share of the CPU threads.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
from typing import Any, Dict

import torch
from fastapi import FastAPI

from util.cli import setup_logging

from .app import create_app
from .catalog import load_models
from .config import ServeConfig

__all__ = ["SPEC_ENV", "app_from_env", "exit_cleanly_on_stop", "spec_json"]

SPEC_ENV = "GAN_TRANSLATE_SERVE_SPEC"
logger = logging.getLogger("serve")


def exit_cleanly_on_stop() -> None:
    """Make SIGTERM and SIGINT (Ctrl-C) a clean stop, exit code 0. uvicorn catches them, stops taking
    connections, lets the requests in progress finish, then raises the signal again to the handler it found:
    Python's defaults would end the process with -15 or a KeyboardInterrupt, this one notes it and returns.
    Called before uvicorn.run (uvicorn's own handlers replace it while it serves); with --workers the parent
    stops each worker with SIGTERM and exits 0 itself."""
    def stopped(signum: int, frame: Any) -> None:
        logger.info("stopped by %s", signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stopped)


def spec_json(names: list, checkpoints_dir: str, gpu_ids: str, fp32: bool, tile: Any, threads: int,
              config: ServeConfig, backend: str = "torch") -> str:
    """The spec of every worker process, as JSON."""
    return json.dumps({"names": names, "checkpoints_dir": checkpoints_dir, "gpu_ids": gpu_ids, "fp32": fp32,
                       "tile": tile, "threads": threads, "config": dataclasses.asdict(config), "backend": backend})


def app_from_env() -> FastAPI:
    """uvicorn's factory (`serving.worker:app_from_env`): the app of SPEC_ENV's spec, in this process."""
    spec: Dict[str, Any] = json.loads(os.environ[SPEC_ENV])
    if not logging.getLogger().handlers:  # a --workers process, started afresh: log as its parent does
        setup_logging()
    torch.set_num_threads(spec["threads"])
    config = ServeConfig(**spec["config"])
    return create_app(lambda: load_models(spec["names"], spec["checkpoints_dir"], spec["gpu_ids"], spec["fp32"],
                                          spec["tile"], config.max_output_pixels, spec["backend"]), config)
