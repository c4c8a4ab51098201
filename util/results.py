"""Saving a model's visuals as result images plus a row on the results page (test.py)."""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import torch

from .html import HTML
from .util import save_image, tensor2im


def save_images(
    webpage: HTML,
    visuals: Mapping[str, torch.Tensor],
    image_paths: Sequence[str],
    aspect_ratio: float = 1.0,
    width: int = 256,
) -> None:
    """For each image of the batch and each visual: `images/<stem>_<label>.png` and one page row per image.

    `visuals[label]` is (N, C, H, W) in [-1, 1]; `image_paths[i]` names the source of sample i.
    """
    image_dir = webpage.get_image_dir()
    for index, source in enumerate(image_paths):
        stem = os.path.splitext(os.path.basename(source))[0]
        webpage.add_header(stem)
        ims, txts, links = [], [], []
        for label, batch in visuals.items():
            name = f"{stem}_{label}.png"
            save_image(tensor2im(batch[index]), os.path.join(image_dir, name), aspect_ratio=aspect_ratio)
            ims.append(f"images/{name}")
            txts.append(label)
            links.append(f"images/{name}")
        webpage.add_images(ims, txts, links, width=width)
