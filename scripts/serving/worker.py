"""What each server process runs: the app built from the spec scripts/serve.py leaves in the environment.

uvicorn starts its worker processes (`--workers N`) from an import string, so the served models and limits
travel as JSON in SPEC_ENV; each process loads its own models and takes its share of the CPU threads.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict

import torch
from fastapi import FastAPI

from .app import create_app
from .catalog import load_models
from .config import ServeConfig

__all__ = ["SPEC_ENV", "app_from_env", "spec_json"]

SPEC_ENV = "GAN_TRANSLATE_SERVE_SPEC"


def spec_json(names: list, checkpoints_dir: str, gpu_ids: str, fp32: bool, tile: Any, threads: int,
              config: ServeConfig) -> str:
    """The spec of every worker process, as JSON."""
    return json.dumps({"names": names, "checkpoints_dir": checkpoints_dir, "gpu_ids": gpu_ids, "fp32": fp32,
                       "tile": tile, "threads": threads, "config": dataclasses.asdict(config)})


def app_from_env() -> FastAPI:
    """uvicorn's factory (`serving.worker:app_from_env`): the app of SPEC_ENV's spec, in this process."""
    spec: Dict[str, Any] = json.loads(os.environ[SPEC_ENV])
    torch.set_num_threads(spec["threads"])
    config = ServeConfig(**spec["config"])
    return create_app(lambda: load_models(spec["names"], spec["checkpoints_dir"], spec["gpu_ids"], spec["fp32"],
                                          spec["tile"], config.max_output_pixels), config)
