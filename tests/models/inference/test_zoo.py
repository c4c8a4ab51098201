"""Tests of the SR model zoo (`download.py model sr NAME`), offline: every published layout, end to end.

For every zoo name, a file of random weights with exactly the published keys and shapes is made from
tests/fixtures/reference/sr_published_weights.json (with its wrapper key; the original ESRGAN release's layout for
esrgan-*), installed with --from-file, and run by `test.py --name NAME` alone (the installed train_opt.json
supplies the rest). Its 16-bit output is compared with a forward written here with torch.nn.functional from
the documented structures, independent of models/: within 1e-5 before quantisation, plus half a 16-bit step.
Bad input: wrong layouts, a truncated file, a pickle with a payload, no network without --from-file. No test
reaches the internet: connections other than to 127.0.0.1 fail the test.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Mapping, Tuple

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import LOOPBACK, PROXY_VARS, REFERENCE, ROOT, free_port, load_script, refuse_non_loopback, require_or_skip

from models.inference.published_weights import expected_shapes, to_toolkit_state_dict
from util import download
from util.download import SR_MODELS, DownloadError, install, install_sr_model
from util.errors import CheckpointError
from util.images import SRImage, read_image, write_image

SCRIPT = ROOT / "scripts" / "download.py"
PUBLISHED = REFERENCE / "sr_published_weights.json"
SET5 = ROOT.parent / "shared" / "data" / "sr_eval" / "Set5"
SUBPROCESS_ENV = {**{k: v for k, v in os.environ.items() if k not in PROXY_VARS}, "OMP_NUM_THREADS": "1",
                  "MKL_NUM_THREADS": "1", "PYTHONPATH": ""}
# Before quantisation (the task's tolerance), plus half a step of the 16-bit output.
TOLERANCE = 1e-5 + 0.5 / 65535

# zoo name -> the published file layout (a key of the reference JSON) its file has. SHIPPED are ours: plain
# state_dicts in the toolkit's layout, files of this repository (tested on their own below).
PUBLISHED_LAYOUT = {
    "realesrgan-x4plus": "realesrgan_x4plus",
    "realesrnet-x4plus": "realesrnet_x4plus",
    "realesrgan-x4plus-anime-6b": "realesrgan_x4plus_anime_6b",
    "realesrgan-x2plus": "realesrgan_x2plus",
    "realesr-general-x4v3": "realesr_general_x4v3",
    "realesr-general-wdn-x4v3": "realesr_general_x4v3",  # "has the same keys" (the JSON's arch note)
    "realesr-animevideov3": "realesr_animevideov3",
    "esrgan-x4": "esrgan_old_format_x4",
    "esrgan-psnr-x4": "esrgan_old_format_x4",
    "msrresnet-x4": "basicsr_msrresnet_x4",
}
SHIPPED = ["gan-translate-x4", "gan-translate-realworld-x4"]
REAL_ESRGAN = "https://github.com/xinntao/Real-ESRGAN/releases/download/"


# ---------------------------------------------------------------------------------------------- guards


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    refuse_non_loopback(monkeypatch)


# ------------------------------------------------------------------------------- published files, made here


@pytest.fixture(scope="module")
def reference() -> Dict[str, dict]:
    require_or_skip(PUBLISHED.is_file(), f"{PUBLISHED} (the published layouts) is absent")
    return json.loads(PUBLISHED.read_text())


def random_weights(shapes: Mapping[str, List[int]], seed: int) -> "OrderedDict[str, torch.Tensor]":
    """Random tensors of exactly these keys and shapes, scaled so a deep net's output stays informative:
    convolutions ~ N(0, 0.5 / fan_in), biases ~ N(0, 0.01), PReLU slopes ~ 0.25 +- 0.05."""
    gen = torch.Generator().manual_seed(seed)
    state: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for key, shape in shapes.items():
        value = torch.randn(shape, generator=gen)
        if len(shape) == 4:
            value *= (0.5 / (shape[1] * shape[2] * shape[3])) ** 0.5
        elif key.endswith(".bias"):
            value *= 0.01
        else:  # a PReLU's slopes (num_parameters)
            value = 0.25 + 0.05 * value
        state[key] = value
    return state


def published_file(path: Path, name: str, layout: dict, seed: int = 0
                   ) -> Tuple[Path, "OrderedDict[str, torch.Tensor]"]:
    """Write a file of zoo model `name` as its publisher does (wrapped in its wrapper key, or bare); return it
    and the weights. RRDBNet has no skip over the network: its last convolution is rescaled so the output of
    random weights sits inside [0, 1] (mean 0.5, std 0.15) instead of being clamped away."""
    state = random_weights(layout["state_dict"], seed)
    entry = SR_MODELS.get(name)
    if entry.netG == "rrdbnet":
        last = "model.10" if entry.key_layout == "esrgan-2018" else "conv_last"
        probe = torch.rand((1, 3, 8, 8), generator=torch.Generator().manual_seed(seed))
        out = reference_forward(name, state, probe)
        gain = 0.15 / out.std()
        state[f"{last}.weight"] *= gain
        state[f"{last}.bias"] = state[f"{last}.bias"] * gain + 0.5 - out.mean() * gain
    torch.save({layout["wrapper_key"]: state} if layout["wrapper_key"] else state, path)
    return path, state


# ----------------------------------------------------------- independent forwards, from the documented structures


def _conv(state: Mapping[str, torch.Tensor], name: str, x: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, state[f"{name}.weight"], state[f"{name}.bias"], padding=1)


def esrgan_2018_name(name: str, n_blocks: int) -> str:
    """BasicSR's module name -> the original ESRGAN release's, as the reference JSON documents them."""
    fixed = {"conv_first": "model.0", "conv_body": f"model.1.sub.{n_blocks}", "conv_up1": "model.3",
             "conv_up2": "model.6", "conv_hr": "model.8", "conv_last": "model.10"}
    if name in fixed:
        return fixed[name]
    block, rdb, conv = re.fullmatch(r"body\.(\d+)\.rdb(\d)\.conv(\d)", name).groups()  # type: ignore[union-attr]
    return f"model.1.sub.{block}.RDB{rdb}.conv{conv}.0"


def rrdbnet_forward(state: Mapping[str, torch.Tensor], x: torch.Tensor, n_blocks: int, scale: int,
                    rename: Callable[[str], str] = lambda n: n) -> torch.Tensor:
    """RRDBNet on RGB in [0, 1]: LeakyReLU(0.2); dense blocks x5 * 0.2 + x; RRDB out * 0.2 + x; two nearest x2
    upsamplings each followed by conv + LeakyReLU; conv_last(LeakyReLU(conv_hr)). Scale 2 pixel-unshuffles first."""
    def conv(name: str, t: torch.Tensor) -> torch.Tensor:
        return _conv(state, rename(name), t)

    def lrelu(t: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(t, 0.2)

    if scale == 2:
        x = F.pixel_unshuffle(x, 2)  # (N, 12, h / 2, w / 2)
    feat = conv("conv_first", x)
    trunk = feat
    for b in range(n_blocks):
        block_in = trunk
        for r in (1, 2, 3):
            outs = [trunk]
            for j in (1, 2, 3, 4):
                outs.append(lrelu(conv(f"body.{b}.rdb{r}.conv{j}", torch.cat(outs, 1))))
            trunk = conv(f"body.{b}.rdb{r}.conv5", torch.cat(outs, 1)) * 0.2 + trunk
        trunk = trunk * 0.2 + block_in
    feat = feat + conv("conv_body", trunk)
    feat = lrelu(conv("conv_up1", F.interpolate(feat, scale_factor=2, mode="nearest")))
    feat = lrelu(conv("conv_up2", F.interpolate(feat, scale_factor=2, mode="nearest")))
    return conv("conv_last", lrelu(conv("conv_hr", feat)))


def srvgg_forward(state: Mapping[str, torch.Tensor], x: torch.Tensor, n_conv: int, scale: int = 4) -> torch.Tensor:
    """SRVGGNetCompact: (conv, PReLU) x (n_conv + 1), conv to 3 * scale^2, PixelShuffle, + nearest-upsampled x."""
    out = x
    for i in range(n_conv + 1):
        out = F.prelu(_conv(state, f"body.{2 * i}", out), state[f"body.{2 * i + 1}.weight"])
    out = F.pixel_shuffle(_conv(state, f"body.{2 * n_conv + 2}", out), scale)
    return out + F.interpolate(x, scale_factor=scale, mode="nearest")


def msrresnet_forward(state: Mapping[str, torch.Tensor], x: torch.Tensor, n_blocks: int) -> torch.Tensor:
    """MSRResNet x4: conv_first + LeakyReLU(0.1), blocks x + conv2(ReLU(conv1(x))), two (conv, PixelShuffle(2),
    LeakyReLU(0.1)), conv_hr + LeakyReLU(0.1), conv_last, + bilinear-upsampled x."""
    def lrelu(t: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(t, 0.1)

    out = lrelu(_conv(state, "conv_first", x))
    for b in range(n_blocks):
        out = out + _conv(state, f"body.{b}.conv2", F.relu(_conv(state, f"body.{b}.conv1", out)))
    out = lrelu(F.pixel_shuffle(_conv(state, "upconv1", out), 2))
    out = lrelu(F.pixel_shuffle(_conv(state, "upconv2", out), 2))
    out = _conv(state, "conv_last", lrelu(_conv(state, "conv_hr", out)))
    return out + F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)


@torch.no_grad()
def reference_forward(name: str, state: Mapping[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The documented structure of zoo model `name`, on the file's own tensors (its own key names)."""
    entry = SR_MODELS.get(name)
    options = entry.options
    if entry.netG == "rrdbnet":
        rename = ((lambda n: esrgan_2018_name(n, options["n_blocks"])) if entry.key_layout == "esrgan-2018"
                  else (lambda n: n))
        return rrdbnet_forward(state, x, options["n_blocks"], entry.scale, rename)
    if entry.netG == "srvgg":
        return srvgg_forward(state, x, options["n_conv"], entry.scale)
    assert entry.netG == "msrresnet" and entry.scale == 4
    return msrresnet_forward(state, x, options["n_blocks"])


