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

__all__: List[str] = ["MetricsReport", "add_result_row", "metric_cell", "result_image", "save_image_row",
                      "save_images", "save_result_image", "write_metrics_report"]


def result_image(webpage: HTML, source: str, label: str) -> str:
    """`images/<stem>_<label>.png`, relative to the page: the file of `label` for the image at `source` (the page's
    unique stem of it), as every writer here names it (and test.py --fid finds it)."""
    return f"images/{webpage.names.stem(source)}_{label}.png"


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
    for index, source in enumerate(image_paths):
        webpage.add_header(webpage.names.stem(source))
        ims, txts, links = [], [], []
        for label, batch in visuals.items():
            name = result_image(webpage, source, label)
            save_image(tensor2im(batch[index]), os.path.join(webpage.web_dir, name), aspect_ratio=aspect_ratio)
            ims.append(name)
            txts.append(label)
            links.append(name)
        webpage.add_images(ims, txts, links, width=width)


def save_result_image(webpage: HTML, source: str, label: str, image: SRImage) -> str:
    """Write `image` as `images/<stem>_<label>.png` (the page's unique stem of `source`) as it is: bit depth, alpha
    and greyscale kept, unlike `save_images`' 8-bit RGB. Returns its path relative to the page.

    With `add_result_row` the caller writes a row's images one at a time and lets each go once written, which
    bounds memory on large photos (four full-size x4 images of a 2000x1500 photo are 576 MB each as floats).
    """
    name = result_image(webpage, source, label)
    write_image(os.path.join(webpage.web_dir, name), image)
    return name


def add_result_row(webpage: HTML, source: str, cells: Sequence[Tuple[str, str]], width: int = 256) -> None:
    """The page row of the image at `source`: each (label, caption) shows `save_result_image`'s file of that label."""
    ims = [result_image(webpage, source, label) for label, _ in cells]
    webpage.add_header(webpage.names.stem(source))
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
    rows_key: str = "images",
    mean_row: bool = True,
) -> MetricsReport:
    """Add a per-image metrics table with a mean row to the page and write the same numbers as JSON beside it.

    `rows` are one mapping per image: `rows[i][label]` names the image, every other key is a metric (the keys
    of the first row, in its order, are the columns). The JSON (`<web_dir>/<filename>`) is `info`'s fields
    first, then `mean`, `images` (the rows as given; `rows_key` names them otherwise) and `count`, so a report
    is self-describing (e.g. the scale and the protocol the metrics were measured with). `mean_row=False`
    leaves the mean out of both, for rows that are not samples of one set (FID of each direction of a
    CycleGAN). The page is not saved here; test.py saves it last.
    """
    if not rows:
        raise ValueError("write_metrics_report needs at least one row")
    keys = [k for k in rows[0] if k != label]
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in keys} if mean_row else {}

    def cells(values: Mapping[str, float]) -> List[str]:
        return [cell(k, values[k]) for k in keys]

    table = [[r[label], *cells(r)] for r in rows] + ([["mean", *cells(mean)]] if mean_row else [])
    webpage.add_header(title)
    webpage.add_table([label, *keys], table)
    report = {**info, **({"mean": mean} if mean_row else {}), rows_key: list(rows), "count": len(rows)}
    path = os.path.join(webpage.web_dir, filename)
    atomic_write_text(path, json.dumps(report, indent=2) + "\n")
    return MetricsReport(path, mean)
