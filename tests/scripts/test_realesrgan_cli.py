"""Real-ESRGAN users' command lines run unchanged through scripts/upscale.py (issue 24, item 1).

Each line below is one of the documented `inference_realesrgan.py` command lines (its README's examples and
common flags, tests/fixtures has their facts), with `python inference_realesrgan.py` replaced by `python
scripts/upscale.py`. The weights are random files in each publisher's own layout (written as the publisher's
files are: wrapper key included), passed with --model_path as a Real-ESRGAN user passes a downloaded file, or
installed beforehand under the zoo's folder; nothing leaves the machine. Each run must exit 0 and write what
Real-ESRGAN would name: `<output>/<stem>_<suffix>.<ext>`, at the size it would have.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch
from helpers import REFERENCE, ROOT
from PIL import Image

from models.inference.published_weights import to_toolkit_state_dict
from util.download import install_sr_model

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


# Each publisher's file and the entry of tests/fixtures/reference/sr_published_weights.json with its layout.
PUBLISHED = {"RealESRGAN_x4plus": "realesrgan_x4plus", "RealESRGAN_x2plus": "realesrgan_x2plus",
             "RealESRGAN_x4plus_anime_6B": "realesrgan_x4plus_anime_6b",
             "realesr-animevideov3": "realesr_animevideov3", "realesr-general-x4v3": "realesr_general_x4v3",
             "realesr-general-wdn-x4v3": "realesr_general_x4v3"}  # the wdn twin has the general model's keys


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Dict[str, Path]:
    """A random file of each Real-ESRGAN model the command lines name, in its publisher's layout (wrapper key
    and all); each with its own seed, so the general model and its twin differ."""
    folder = tmp_path_factory.mktemp("weights")
    layouts = json.loads((REFERENCE / "sr_published_weights.json").read_text())
    files = {}
    for seed, (publisher, layout_key) in enumerate(PUBLISHED.items()):
        layout = layouts[layout_key]
        generator = torch.Generator().manual_seed(seed)
        state = {key: torch.randn(shape, generator=generator) * 0.05 for key, shape in layout["state_dict"].items()}
        files[publisher] = folder / f"{publisher}.pth"
        torch.save({layout["wrapper_key"]: state} if layout["wrapper_key"] else state, files[publisher])
    return files


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, weights) -> Path:
    """A folder as a Real-ESRGAN user has it: `inputs/` with a photo, an RGBA image and a greyscale one, and the
    general model and its denoising twin installed (as `download.py model sr` leaves them)."""
    root = tmp_path_factory.mktemp("user")
    (root / "inputs").mkdir()
    Image.radial_gradient("L").resize((14, 10)).convert("RGB").save(root / "inputs" / "photo.jpg")
    rgba = Image.new("RGBA", (12, 9), (200, 40, 90, 255))
    rgba.putpixel((3, 3), (0, 0, 0, 0))
    rgba.save(root / "inputs" / "logo.png")
    Image.linear_gradient("L").resize((10, 8)).save(root / "inputs" / "scan.png")
    for zoo, publisher in [("realesr-general-x4v3", "realesr-general-x4v3"),
                           ("realesr-general-wdn-x4v3", "realesr-general-wdn-x4v3")]:
        install_sr_model(zoo, root / "checkpoints", convert=to_toolkit_state_dict, from_file=weights[publisher],
                         progress=False, check_sha256=False)
    return root


def upscale(workdir: Path, line: str) -> subprocess.CompletedProcess:
    """Run one command line, as typed, in the user's folder."""
    argv = [sys.executable, str(ROOT / "scripts" / "upscale.py"), *shlex.split(line), "-g", "-1"]
    return subprocess.run(argv, cwd=workdir, env=ENV, capture_output=True, text=True, timeout=600)


def sizes(folder: Path) -> Dict[str, tuple]:
    out = {}
    for name in sorted(os.listdir(folder)):
        with Image.open(folder / name) as img:
            out[name] = (img.size, img.mode)
    return out


INPUTS = {"photo.jpg": (14, 10), "logo.png": (12, 9), "scan.png": (10, 8)}


def expected(outdir: str, scale: float, ext: str = "auto", suffix: str = "out") -> Dict[str, tuple]:
    """What Real-ESRGAN writes for `inputs/`: `<stem>_<suffix>.<ext>` (RGBA always PNG), at round(W * s)."""
    result = {}
    for name, (w, h) in INPUTS.items():
        stem, source_ext = name.rsplit(".", 1)
        out_ext = source_ext if ext == "auto" else ext
        if name == "logo.png":
            out_ext = "png"
        mode = {"photo.jpg": "RGB", "logo.png": "RGBA", "scan.png": "L"}[name]
        result[f"{stem}_{suffix}.{out_ext}" if suffix else f"{stem}.{out_ext}"] = ((round(w * scale),
                                                                                    round(h * scale)), mode)
    return result