# ------------------------------------------------------------------------------------------- running test.py


def photo(folder: Path, h: int = 10, w: int = 12, seed: int = 1) -> Path:
    """A 16-bit RGB PNG (values exactly representable), alone in `folder`: the SR output is 16-bit too."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    values = torch.from_numpy(rng.integers(0, 65536, size=(3, h, w)).astype(np.float32) / 65535)
    write_image(str(folder / "photo.png"), SRImage(values, None, 16))
    return folder / "photo.png"


def results_of_test_py(test_main: Callable, tmp_path: Path, name: str, ckpt: Path, *extra: str) -> Path:
    """`test.py --dataroot <tmp_path/photos> --name NAME`, fp32, on the CPU; returns the run's results folder."""
    results = tmp_path / "results"
    argv = ["--dataroot", str(tmp_path / "photos"), "--name", name, "--checkpoints_dir", str(ckpt),
            "--results_dir", str(results), "--gpu_ids", "-1", "--amp", "none", "--num_threads", "0", *extra]
    assert test_main(argv) == 0
    return results / name


def run_test_py(test_main: Callable, tmp_path: Path, name: str, ckpt: Path, *extra: str) -> Path:
    """`test.py` on one photo (results_of_test_py); returns the SR image written."""
    (out,) = results_of_test_py(test_main, tmp_path, name, ckpt, *extra).glob("test_latest/images/*_SR.png")
    return out


