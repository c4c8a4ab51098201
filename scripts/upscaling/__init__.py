"""What `python scripts/upscale.py` (the command line) is made of, one concern a module:

    inputs   the images to upscale (a file, or a folder's images) and the collision-free output paths
    model    the network for `-n NAME`: a trained run or an SR zoo model (installed when missing), built from
             its saved options as test.py builds it, with --denoise's interpolation of two zoo models

The reusable parts live in the toolkit: models/upscaler.py (interpolation, precision, the tiled upscaler),
models/sr_inference.py (tiles, grey / alpha / 16 bit), util/images (reading, Lanczos, output formats).
"""
from .inputs import list_inputs, plan_outputs
from .model import denoise_pair, load_upscaler

__all__ = ["denoise_pair", "list_inputs", "load_upscaler", "plan_outputs"]
