"""Tests of `--ema_decay` (models/training/ema.py): the average's arithmetic against a hand computation, every trainable
model averaging each of its generators, the `<epoch>_net_<G>_ema.pth` files as part of the save set, test.py's
choice of weights (`--no_ema`), the errors for a file that does not fit, and a bit-exact resume after SIGKILL.
"""
from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from models import create_model
from models.training import train_state
from models.training.ema import GeneratorEMA
from util.errors import CheckpointError

from test_models import SIDE, TRAINABLE_MODELS, _batch, make_test_opt, train_opt
from test_reliability import (CYCLE_GAN, STEP_SLEEP, _after_two_more_saves, assert_matches_reference,  # noqa: F401
                              demo_unaligned, load_net, load_state, resume_to_end, run_train, start_wrapped,
                              train_args, wait_until, wrapper)


def _tensors(net: nn.Module) -> Dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


# ---------------------------------------------------------------------------------------------- the arithmetic


def test_average_follows_the_formula_and_copies_buffers() -> None:
    """Three SGD steps of a conv + BatchNorm generator: each parameter's average equals the float64 recursion
    e_0 = p_0, e_k = d e_{k-1} + (1 - d) p_k; buffers equal the generator's; another optimiser's steps move nothing."""
    torch.manual_seed(0)
    gen = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 3, 1))
    other = nn.Linear(2, 2)
    opt_g = torch.optim.SGD(gen.parameters(), lr=0.5)
    opt_other = torch.optim.SGD(other.parameters(), lr=0.5)
    decay = 0.75
    ema = GeneratorEMA({"G": gen}, [opt_g, opt_other], decay)
    expected = {k: v.detach().double() for k, v in gen.named_parameters()}
    for step in range(3):
        x = torch.randn(2, 3, 8, 8)
        opt_g.zero_grad()
        gen(x).square().mean().backward()
        opt_g.step()
        ema.update(opt_g)
        for k, p in gen.named_parameters():
            expected[k] = decay * expected[k] + (1 - decay) * p.detach().double()
        before = _tensors(ema.averages["G"])
        ema.update(opt_other)  # holds none of G's parameters: G's average stays
        assert all(torch.equal(before[k], v) for k, v in _tensors(ema.averages["G"]).items()), step
    average = ema.averages["G"].state_dict()
    params = dict(gen.named_parameters())
    for key, value in gen.state_dict().items():
        if key in params:
            assert torch.allclose(average[key].double(), expected[key], rtol=0, atol=1e-6), key
        else:  # running_mean, running_var, num_batches_tracked: copies
            assert torch.equal(average[key], value), key
    assert int(average["1.num_batches_tracked"]) == 3
    assert not torch.allclose(average["0.weight"], gen[0].weight), "the average should lag the weights"
    assert not any(p.requires_grad for p in ema.averages["G"].parameters())


@pytest.mark.parametrize("model_name", TRAINABLE_MODELS)
def test_every_model_averages_each_generator_and_saves_it(tmp_path, model_name: str) -> None:
    """One training step with --ema_decay 0.25: each generator (G, or G_A and G_B) has an average equal to
    0.25 initial + 0.75 stepped weights, no discriminator has one, and save_networks writes
    `<label>_net_<G>_ema.pth` with exactly the generator's keys."""
    torch.manual_seed(0)
    opt = train_opt(tmp_path, model_name, "--norm", "batch", "--ema_decay", "0.25")
    model = create_model(opt)
    model.setup(opt)
    generators = [name for name in model.model_names if not name.startswith("D")]
    assert sorted(model.ema.averages) == sorted(generators)
    initial = {name: _tensors(net) for name, net in model.named_networks()}
    model.set_input(_batch(model=model_name))
    model.optimize_parameters()
    for name, net in model.named_networks():
        if name not in generators:
            continue
        params = {k for k, _ in net.named_parameters()}
        average, now = model.ema.averages[name].state_dict(), net.state_dict()
        for key in now:
            want = 0.25 * initial[name][key] + 0.75 * now[key] if key in params else now[key]
            assert torch.allclose(average[key].double(), want.double(), rtol=0, atol=1e-6), f"{name}.{key}"
    paths = model.save_networks("latest")
    names = sorted(os.path.basename(p) for p in paths)
    assert names == sorted([f"latest_net_{n}.pth" for n in model.model_names]
                           + [f"latest_net_{g}_ema.pth" for g in generators])
    for g in generators:
        saved = torch.load(Path(model.save_dir) / f"latest_net_{g}_ema.pth", map_location="cpu", weights_only=True)
        net = dict(model.named_networks())[g]
        assert list(saved) == list(net.state_dict())
        assert all(torch.equal(saved[k], v) for k, v in model.ema.averages[g].state_dict().items())


def test_no_average_by_default(tmp_path) -> None:
    opt = train_opt(tmp_path, "pix2pix")
    model = create_model(opt)
    model.setup(opt)
    assert model.ema.averages == {} and model.ema.state_dicts() == {}
    assert sorted(os.path.basename(p) for p in model.save_networks("latest")) == ["latest_net_D.pth",
                                                                                  "latest_net_G.pth"]


