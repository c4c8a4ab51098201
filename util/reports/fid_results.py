"""test.py --fid: FID / KID of a test run's generated images against real ones, on its results page and in fid.json.

The measurement is util/fid.py's (torch-fidelity, the TensorFlow-Inception protocol); this module decides what is
compared with what (`fid_pairs`) and reports it with `write_metrics_report`, the writer of the SR metrics' table
and metrics.json, so both reports look and read alike.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..errors import DataError, OptionError
from ..fid import BIAS_NOTE, InceptionFeatures, fid_kid, folder_images, resolve_weights
from .html import HTML
from .results import result_image, write_metrics_report

logger = logging.getLogger(__name__)

__all__ = ["ResultsFID", "fid_pairs"]


def fid_pairs(visual_names: Sequence[str], real_dir: Optional[str]) -> List[Tuple[str, Optional[str]]]:
    """Which generated visual is scored against which real one: each `fake_X` against `real_X` of the same results
    (pix2pix: fake_B vs real_B; CycleGAN: both directions); with `real_dir`, the model's A -> B output (`fake_B`,
    else the test model's `fake`) against the images there (None). OptionError when nothing can be paired: the
    test model's `real` is its input, of the other domain."""
    fakes = [name for name in visual_names if name == "fake" or name.startswith("fake_")]
    if real_dir is not None:
        chosen = next((name for name in ("fake_B", "fake") if name in fakes), fakes[0] if fakes else None)
        if chosen is None:
            raise OptionError(f"--fid: this model's results have no generated images to score "
                              f"(its visuals: {', '.join(visual_names)})")
        return [(chosen, None)]
    pairs = [(fake, "real" + fake[4:]) for fake in fakes if fake != "fake" and "real" + fake[4:] in visual_names]
    if not pairs:
        raise OptionError(f"--fid: this model's generated images ({', '.join(fakes) or 'none'}) have no real images "
                          f"of their domain among its results: pass --fid_real_dir with real images of that domain")
    return pairs


def _report_cell(name: str, value: float) -> str:
    """FID with 2 decimals, KID with 5 significant digits (values of 1e-3 are common), counts as integers."""
    if name == "fid":
        return f"{value:.2f}"
    if name in ("kid_mean", "kid_std"):
        return f"{value:.5g}"
    return str(int(value))


class ResultsFID:
    """test.py --fid: FID / KID of the generated result images against real ones, as a table on the results page
    and `fid.json` beside it (util/reports write_metrics_report, as the SR metrics' table and metrics.json).

    Made before the test run, so that fewer than 2 test images, a model without real images to compare, a
    missing --fid_real_dir or Inception weights that cannot be had fail before any image is generated. `add` records each tested image's
    result files; `write` measures them once the run has written them all.
    """

    def __init__(self, opt: Any, visual_names: Sequence[str], total: int) -> None:
        """`total`: how many images the run will test (each gives one image of every visual)."""
        if total < 2:
            raise DataError(f"--fid: this run tests {total} image{'' if total == 1 else 's'} (--num_test "
                            f"{opt.num_test}, {opt.dataroot} for --phase {opt.phase}); FID and KID need at least 2")
        self.pairs = fid_pairs(visual_names, opt.fid_real_dir)
        self.real_dir: Optional[str] = opt.fid_real_dir
        self.real_paths = folder_images(opt.fid_real_dir, "--fid_real_dir") if opt.fid_real_dir else []
        self.weights = resolve_weights(opt.inception_weights)
        self.device = opt.device
        self.files: Dict[str, List[str]] = {label: [] for pair in self.pairs for label in pair if label}

    def add(self, webpage: HTML, sources: Sequence[str]) -> None:
        """The result files of the images at `sources` (as save_test_results has just written them)."""
        for source in sources:
            for label, files in self.files.items():
                files.append(os.path.join(webpage.web_dir, result_image(webpage, source, label)))

    def write(self, webpage: HTML) -> str:
        """Measure every pair, add the table to the page, write `fid.json`; returns its path."""
        network = InceptionFeatures(self.weights, self.device)
        rows = []
        for fake, real in self.pairs:
            real_name, real_paths = (real, self.files[real]) if real else (self.real_dir, self.real_paths)
            result = fid_kid(network(real_paths, desc=str(real_name)), network(self.files[fake], desc=fake))
            rows.append({"comparison": f"{fake} vs {real_name}", **result.to_dict()})
            logger.info("%s vs %s: FID %.2f, KID %.5g ± %.2g (%d real, %d generated images)", fake, real_name,
                        result.fid, result.kid_mean, result.kid_std, result.n_real, result.n_fake)
        logger.info("note: %s", BIAS_NOTE)
        report = write_metrics_report(webpage, rows, f"FID / KID of the generated images. {BIAS_NOTE}.",
                                      info={**network.describe(), "note": BIAS_NOTE}, label="comparison",
                                      cell=_report_cell, filename="fid.json", rows_key="comparisons", mean_row=False)
        return report.path
