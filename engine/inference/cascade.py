"""The clean-up network in front of an upscaler, as one network the tiler runs.

A tile goes through the clean-up (engine.archs.cleanup, 1x) and then the upscaler in one forward:
no cleaned full-size image is ever made, and the streaming, band-by-band output, the backends
(OpenVINO traces the pair as one graph) and the x8 ensemble work as they do for the upscaler
alone. The tile's context is the sum of both networks' overlaps, so a tile's core sees as much
cleaned context as the upscaler alone would see of its input. Both pool over the image at the LR
size, so tiles that share pooled values share both networks' (engine.archs.pooling matches the
calls by their order within one forward).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from engine.descriptor import ModelDescriptor


class Cascade(nn.Module):
    """clean-up, clamped to [0, 1] as an image would be, then the upscaler."""

    def __init__(self, cleanup: nn.Module, upscaler: nn.Module) -> None:
        super().__init__()
        self.cleanup, self.upscaler = cleanup, upscaler

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upscaler(self.cleanup(x).clamp(0, 1))


def with_cleanup(upscaler: ModelDescriptor, cleanup: ModelDescriptor) -> ModelDescriptor:
    """The upscaler's descriptor running `cleanup` first (same family, variant and scale)."""
    if cleanup.scale != 1:
        raise ValueError(f"{cleanup.label} is not a 1x clean-up network")
    if upscaler.model is None or cleanup.model is None:
        raise ValueError("both networks must be loaded")
    metadata = dict(upscaler.metadata) | {"cleanup": cleanup.source}
    return dataclasses.replace(
        upscaler,
        model=Cascade(cleanup.model.eval(), upscaler.model.eval()),
        params=upscaler.params + cleanup.params,
        tiling_safe=upscaler.tiling_safe and cleanup.tiling_safe,
        tile_overlap=upscaler.tile_overlap + cleanup.tile_overlap,
        shared_pooling=upscaler.shared_pooling and cleanup.shared_pooling,
        metadata=metadata,
    )
