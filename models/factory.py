"""What options/ and the entry points ask of the model `--model` names: its class from `MODELS`, built
(`create_model`; test.py checks the files it will load first, `check_network_files`), its option hook, and what
its networks decide. models/base_model.py has the contract every model fulfils."""
from __future__ import annotations

from typing import Any, Callable, Dict, Tuple

from .base_model import MODELS, BaseModel, load_label
from .training import checkpoints


def network_options(opt: Any, roles: str = "GD") -> Tuple[str, ...]:
    """The options that decide the layout of `opt.model`'s networks (see `BaseModel.network_options`)."""
    return MODELS.get(opt.model).network_options(opt, roles)


def data_options(opt: Any) -> Dict[str, Any]:
    """What data/ needs to know about `opt.model`'s networks (see `BaseModel.data_options`)."""
    return MODELS.get(opt.model).data_options(opt)


def get_option_setter(model_name: str) -> Callable[..., Any]:
    """The `modify_commandline_options(parser, is_train)` hook of model `model_name` (used by options/)."""
    return MODELS.get(model_name).modify_commandline_options


def create_model(opt: Any) -> BaseModel:
    """Instantiate the model named by `opt.model`; call `model.setup(opt)` afterwards."""
    return MODELS.get(opt.model)(opt)


def check_network_files(opt: Any) -> None:
    """For test.py, before `create_model`: the network files `setup` will load, checked against the networks `opt`
    describes built on the meta device (checkpoints.check_files_fit). CheckpointError, in a moment, for a missing
    file or one that does not fit."""
    model_class = MODELS.get(opt.model)
    checkpoints.check_files_fit(lambda probe: model_class(probe).load_networks(load_label(opt), log=False), opt)
