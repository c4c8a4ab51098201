"""The names of the result files one results folder holds: one name per source image, never shared.

test.py writes `images/<stem>_<label>.png` for each input; the reference took the stem from the input's file name
alone, so `photo.jpg` and `photo.png` of one folder overwrote each other's results, silently. The rule here is
scripts/upscale.py's (util/images/outputs.output_stems): the input's stem, and for inputs whose stems are equal
ignoring case, the stem with the input's extension (photo_jpg, photo_png); a name still taken gets -2, -3, ...
A run's sources are named together, before the first result is written (`plan`), so both clashing inputs keep
their extension whatever their order. A source that was not planned (a dataset that cannot list its samples
ahead) keeps its bare stem, and one whose name another source already holds is refused with both names.
"""
from __future__ import annotations

import os
from typing import Dict, Sequence

from ..errors import DataError
from ..images.outputs import output_stems

__all__ = ["ResultNames"]


class ResultNames:
    """Which stem each source's results get in one results folder (module docstring)."""

    def __init__(self) -> None:
        self._planned: Dict[str, str] = {}
        self._holders: Dict[str, str] = {}  # stem, case-folded -> the source whose results it names

    def plan(self, sources: Sequence[str]) -> None:
        """Name the sources of a run together (the order of `sources` decides only the -2, -3 suffixes)."""
        unique = list(dict.fromkeys(os.fspath(s) for s in sources))  # a source met twice keeps one name
        self._planned.update(zip(unique, output_stems(unique, "")))

    def stem(self, source: str) -> str:
        """The stem of `source`'s result files; DataError naming both sources if another one holds it."""
        source = os.fspath(source)
        stem = self._planned.get(source) or os.path.splitext(os.path.basename(source))[0]
        holder = self._holders.setdefault(stem.casefold(), source)
        if holder != source:
            raise DataError(f"{holder} and {source} would both write their results as {stem}_*.png: rename one of "
                            f"them (two inputs of one run must not share a name)", path=source)
        return stem
