"""Apply a trained model to test images and write an HTML page of the results.

    python test.py --dataroot ./datasets/facades --name facades_pix2pix     # a run trained with this toolkit
    python test.py --dataroot ./my_photos --name horse2zebra --model test --no_dropout --preprocess none

A run trained with this toolkit needs only `--name`: the model and the options that decide its networks come
from `<checkpoints_dir>/<name>/train_opt.json` unless given (options/saved_run.py). A folder without that file
(a reference download) needs them as flags, as in the reference.

Writes `<results_dir>/<name>/<phase>_<epoch>/images/<stem>_<label>.png` and `index.html`; inputs whose stems
clash (photo.jpg, photo.png) keep their extension in the stem (photo_jpg, photo_png; util/reports/names.py).
While it writes them, another test.py into the same folder is refused (util/locks.py).
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Any, Optional, Sequence

from tqdm import tqdm

from data import create_dataset
from models import check_network_files, create_model
from options.test_options import TestOptions
from util.cli import run_cli, seed_everything
from util.locks import FolderLock
from util.reports import HTML
from util.reports.fid_results import ResultsFID

logger = logging.getLogger("test")


def main(argv: Optional[Sequence[str]] = None) -> int:
    options = TestOptions()
    opt = options.parse(argv)
    options.placement.activate()  # --gpu_ids 1: pinned memory and cuDNN on GPU 1, not a context on GPU 0 too
    seed_everything(opt.seed)
    dataset = create_dataset(opt)
    check_network_files(opt)  # options that do not fit the files are refused before the networks are built
    model = create_model(opt)
    model.setup(opt)
    web_dir = os.path.join(opt.results_dir, opt.name, f"{opt.phase}_{opt.epoch}")
    if opt.load_iter > 0:
        web_dir = f"{web_dir}_iter{opt.load_iter}"
    # One test.py at a time writes a results folder: two would interleave their images and pages.
    with FolderLock(web_dir, "test.py", "wait for it to end, or give this one another --results_dir"):
        return write_results(opt, dataset, model, web_dir)


def write_results(opt: Any, dataset: Any, model: Any, web_dir: str) -> int:
    """Apply `model` to the test images and write the results page in `web_dir`."""
    webpage = HTML(web_dir, f"Experiment = {opt.name}, Phase = {opt.phase}, Epoch = {opt.epoch}")
    if opt.eval:
        # Batch norm with running statistics and no dropout; pix2pix's paper keeps train mode at test time.
        model.eval()
    total = int(min(opt.num_test, len(dataset)))
    if total < len(dataset):
        logger.info("--num_test %d: testing %d of the %d images, %d left out", opt.num_test, total, len(dataset),
                    len(dataset) - total)
    # --fid: checked now (images to compare, Inception weights), measured once the results are written.
    fid = ResultsFID(opt, model.visual_names, total) if opt.fid else None
    sources = dataset.source_paths()
    if sources is not None:  # inputs with one stem (photo.jpg, photo.png) get results named apart
        webpage.names.plan(sources[:total])
    done = 0
    with tqdm(total=total, unit="img", desc="test", disable=None) as progress:
        for data in dataset:
            if done >= total:
                break
            model.set_input(data)
            model.test()
            paths = list(model.get_image_paths())[: total - done]
            model.save_test_results(webpage, paths, opt)
            if fid is not None:
                fid.add(webpage, paths)
            done += len(paths)
            progress.update(len(paths))
    report = model.finish_test(webpage)
    if report:
        logger.info("metrics in %s", report)
    if fid is not None:
        logger.info("FID / KID in %s", fid.write(webpage))
    page = webpage.save()
    logger.info("%d results in %s", done, page)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
