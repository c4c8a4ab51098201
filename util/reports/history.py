"""The curves a run has drawn so far (losses per fractional epoch, validation metrics per epoch).

A module of its own because both the visualizer (which records points) and the displays (which draw them)
need it; keeping it apart from both is what lets the displays stay independent of the visualizer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Mapping, Optional

__all__: List[str] = ["LossHistory", "record"]


@dataclass
class LossHistory:
    """Every loss value plotted so far: `x` in fractional epochs, `y[i]` one value per `legend` name."""

    legend: List[str]
    x: List[float] = field(default_factory=list)
    y: List[List[float]] = field(default_factory=list)


def record(history: Optional[LossHistory], x: float, values: Mapping[str, float]) -> LossHistory:
    """Append the point `values` at `x`, starting a history whose legend is `values`' names if there is none.

    The legend is fixed by the first point, like the reference's plot: later points must report the same names
    (a missing name raises KeyError; extra names are ignored).
    """
    if history is None:
        history = LossHistory(legend=list(values.keys()))
    history.x.append(x)
    history.y.append([float(values[k]) for k in history.legend])
    return history