@pytest.fixture
def cleanup_large_files(tmp_path: Path) -> Iterator[None]:
    """Remove the test's .pth files afterwards: pytest keeps the folders of recent runs, 67 MB each here."""
    yield
    for path in tmp_path.rglob("*.pth"):
        path.unlink()


# --------------------------------------------------------------------------------------------- the catalogue


def test_catalogue_names_addresses_and_sizes(reference: Dict[str, dict]) -> None:
    assert download.sr_model_names() == [*PUBLISHED_LAYOUT, *SHIPPED]
    releases = {"realesrgan-x4plus": "v0.1.0/RealESRGAN_x4plus.pth", "realesrnet-x4plus": "v0.1.1/RealESRNet_x4plus.pth",
                "realesrgan-x4plus-anime-6b": "v0.2.2.4/RealESRGAN_x4plus_anime_6B.pth",
                "realesrgan-x2plus": "v0.2.1/RealESRGAN_x2plus.pth",
                "realesr-general-x4v3": "v0.2.5.0/realesr-general-x4v3.pth",
                "realesr-general-wdn-x4v3": "v0.2.5.0/realesr-general-wdn-x4v3.pth",
                "realesr-animevideov3": "v0.2.5.0/realesr-animevideov3.pth"}
    for name, layout_key in PUBLISHED_LAYOUT.items():
        entry, layout = SR_MODELS.get(name), reference[layout_key]
        assert entry.url == (REAL_ESRGAN + releases[name] if name in releases else None), name
        assert entry.file in layout["file"] + layout["arch"], name
        assert entry.wrapper_key == layout["wrapper_key"], name
        parameters = sum(int(np.prod(shape)) for shape in layout["state_dict"].values())
        assert abs(entry.size_mb * 1e6 / (4 * parameters) - 1) < 0.03, name  # fp32, plus the pickle's overhead
        if "bytes" in layout and entry.file == layout["file"]:
            assert round(layout["bytes"] / 1e6, 1) == entry.size_mb
    assert SR_MODELS.get("realesr-general-x4v3").denoise_pair == "realesr-general-wdn-x4v3"
    for name in SHIPPED:
        shipped = SR_MODELS.get(name)
        assert shipped.url is None and shipped.bundled == f"models/zoo/{name}.pth"
        if (ROOT / shipped.bundled).is_file():  # the catalogue's size is the shipped file's
            assert round((ROOT / shipped.bundled).stat().st_size / 1e6, 1) == shipped.size_mb, name


