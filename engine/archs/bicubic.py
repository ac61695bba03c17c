"""MATLAB bicubic upscaling as a parameter-free module: the baseline for every network."""

from __future__ import annotations

import torch
from torch import nn

from engine.archs.base import MemoryCost
from engine.imaging.resize import imresize


class Bicubic(nn.Module):
    def __init__(self, *, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imresize(x, self.scale)


# Its output and two resize passes, counted by hand: 4 float32 images of the output's size.
MEMORY_COST = MemoryCost({"MATLAB": {s: 4 * 4 * 3 * s * s for s in (2, 3, 4)}})
