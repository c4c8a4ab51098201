"""Training machinery shared by the models: what `BaseModel` and train.py use around the networks.

    acceleration  --amp, --channels_last, --compile: precision, memory layout, compilation (also at inference)
    checkpoints   network files: saved on the CPU atomically, loaded weights-only and strictly
    ema           the generators' exponential moving average (--ema_decay)
    image_pool    CycleGAN's history of generated images
    schedulers    learning-rate policies (--lr_policy)
    train_state   the resume file: optimisers, schedulers, RNG and position, saved with the networks

The faces below are what models use; each module's docstring says why it works as it does.
"""
from .acceleration import Acceleration
from .image_pool import ImagePool
from .schedulers import LR_POLICIES, get_scheduler

__all__ = ["Acceleration", "ImagePool", "LR_POLICIES", "get_scheduler"]
