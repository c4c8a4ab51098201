"""Everything that reports a run: the training visualizer and its displays, HTML pages and test results.

Modules, one concern each: `visualizer` (Visualizer: loss log, training page, live displays), `history`
(LossHistory), `grid` (make_grid), `visdom_display`, `tensorboard_display` and `wandb_display` (optional live displays),
`html` (HTML pages), `results` (test result images and metric reports).
"""
from .grid import make_grid
from .history import LossHistory
from .html import HTML
from .results import MetricsReport, save_images, write_metrics_report
from .tensorboard_display import TensorBoardDisplay
from .visdom_display import VisdomDisplay
from .visualizer import Visualizer
from .wandb_display import WandbDisplay

__all__ = [
    "HTML",
    "LossHistory",
    "MetricsReport",
    "TensorBoardDisplay",
    "Visualizer",
    "VisdomDisplay",
    "WandbDisplay",
    "make_grid",
    "save_images",
    "write_metrics_report",
]
