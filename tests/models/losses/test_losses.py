"""Tests of the GAN objectives, the WGAN-GP penalty, the learning-rate policies and the image pool.

Expected values are computed independently: with `math` element by element, or in closed form.
"""
from __future__ import annotations

import math
import random
import types
from typing import Callable, List

import pytest
import torch
import torch.nn as nn

from models import networks
from models.training.image_pool import ImagePool
from models.networks import GAN_MODES, LR_POLICIES, GANLoss, gradient_penalty

X = [-3.0, -0.5, 0.0, 0.25, 2.0, 4.5]  # a fixed "discriminator output"


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def _hand_loss(mode: str, xs: List[float], target_is_real: bool, real: float, fake: float) -> float:
    t = real if target_is_real else fake
    if mode == "vanilla":
        return sum(-(t * math.log(_sigmoid(v)) + (1 - t) * math.log(1 - _sigmoid(v))) for v in xs) / len(xs)
    if mode == "lsgan":
        return sum((v - t) ** 2 for v in xs) / len(xs)
    if mode == "wgangp":
        return -sum(xs) / len(xs) if target_is_real else sum(xs) / len(xs)
    if mode == "hinge":  # D's terms: max(0, 1 - x) for real, max(0, 1 + x) for fake
        return sum(max(0.0, 1 - v) if target_is_real else max(0.0, 1 + v) for v in xs) / len(xs)
    raise KeyError(mode)


def _hand_grad(mode: str, v: float, n: int, target_is_real: bool, real: float, fake: float) -> float:
    """d loss / d x_i."""
    t = real if target_is_real else fake
    if mode == "vanilla":
        return (_sigmoid(v) - t) / n
    if mode == "lsgan":
        return 2 * (v - t) / n
    if mode == "wgangp":
        return (-1.0 if target_is_real else 1.0) / n
    if mode == "hinge":  # zero beyond the margin (X holds no point exactly on it)
        return (-float(v < 1) if target_is_real else float(v > -1)) / n
    raise KeyError(mode)


KNOWN_MODES = ("vanilla", "lsgan", "wgangp", "hinge")


def _skip_unknown_mode(mode: str) -> None:
    if mode not in KNOWN_MODES:
        pytest.skip(f"GAN mode {mode!r} has no hand-computed expectation in tests/models/losses/test_losses.py")


# ---------------------------------------------------------------------------------------------- GANLoss


@pytest.mark.parametrize("labels", [(1.0, 0.0), (0.9, 0.0), (0.9, 0.2)], ids=["plain", "smooth_real", "smooth_both"])
@pytest.mark.parametrize("target_is_real", [True, False], ids=["real", "fake"])
@pytest.mark.parametrize("mode", GAN_MODES.names())
def test_gan_loss_matches_hand_computation(mode: str, target_is_real: bool, labels) -> None:
    _skip_unknown_mode(mode)
    real, fake = labels
    x = torch.tensor(X, dtype=torch.float64).reshape(1, 1, 2, 3).requires_grad_(True)
    crit = GANLoss(mode, target_real_label=real, target_fake_label=fake)
    loss = crit(x, target_is_real)
    assert loss.shape == ()
    expected = _hand_loss(mode, X, target_is_real, real, fake)
    assert loss.item() == pytest.approx(expected, rel=1e-6, abs=1e-6)
    loss.backward()
    grad = [_hand_grad(mode, v, len(X), target_is_real, real, fake) for v in X]
    torch.testing.assert_close(x.grad.flatten(), torch.tensor(grad, dtype=torch.float64))


@pytest.mark.parametrize("mode", ["vanilla", "lsgan"])
def test_label_smoothing_changes_the_real_target(mode: str) -> None:
    x = torch.tensor(X).reshape(2, 3)
    plain, smooth = GANLoss(mode)(x, True).item(), GANLoss(mode, target_real_label=0.9)(x, True).item()
    assert plain != pytest.approx(smooth, rel=1e-4)
    assert smooth == pytest.approx(_hand_loss(mode, X, True, 0.9, 0.0), rel=1e-5)
    # the fake target is untouched by the real label
    assert GANLoss(mode, target_real_label=0.9)(x, False).item() == pytest.approx(GANLoss(mode)(x, False).item())


def test_wgangp_ignores_labels() -> None:
    x = torch.tensor(X)
    assert GANLoss("wgangp", 0.9, 0.3)(x, True).item() == pytest.approx(-sum(X) / len(X))
    assert GANLoss("wgangp", 0.9, 0.3)(x, False).item() == pytest.approx(sum(X) / len(X))


