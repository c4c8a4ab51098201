"""History of generated images for the discriminator (Shrivastava et al. 2017), as CycleGAN uses it.

Feeding D a mix of current and older fakes damps oscillation between G and D.
"""
from __future__ import annotations

import random
from typing import List

import torch


class ImagePool:
    """Keeps up to `pool_size` past fakes; `query` returns a batch, each image fresh or swapped with a
    stored one with probability 1/2. `pool_size == 0` returns the input unchanged."""

    def __init__(self, pool_size: int):
        self.pool_size = pool_size
        self.images: List[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H, W), detached."""
        if self.pool_size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)  # (1, C, H, W)
            if len(self.images) < self.pool_size:
                self.images.append(image)
                out.append(image)
            elif random.uniform(0, 1) > 0.5:
                idx = random.randint(0, self.pool_size - 1)
                out.append(self.images[idx].clone())
                self.images[idx] = image
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        return {"pool_size": self.pool_size, "images": [t.cpu() for t in self.images]}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.pool_size = int(state["pool_size"])
        self.images = [t.to(device) for t in state["images"]]
