"""What a `--netG` / `--netD` registration carries besides its builder, and the functions that read it.

A generator or discriminator is one module, `models/archs/<name>_arch.py` (its classes and one
`GENERATORS.register` / `DISCRIMINATORS.register`), plus its name on the import line of models/archs/__init__.py.
Everything the rest of the toolkit needs to know about it is metadata of that registration, so nothing elsewhere
lists architectures by name. All keys are optional:

  size_divisor  (generators) input height and width must be multiples of it (the product of the downsampling
                strides); options/ hands it to data/ as `opt.size_divisor`
  upscale       (generators) the output is larger than the input (super-resolution); --model must agree
  scales        (upscaling generators) the --scale values it can make: --model srgan offers their union, and
                a --netG that cannot make the chosen --scale is refused at option time
  value_range   (generators) "unit": the network computes on [0, 1], as published SR weights do; define_G
                adapts it to the toolkit's [-1, 1] (models/archs/value_range.py). Absent: [-1, 1]
  context       (upscaling generators) `(builder kwargs) -> int`: the input pixels of context, on each side,
                that a block of output pixels depends on (the receptive-field radius; `context_radius` computes
                it from the layer stages). Tiled inference with this much context around each tile is exact
                (models/inference/tiles.py); --tile_pad's default derives from it
  head_context  (upscaling generators with `trunk` / `hr_head` methods) `(builder kwargs) -> int`: the radius of
                `hr_head` alone, in LR pixels; split tiling (models/inference/split_tiles.py) gives the trunk
                `context` minus it and the head this much. The network carries the same value as `head_context`
  plain_tile    (upscaling generators) the --tile of plain tiles, where the network runs whole on each tile (the
                onnxruntime backend), when `option_defaults`' tile is sized for split tiles and would not fit
                (models/inference/tiles.backend_tile)
  split_scales  (upscaling generators with `plain_tile`) the scales at which the network splits (RRDBNet: 4, not
                its pixel-unshuffled 2 and 1); absent: all
  publisher_layout  (upscaling generators) "basicsr": its state_dict keys are BasicSR's, so published files load
                as they are and exports (models/inference/export.py) open in BasicSR, Real-ESRGAN and spandrel.
                Absent: the toolkit's own key names, which no other loader knows
  add_options   `(parser, is_train) -> None`: the architecture's own flags. options/ calls it for the chosen
                --netG and --netD after the model's hook, so --help lists them, and the names it adds are
                network-shaping options (a resumed run must keep them; see `own_options`)
  option_defaults  {option: value}: new defaults of other options when this architecture is chosen (e.g.
                `init_type`: how it trains from scratch); explicit flags still win
  from_options  {builder keyword: option name}: what `builder_kwargs` passes the builder from the options
  validate      `(opt) -> None`: raise OptionError for option values the architecture cannot run with
  tiny          `Tiny`: its smallest construction, which the parametrized tests build for every entry
"""
from __future__ import annotations

import argparse
import functools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

from util.registry import Registry

OptionHook = Callable[[argparse.ArgumentParser, bool], None]


@dataclass(frozen=True)
class Tiny:
    """The smallest construction of an architecture: what tests over every registered one build.

    `side`, `batch`: a generator's test input, (batch, C, side, side); the side is the smallest one it takes
    (its size divisor) or a small one that keeps a fully convolutional net quick. Discriminators are tested on
    (2, C, 64, 64). `options`: values of options the builder takes through `from_options` (e.g. {"n_blocks": 1}),
    passed to the builder as keywords and to parsers as flags.
    """

    side: int = 64
    batch: int = 2
    options: Mapping[str, Any] = field(default_factory=dict)

    def flags(self) -> Tuple[str, ...]:
        """`options` as command-line flags, e.g. ("--n_blocks", "1")."""
        return tuple(arg for name, value in self.options.items() for arg in (f"--{name}", str(value)))


