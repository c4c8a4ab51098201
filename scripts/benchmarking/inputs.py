"""What the parent prepares before any measurement runs: VGG19 weights for perceptual losses and the SR photos.

A model's perceptual loss needs VGG19 ImageNet weights. Where the torch hub cache lacks them (no internet),
randomly initialised VGG19 weights of the same shapes are used: the time is the same, the loss is
meaningless, and the report says "random (timing only)". The SR photo is made at run time, so nothing of that
size is stored in the repository.
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import logging
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

from .cases import ROOT, SR_PHOTO_SIZE, SR_SCALE, SR_SETTINGS

logger = logging.getLogger("benchmark")

SHARED_PHOTOS = ROOT.parent / "shared" / "data" / "sr_train" / "BSD200"
RANDOM_VGG = "random (timing only)"  # the label of measurements whose perceptual loss had random weights


@functools.lru_cache(maxsize=None)
def takes_vgg_weights(model: str) -> bool:
    """Whether training `model` takes VGG19 weights (a perceptual loss): whether it declares --vgg_weights.

    Asked of this tree's model (the parent's), whose option setter is what train.py would add to its parser.
    """
    import models

    parser = argparse.ArgumentParser(add_help=False)
    models.get_option_setter(model)(parser, True)
    return hasattr(parser.parse_known_args([])[0], "vgg_weights")


@functools.lru_cache(maxsize=None)
def sr_generators() -> Tuple[str, ...]:
    """The generators SR inference is measured with: every registered --netG that upscales by SR_SCALE, in
    registration order. Asked of this tree's registry (the parent's), so a new architecture is measured without
    a change here."""
    from models import networks

    return tuple(name for name in networks.GENERATORS.names()
                 if networks.upscales(name) and SR_SCALE in networks.generator_scales(name))


def vgg_weights(folder: Path) -> Tuple[Optional[str], str]:
    """(--vgg_weights file or None, label) for the perceptual losses.

    The ImageNet weights in the torch hub cache when present; otherwise randomly initialised VGG19
    features saved in `folder` (the loader accepts a state_dict of the features alone): the same work per
    step, so the same time, but no meaningful loss.
    """
    import torch
    import torchvision
    from models.losses.perceptual_loss import VGG19_WEIGHTS_FILE, vgg_cache_dir

    cached = Path(vgg_cache_dir()) / VGG19_WEIGHTS_FILE
    if cached.is_file():
        return None, "ImageNet (torch hub cache)"
    torch.manual_seed(0)
    features = torchvision.models.vgg19(weights=None).features
    path = folder / "vgg19_random_features.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    logger.info("no VGG19 ImageNet weights in %s: perceptual losses use random VGG19 weights (timing only)",
                cached.parent)
    return str(path), RANDOM_VGG


def demo_photo_module() -> Any:
    """scripts/make_demo_data.py, whose procedural 'photos' stand in when the shared photos are absent."""
    spec = importlib.util.spec_from_file_location("_benchmark_make_demo_data", ROOT / "scripts" / "make_demo_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_sr_photo(folder: Path, photos: Path = SHARED_PHOTOS) -> Tuple[Path, str]:
    """A 1920x1080 photo for SR, made at run time in `folder`: a mosaic of real photos (BSD200, 481x321
    each, portrait ones turned) when they are present, else of make_demo_data's procedural photos.

    A mosaic of real photos has real texture and edges at a real photo's size without any photo of that
    size being stored; nothing is copied into the repository.
    """
    from PIL import Image

    width, height = SR_PHOTO_SIZE
    canvas = Image.new("RGB", (width, height))
    files = sorted(photos.glob("*.jpg")) if photos.is_dir() else []
    if files:
        cell_w, cell_h = 480, 320
        cols, rows = -(-width // cell_w), -(-height // cell_h)
        for i in range(cols * rows):
            with Image.open(files[i % len(files)]) as image:
                image = image.convert("RGB")
                if image.height > image.width:
                    image = image.transpose(Image.Transpose.ROTATE_90)
                image = image.resize((cell_w, cell_h), Image.Resampling.BICUBIC) if image.size[0] < cell_w \
                    or image.size[1] < cell_h else image.crop((0, 0, cell_w, cell_h))
                canvas.paste(image, ((i % cols) * cell_w, (i // cols) * cell_h))
        source = f"mosaic of {min(cols * rows, len(files))} BSD200 photos from {photos}"
    else:
        import numpy as np

        module = demo_photo_module()
        rng = np.random.default_rng(0)
        cell = module.SIZE
        cols, rows = -(-width // cell), -(-height // cell)
        for i in range(cols * rows):
            canvas.paste(module.make_pair(rng, noise_std=0.0)[1], ((i % cols) * cell, (i // cols) * cell))
        source = f"mosaic of {cols * rows} procedural photos (scripts/make_demo_data.py; {photos} is absent)"
    path = folder / "sr_photo_1920x1080.png"
    canvas.save(path)
    return path, source


def sr_images(folder: Path, sr_image: Optional[str], settings: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """The LR image of each SR setting: the photo itself (`default`), downscaled by 4 (`small`) or its top-left
    480x320 (`upload`)."""
    from PIL import Image

    if sr_image is not None:
        photo, source = Path(sr_image), f"--sr-image {sr_image}"
    else:
        photo, source = make_sr_photo(folder)
    images: Dict[str, Dict[str, Any]] = {}
    with Image.open(photo) as image:
        image = image.convert("RGB")
        for setting in (s for s in settings if s in SR_SETTINGS):
            crop, factor = SR_SETTINGS[setting].get("crop"), SR_SETTINGS[setting].get("downscale", 1)
            if crop is None and factor == 1 and sr_image is not None:
                path = photo
            else:
                size = (min(crop[0], image.width), min(crop[1], image.height)) if crop else \
                    (max(1, image.width // factor), max(1, image.height // factor))
                path = folder / f"sr_{setting}_{size[0]}x{size[1]}.png"
                piece = image.crop((0, 0, *size)) if crop else image.resize(size, Image.Resampling.BICUBIC)
                piece.save(path)
            how = f"its top-left {crop[0]}x{crop[1]}" if crop else f"downscaled by {factor}"
            with Image.open(path) as saved:
                images[setting] = {"path": str(path), "size": list(saved.size),
                                   "source": source if path == photo or (factor == 1 and not crop)
                                   else f"{source}, {how}"}
    return images
