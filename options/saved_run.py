"""Test-time options from the saved run: what `<checkpoints_dir>/<name>/train_opt.json` tells test.py.

A trained generator loads only into the network it was trained as, and options decide that network
(`models.BaseModel.network_options`). train.py saves every option in train_opt.json, so at test time the
options that decide the network are taken from there when the command line does not give them, and
`python test.py --dataroot DIR --name NAME` runs any model this toolkit trained. The rules:

- a flag on the command line wins; one that contradicts the checkpoint gets the CheckpointError of
  models.training.checkpoints.load_into, which names the network-shaping options;
- without the file (the reference's checkpoints, downloaded generators) nothing changes;
- the saved values become flags, put before the user's ones and parsed by the same parser, so a hand-edited
  bad value is refused like a bad flag, with the file named; an unreadable file is refused the same way.

Taken from the file:
- `--model`, and the network-shaping options of the model's generators (`network_options(opt, "G")`:
  test.py builds generators only). For another model applied to the run (`--model test --model_suffix _B` on
  a CycleGAN run) they are those of that run's generator, whose channels may be reversed
  (`BaseModel.reversed_generators`: CycleGAN's G_B maps output_nc to input_nc channels);
- for a model that keeps the image size (a super-resolution model takes whole LR images; its crop is a
  training patch and it has no direction):
  - `--direction`, when the model is the run's: which half of an aligned pair, or which domain, is the
    input. The wrong one gives no error, just a network applied to the wrong images;
  - `--crop_size`, and `--load_size` set to it, when neither is given: test images are resized to the size
    the network was trained on (test.py's own rule, load_size = crop_size, made for the default crop).
Nothing else: --preprocess, --eval, --epoch, --amp, ... are choices of the test run. The run is found by
--checkpoints_dir and --name as typed (a --suffix is applied to the name after the parse, so pass the full
name of a run trained with one). train.py never reads the file (a resumed run is checked against its
training state instead: models/training/train_state.py).
"""
from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, NoReturn, Optional, Protocol, Sequence, Set, Tuple

import models
from util.errors import OptionError

SAVED_OPTIONS_FILE = "train_opt.json"  # written by train.py (options.save_options)
_UNSET = object()  # marks an option the command line did not set (see `given_options`)


class StagedParsing(Protocol):
    """What `complete_args` needs of an options class (options.BaseOptions)."""

    def make_parser(self) -> argparse.ArgumentParser: ...

    def build_parser(self, args: Sequence[str]) -> argparse.ArgumentParser: ...


