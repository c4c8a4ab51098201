"""The --degradation option and its settings, with Real-ESRGAN's published values as defaults.

`--deg_<name>` sets the first pass, `--deg2_<name>` the second (whose JPEG is the final one); ranges are written
"low,high" and probabilities of alternatives "p1,p2,...". Each value is checked as it is parsed, so a bad one
stops the command line with exit code 2 and one line naming the option. The values are ordinary options: they are
saved in <phase>_opt.txt / .json beside the checkpoints.
"""
from __future__ import annotations

import argparse
import math
from typing import Any, Callable, Tuple

from data.degradations.kernels import KERNEL_KINDS, KernelSettings
from util.errors import OptionError
from data.degradations.pipeline import DegradationSettings, StageSettings

DEGRADATIONS = ("bicubic", "realesrgan")  # --degradation: the first is the default


def _numbers(text: str, count: int, integer: bool = False) -> Tuple[float, ...]:
    parts = [p.strip() for p in text.split(",")]
    try:
        values = tuple(int(p) if integer else float(p) for p in parts)
    except ValueError:
        kind = "integers" if integer else "numbers"
        raise argparse.ArgumentTypeError(f"expected {count} comma-separated {kind}, got {text!r}") from None
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected {count} comma-separated finite numbers, got {text!r}")
    return values


def value_range(low: float, high: float, integer: bool = False, around_one: bool = False) -> Callable[[str], tuple]:
    """Parser of "a,b" with low <= a <= b <= high (and a <= 1 <= b for a resize range: down to a, up to b)."""
    def parse(text: str) -> tuple:
        a, b = _numbers(text, 2, integer)
        if not low <= a <= b <= high:
            raise argparse.ArgumentTypeError(f"{text!r}: need {low} <= low <= high <= {high}")
        if around_one and not a <= 1 <= b:
            raise argparse.ArgumentTypeError(f"{text!r}: the range must hold 1 (down to low, up to high)")
        return (a, b)
    return parse


def probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a probability must be in [0, 1], got {value}")
    return value


def probabilities(count: int) -> Callable[[str], tuple]:
    """Parser of `count` probabilities of alternatives, each in [0, 1], summing to 1."""
    def parse(text: str) -> tuple:
        values = _numbers(text, count)
        if any(v < 0 for v in values) or abs(sum(values) - 1.0) > 1e-6:
            raise argparse.ArgumentTypeError(f"{text!r}: {count} probabilities >= 0 summing to 1")
        return values
    return parse


def kernel_sizes(text: str) -> tuple:
    low, high = _numbers(text, 2, integer=True)
    if not (1 <= low <= high and low % 2 == 1 and high % 2 == 1):
        raise argparse.ArgumentTypeError(f"{text!r}: two odd sizes, 1 <= smallest <= largest (e.g. 7,21)")
    return (int(low), int(high))


# name: (parser, first-pass default, second-pass default, help)
STAGE_OPTIONS = {
    "blur_prob": (probability, 1.0, 0.8, "probability of the pass's blur"),
    "kernel_probs": (probabilities(len(KERNEL_KINDS)), "0.45,0.25,0.12,0.03,0.12,0.03", "0.45,0.25,0.12,0.03,0.12,0.03",
                     f"probabilities of the blur kernel kinds {', '.join(KERNEL_KINDS)}"),
    "sinc_prob": (probability, 0.1, 0.1, "probability that the blur is a sinc (ringing) filter instead"),
    "blur_sigma": (value_range(1e-3, 100), "0.2,3", "0.2,1.5", "range of the blur kernels' sigma (pixels)"),
    "betag_range": (value_range(1e-3, 100), "0.5,4", "0.5,4", "range of the generalised-Gaussian kernels' beta"),
    "betap_range": (value_range(1e-3, 100), "1,2", "1,2", "range of the plateau kernels' beta"),
    "resize_probs": (probabilities(3), "0.2,0.7,0.1", "0.3,0.4,0.3", "probabilities of resizing up, down, or not"),
    "resize_range": (value_range(1e-3, 100, around_one=True), "0.15,1.5", "0.3,1.2",
                     "resize factor range (second pass: relative to the LR size)"),
    "gaussian_noise_prob": (probability, 0.5, 0.5, "probability of Gaussian noise (else Poisson noise)"),
    "noise_range": (value_range(0, 255), "1,30", "1,25", "Gaussian noise sigma range, 0..255 scale"),
    "poisson_scale_range": (value_range(0, 100), "0.05,3", "0.05,2.5", "Poisson noise scale range"),
    "gray_noise_prob": (probability, 0.4, 0.4, "probability that the noise is grey (the same on every channel)"),
    "jpeg_range": (value_range(1, 95, integer=True), "30,95", "30,95",
                   "JPEG quality range (second pass: the final JPEG)"),
}


