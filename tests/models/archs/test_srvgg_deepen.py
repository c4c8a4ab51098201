"""Deepening a trained SRVGGNetCompact (Net2Net's identity layers): the deeper network computes the same
function, loads strictly, and its added layers learn from the first step; scripts/deepen_srvgg.py writes it."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from helpers import ROOT
from models.archs.srvgg_arch import SRVGGNetCompact, body_convs, deepen_state


def trained_like(n_conv: int, ngf: int = 8, scale: int = 4) -> SRVGGNetCompact:
    """A small SRVGG with random weights and random PReLU slopes (a trained network's slopes are not 0.25)."""
    torch.manual_seed(n_conv)
    net = SRVGGNetCompact(3, 3, ngf, n_conv, scale)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.PReLU):
                module.weight.uniform_(-0.5, 0.8)
    return net.eval()


@pytest.mark.parametrize("source,target", [(3, 8), (2, 3), (1, 1), (0, 2)])
def test_deepened_network_computes_the_same_function(source: int, target: int) -> None:
    small = trained_like(source)
    deep = SRVGGNetCompact(3, 3, 8, target, 4).eval()
    deep.load_state_dict(deepen_state(small.state_dict(), target))  # strict: every key, every shape
    assert body_convs(deep.state_dict()) == target
    x = torch.rand(2, 3, 13, 11)  # (N, C, h, w)
    with torch.no_grad():
        torch.testing.assert_close(deep(x), small(x), rtol=0, atol=1e-5)


def test_trained_layers_keep_their_order_and_added_layers_learn() -> None:
    small = trained_like(2)
    state = deepen_state(small.state_dict(), 4)  # positions 0..3: identity, body.2, identity, body.4
    torch.testing.assert_close(state["body.4.weight"], small.state_dict()["body.2.weight"])
    torch.testing.assert_close(state["body.8.weight"], small.state_dict()["body.4.weight"])
    deep = SRVGGNetCompact(3, 3, 8, 4, 4)
    deep.load_state_dict(state)
    before = deep.body[2].weight.detach().clone()
    optimizer = torch.optim.SGD(deep.parameters(), lr=0.1)
    x, y = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 32, 32)
    torch.nn.functional.l1_loss(deep(x), y).backward()
    optimizer.step()
    assert not torch.equal(deep.body[2].weight, before)  # the identity layer moved off the Dirac kernel


def test_shallower_target_and_foreign_weights_are_refused() -> None:
    with pytest.raises(ValueError, match="--n_conv >= 3"):
        deepen_state(trained_like(3).state_dict(), 2)
    with pytest.raises(ValueError, match="not an SRVGGNetCompact"):
        body_convs({"conv_first.weight": torch.zeros(1)})


def test_script_writes_weights_that_agree_and_refuses_a_shallower_target(tmp_path) -> None:
    source, output = tmp_path / "small.pth", tmp_path / "deep.pth"
    torch.save(trained_like(2).state_dict(), source)
    run = subprocess.run([sys.executable, "scripts/deepen_srvgg.py", str(source), str(output), "--n_conv", "5"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    deep = SRVGGNetCompact(3, 3, 8, 5, 4).eval()
    deep.load_state_dict(torch.load(output, weights_only=True))
    x = torch.rand(1, 3, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(deep(x), trained_like(2)(x), rtol=0, atol=1e-5)
    refused = subprocess.run([sys.executable, "scripts/deepen_srvgg.py", str(source), str(tmp_path / "x.pth"),
                              "--n_conv", "1"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "--n_conv >= 2" in refused.stderr
    assert not (tmp_path / "x.pth").exists()