@pytest.mark.parametrize("name", list(PUBLISHED_LAYOUT))
def test_our_network_has_the_published_layout(reference: Dict[str, dict], name: str) -> None:
    """The network each entry describes has exactly the published keys and shapes (after the conversion of
    the original ESRGAN names)."""
    entry, layout = SR_MODELS.get(name), reference[PUBLISHED_LAYOUT[name]]
    shapes = {k: tuple(v) for k, v in layout["state_dict"].items()}
    if entry.key_layout == "esrgan-2018":
        by_old = {esrgan_2018_name(k.rsplit(".", 1)[0], entry.options["n_blocks"]) + "." + k.rsplit(".", 1)[1]: k
                  for k in expected_shapes(entry)}
        shapes = {by_old[k]: v for k, v in shapes.items()}
    assert dict(expected_shapes(entry)) == shapes


def test_cli_choices_come_from_the_catalogue() -> None:
    parser = load_script("scripts/download.py").build_parser()
    for name in download.sr_model_names():
        args = parser.parse_args(["model", "sr", name, "--from-file", "x.pth"])
        assert (args.what, args.kind, args.name, args.from_file, args.list) == ("model", "sr", name, "x.pth", False)
    assert parser.parse_args(["model", "sr", "--list"]).list


def test_list_shows_name_scale_architecture_size_and_purpose() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "model", "sr", "--list"], cwd=ROOT, env=SUBPROCESS_ENV,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["NAME", "SCALE", "ARCHITECTURE", "SIZE", "FOR"]
    for name in download.sr_model_names():
        entry = SR_MODELS.get(name)
        (line,) = [line for line in lines if line.startswith(name + " ")]
        assert f"x{entry.scale}" in line and entry.architecture in line and f"{entry.size_mb:.1f} MB" in line
        assert entry.purpose in line


# ------------------------------------------------------------------------- every layout, installed and run