def test_srgan_validates_the_average(tmp_path) -> None:
    """With --ema_decay, validation scores the average (what test.py will load): the same PSNR/SSIM as a model
    without one whose generator holds the average's weights, and other scores than the raw generator's."""
    val = tmp_path / "val"
    val.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(val / "0.png")
    torch.manual_seed(0)
    opt = train_opt(tmp_path, "srgan", "--norm", "batch", "--ema_decay", "0.5", "--val_dataroot", str(val))
    model = create_model(opt)
    model.setup(opt)
    for seed in range(2):
        model.set_input(_batch(seed, model="srgan"))
        model.optimize_parameters()
    scores = model.validate()
    plain_opt = train_opt(tmp_path, "srgan", "--norm", "batch", "--val_dataroot", str(val))
    plain = create_model(plain_opt)
    plain.setup(plain_opt)
    plain.netG.load_state_dict(model.ema.averages["G"].state_dict())
    assert plain.validate() == scores
    plain.netG.load_state_dict(model.netG.state_dict())
    assert plain.validate()["psnr"] != scores["psnr"]


# ---------------------------------------------------------------------------------------------- the save set


class _Loader(SimpleNamespace):
    base_seed = 5


def _trained_pix2pix(tmp_path: Path, *extra: str):
    torch.manual_seed(0)
    opt = train_opt(tmp_path, "pix2pix", "--norm", "batch", *extra)
    model = create_model(opt)
    model.setup(opt)
    for seed in range(2):
        model.set_input(_batch(seed))
        model.optimize_parameters()
    return opt, model


def test_average_is_part_of_the_save_set(tmp_path) -> None:
    """The training state holds the average and lists its files; a save cut short after the state gets its
    missing average file written again from the state, equal to the saved average."""
    opt, model = _trained_pix2pix(tmp_path, "--ema_decay", "0.5")
    train_state.Checkpointer(model, _Loader(), opt).save(["latest", 3], 4, 0, 16)
    run_dir = Path(model.save_dir)
    state = train_state.load(str(run_dir))
    assert state["files"]["latest_net_G_ema.pth"] == "G_ema" and state["files"]["3_net_G_ema.pth"] == "G_ema"
    average = model.ema.state_dicts()["G_ema"]
    for label in ("latest", "3"):
        saved = load_net(run_dir / f"{label}_net_G_ema.pth")
        assert list(saved) == list(average) and all(torch.equal(saved[k], average[k]) for k in average)
    (run_dir / "3_net_G_ema.pth").unlink()
    written = train_state.complete_network_files(str(run_dir), state)
    assert [os.path.basename(p) for p in written] == ["3_net_G_ema.pth"]
    assert all(torch.equal(load_net(run_dir / "3_net_G_ema.pth")[k], v) for k, v in average.items())


def test_resume_without_average_removes_the_stale_average_file(tmp_path) -> None:
    """A run saved with --ema_decay, then saved under the same label without it: the old average file goes (test.py
    would prefer it to the new generator), and the state lists no average."""
    opt, model = _trained_pix2pix(tmp_path, "--ema_decay", "0.5")
    train_state.Checkpointer(model, _Loader(), opt).save(["latest"], 1, 2, 2)
    run_dir = Path(model.save_dir)
    assert (run_dir / "latest_net_G_ema.pth").is_file()
    opt_off, plain = _trained_pix2pix(tmp_path)
    train_state.Checkpointer(plain, _Loader(), opt_off).save(["latest"], 1, 2, 2)
    assert not (run_dir / "latest_net_G_ema.pth").exists()
    assert "G_ema" not in train_state.load(str(run_dir))["networks"]


def test_resume_turning_the_average_on_starts_it_from_the_resumed_generator(tmp_path) -> None:
    opt_off, plain = _trained_pix2pix(tmp_path)
    train_state.Checkpointer(plain, _Loader(), opt_off).save(["latest"], 1, 2, 2)
    (tmp_path / "other").mkdir()
    opt, model = _trained_pix2pix(tmp_path / "other", "--ema_decay", "0.5")
    model.load_training_state(train_state.load(plain.save_dir))
    resumed = plain.netG.state_dict()
    assert all(torch.equal(model.ema.averages["G"].state_dict()[k], v) for k, v in resumed.items())


# ---------------------------------------------------------------------------------------------- test.py's weights


@pytest.fixture
def saved_run(tmp_path):
    """A pix2pix run's files saved with an average that differs from the generator."""
    opt, model = _trained_pix2pix(tmp_path, "--ema_decay", "0.5")
    model.save_networks("latest")
    return SimpleNamespace(dir=Path(model.save_dir), raw=load_net(Path(model.save_dir) / "latest_net_G.pth"),
                           average=load_net(Path(model.save_dir) / "latest_net_G_ema.pth"))


