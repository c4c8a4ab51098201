"""Export of every upscaling generator (tiny constructions): ONNX checked against the network, the onnxruntime
backend through the unchanged tiles / alpha / 16-bit / outscale code, safetensors opened by spandrel."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from models import networks
from models.archs import registration
from models.inference import Upscaler
from models.inference.export import export_onnx, export_safetensors, import_onnx, ort_session, value_range
from models.inference.onnx_backend import OnnxGenerator, onnx_threads, weights_key
from models.inference.tiles import default_tile_pad
from util.errors import ExportError
from util.images import SRImage

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install -e '.[onnx]'")
pytest.importorskip("onnxscript", reason="the onnx extra is not installed: pip install -e '.[onnx]'")

UPSCALING = [name for name in networks.GENERATORS.names() if networks.upscales(name)]
# spandrel's ESRGAN loader assumes the published 32 growth channels; the tiny rrdbnet has 4.
SPANDREL_OPTIONS = {"rrdbnet": {"growth_channels": 32}}


def tiny_net(name: str, seed: int = 0, **extra: int) -> Tuple[nn.Module, Dict[str, str]]:
    """The tiny construction of `name` (random weights, BatchNorm statistics that are not the identity), in eval
    mode, and the metadata an export of it gets."""
    torch.manual_seed(seed)
    kwargs = {**registration.tiny_kwargs(networks.GENERATORS, name), **extra}
    net = networks.unwrap(networks.define_G(3, 3, 8, name, "batch", False, "normal", 0.02, **kwargs))
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    scale = kwargs.get("scale", 4)
    return net.eval(), {"name": f"tiny_{name}", "netG": name, "scale": str(scale), "value_range": value_range(name)}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Dict[str, Tuple[nn.Module, Path]]:
    """Each upscaling generator's tiny network and its ONNX export."""
    folder = tmp_path_factory.mktemp("onnx")
    out = {}
    for name in UPSCALING:
        net, meta = tiny_net(name)
        export_onnx(net, str(folder / f"{name}.onnx"), meta)
        out[name] = (net, folder / f"{name}.onnx")
    return out


@pytest.mark.parametrize("name", UPSCALING)
def test_onnx_equals_the_network_on_its_own_range(exported, name):
    net, path = exported[name]
    unit = value_range(name) == "[0, 1]"
    session = ort_session(str(path))
    assert session.get_session_options().enable_cpu_mem_arena is False  # memory returned tile by tile
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["value_range"] == ("[0, 1]" if unit else "[-1, 1]") and meta["scale"] == "4"
    assert json.loads(path.with_suffix(".json").read_text())["value_range"] == meta["value_range"]
    for h, w in ((5, 9), (1, 13), (11, 1)):  # sizes the export was not traced or checked at
        x = torch.rand(1, 3, h, w) * (1 if unit else 2) - (0 if unit else 1)  # (1, 3, h, w) in the file's range
        with torch.no_grad():  # the toolkit's network computes on [-1, 1]: map by hand, independently of export
            expected = (net(x * 2 - 1) + 1) / 2 if unit else net(x)
        got = session.run(None, {"input": x.numpy()})[0]
        assert got.shape == (1, 3, 4 * h, 4 * w)
        assert np.abs(got - expected.numpy()).max() < 1e-4


def test_fp16_export_takes_and_gives_float16(tmp_path):
    net, meta = tiny_net("srvgg")
    export_onnx(net, str(tmp_path / "half.onnx"), meta, fp16=True)
    session = ort_session(str(tmp_path / "half.onnx"))
    assert session.get_inputs()[0].type == "tensor(float16)"
    x = torch.rand(1, 3, 6, 7)
    got = session.run(None, {"input": x.half().numpy()})[0]
    with torch.no_grad():
        expected = (net(x * 2 - 1) + 1) / 2
    assert got.dtype == np.float16 and np.abs(got.astype(np.float32) - expected.numpy()).max() < 1 / 255


class Counting(nn.Module):
    """A network the graph cannot hold: its output depends on how often it was called (a Python counter)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, h, w) -> (N, 3, 4h, 4w)
        self.calls += 1
        return F.interpolate(x, scale_factor=4, mode="nearest") * self.calls


class DataDependent(nn.Module):
    """A network torch.export cannot trace: Python control flow on a tensor's values."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=4) * (2 if x.sum() > 0 else 1)