def add_degradation_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add --degradation and the --deg_* / --deg2_* settings of the realesrgan pipeline."""
    g = parser.add_argument_group("degradation (super-resolution LR made from the HR)")
    g.add_argument("--degradation", choices=DEGRADATIONS, default="bicubic",
                   help="how the LR is made from each HR image: bicubic downscaling, or Real-ESRGAN's random "
                        "second-order blur / resize / noise / JPEG pipeline (a new draw per training sample; with "
                        "test.py --eval_metrics a fixed draw per image from --seed)")
    g.add_argument("--deg_kernel_range", type=kernel_sizes, default="7,21",
                   help="realesrgan: smallest and largest (odd) blur kernel size, also of the final sinc filter")
    for name, (parse, first, second, text) in STAGE_OPTIONS.items():
        g.add_argument(f"--deg_{name}", type=parse, default=first, help=f"realesrgan, first pass: {text}")
        g.add_argument(f"--deg2_{name}", type=parse, default=second, help=f"realesrgan, second pass: {text}")
    g.add_argument("--deg_final_sinc_prob", type=probability, default=0.8,
                   help="realesrgan: probability of the sinc filter after the final resize")
    g.add_argument("--deg_resize_first_prob", type=probability, default=0.5,
                   help="realesrgan: probability that the final resize + sinc come before the final JPEG (else after)")
    return parser


def check_degradation_options(opt: Any) -> None:
    """OptionError naming the --deg_* / --deg2_* options given to a run whose LR images the realesrgan pipeline
    does not make: they would be ignored, and the run would train (or be scored) on other LR images than the ones
    set up. A run without the options (a model that does not upscale, LR/HR pairs) has nothing to check."""
    if getattr(opt, "degradation", DEGRADATIONS[1]) == DEGRADATIONS[1]:
        return
    defaults = vars(add_degradation_options(argparse.ArgumentParser()).parse_args([]))
    given = [f"--{name}" for name, default in defaults.items()
             if name != "degradation" and _plain(getattr(opt, name)) != _plain(default)]
    if given:
        raise OptionError(f"{', '.join(given)}: {'settings' if len(given) > 1 else 'a setting'} of --degradation "
                          f"realesrgan, which this run does not use (--degradation {opt.degradation}): add "
                          f"--degradation realesrgan, or leave {'them' if len(given) > 1 else 'it'} out")


def _plain(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _stage(opt: Any, prefix: str) -> StageSettings:
    def get(name: str) -> Any:
        value = getattr(opt, f"{prefix}_{name}")
        return tuple(value) if isinstance(value, (list, tuple)) else value

    low, high = tuple(opt.deg_kernel_range)
    kernel = KernelSettings(sizes=tuple(range(low, high + 1, 2)), kind_probs=get("kernel_probs"),
                            sigma=get("blur_sigma"), beta_generalized=get("betag_range"),
                            beta_plateau=get("betap_range"), sinc_prob=get("sinc_prob"))
    return StageSettings(kernel=kernel, blur_prob=get("blur_prob"), resize_probs=get("resize_probs"),
                         resize_range=get("resize_range"), gaussian_noise_prob=get("gaussian_noise_prob"),
                         noise_sigma=get("noise_range"), poisson_scale=get("poisson_scale_range"),
                         grey_noise_prob=get("gray_noise_prob"), jpeg_quality=get("jpeg_range"))


def settings_from_options(opt: Any) -> DegradationSettings:
    """The pipeline's settings from parsed options (tuples, or the lists a JSON round trip gives)."""
    return DegradationSettings(first=_stage(opt, "deg"), second=_stage(opt, "deg2"),
                               final_sinc_prob=opt.deg_final_sinc_prob, resize_first_prob=opt.deg_resize_first_prob)


def default_settings() -> DegradationSettings:
    """The published settings (what the options default to)."""
    return settings_from_options(add_degradation_options(argparse.ArgumentParser()).parse_args([]))