def _test_model(tmp_path: Path, *extra: str):
    opt = make_test_opt(tmp_path, "--model", "pix2pix", "--netG", "resnet_6blocks", "--norm", "batch", *extra)
    model = create_model(opt)
    model.setup(opt)
    model.eval()
    return model


def _output(model, x: torch.Tensor) -> torch.Tensor:
    model.set_input({"A": x, "B": x, "A_paths": ["x.png"]})
    model.test()
    return model.fake_B


def test_test_time_uses_the_average_and_no_ema_the_raw_weights(tmp_path, saved_run) -> None:
    """test.py's model loads `latest_net_G_ema.pth` where it exists: its outputs equal a forward of the generator
    with the average's weights, and differ from the raw weights' outputs, which --no_ema gives."""
    assert any(not torch.equal(saved_run.raw[k], saved_run.average[k]) for k in saved_run.raw)
    x = torch.rand(1, 3, SIDE, SIDE) * 2 - 1
    default, raw = _test_model(tmp_path), _test_model(tmp_path, "--no_ema")
    reference = _test_model(tmp_path, "--no_ema")
    for state, model in ((saved_run.average, default), (saved_run.raw, raw)):
        assert all(torch.equal(model.netG.state_dict()[k], v) for k, v in state.items())
    reference.netG.load_state_dict(saved_run.average)
    out_default, out_raw = _output(default, x), _output(raw, x)
    assert torch.equal(out_default, _output(reference, x))
    assert not torch.allclose(out_default, out_raw)
    (saved_run.dir / "latest_net_G_ema.pth").unlink()  # a run trained without --ema_decay: the raw weights
    assert torch.equal(_output(_test_model(tmp_path), x), out_raw)


def _wrong_file(path: Path) -> None:
    """Replace `path` by a generator of another width (ngf 4 instead of 8)."""
    state = load_net(path)
    torch.save({k: v[: v.shape[0] // 2] if v.dim() else v for k, v in state.items()}, path)


def _error(fn) -> str:
    with pytest.raises(CheckpointError) as info:
        fn()
    return str(info.value)


def test_wrong_average_file_gets_the_generator_files_error(tmp_path, saved_run) -> None:
    """An average that does not fit the network is refused with the message a wrong generator file gets (the
    file named, the tensors, the options to check), at test time and by --continue_train from files."""
    _wrong_file(saved_run.dir / "latest_net_G_ema.pth")
    ema_error = _error(lambda: _test_model(tmp_path))
    _wrong_file(saved_run.dir / "latest_net_G.pth")
    g_error = _error(lambda: _test_model(tmp_path, "--no_ema"))
    assert "latest_net_G_ema.pth does not fit the network built from the options" in ema_error
    assert ema_error.replace("latest_net_G_ema.pth", "latest_net_G.pth") == g_error
    assert "--ngf" in ema_error
    opt = train_opt(tmp_path, "pix2pix", "--norm", "batch", "--ema_decay", "0.5", "--continue_train")
    torch.save(saved_run.raw, saved_run.dir / "latest_net_G.pth")  # the generator loads; its average does not
    model = create_model(opt)
    assert _error(lambda: model.setup(opt)) == ema_error


# ---------------------------------------------------------------------------------------------- exact resume


EMA_CYCLE_GAN = [*CYCLE_GAN, "--ema_decay", "0.9"]


@pytest.fixture(scope="module")
def reference_ema(tmp_path_factory, demo_unaligned) -> Path:
    """The uninterrupted cycle_gan run with averages of G_A and G_B."""
    base = tmp_path_factory.mktemp("ref_ema")
    proc = run_train(train_args(demo_unaligned, base / "ck", "ref", EMA_CYCLE_GAN), base, "ref")
    assert proc.popen.returncode == 0, proc.describe()
    return base / "ck" / "ref"


def test_sigkill_then_resume_with_average_is_bit_exact(reference_ema, demo_unaligned, wrapper, tmp_path) -> None:
    """Killed mid-run (SIGKILL, after three saves), resumed with --continue_train: every file, the averages
    included, and the final training state equal the uninterrupted run's bit for bit."""
    name = "ema_kill"
    run_dir = tmp_path / "ck" / name
    args = train_args(demo_unaligned, tmp_path / "ck", name, EMA_CYCLE_GAN)
    proc = start_wrapped(args, tmp_path, name, wrapper, RT_STEP_SLEEP=STEP_SLEEP)
    wait_until(proc, _after_two_more_saves(run_dir), "three state saves")
    proc.popen.kill()
    proc.wait()
    assert {"G_A_ema", "G_B_ema"} <= set(load_state(run_dir)["networks"])
    resume_to_end(args, tmp_path, name)
    files: List[str] = sorted(p.name for p in reference_ema.glob("*_ema.pth"))
    assert files == ["3_net_G_A_ema.pth", "3_net_G_B_ema.pth", "latest_net_G_A_ema.pth", "latest_net_G_B_ema.pth"]
    assert_matches_reference(run_dir, reference_ema)
