"""Image files and pixels: listing and reading them, converting values, SR image IO, resizing, SR metrics.

Modules, one concern each: `reading` (IMG_EXTENSIONS, make_dataset, load_image for the training loaders, the
table of how each kind of file is read and the DataError a bad file gives), `pixels` (float <-> 8/16-bit
integer grids, quantize), `sr_io` (SRImage, read_image / write_image keeping grey, alpha and 16 bit),
`resize` (modcrop, the literature's bicubic down- and upscaling, Lanczos for any output size), `metrics` (PSNR /
SSIM on the Y channel), `outputs` (a batch tool's result files: format, collision-free names, JPEG / WebP),
`folders` (a batch tool's inputs: a file or a folder's images, and result paths that replace none of them),
`lab` (sRGB <-> CIE Lab in torch, for colorization).
"""
from .metrics import SSIM_WINDOW, psnr, rgb_to_y, sr_metrics, ssim
from .outputs import OUTPUT_FORMATS, can_write, choose_format, encode_image, output_stems, save_image
from .pixels import BIT_DEPTHS, quantize
from .reading import IMG_EXTENSIONS, is_image_file, load_image, make_dataset, peek_bytes, read_error
from .resize import bicubic_downscale, bicubic_upscale, modcrop, resize_bicubic, resize_lanczos
from .sr_io import SRImage, decode_image, read_image, to_pil_8bit, write_image

__all__ = [
    "BIT_DEPTHS",
    "IMG_EXTENSIONS",
    "OUTPUT_FORMATS",
    "SRImage",
    "SSIM_WINDOW",
    "bicubic_downscale",
    "bicubic_upscale",
    "can_write",
    "choose_format",
    "decode_image",
    "encode_image",
    "is_image_file",
    "load_image",
    "make_dataset",
    "modcrop",
    "output_stems",
    "peek_bytes",
    "psnr",
    "quantize",
    "read_error",
    "read_image",
    "resize_bicubic",
    "resize_lanczos",
    "rgb_to_y",
    "save_image",
    "sr_metrics",
    "ssim",
    "to_pil_8bit",
    "write_image",
]