def test_gan_loss_labels_are_buffers_and_module_moves() -> None:
    crit = GANLoss("lsgan", 0.9, 0.1)
    buffers = dict(crit.named_buffers())
    assert set(buffers) == {"real_label", "fake_label"}
    assert buffers["real_label"].item() == pytest.approx(0.9)
    assert crit.to(torch.float64)(torch.zeros(3, dtype=torch.float64), True).item() == pytest.approx(0.81)


def test_gan_loss_unknown_mode() -> None:
    with pytest.raises(KeyError) as info:
        GANLoss("hinge_nope")
    assert all(name in str(info.value) for name in GAN_MODES.names())


def test_vanilla_is_stable_for_large_logits() -> None:
    x = torch.tensor([100.0, -100.0])
    loss_real = GANLoss("vanilla")(x, True)
    assert torch.isfinite(loss_real)
    assert loss_real.item() == pytest.approx(50.0, rel=1e-5)  # (0 + 100) / 2: logits, not probabilities


# ---------------------------------------------------------------------------------------------- gradient penalty


class LinearCritic(nn.Module):
    """D(x) = sum(w * x) per sample: its input gradient is w everywhere."""

    def __init__(self, shape, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(*shape, generator=g, dtype=torch.float64) * 0.05)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1)  # (N,)


