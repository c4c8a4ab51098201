"""A worker process's entry point (`python scripts/benchmark.py --worker SPEC`): run the measurement the spec
names and print its result as one marked JSON line, which `runner.run_worker` reads back."""
from __future__ import annotations

import json
import logging
import sys
import traceback
from typing import Any, Callable, Dict

from .sr_workers import export_worker, sr_worker
from .workers import check_tree, train_worker

RESULT_MARKER = "BENCHMARK_RESULT "

WORKERS: Dict[str, Callable[[Dict[str, Any]], Dict[str, Any]]] = {"train": train_worker, "sr": sr_worker,
                                                                 "export": export_worker}


def worker_main(spec_text: str) -> int:
    """Run one measurement and print its result as one marked JSON line on the real stdout.

    Anything the libraries print goes to stderr meanwhile, so stdout carries the result line alone (the
    marker still guards against output written straight to file descriptor 1).
    """
    spec = json.loads(spec_text)
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s: %(message)s")
    try:
        import torch

        if spec.get("threads"):
            torch.set_num_threads(int(spec["threads"]))
        code = check_tree(spec["tree_root"])
        result = WORKERS[spec["kind"]](spec)
        result.update(code=str(code), threads=torch.get_num_threads(), torch=torch.__version__)
    except SystemExit:  # an option error: the tree's parser has printed its one-line message
        raise
    except BaseException:  # noqa: BLE001  (the parent reports the traceback as the measurement's error)
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        return 1
    finally:
        sys.stdout = real_stdout
    real_stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
    real_stdout.flush()
    return 0
