"""Real-ESRGAN's degradation pipeline: realistic LR images made on the fly from HR ones (`--degradation`).

kernels.py holds the blur and sinc kernels and the per-sample convolution, noise.py the noise and the JPEG round
trip, pipeline.py the second-order pipeline, options.py the options and their published defaults.
"""
from __future__ import annotations

from data.degradations.kernels import KERNEL_KINDS, KernelSettings
from data.degradations.options import (DEGRADATIONS, add_degradation_options, check_degradation_options,
                                       default_settings, settings_from_options)
from data.degradations.pipeline import DegradationSettings, StageSettings, degrade, sample_rng

__all__ = ["DEGRADATIONS", "KERNEL_KINDS", "DegradationSettings", "KernelSettings", "StageSettings",
           "add_degradation_options", "check_degradation_options", "default_settings", "degrade", "sample_rng",
           "settings_from_options"]
