"""Models (`--model`): each a `BaseModel` subclass registered by name.

`create_model(opt)` builds the chosen one; `get_option_setter(name)` returns its
`modify_commandline_options`, through which a model adds flags and changes defaults.
"""
from __future__ import annotations

from typing import Any, Callable

from .base_model import MODELS, BaseModel

# Importing the model modules registers them.
from . import cycle_gan_model, pix2pix_model, srgan_model, test_model  # noqa: E402,F401


def get_option_setter(model_name: str) -> Callable[..., Any]:
    return MODELS.get(model_name).modify_commandline_options


def create_model(opt: Any) -> BaseModel:
    """Instantiate the model named by `opt.model`; call `model.setup(opt)` afterwards."""
    return MODELS.get(opt.model)(opt)


__all__ = ["BaseModel", "MODELS", "create_model", "get_option_setter"]