def option_group(parser: argparse.ArgumentParser, title: str) -> Any:
    """The parser's argument group called `title`, created when missing: flags that several hooks add (the
    model's and its generator's) stay under one heading in --help."""
    for group in parser._action_groups:
        if group.title == title:
            return group
    return parser.add_argument_group(title)


def add_options(registry: Registry, name: str, parser: argparse.ArgumentParser, is_train: bool) -> None:
    """Add the flags of architecture `name` (none when it declares no `add_options`) and set its
    `option_defaults`."""
    hook: Optional[OptionHook] = registry.meta(name).get("add_options")
    if hook is not None:
        hook(parser, is_train)
    parser.set_defaults(**registry.meta(name).get("option_defaults", {}))


@functools.lru_cache(maxsize=None)
def own_options(registry: Registry, name: str) -> Tuple[str, ...]:
    """Names of the options architecture `name` adds (those of training, where it adds the most).

    Read from the hook itself, on an empty parser, so the flags are declared once.
    """
    probe = argparse.ArgumentParser(add_help=False)
    add_options(registry, name, probe, True)
    return tuple(action.dest for action in probe._actions)


def builder_kwargs(registry: Registry, name: str, opt: Any) -> Dict[str, Any]:
    """The keyword arguments architecture `name` takes from the options (its `from_options`)."""
    mapping: Mapping[str, str] = registry.meta(name).get("from_options", {})
    return {keyword: getattr(opt, option) for keyword, option in mapping.items()}


def validate(registry: Registry, name: str, opt: Any) -> None:
    """Run architecture `name`'s option checks (raise OptionError), if it has any."""
    check: Optional[Callable[[Any], None]] = registry.meta(name).get("validate")
    if check is not None:
        check(opt)


def context_radius(stages: Sequence[Tuple[int, Union[int, Fraction]]]) -> int:
    """The receptive-field radius, in input pixels, of a network made of `stages` (input to output): each
    `(radius, factor)` is convolutions whose kernel radii sum to `radius` at one resolution, followed by a
    resampling by `factor` (2: PixelShuffle(2) or nearest x2; Fraction(1, 2): pixel-unshuffle by 2; 1: none).

    Walked from the output back: an output block aligned to the scale needs `radius` more pixels on each side
    at each stage, and a change of resolution by `factor` rounds that need up to whole pixels of the coarser
    grid (half an LR pixel of context at x2 is one LR pixel). The result is what makes aligned tiles exact:
    SRResNet x4 (16 blocks) needs 40, not the 39.5 that adding the radii in LR pixels gives.
    """
    need = Fraction(0)
    for radius, factor in reversed(stages):
        need = Fraction(math.ceil(need / Fraction(factor))) + radius
    return int(need)


def context(registry: Registry, name: str, kwargs: Mapping[str, Any]) -> Optional[int]:
    """Input pixels of context generator `name` built with `kwargs` needs around a tile for exact tiled
    inference (its registration's `context`), or None where it does not say."""
    radius: Optional[Callable[[Mapping[str, Any]], int]] = registry.meta(name).get("context")
    return None if radius is None else int(radius(kwargs))


def head_context(registry: Registry, name: str, kwargs: Mapping[str, Any]) -> Optional[int]:
    """LR pixels of context the `hr_head` of generator `name` built with `kwargs` needs (its registration's
    `head_context`), or None where it has no split."""
    radius: Optional[Callable[[Mapping[str, Any]], int]] = registry.meta(name).get("head_context")
    return None if radius is None else int(radius(kwargs))


def tiny(registry: Registry, name: str) -> Optional[Tiny]:
    """Architecture `name`'s smallest construction, or None when it declares none."""
    return registry.meta(name).get("tiny")


def tiny_kwargs(registry: Registry, name: str) -> Dict[str, Any]:
    """The builder keyword arguments of `name`'s tiny construction (its `Tiny.options` through `from_options`)."""
    small = tiny(registry, name)
    mapping: Mapping[str, str] = registry.meta(name).get("from_options", {})
    if small is None:
        return {}
    return {keyword: small.options[option] for keyword, option in mapping.items() if option in small.options}
