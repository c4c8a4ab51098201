"""The reference's import path for the training visualizer (`from util.visualizer import Visualizer`).

It lives in util.reports.
"""
from .reports.visualizer import Visualizer

__all__ = ["Visualizer"]
