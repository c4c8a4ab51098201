"""What a test run leaves in its results folder: the result images with their page rows, and metric reports.

test.py calls these through the model (`save_test_results`, `finish_test`); they only need the page, so any
model's visuals and per-image metrics end up in the same layout (`images/`, `index.html`, `metrics.json`).
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Sequence, Tuple

import torch

from ..fileio import atomic_write_text
from ..images import SRImage, write_image
from ..util import save_image, tensor2im
from .html import HTML

__all__: List[str] = ["MetricsReport", "add_result_row", "metric_cell", "save_image_row", "save_images",
                      "save_result_image", "write_metrics_report"]


def save_images(
    webpage: HTML,
    visuals: Mapping[str, torch.Tensor],
    image_paths: Sequence[str],
    aspect_ratio: float = 1.0,
    width: int = 256,
) -> None:
    """For each image of the batch and each visual: `images/<stem>_<label>.png` and one page row per image.

    `visuals[label]` is (N, C, H, W) in [-1, 1]; `image_paths[i]` names the source of sample i, whose stem is the
    page's (`webpage.names`: unique in the folder).
    """
    image_dir = webpage.get_image_dir()
    for index, source in enumerate(image_paths):
        stem = webpage.names.stem(source)
        webpage.add_header(stem)
        ims, txts, links = [], [], []
        for label, batch in visuals.items():
            name = f"{stem}_{label}.png"
            save_image(tensor2im(batch[index]), os.path.join(image_dir, name), aspect_ratio=aspect_ratio)
            ims.append(f"images/{name}")
            txts.append(label)
            links.append(f"images/{name}")
        webpage.add_images(ims, txts, links, width=width)


def save_result_image(webpage: HTML, source: str, label: str, image: SRImage) -> str:
    """Write `image` as `images/<stem>_<label>.png` (the page's unique stem of `source`) as it is: bit depth, alpha
    and greyscale kept, unlike `save_images`' 8-bit RGB. Returns its path relative to the page.

    With `add_result_row` the caller writes a row's images one at a time and lets each go once written, which
    bounds memory on large photos (four full-size x4 images of a 2000x1500 photo are 576 MB each as floats).
    """
    name = f"{webpage.names.stem(source)}_{label}.png"
    write_image(os.path.join(webpage.get_image_dir(), name), image)
    return f"images/{name}"


def add_result_row(webpage: HTML, source: str, cells: Sequence[Tuple[str, str]], width: int = 256) -> None:
    """The page row of the image at `source`: each (label, caption) shows `save_result_image`'s file of that label."""
    stem = webpage.names.stem(source)
    ims = [f"images/{stem}_{label}.png" for label, _ in cells]
    webpage.add_header(stem)
    webpage.add_images(ims, [caption for _, caption in cells], ims, width=width)


def save_image_row(webpage: HTML, source: str, images: Sequence[Tuple[str, SRImage, str]], width: int = 256) -> None:
    """One page row for the image at `source`: each (label, image, caption) written by `save_result_image`, shown
    with its caption."""
    for label, image, _ in images:
        save_result_image(webpage, source, label, image)
    add_result_row(webpage, source, [(label, caption) for label, _, caption in images], width)


class MetricsReport(NamedTuple):
    """Where `write_metrics_report` wrote the JSON, and the mean of each metric (for the caller's summary)."""

    path: str
    mean: Dict[str, float]


def metric_cell(name: str, value: float) -> str:
    """A table cell for metric `name`: SSIM-like scores in [0, 1] with 4 decimals, anything else (PSNR in dB) 2."""
    return f"{value:.4f}" if "ssim" in name else f"{value:.2f}"


def write_metrics_report(
    webpage: HTML,
    rows: Sequence[Mapping[str, Any]],
    title: str,
    *,
    info: Mapping[str, Any],
    label: str = "image",
    cell: Callable[[str, float], str] = metric_cell,
    filename: str = "metrics.json",
) -> MetricsReport:
    """Add a per-image metrics table with a mean row to the page and write the same numbers as JSON beside it.

    `rows` are one mapping per image: `rows[i][label]` names the image, every other key is a metric (the keys
    of the first row, in its order, are the columns). The JSON (`<web_dir>/<filename>`) is `info`'s fields
    first, then `mean`, `images` (the rows as given) and `count`, so a report is self-describing (e.g. the
    scale and the protocol the metrics were measured with). The page is not saved here; test.py saves it last.
    """
    if not rows:
        raise ValueError("write_metrics_report needs at least one row")
    keys = [k for k in rows[0] if k != label]
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in keys}

    def cells(values: Mapping[str, float]) -> List[str]:
        return [cell(k, values[k]) for k in keys]

    table = [[r[label], *cells(r)] for r in rows] + [["mean", *cells(mean)]]
    webpage.add_header(title)
    webpage.add_table([label, *keys], table)
    report = {**info, "mean": mean, "images": list(rows), "count": len(rows)}
    path = os.path.join(webpage.web_dir, filename)
    atomic_write_text(path, json.dumps(report, indent=2) + "\n")
    return MetricsReport(path, mean)