@pytest.mark.parametrize("net, why", [(Counting(), "does not compute what the network does"),
                                      (DataDependent(), "cannot be exported to ONNX")])
def test_a_failed_export_is_one_line_and_leaves_no_file(tmp_path, net, why):
    meta = {"name": "bad", "netG": "srresnet", "scale": "4", "value_range": "[-1, 1]"}
    with pytest.raises(ExportError) as caught:
        export_onnx(net, str(tmp_path / "bad.onnx"), meta)
    assert why in str(caught.value) and "\n" not in str(caught.value)
    assert os.listdir(tmp_path) == []  # no file under the final name, no temporary left


def test_a_missing_package_is_one_line_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime raises ImportError
    with pytest.raises(ExportError, match=r"onnxruntime package, which is not installed: pip install -e '\.\[onnx\]'"):
        import_onnx()


@pytest.mark.parametrize("name", UPSCALING)
def test_tiled_onnxruntime_equals_tiled_torch(exported, name):
    net, path = exported[name]
    kwargs = registration.tiny_kwargs(networks.GENERATORS, name)
    pad = default_tile_pad(name, kwargs)
    torch_up = Upscaler(net, 4, tile=8, tile_pad=pad)
    onnx_up = Upscaler(OnnxGenerator(str(path), threads=1), 4, tile=8, tile_pad=pad)
    generator = torch.Generator().manual_seed(1)
    rgba8 = SRImage(torch.randint(0, 256, (3, 19, 27), generator=generator).float() / 255,
                    torch.randint(0, 256, (1, 19, 27), generator=generator).float() / 255, 8)
    grey16 = SRImage(torch.randint(0, 65536, (1, 17, 10), generator=generator).float() / 65535, None, 16)
    for image, outscale in ((rgba8, None), (rgba8, 2.5), (grey16, None)):
        a, b = torch_up(image, outscale), onnx_up(image, outscale)
        assert a.pixels.shape == b.pixels.shape and b.bit_depth == image.bit_depth
        assert (a.pixels - b.pixels).abs().max() <= 1 / 255 + 1e-7  # 8 bit: one level at most
        assert torch.equal(a.alpha, b.alpha) if a.alpha is not None else b.alpha is None


def test_the_cache_key_follows_the_weights():
    a, _ = tiny_net("srvgg", seed=0)
    b, _ = tiny_net("srvgg", seed=1)
    assert weights_key(a.state_dict()) == weights_key(tiny_net("srvgg", seed=0)[0].state_dict())
    assert weights_key(a.state_dict()) != weights_key(b.state_dict())


@pytest.mark.parametrize("name", UPSCALING)
def test_spandrel_opens_the_safetensors_export(tmp_path, name):
    spandrel = pytest.importorskip("spandrel", reason="spandrel is not installed (pip install spandrel)")
    net, meta = tiny_net(name, **SPANDREL_OPTIONS.get(name, {}))
    path = tmp_path / f"{name}.safetensors"
    written = export_safetensors(net, str(path), meta)
    if written["key_layout"] != "basicsr":  # srresnet: no publisher's layout, so no other loader knows it
        with pytest.raises(spandrel.UnsupportedModelError):
            spandrel.ModelLoader().load_from_file(str(path))
        return
    if name == "msrresnet":  # BasicSR's layout, but spandrel has no MSRResNet architecture
        with pytest.raises(spandrel.UnsupportedModelError):
            spandrel.ModelLoader().load_from_file(str(path))
        return
    descriptor = spandrel.ModelLoader().load_from_file(str(path))
    assert descriptor.architecture.id == {"rrdbnet": "ESRGAN", "srvgg": "Compact"}[name] and descriptor.scale == 4
    x = torch.rand(1, 3, 7, 9)
    with torch.no_grad():
        expected = (net(x * 2 - 1) + 1) / 2
        got = descriptor.model.eval()(x)
    assert (got - expected).abs().max() < 1e-5


def test_threads_are_torchs(exported, monkeypatch):
    _, path = exported["srvgg"]
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)  # what upscale.py's --num_threads would have set
    assert onnx_threads() == 3
    assert OnnxGenerator(str(path), threads=1).session.get_session_options().intra_op_num_threads == 1
