"""ModelDescriptor: a loaded network plus what callers need to know to run it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn


@dataclass(frozen=True)
class ModelDescriptor:
    family: str  # "A2F", "HPINet", "RNAN", "CRAN" or "Bicubic"
    variant: str  # "SD", "M", "paper", ...
    scale: int
    params: int
    input_range: float  # range the weights were trained on; the module itself always takes [0, 1]
    size_multiple: int  # input H, W multiple the module needs (1: it pads internally)
    tiling_safe: bool  # False: global operations, tiles differ slightly from a whole-image pass
    tile_overlap: int  # LR pixels of overlap the tiler should use on each side
    source: str  # file path, "bundled:<file>", "untrained" or "builtin"
    shared_pooling: bool = False  # tiles share image-wide pooled values (engine.archs.pooling)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    model: nn.Module = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    @property
    def name(self) -> str:
        return self.family if self.family == "Bicubic" else f"{self.family}-{self.variant}"

    @property
    def label(self) -> str:
        return f"{self.name} x{self.scale}"