class QuadraticCritic(nn.Module):
    """D(x) = 0.5 * |x|^2 per sample: its input gradient is x itself, revealing where x was sampled."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x.flatten(1).square().sum(1)


def _real_fake(n: int = 3):
    g = torch.Generator().manual_seed(1)
    real = torch.rand(n, 2, 4, 4, generator=g, dtype=torch.float64) * 2 - 1
    fake = torch.rand(n, 2, 4, 4, generator=g, dtype=torch.float64) * 2 - 1
    return real, fake


@pytest.mark.parametrize("constant", [1.0, 0.5])
@pytest.mark.parametrize("gp_type", ["real", "fake", "mixed"])
def test_gradient_penalty_linear_critic(gp_type: str, constant: float) -> None:
    real, fake = _real_fake()
    critic = LinearCritic((2, 4, 4))
    penalty, grads = gradient_penalty(critic, real, fake, type=gp_type, constant=constant, lambda_gp=10.0)
    w_norm = math.sqrt(sum(v * v for v in critic.w.detach().flatten().tolist()))
    assert w_norm != pytest.approx(constant, abs=0.1)  # the penalty is not trivially ~0
    assert penalty.item() == pytest.approx(10.0 * (w_norm - constant) ** 2, rel=1e-9)
    assert grads.shape == (3, 32)
    torch.testing.assert_close(grads, critic.w.detach().flatten().expand(3, 32))


def test_gradient_penalty_is_differentiable_wrt_critic() -> None:
    """d/dw [lambda (|w| - 1)^2] = 2 lambda (|w| - 1) w / |w| for the linear critic."""
    real, fake = _real_fake()
    critic = LinearCritic((2, 4, 4))
    penalty, _ = gradient_penalty(critic, real, fake, type="mixed", lambda_gp=10.0)
    penalty.backward()
    w = critic.w.detach()
    norm = w.norm()
    torch.testing.assert_close(critic.w.grad, 2 * 10.0 * (norm - 1) * w / norm)
    assert critic.w.grad.abs().sum() > 0


def test_gradient_penalty_backward_through_conv_critic() -> None:
    torch.manual_seed(0)
    netD = networks.define_D(3, 4, "basic", 3, "none", init_type="normal", init_gain=0.5)
    real, fake = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    penalty, grads = gradient_penalty(netD, real, fake, type="mixed")
    assert penalty.item() > 0 and grads.shape == (2, 3 * 32 * 32)
    penalty.backward()
    weights = [m.weight for m in netD.modules() if isinstance(m, nn.Conv2d)]
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in weights)


@pytest.mark.parametrize("gp_type", ["real", "fake", "mixed"])
def test_gradient_penalty_samples_where_asked(gp_type: str) -> None:
    real, fake = _real_fake(4)
    torch.manual_seed(0)
    penalty, grads = gradient_penalty(QuadraticCritic(), real, fake, type=gp_type, lambda_gp=2.0)
    r, f = real.flatten(1), fake.flatten(1)
    if gp_type == "real":
        torch.testing.assert_close(grads, r)
    elif gp_type == "fake":
        torch.testing.assert_close(grads, f)
    else:  # each row is alpha_i * real_i + (1 - alpha_i) * fake_i with one alpha_i in [0, 1] per sample
        d = r - f
        alpha = ((grads - f) * d).sum(1) / (d * d).sum(1)
        assert ((alpha >= 0) & (alpha <= 1)).all()
        torch.testing.assert_close(grads, f + alpha[:, None] * d)
        assert alpha.unique().numel() == 4  # sampled per sample, not one alpha for the batch
    expected = 2.0 * ((grads.norm(dim=1) - 1.0) ** 2).mean()
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-9)


def test_gradient_penalty_zero_weight() -> None:
    real, fake = _real_fake()
    penalty, grads = gradient_penalty(LinearCritic((2, 4, 4)), real, fake, lambda_gp=0.0)
    assert grads is None
    assert float(penalty) == 0.0


def test_gradient_penalty_unknown_type() -> None:
    real, fake = _real_fake()
    with pytest.raises(KeyError, match="mixed"):
        gradient_penalty(LinearCritic((2, 4, 4)), real, fake, type="halfway")


# ---------------------------------------------------------------------------------------------- schedulers


def _sched_opt(**overrides) -> types.SimpleNamespace:
    values = dict(lr_policy="linear", n_epochs=3, n_epochs_decay=4, epoch_count=1, lr_decay_iters=2, lr=0.5,
                  lr_gamma=0.1, lr_milestones=(2, 5))
    values.update(overrides)
    return types.SimpleNamespace(**values)


def _lrs(opt, n_steps: int, metric: Callable[[int], float] = lambda k: 1.0) -> List[float]:
    """lr in use for epoch 1, 2, ..., n_steps + 1 (the scheduler steps once after each epoch)."""
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=opt.lr)
    scheduler = networks.get_scheduler(optimizer, opt)
    lrs = [optimizer.param_groups[0]["lr"]]
    for k in range(n_steps):
        optimizer.step()
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(metric(k))
        else:
            scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    return lrs


def _expected_lrs(policy: str, opt, n: int) -> List[float]:
    lr = opt.lr
    if policy == "linear":
        out = []
        for k in range(n + 1):
            epoch = opt.epoch_count + k
            out.append(lr if epoch <= opt.n_epochs else lr * (1 - (epoch - opt.n_epochs) / (opt.n_epochs_decay + 1)))
        return out
    if policy == "step":
        return [lr * opt.lr_gamma ** (k // opt.lr_decay_iters) for k in range(n + 1)]
    if policy == "multistep":  # epoch k + 1 runs after k scheduler steps
        return [lr * opt.lr_gamma ** sum(k >= m for m in opt.lr_milestones) for k in range(n + 1)]
    if policy == "cosine":
        return [0.5 * lr * (1 + math.cos(math.pi * k / opt.n_epochs)) for k in range(n + 1)]
    if policy == "plateau":  # constant metric: 1 good epoch then 6 bad ones (> patience 5) -> x0.2, repeat
        out, cur, bad = [lr], lr, -1
        for _ in range(n):
            bad += 1
            if bad > 5:
                cur, bad = cur * 0.2, 0
            out.append(cur)
        return out
    raise KeyError(policy)


@pytest.mark.parametrize("policy", LR_POLICIES.names())
def test_scheduler_follows_its_formula(policy: str) -> None:
    if policy not in ("linear", "step", "multistep", "cosine", "plateau"):
        pytest.skip(f"lr policy {policy!r} has no expected schedule in tests/models/losses/test_losses.py")
    opt = _sched_opt(lr_policy=policy)
    n = {"linear": opt.n_epochs + opt.n_epochs_decay - 1, "step": 7, "multistep": 9, "cosine": opt.n_epochs,
         "plateau": 14}[policy]
    got = _lrs(opt, n)
    expected = _expected_lrs(policy, opt, n)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert len(set(round(v, 12) for v in got)) > 1, "the learning rate never changed"


def test_linear_policy_hand_values() -> None:
    opt = _sched_opt(n_epochs=3, n_epochs_decay=4, lr=0.5)
    lrs = _lrs(opt, 6)  # epochs 1..7
    assert lrs == pytest.approx([0.5, 0.5, 0.5, 0.4, 0.3, 0.2, 0.1])
    assert lrs[-1] == pytest.approx(opt.lr / (opt.n_epochs_decay + 1))  # last epoch: lr / (n_epochs_decay + 1)


def test_linear_policy_resumes_at_epoch_count() -> None:
    opt = _sched_opt(n_epochs=3, n_epochs_decay=4, lr=0.5, epoch_count=5)  # --continue_train from epoch 5
    assert _lrs(opt, 2) == pytest.approx([0.3, 0.2, 0.1])


def test_step_policy_hand_values() -> None:
    assert _lrs(_sched_opt(lr_policy="step", lr_decay_iters=3, lr=1.0), 7) == pytest.approx(
        [1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.01, 0.01])


def test_multistep_policy_hand_values() -> None:
    """ESRGAN's schedule: halve after the given epochs."""
    opt = _sched_opt(lr_policy="multistep", lr_milestones=(2, 3, 5), lr_gamma=0.5, lr=1.0)
    assert _lrs(opt, 6) == pytest.approx([1.0, 1.0, 0.5, 0.25, 0.25, 0.125, 0.125])