@dataclass(frozen=True)
class SavedRun:
    """The saved options file of a run and what a parse took from it (option -> value)."""

    path: str
    taken: Dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for the log: which options came from the file."""
        shown = [_display(k, v) for k, v in self.taken.items() if v is not False]  # a switch left off: no flag
        return f"options from {self.path}: {' '.join(shown) or 'none (the command line gives them all)'}"

    def explain(self, message: str) -> str:
        """`message` (an option error) plus which of the options it names came from the file."""
        named = [_display(k, v) for k, v in self.taken.items() if re.search(rf"--{re.escape(k)}\b", message)]
        if not named:
            return message
        return (f"{message} ({', '.join(named)} from {self.path}: give the option on the command line, or "
                f"correct the file)")


def _display(name: str, value: Any) -> str:
    if isinstance(value, bool):  # a switch
        return f"--{name}" if value else f"--{name} off"
    return f"--{name} {value}"


def saved_options_path(checkpoints_dir: str, name: str) -> str:
    """Where train.py saved the options of run `name`."""
    return os.path.join(checkpoints_dir, name, SAVED_OPTIONS_FILE)


def read_saved_options(path: str) -> Dict[str, Any]:
    """The options saved in `path` (a JSON object); OptionError naming the file when it cannot be used."""
    fix = "correct it, or delete it and give the run's options as flags"
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
    except OSError as e:
        raise OptionError(f"{path}: cannot read the run's saved options ({e.strerror or e})") from None
    except ValueError as e:  # JSONDecodeError, or bytes that are not UTF-8
        raise OptionError(f"{path}: the run's saved options are not valid JSON ({e}); {fix}") from None
    if not isinstance(values, dict):
        raise OptionError(f"{path}: holds a JSON {type(values).__name__}, not the run's options (an object); {fix}")
    return values


def given_options(parser: argparse.ArgumentParser, args: Sequence[str]) -> Set[str]:
    """The options (by dest) that `args` set, however spelled (`--ngf 8`, `--ngf=8`, an abbreviation).

    Every option starts out marked unset, so argparse leaves its default out and only what `args` set
    changes; the flags `parser` does not know are ignored.
    """
    every = vars(parser.parse_known_args([])[0])
    parsed, _ = parser.parse_known_args(list(args), argparse.Namespace(**dict.fromkeys(every, _UNSET)))
    return {name for name, value in vars(parsed).items() if value is not _UNSET}


def as_flags(parser: argparse.ArgumentParser, values: Mapping[str, Any], path: str) -> List[str]:
    """`values` (option -> saved value) as command-line flags of `parser`, in the form it parses them from.

    Options `parser` does not have (e.g. a training-only one) are left out. A switch (store_true) is its flag
    when true and nothing when false. A null (None) is refused naming the file and the key: the values taken decide
    the network, and leaving one out would build the default's network, which the weights file then would not fit.
    """
    actions = {action.dest: action for action in parser._actions if action.option_strings}
    flags: List[str] = []
    for name, value in values.items():
        action = actions.get(name)
        if action is None:
            continue
        if value is None:
            raise OptionError(f"{path}: \"{name}\" is null, and the run's networks need its value; correct the "
                              f"file, or give --{name} on the command line")
        flag = next((s for s in action.option_strings if s.startswith("--")), action.option_strings[0])
        if action.nargs == 0:
            if not isinstance(value, bool):
                raise OptionError(f"{path}: {name} must be true or false, got {value!r}; correct the file, or "
                                  f"delete it and give the run's options as flags")
            flags += [flag] if value else []
        elif isinstance(value, list):
            flags += [flag, *map(str, value)]
        else:
            flags.append(f"{flag}={value}")  # one token: a value that starts with '-' stays a value
    return flags


def _checked_flags(parser: argparse.ArgumentParser, values: Mapping[str, Any], path: str) -> List[str]:
    """`as_flags`, parsed once alone by `parser`: a bad value is an OptionError naming the file."""
    flags = as_flags(parser, values, path)

    def refuse(message: str) -> NoReturn:
        raise OptionError(f"{path}: {message}: correct the file, or give the option on the command line")

    parser.error = refuse  # type: ignore[method-assign]  # argparse reports a bad value through error()
    try:
        parser.parse_known_args(flags)
    finally:
        del parser.error
    return flags


def _generator_values(saved: Dict[str, Any], chosen: argparse.Namespace) -> Dict[str, Any]:
    """The saved options as the generator that `chosen` loads needs them: those of `--model_suffix`'s
    generator of the run, with input and output channels swapped for a reversed one (CycleGAN's G_B)."""
    values = dict(saved)
    suffix, run_model = getattr(chosen, "model_suffix", None), saved.get("model")
    if suffix is None or run_model not in models.MODELS.names() or not {"input_nc", "output_nc"} <= set(saved):
        return values
    if "G" + suffix in models.MODELS.get(run_model).reversed_generators:
        values["input_nc"], values["output_nc"] = saved["output_nc"], saved["input_nc"]
    return values


def complete_args(options: StagedParsing, args: Sequence[str]) -> Tuple[List[str], Optional[SavedRun]]:
    """`args` with the saved run's options that they do not give put in front (so the user's flags win), and
    what was taken; `args` unchanged and None when the run (`--checkpoints_dir`/`--name`) has no saved file.

    OptionError, naming the file, when it is unreadable or holds a value the parser refuses.
    """
    args = list(args)
    probe = [a for a in args if a not in ("-h", "--help")]
    base = options.make_parser()
    where, _ = base.parse_known_args(probe)
    path = saved_options_path(where.checkpoints_dir, where.name)
    if not os.path.isfile(path):
        return args, None
    saved = read_saved_options(path)
    # First what the later parsing stages depend on: the model and the generator.
    given = given_options(base, probe)
    taken = {name: saved[name] for name in ("model", "netG") if name in saved and name not in given}
    parser = options.build_parser([*_checked_flags(base, taken, path), *probe])
    chosen, _ = parser.parse_known_args([*as_flags(parser, taken, path), *probe])
    given = given_options(parser, probe)  # now with the flags of the chosen model and architectures
    model = models.MODELS.get(chosen.model)
    values = _generator_values(saved, chosen)
    names = list(model.network_options(chosen, "G"))
    if not model.upscales:  # what an image-to-image model is fed (a super-resolution model: whole LR images)
        if chosen.model == saved.get("model"):
            names.append("direction")
        if not given & {"crop_size", "load_size"} and "crop_size" in saved:
            values["load_size"] = saved["crop_size"]
            names += ["crop_size", "load_size"]
    known = {action.dest for action in parser._actions}
    taken.update((name, values[name]) for name in names if name in values and name not in given and name in known)
    return [*_checked_flags(parser, taken, path), *args], SavedRun(path, taken)
