"""Applying a trained super-resolution model: the one home every front calls (test.py through SRGANModel,
scripts/upscale.py, sr_side_by_side.py, and next the service, export and video).

    tiles              tiled inference with exact context (`upscale_tiled`, `default_tile_pad`), tile checks
    split_tiles        split tiles: a generator's LR trunk on large tiles, its HR head on small ones
    split_tiles        split tiles: a generator's LR trunk on large tiles, its HR head on small ones
    resolve            one image through a generator: grey, alpha and 16 bit kept, --outscale by Lanczos
    upscaler           `Upscaler`, the reusable inference object (precision, tiles, outscale), weight
                       interpolation (--denoise), building a saved run's generator, output sizes
    loading            a model by name: install a zoo model, `load_upscaler(opt)` from `options.upscale_options`
    published_weights  publishers' files (BasicSR, Real-ESRGAN, ESRGAN) into the toolkit's layout, and back
    export             a generator as ONNX (checked against PyTorch) or safetensors in its publisher's layout
    onnx_backend       --backend onnxruntime: an exported generator behind the interface the tiles code calls

A front is two calls: `opt = options.upscale_options(name, ...)`, then `load_upscaler(opt, ...)(image)`.
"""
from .loading import (DEFAULT_DENOISE, default_denoise, denoise_pair, ensure_installed, load_upscaler, model_name,
                      weights_path)
from .resolve import super_resolve
from .tiles import (MAX_EXACT_PAD, MIN_TILE, backend_tile, default_tile_pad, tile_problem, tile_warnings,
                    upscale_tiled)
from .upscaler import MAX_OUTPUT_PIXELS, Upscaler, build_generator, interpolate_state_dicts, output_size

__all__ = ["DEFAULT_DENOISE", "MAX_EXACT_PAD", "MAX_OUTPUT_PIXELS", "MIN_TILE", "Upscaler", "backend_tile",
           "build_generator", "default_denoise", "default_tile_pad", "denoise_pair", "ensure_installed",
           "interpolate_state_dicts", "load_upscaler", "model_name", "output_size", "super_resolve", "tile_problem",
           "tile_warnings", "upscale_tiled", "weights_path"]