def test_plateau_policy() -> None:
    opt = _sched_opt(lr_policy="plateau", lr=1.0)
    constant = _lrs(opt, 14)
    assert constant == pytest.approx([1.0] * 7 + [0.2] * 6 + [0.04] * 2)
    improving = _lrs(opt, 14, metric=lambda k: 1.0 * 0.9**k)  # better by 10% every epoch: never reduced
    assert improving == pytest.approx([1.0] * 15)


def test_cosine_policy_ends_at_zero() -> None:
    lrs = _lrs(_sched_opt(lr_policy="cosine", n_epochs=4, lr=1.0), 4)
    assert lrs == pytest.approx([1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2, 0.0],
                                abs=1e-12)


def test_unknown_lr_policy() -> None:
    with pytest.raises(KeyError) as info:
        _lrs(_sched_opt(lr_policy="exponential_nope"), 1)
    assert all(name in str(info.value) for name in LR_POLICIES.names())


# ---------------------------------------------------------------------------------------------- image pool


def _images(n: int, start: float = 0.0) -> torch.Tensor:
    """n images, image i filled with start + i, so an output image tells which input it was."""
    return (start + torch.arange(n, dtype=torch.float32)).reshape(n, 1, 1, 1).expand(n, 3, 4, 4).clone()


def _ids(batch: torch.Tensor) -> List[float]:
    return [float(img[0, 0, 0]) for img in batch]


def test_pool_size_zero_is_passthrough() -> None:
    pool = ImagePool(0)
    x = _images(3).requires_grad_(True)
    assert pool.query(x) is x
    assert pool.images == []


def test_pool_fills_then_mixes() -> None:
    random.seed(0)
    pool = ImagePool(4)
    first = pool.query(_images(3, start=0))
    assert _ids(first) == [0, 1, 2]  # while filling, images come back unchanged
    second = pool.query(_images(3, start=10))
    assert _ids(second)[0] == 10  # fourth image still fills the pool
    assert len(pool.images) == 4
    seen = set(_ids(first)) | {10.0, 11.0, 12.0}
    from_pool = 0
    for step in range(50):
        batch = _images(3, start=100 + 10 * step)
        out = pool.query(batch)
        assert out.shape == batch.shape
        assert len(pool.images) == 4
        for fresh, got in zip(_ids(batch), _ids(out)):
            # either the new image, or one seen before (earlier images of this batch included)
            assert got == fresh or got in seen
            from_pool += got != fresh
            seen.add(fresh)
    assert 40 < from_pool < 110  # each image is swapped with probability 1/2: ~75 of 150


def test_pool_output_is_detached_and_history_is_not_aliased() -> None:
    pool = ImagePool(2)
    x = _images(2).requires_grad_(True)
    out = pool.query(x * 2)
    assert not out.requires_grad
    assert all(not img.requires_grad for img in pool.images)
    random.seed(1)
    for _ in range(20):
        out = pool.query(_images(2, start=50))
        out.fill_(-1)  # caller mutates what it got back
    assert all(float(img.min()) >= 0 for img in pool.images), "the pool handed out its own storage"


def test_pool_state_dict_round_trip() -> None:
    random.seed(2)
    pool = ImagePool(3)
    for step in range(4):
        pool.query(_images(2, start=10 * step))
    state = pool.state_dict()
    assert state["pool_size"] == 3 and len(state["images"]) == 3
    restored = ImagePool(0)
    restored.load_state_dict(state, torch.device("cpu"))
    assert restored.pool_size == 3
    assert all(torch.equal(a, b) for a, b in zip(pool.images, restored.images))
    random.seed(5)
    out_a = pool.query(_images(3, start=100))
    random.seed(5)
    out_b = restored.query(_images(3, start=100))
    assert torch.equal(out_a, out_b)
