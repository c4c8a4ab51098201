"""A small static HTML page of images and tables (training progress, test results, SR metrics).

Every image and link on the page is a path RELATIVE to the page's folder, so a results folder can be
moved, copied to another machine or zipped and still display correctly.
"""
from __future__ import annotations

import logging
import os
from typing import Any, List, Sequence
from urllib.parse import quote

import dominate
import numpy as np
from dominate.tags import a, br, h3, img, meta, p, table, td, th, tr

from ..fileio import atomic_write_text
from ..util import mkdirs
from .names import ResultNames

logger = logging.getLogger(__name__)


class HTML:
    """Builds `<web_dir>/index.html`; images are expected under `<web_dir>/images/`.

    Usage: `add_header`, `add_images` / `add_table` as many times as needed, then `save()`.
    Nothing is written until `save()`, which replaces the page atomically, so a browser that is
    auto-refreshing the page never sees a half-written file.
    """

    def __init__(self, web_dir: str, title: str, refresh: int = 0) -> None:
        """`refresh` > 0 adds a `<meta http-equiv="refresh">` so an open page follows a running training."""
        self.title = title
        self.web_dir = web_dir
        self.img_dir = os.path.join(self.web_dir, "images")
        # The stem of each source image's files in `img_dir` (test results): one per source, never shared.
        self.names = ResultNames()
        mkdirs([self.web_dir, self.img_dir])

        self.doc = dominate.document(title=title)
        if refresh > 0:
            with self.doc.head:
                meta(http_equiv="refresh", content=str(int(refresh)))

    def get_image_dir(self) -> str:
        """The folder where callers should save the images they add to the page."""
        return self.img_dir

    def add_header(self, text: str) -> None:
        """Add a section title (e.g. one per epoch)."""
        with self.doc:
            h3(text)

    def _href(self, path: str) -> str:
        """A URL relative to `web_dir` for `path`, which is relative to `web_dir` (or absolute inside it).

        Absolute paths are made relative (the page must survive being moved); OS separators become '/'
        and characters that are special in URLs ('#', '%', '?', spaces) are percent-encoded so that labels
        used in file names cannot break a link.
        """
        if os.path.isabs(path):
            path = os.path.relpath(path, self.web_dir)
        path = path.replace(os.sep, "/")
        return quote(path, safe="/")

    def add_images(self, ims: Sequence[str], txts: Sequence[str], links: Sequence[str], width: int = 400) -> None:
        """Add one table row of images, each with a caption and a link (usually to the full-size image).

        `ims` and `links` are paths relative to `web_dir`, e.g. 'images/epoch001_real_A.png'.
        """
        if not (len(ims) == len(txts) == len(links)):
            raise ValueError(
                f"add_images needs as many captions and links as images, got {len(ims)} images, "
                f"{len(txts)} captions, {len(links)} links"
            )
        t = table(border=1, style="table-layout: fixed;")
        self.doc.add(t)
        with t:
            with tr():
                for im, txt, link in zip(ims, txts, links):
                    with td(style="word-wrap: break-word;", halign="center", valign="top"):
                        with p():
                            with a(href=self._href(link)):
                                img(style="width:%dpx" % width, src=self._href(im))
                            br()
                            p(txt)

    def add_table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Add a table of values, e.g. per-image PSNR / SSIM with a mean row.

        Floats are shown with 4 decimals; anything else with `str()`. Pre-format cells as strings for
        another precision.
        """
        t = table(border=1, style="border-collapse: collapse; text-align: right;")
        self.doc.add(t)
        with t:
            with tr():
                for header in headers:
                    th(str(header), style="padding: 2px 8px;")
            for row in rows:
                if len(row) != len(headers):
                    raise ValueError(f"table row {list(row)!r} has {len(row)} cells for {len(headers)} headers")
                with tr():
                    for cell in row:
                        td(_format_cell(cell), style="padding: 2px 8px;")

    def render(self) -> str:
        """The page as an HTML string (what `save()` writes)."""
        return self.doc.render()

    def save(self) -> str:
        """Write `<web_dir>/index.html` atomically and return its path."""
        html_file = os.path.join(self.web_dir, "index.html")
        atomic_write_text(html_file, self.render())
        logger.debug("wrote %s", html_file)
        return html_file


def _format_cell(value: Any) -> str:
    """Floats with 4 decimals (enough for SSIM), anything else as `str()`."""
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4f}"
    return str(value)


__all__: List[str] = ["HTML"]