@pytest.mark.parametrize("name", list(PUBLISHED_LAYOUT))
def test_published_layout_installs_and_test_py_matches_the_documented_forward(
        reference: Dict[str, dict], tmp_path: Path, test_main: Callable, name: str, cleanup_large_files: None) -> None:
    entry = SR_MODELS.get(name)
    source, weights = published_file(tmp_path / entry.file, name, reference[PUBLISHED_LAYOUT[name]])
    ckpt = tmp_path / "checkpoints"
    folder = Path(install_sr_model(name, ckpt, convert=to_toolkit_state_dict, from_file=source, progress=False))
    assert folder == ckpt / name and sorted(os.listdir(folder)) == ["latest_net_G.pth", "train_opt.json"]

    saved = json.loads((folder / "train_opt.json").read_text())
    assert saved["zoo_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert {k: saved[k] for k in ("model", "netG", "scale", *entry.options)} == {
        "model": "srgan", "netG": entry.netG, "scale": entry.scale, **entry.options}
    installed = torch.load(folder / "latest_net_G.pth", weights_only=True)
    assert list(installed) == list(expected_shapes(entry))  # plain, unwrapped, the toolkit's key names
    if entry.key_layout == "basicsr":
        assert all(torch.equal(installed[k], weights[k]) for k in weights)

    lr_path = photo(tmp_path / "photos")
    sr = read_image(str(run_test_py(test_main, tmp_path, name, ckpt)))  # --name alone: train_opt.json does the rest
    lr = read_image(str(lr_path))
    assert sr.bit_depth == 16 and sr.pixels.shape == (3, lr.pixels.shape[1] * entry.scale,
                                                      lr.pixels.shape[2] * entry.scale)
    expected = reference_forward(name, weights, lr.pixels.unsqueeze(0))[0].clamp(0, 1)  # (3, H, W)
    assert 0.05 < expected.std() and (sr.pixels - expected).abs().max() <= TOLERANCE


def test_esrgan_2019_release_names_are_converted_too(reference: Dict[str, dict]) -> None:
    """The ESRGAN repository's later files (RRDB_trunk.N.RDBk.convj, trunk_conv, upconv1/2, HRconv) install too."""
    entry = SR_MODELS.get("esrgan-x4")
    later = {"conv_body": "trunk_conv", "conv_up1": "upconv1", "conv_up2": "upconv2", "conv_hr": "HRconv"}
    basicsr = random_weights(reference["realesrgan_x4plus"]["state_dict"], seed=3)
    renamed = OrderedDict()
    for key, value in basicsr.items():
        module, leaf = key.rsplit(".", 1)
        module = re.sub(r"^body\.(\d+)\.rdb(\d)", r"RRDB_trunk.\1.RDB\2", later.get(module, module))
        renamed[f"{module}.{leaf}"] = value
    converted = to_toolkit_state_dict(renamed, entry, "RRDB_ESRGAN_x4.pth")
    assert list(converted) == list(basicsr) and all(torch.equal(converted[k], basicsr[k]) for k in basicsr)


# ------------------------------------------------------------------------------------- ours, in the repository


def toolkit_weights(name: str, seed: int = 0) -> "OrderedDict[str, torch.Tensor]":
    return random_weights({k: list(v) for k, v in expected_shapes(SR_MODELS.get(name)).items()}, seed)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_installs_offline_from_the_repository(tmp_path: Path, test_main: Callable,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            forbid_network: list, name: str) -> None:
    """A shipped model needs no network and no --from-file: the repository's file (here one the test makes in
    a stand-in repository, in fp16 as shipped) becomes the checkpoint folder."""
    entry = SR_MODELS.get(name)
    repository = tmp_path / "repo"
    shipped = repository / entry.bundled
    shipped.parent.mkdir(parents=True)
    weights = toolkit_weights(entry.name)
    torch.save({k: v.half() for k, v in weights.items()}, shipped)
    monkeypatch.setattr(install, "REPOSITORY", str(repository))
    ckpt = tmp_path / "checkpoints"
    folder = Path(install_sr_model(entry.name, ckpt, convert=to_toolkit_state_dict, progress=False))
    assert json.loads((folder / "train_opt.json").read_text())["zoo_sha256"] == hashlib.sha256(
        shipped.read_bytes()).hexdigest()
    lr = read_image(str(photo(tmp_path / "photos")))
    sr = read_image(str(run_test_py(test_main, tmp_path, entry.name, ckpt)))
    half = {k: v.half().float() for k, v in weights.items()}
    expected = reference_forward(entry.name, half, lr.pixels.unsqueeze(0))[0].clamp(0, 1)
    assert (sr.pixels - expected).abs().max() <= TOLERANCE
    assert forbid_network == []
    monkeypatch.setattr(install, "REPOSITORY", str(tmp_path / "elsewhere"))
    with pytest.raises(CheckpointError, match=f"ships with the repository as models/zoo/{name}.pth, which "
                                              "is missing.*--from-file PATH"):
        install_sr_model(entry.name, tmp_path / "other", convert=to_toolkit_state_dict, progress=False)


