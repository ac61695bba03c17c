"""MATLAB bicubic upscaling as a parameter-free module: the baseline for every network."""

from __future__ import annotations

import torch
from torch import nn

from engine.imaging.resize import imresize


class Bicubic(nn.Module):
    def __init__(self, *, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imresize(x, self.scale)
