"""The HTTP service behind `python scripts/serve.py` (the command line), one concern a module:

    app      the FastAPI app: routes, error answers, models loaded in a thread at start
    intake   the body read with a byte cap, multipart parsed in memory, fields, the header's size checks
    slots    inference slots (threads) and the bounded queue: 503 when full, 504 past the time limit
    catalog  the served models (loaded as scripts/upscale.py loads them) and one upload's upscaling
    access   one access-log line per request, the request metrics
    metrics  the Prometheus metrics
    config   the limits of a process (ServeConfig)
    errors   ApiError and the JSON error body
    static/  the page at /
"""
from .app import STATIC_DIR, create_app
from .catalog import ServedModel, load_models, model_options
from .config import DEFAULT_MAX_INPUT_PIXELS, DEFAULT_MAX_UPLOAD_MB, ServeConfig
from .errors import ApiError

__all__ = ["ApiError", "DEFAULT_MAX_INPUT_PIXELS", "DEFAULT_MAX_UPLOAD_MB", "STATIC_DIR", "ServeConfig",
           "ServedModel", "create_app", "load_models", "model_options"]