# Each shipped model on the inputs it is for: clean bicubic downscales (Set5's baby), and Set5 through the seeded
# real-world degradation (all five images: one draw can leave almost nothing a model can remove).
@pytest.mark.parametrize("name, images, flags", [
    ("gan-translate-x4", ["baby.png"], []),
    ("gan-translate-realworld-x4", ["baby.png", "bird.png", "butterfly.png", "head.png", "woman.png"],
     ["--degradation", "realesrgan", "--seed", "0"]),
])
def test_the_shipped_file_installs_offline_and_beats_bicubic(tmp_path: Path, test_main: Callable,
                                                             forbid_network: list, name: str, images: List[str],
                                                             flags: List[str]) -> None:
    entry = SR_MODELS.get(name)
    require_or_skip((ROOT / entry.bundled).is_file(), f"{entry.bundled} is not in this checkout yet")
    require_or_skip(SET5.is_dir(), f"{SET5} is absent")
    ckpt = tmp_path / "checkpoints"
    install_sr_model(entry.name, ckpt, convert=to_toolkit_state_dict, progress=False)
    (tmp_path / "photos").mkdir()
    for image in images:
        (tmp_path / "photos" / image).write_bytes((SET5 / image).read_bytes())
    results = results_of_test_py(test_main, tmp_path, entry.name, ckpt, "--eval_metrics", "--tile", "0", *flags)
    (report,) = results.rglob("metrics.json")
    mean = json.loads(report.read_text())["mean"]
    assert mean["SR_psnr"] > mean["bicubic_psnr"]
    assert forbid_network == []


# ----------------------------------------------------------------------------------------------- bad input


def srvgg_file(tmp_path: Path, reference: Dict[str, dict], layout: str = "realesr_general_x4v3",
               edit: Callable[[Dict[str, torch.Tensor]], None] = lambda state: None) -> Path:
    state = random_weights(reference[layout]["state_dict"], seed=5)
    edit(state)
    path = tmp_path / "model.pth"
    torch.save({reference[layout]["wrapper_key"]: state}, path)
    return path


@pytest.mark.parametrize("case, message", [
    ("other model", r"'body\.34\.weight' has shape \(48, 64, 3, 3\), expected \(64, 64, 3, 3\)"),
    ("missing key", r"key 'body\.7\.weight' is missing"),
    ("extra key", r"unexpected key 'body\.67\.weight'"),
    ("not a tensor", r"'body\.3\.weight' holds a value of type int, not a tensor"),
])
def test_wrong_layout_names_the_first_bad_key_and_the_layout_expected(
        reference: Dict[str, dict], tmp_path: Path, case: str, message: str) -> None:
    edits: Dict[str, Callable[[Dict[str, object]], None]] = {
        "other model": lambda state: None,
        "missing key": lambda state: state.pop("body.7.weight"),
        "extra key": lambda state: state.update({"body.67.weight": torch.zeros(1)}),
        "not a tensor": lambda state: state.update({"body.3.weight": 3}),
    }
    layout = "realesr_animevideov3" if case == "other model" else "realesr_general_x4v3"
    bad = srvgg_file(tmp_path, reference, layout, edits[case])  # type: ignore[arg-type]
    with pytest.raises(CheckpointError) as err:
        install_sr_model("realesr-general-x4v3", tmp_path / "ckpt", convert=to_toolkit_state_dict, from_file=bad,
                         progress=False)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{bad} does not have the layout of realesr-general-x4v3: ")
    assert re.search(message, text), text
    assert "expected realesr-general-x4v3.pth: srvgg (ngf 64, n_conv 32) x4" in text and "under 'params'" in text
    assert not (tmp_path / "ckpt" / "realesr-general-x4v3").exists()  # nothing installed, no empty folder


