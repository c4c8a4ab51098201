"""Models (`--model`): each a `BaseModel` subclass registered by name in `MODELS`.

`create_model(opt)` builds the chosen one (test.py first checks the files it will load: `check_network_files`);
`get_option_setter(name)` returns its `modify_commandline_options`, through which a model adds flags and changes
defaults. `network_options(opt)` names the options that decide the layout of its networks, `data_options(opt)`
what data/ needs to know about them (options/ resolves these onto the namespace). The code lives in
models/factory.py; the contract every model fulfils in models/base_model.py.
"""
from __future__ import annotations

from .base_model import MODELS, BaseModel
from .factory import check_network_files, create_model, data_options, get_option_setter, network_options

# Importing the model modules registers them.
from . import (colorization_model, cycle_gan_model, pix2pix_model, srgan_model,  # noqa: E402,F401
               template_model, test_model)

__all__ = ["BaseModel", "MODELS", "check_network_files", "create_model", "data_options", "get_option_setter",
           "network_options"]