LINES: List[tuple] = [
    # (the command line after `python inference_realesrgan.py`, output folder, final scale, --ext, --suffix)
    ("-n RealESRGAN_x4plus -i inputs --model_path {RealESRGAN_x4plus}", "results", 4, "auto", "out"),
    ("-n RealESRGAN_x4plus.pth -i inputs -o out_pth --model_path {RealESRGAN_x4plus}", "out_pth", 4, "auto", "out"),
    ("-n RealESRGAN_x4plus -i inputs -o out_s35 --outscale 3.5 --model_path {RealESRGAN_x4plus}", "out_s35", 3.5,
     "auto", "out"),
    ("-n RealESRGAN_x2plus -i inputs -o out_x2 -s 2 --model_path {RealESRGAN_x2plus}", "out_x2", 2, "auto", "out"),
    ("-n RealESRGAN_x4plus_anime_6B -i inputs -o out_anime --model_path {RealESRGAN_x4plus_anime_6B}", "out_anime", 4,
     "auto", "out"),
    ("-n realesr-animevideov3 -i inputs -o out_video --model_path {realesr-animevideov3}", "out_video", 4, "auto",
     "out"),
    ("-n realesr-general-x4v3 -i inputs -o out_general --checkpoints_dir checkpoints", "out_general", 4, "auto", "out"),
    ("-n realesr-general-x4v3 -i inputs -o out_dn -dn 0.2 --checkpoints_dir checkpoints", "out_dn", 4, "auto", "out"),
    ("-n realesr-general-x4v3 -i inputs -o out_tile -t 8 --tile_pad 10 --pre_pad 10 --checkpoints_dir checkpoints",
     "out_tile", 4, "auto", "out"),
    ("-n realesr-general-x4v3 -i inputs -o out_png --ext png --suffix x4 --fp32 --checkpoints_dir checkpoints",
     "out_png", 4, "png", "x4"),
    ("-n realesr-general-x4v3 -i inputs -o out_alpha --alpha_upsampler realesrgan --checkpoints_dir checkpoints",
     "out_alpha", 4, "auto", "out"),
    ("--model_name realesr-general-x4v3 --input inputs/photo.jpg --output out_one --denoise_strength 1 --gpu-id 0 "
     "--checkpoints_dir checkpoints", "out_one", 4, "auto", "out"),
]


@pytest.mark.parametrize("line, outdir, scale, ext, suffix", LINES, ids=[row[1] for row in LINES])
def test_a_real_esrgan_command_line_runs_and_writes_what_it_would(workdir, weights, line, outdir, scale, ext,
                                                                  suffix):
    proc = upscale(workdir, line.format(**{k: str(v) for k, v in weights.items()}))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    want = expected(outdir, scale, ext, suffix)
    if outdir == "out_one":
        want = {k: v for k, v in want.items() if k.startswith("photo")}
    assert sizes(workdir / outdir) == want


def test_denoise_defaults_to_real_esrgans_half(workdir):
    """-dn's default is 0.5, as Real-ESRGAN's: the result equals -dn 0.5's, not the published model's (-dn 1)."""
    runs = {}
    for label, flags in [("default", ""), ("half", "-dn 0.5"), ("published", "-dn 1")]:
        proc = upscale(workdir, f"-n realesr-general-x4v3 -i inputs/photo.jpg -o dn_{label} --ext png {flags} "
                                f"--checkpoints_dir checkpoints --fp32")
        assert proc.returncode == 0, proc.stderr
        with Image.open(workdir / f"dn_{label}" / "photo_out.png") as img:
            runs[label] = torch.from_numpy(np.asarray(img).copy())
    assert torch.equal(runs["default"], runs["half"]) and not torch.equal(runs["default"], runs["published"])


def test_an_unknown_name_suggests_the_closest(workdir):
    proc = upscale(workdir, "-n RealESRGAN_x4plsu -i inputs --checkpoints_dir checkpoints")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "did you mean RealESRGAN_x4plus" in proc.stderr


def test_pre_pad_reflects_the_right_and_bottom_edges():
    """--pre_pad: the network sees the image with its right and bottom edges mirrored, and the result is cut back;
    an identity-like network (nearest upscaling) shows the output is the unpadded image's."""
    from models.inference.resolve import super_resolve
    from util.images import SRImage

    class Nearest(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(tuple(x.shape[-2:]))
            return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")

    seen: list = []
    img = SRImage(torch.rand(3, 5, 7), None, 8)
    plain = super_resolve(Nearest(), img, 2)
    padded = super_resolve(Nearest(), img, 2, pre_pad=3)
    assert seen == [(5, 7), (8, 10)]
    assert torch.equal(plain.pixels, padded.pixels) and padded.size == (14, 10)


def test_recursive_keeps_the_tree(workdir):
    """-r (upscayl's users ask for it): every image under the folder, each result in the same subfolder of -o."""
    tree = workdir / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / ".hidden").mkdir()
    for rel, size in [("top.png", (6, 5)), ("a/x.png", (7, 5)), ("a/b/x.png", (5, 6)), (".hidden/no.png", (4, 4))]:
        Image.new("RGB", size, "red").save(tree / rel)
    proc = upscale(workdir, "-n realesr-general-x4v3 -i tree -r -o out_tree --checkpoints_dir checkpoints")
    assert proc.returncode == 0, proc.stderr
    found = sorted(str(p.relative_to(workdir / "out_tree")) for p in (workdir / "out_tree").rglob("*") if p.is_file())
    assert found == ["a/b/x_out.png", "a/x_out.png", "top_out.png"]
    with Image.open(workdir / "out_tree" / "a" / "b" / "x_out.png") as img:
        assert img.size == (20, 24)
    proc = upscale(workdir, "-n realesr-general-x4v3 -i tree -o out_flat --checkpoints_dir checkpoints")
    assert proc.returncode == 0 and os.listdir(workdir / "out_flat") == ["top_out.png"]  # without -r: its own files


def test_16_bit_tiff_in_16_bit_tiff_out(workdir):
    import cv2

    levels = (np.random.default_rng(0).random((6, 5, 3)) * 65535).astype(np.uint16)
    cv2.imwrite(str(workdir / "scan16.tiff"), levels)
    proc = upscale(workdir, "-n realesr-general-x4v3 -i scan16.tiff -o out_tiff --checkpoints_dir checkpoints")
    assert proc.returncode == 0, proc.stderr
    out = cv2.imread(str(workdir / "out_tiff" / "scan16_out.tiff"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (24, 20, 3)
    assert len(np.unique(out)) > 256  # 16 bits of levels, not 8 bits stretched