def test_wrapper_or_bare_state_dict_is_accepted_and_other_dicts_are_not(
        reference: Dict[str, dict], tmp_path: Path) -> None:
    entry = SR_MODELS.get("realesr-animevideov3")
    state = random_weights(reference["realesr_animevideov3"]["state_dict"], seed=2)
    for loaded in (state, {"params": state}, {"params_ema": state, "params": {}}):
        converted = to_toolkit_state_dict(loaded, entry, "x.pth")
        assert all(torch.equal(converted[k], state[k]) for k in state)
    for loaded, message in (({"state_dict": state, "epoch": 3}, "holds neither tensors nor a 'params_ema' / "
                             "'params' dict of them .*'state_dict', 'epoch'"),
                            ([state], "holds a list, not network weights"), ({}, "holds an empty dict")):
        with pytest.raises(CheckpointError, match=message):
            to_toolkit_state_dict(loaded, entry, "x.pth")


class MakesMarker:
    """Unpickling this would create `marker`: the payload a malicious .pth carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("content", ["truncated", "payload", "html"])
def test_damaged_or_crafted_files_are_refused_and_the_install_is_kept(
        reference: Dict[str, dict], tmp_path: Path, content: str) -> None:
    good = srvgg_file(tmp_path, reference)
    ckpt = tmp_path / "ckpt"
    folder = Path(install_sr_model("realesr-general-x4v3", ckpt, convert=to_toolkit_state_dict, from_file=good,
                                   progress=False))
    before = {p: (folder / p).read_bytes() for p in os.listdir(folder)}
    marker = tmp_path / "MARKER"
    bad = tmp_path / "bad.pth"
    if content == "truncated":
        data = good.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif content == "payload":
        torch.save({"params": {"body.0.weight": MakesMarker(marker)}}, bad)
    else:
        bad.write_text("<html>captive portal</html>")
    with pytest.raises(CheckpointError) as err:
        install_sr_model("realesr-general-x4v3", ckpt, convert=to_toolkit_state_dict, from_file=bad, progress=False)
    assert str(err.value).startswith(f"{bad} is not a network state_dict that can be loaded safely (weights_only=True)")
    assert "\n" not in str(err.value)
    assert not marker.exists()  # the crafted pickle ran no code
    assert {p: (folder / p).read_bytes() for p in os.listdir(folder)} == before  # the earlier install is intact
    if content == "payload":  # the payload is real: an unsafe load would have run it
        torch.load(bad, weights_only=False)
        assert marker.exists()


def test_a_folder_that_is_not_a_zoo_install_is_not_overwritten(reference: Dict[str, dict], tmp_path: Path) -> None:
    run = tmp_path / "ckpt" / "realesr-general-x4v3"
    run.mkdir(parents=True)
    (run / "train_opt.json").write_text(json.dumps({"model": "srgan", "netG": "srvgg"}))
    (run / "latest_net_G.pth").write_bytes(b"my training run")
    with pytest.raises(CheckpointError, match="already holds something other than the zoo model"):
        install_sr_model("realesr-general-x4v3", tmp_path / "ckpt", convert=to_toolkit_state_dict,
                         from_file=srvgg_file(tmp_path, reference), progress=False)
    assert (run / "latest_net_G.pth").read_bytes() == b"my training run"


def test_offline_without_from_file_says_where_to_fetch_and_how_to_pass_it(
        tmp_path: Path, forbid_network: list) -> None:
    with pytest.raises(DownloadError) as err:
        install_sr_model("realesrgan-x4plus", tmp_path, convert=to_toolkit_state_dict, timeout=5, progress=False)
    text = str(err.value)
    assert "\n" not in text and "--from-file PATH" in text
    assert text.startswith(f"cannot download {REAL_ESRGAN}v0.1.0/RealESRGAN_x4plus.pth: ")
    with pytest.raises(DownloadError, match=r"esrgan-psnr-x4: RRDB_PSNR_x4\.pth has no direct download address: "
                                            r"fetch it from https://drive\.google\.com/.* and pass it with "
                                            r"--from-file PATH$"):
        install_sr_model("esrgan-psnr-x4", tmp_path, convert=to_toolkit_state_dict, progress=False)
    assert os.listdir(tmp_path) == []  # no model folder left behind


# ---------------------------------------------------------------------------------------------------- CLI


def run_script(*args: str, cwd: Path, env: Dict[str, str] = SUBPROCESS_ENV) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_cli_installs_from_file_and_prints_the_test_command(reference: Dict[str, dict], tmp_path: Path) -> None:
    source = srvgg_file(tmp_path, reference, "realesr_animevideov3")
    ckpt = tmp_path / "ckpt"
    result = run_script("model", "sr", "realesr-animevideov3", "--from-file", str(source), "--checkpoints_dir",
                        str(ckpt), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (ckpt / "realesr-animevideov3" / "latest_net_G.pth").is_file()
    assert f"python test.py --dataroot PHOTOS --name realesr-animevideov3 --checkpoints_dir {ckpt}" in result.stdout
    assert f"python scripts/upscale.py -i PHOTOS -o OUTDIR -n realesr-animevideov3 --checkpoints_dir {ckpt}" in \
        result.stdout


def test_cli_offline_exits_2_with_one_line(tmp_path: Path) -> None:
    """No network (every address goes through a proxy on a closed loopback port): one line, exit 2, no folder."""
    proxy = f"http://{LOOPBACK}:{free_port()}"
    env = {**SUBPROCESS_ENV, "http_proxy": proxy, "https_proxy": proxy, "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy}
    result = run_script("model", "sr", "realesr-general-x4v3", "--checkpoints_dir", str(tmp_path / "ckpt"),
                        cwd=tmp_path, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: cannot download {REAL_ESRGAN}v0.2.5.0/realesr-general-x4v3.pth: ")
    assert "--from-file PATH" in lines[0]
    assert not (tmp_path / "ckpt" / "realesr-general-x4v3").exists()
    result = run_script("model", "sr", cwd=tmp_path)
    assert result.returncode == 2 and "give a NAME, or --list" in result.stderr


def test_a_second_install_of_one_name_is_refused_while_the_first_transfers(reference: Dict[str, dict],
                                                                           tmp_path: Path) -> None:
    """Two `download.py model sr NAME` at once, real processes: the first stalls mid-transfer (a loopback server
    holds back the rest of the file); the second, a valid install from a file, is refused in one line naming the
    first's PID, not called "something other than the zoo model"; the first then completes its install."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    name = "realesr-animevideov3"
    body = srvgg_file(tmp_path, reference, "realesr_animevideov3").read_bytes()
    started, release = threading.Event(), threading.Event()

    class StallsMidBody(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:1000])
            self.wfile.flush()
            started.set()
            release.wait(120)
            self.wfile.write(body[1000:])

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), StallsMidBody)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"http://{LOOPBACK}:{server.server_address[1]}/model.pth"
    ckpt = tmp_path / "ckpt"
    env = {**SUBPROCESS_ENV, "PYTHONPATH": str(ROOT)}  # this checkout's toolkit, whatever is installed
    first = subprocess.Popen([sys.executable, str(SCRIPT), "model", "sr", name, "--url", url, "--checkpoints_dir",
                              str(ckpt)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        assert started.wait(120), first.communicate()
        second = run_script("model", "sr", name, "--from-file", str(tmp_path / "model.pth"), "--checkpoints_dir",
                            str(ckpt), cwd=tmp_path, env=env)
    finally:
        release.set()
        out, err = first.communicate(timeout=300)
        server.shutdown()
        server.server_close()
    assert second.returncode == 2, second.stderr
    assert second.stderr.strip() == (f"error: {ckpt / name} is in use by an install of the zoo model {name} "
                                     f"(PID {first.pid}): wait for it to finish"), second.stderr
    assert first.returncode == 0, err
    assert sorted(os.listdir(ckpt / name)) == ["latest_net_G.pth", "train_opt.json"]
    assert json.loads((ckpt / name / "train_opt.json").read_text())["zoo_source"] == url
