"""The benchmark behind `python scripts/benchmark.py` (the command line), one concern a module:

    cases      what is measured: models, settings, speed configs, SR photo sizes; where the code lives
    inputs     what the parent prepares: VGG19 weights for perceptual losses, the SR photos
    revisions  the code measured: this tree, and a --baseline-rev git worktree
    runner     the parent: the plan of measurements, one worker process each, progress lines
    dispatch   a worker process's entry point: the measurement its spec names, one result line
    workers    one training measurement inside its worker process, and what workers share
    sr_workers one SR inference measurement (torch or onnxruntime), and the ONNX export it needs
    machine    the machine and the process: peak RSS, CPU model, load
    peak       the two sides of the MFU: FLOPs of a step and the measured matmul peak
    timing     statistics over steps and repeats: the summary rows
    report     the notes, the markdown section, the report files

Nothing here imports the toolkit (models, options, util) when it is imported: a worker imports the toolkit
from the tree under test, which `runner.run_worker` puts first on its PYTHONPATH (`workers.check_tree` checks
it), so a --baseline-rev worker measures the old code, not this tree's.
"""
from .cases import BenchmarkError
from .report import markdown_report, report_notes
from .runner import measure, plan, run_worker
from .timing import summarize_sr, summarize_train
from .dispatch import worker_main

__all__ = ["BenchmarkError", "markdown_report", "measure", "plan", "report_notes", "run_worker", "summarize_sr",
           "summarize_train", "worker_main"]
