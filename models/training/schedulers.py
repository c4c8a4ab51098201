"""Learning-rate policies (`--lr_policy`). Each builder maps (optimizer, opt) -> scheduler.

The scheduler is stepped once per epoch, after the epoch (`BaseModel.update_learning_rate`). A registration's
`reads` names the schedule options (SCHEDULE_OPTIONS) its policy uses: options/ refuses the others when they are
given, since the run would ignore them.
"""
from __future__ import annotations

from typing import Any, Callable, Tuple

from torch.optim import Optimizer, lr_scheduler

from util.registry import Registry

SchedulerBuilder = Callable[[Optimizer, Any], Any]
SCHEDULE_OPTIONS = ("lr_decay_iters", "lr_gamma", "lr_milestones")
LR_POLICIES: Registry[SchedulerBuilder] = Registry("learning-rate policy (--lr_policy)")


@LR_POLICIES.register("linear")
def _linear(optimizer: Optimizer, opt: Any) -> lr_scheduler.LambdaLR:
    """Constant for `n_epochs`, then linearly to zero over `n_epochs_decay` (the CycleGAN schedule)."""

    def factor(epoch: int) -> float:
        return 1.0 - max(0, epoch + opt.epoch_count - opt.n_epochs) / float(opt.n_epochs_decay + 1)

    return lr_scheduler.LambdaLR(optimizer, lr_lambda=factor)


@LR_POLICIES.register("step", reads=("lr_decay_iters", "lr_gamma"))
def _step(optimizer: Optimizer, opt: Any) -> lr_scheduler.StepLR:
    """Multiply by `lr_gamma` (0.1) every `lr_decay_iters` epochs."""
    return lr_scheduler.StepLR(optimizer, step_size=opt.lr_decay_iters, gamma=opt.lr_gamma)


@LR_POLICIES.register("multistep", reads=("lr_milestones", "lr_gamma"))
def _multistep(optimizer: Optimizer, opt: Any) -> lr_scheduler.MultiStepLR:
    """Multiply by `lr_gamma` after each epoch in `lr_milestones` (ESRGAN's and Real-ESRGAN's schedules)."""
    return lr_scheduler.MultiStepLR(optimizer, milestones=list(opt.lr_milestones), gamma=opt.lr_gamma)


@LR_POLICIES.register("plateau")
def _plateau(optimizer: Optimizer, opt: Any) -> lr_scheduler.ReduceLROnPlateau:
    """Multiply by 0.2 when the model's `metric` stops improving for 5 epochs."""
    return lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.2, threshold=0.01, patience=5)


@LR_POLICIES.register("cosine")
def _cosine(optimizer: Optimizer, opt: Any) -> lr_scheduler.CosineAnnealingLR:
    """Cosine annealing to zero over `n_epochs`."""
    return lr_scheduler.CosineAnnealingLR(optimizer, T_max=opt.n_epochs, eta_min=0)


def policies_reading(option: str) -> Tuple[str, ...]:
    """The policies that use schedule option `option` (one of SCHEDULE_OPTIONS)."""
    return tuple(name for name in LR_POLICIES.names() if option in LR_POLICIES.meta(name).get("reads", ()))


def get_scheduler(optimizer: Optimizer, opt: Any) -> Any:
    """The scheduler for `opt.lr_policy`; unknown names raise KeyError listing the valid ones."""
    return LR_POLICIES.get(opt.lr_policy)(optimizer, opt)
