"""What every network family gives the registry.

The tensor contract, stated once for all of engine/: a network takes float32 RGB in [0, 1], shape
(N, 3, H, W) with any H, W >= 1, and returns (N, 3, H * scale, W * scale) in the same range (not
clamped). A network whose checkpoints want 0..255 or a mean shift does that inside its own module,
and one that needs a size multiple or a minimum size pads internally and crops back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import torch
from torch import nn


class ArchConfig(Protocol):
    """A frozen dataclass per family; these two fields are common to all of them."""

    variant: str
    scale: int


StateDict = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class MemoryCost:
    """Peak working memory of one float32 forward on the CPU, in bytes per LR input pixel, by
    variant and scale: what the automatic tile size (engine.inference.tiling) budgets with.
    Measured by `.venv/bin/python bench/bench_tiling.py --calibrate`: peak RSS growth of forwards
    at two sizes after a warm-up (random weights, torch 2.13), the larger of the two per-pixel
    values plus 15%; each family's entry says which sizes (A2F: 192 and 384, two forwards each
    with the Upscaler's malloc tuning, which keeps freed heap; the others: 96 and 192, one forward,
    untuned)."""

    by_variant: Mapping[str, Mapping[int, int]]
    # bytes per LR pixel that grow with every LR pixel of the tile (a network whose work is
    # quadratic in the tile, e.g. HPINet's patch matching); 0 for the others
    per_tile_pixel: float = 0.0

    def bytes_per_lr_pixel(self, variant: str, scale: int, pixels: int = 0) -> float | None:
        """For a tile of `pixels` LR pixels; None for a variant not calibrated. An uncalibrated
        scale of a calibrated variant costs as much as its costliest calibrated one."""
        by_scale = self.by_variant.get(variant)
        if not by_scale:
            return None
        return float(by_scale.get(scale, max(by_scale.values()))) + self.per_tile_pixel * pixels


@dataclass(frozen=True)
class Family:
    name: str
    variants: tuple[str, ...]
    config: Callable[[str, int], Any]  # (variant, scale) -> ArchConfig; ValueError if unknown
    build: Callable[[Any], nn.Module]  # ArchConfig -> module with random init
    detect: Callable[[StateDict], Any | None]  # state dict -> ArchConfig, or None if not ours
    input_range: float  # the range the authors' checkpoints were trained on (1.0 or 255.0)
    tiling_safe: bool  # False when the network has image-global operations (pooling, matching)
    tile_overlap: int  # LR pixels of overlap the tiler should give each side of a tile
    memory: MemoryCost  # working memory of a forward, for the automatic tile size
    # True when every global operation is an engine.archs.pooling function, so that the tiles of
    # one image can share the image-wide values (two passes over the tiles)
    shared_pooling: bool = False
    scales: tuple[int, ...] = (2, 3, 4)
    # variants that are ours, not the paper's, and how they differ (shown in the model info)
    own_variants: Mapping[str, str] = field(default_factory=dict)
    # what the network is good for, in a photographer's words (one line, shown by the model picker),
    # and for the variants whose speed sets them apart, their own line. Speed words, from the
    # speed relative to A2F-SD (bench/bench_throughput.py, x4; BENCHMARKS.md): "fastest" 0.9x and
    # up, "medium speed" 0.4-0.9x, "slow on a CPU" 0.1-0.4x, "very slow without a GPU" below 0.1x
    summary: str = ""
    variant_summaries: Mapping[str, str] = field(default_factory=dict)
    # whether torch.export traces it into one graph (engine.inference.graph) that OpenVINO and
    # ONNX can run, and whether that graph can take any height and width (else one per shape)
    static_graph: bool = True
    dynamic_graph: bool = True

    def summary_of(self, variant: str) -> str:
        """What this variant is good for, in one line."""
        return self.variant_summaries.get(variant, self.summary)


def pad_to_multiple(
    x: torch.Tensor, multiple: int, minimum: int = 1
) -> tuple[torch.Tensor, int, int]:
    """Reflect-pad (replicate where reflection is impossible) bottom/right so that H and W are
    multiples of `multiple` and at least `minimum`.

    Returns the padded tensor and the original H, W."""
    h, w = x.shape[-2:]
    th = max(minimum, -(-h // multiple) * multiple)
    tw = max(minimum, -(-w // multiple) * multiple)
    if (th, tw) == (h, w):
        return x, h, w
    ph, pw = th - h, tw - w
    mode = "reflect" if ph < h and pw < w else "replicate"
    return nn.functional.pad(x, (0, pw, 0, ph), mode=mode), h, w


def count_indexed(state_dict: StateDict, pattern: str) -> int:
    """How many consecutive i have `pattern.format(i)` as a key (e.g. "body.{}.conv.weight")."""
    n = 0
    while pattern.format(n) in state_dict:
        n += 1
    return n


def build_from(cls: Callable[..., nn.Module], cfg: Any) -> nn.Module:
    """cls(**fields of cfg except its variant name): the configs mirror the modules' arguments."""
    return cls(**{k: v for k, v in asdict(cfg).items() if k != "variant"})


def detect_exact(
    read_config: Callable[[StateDict], Any | None],
    build: Callable[[Any], nn.Module],
    state_dict: StateDict,
) -> Any | None:
    """The config read from a state dict, if a module built from it (on the meta device: shapes
    only, no memory) has exactly the same keys and shapes; None for anything else."""
    try:
        cfg = read_config(state_dict)
        if cfg is None:
            return None
        with torch.device("meta"):
            expected = build(cfg).state_dict()
    except (KeyError, AttributeError, IndexError, TypeError, ValueError, RuntimeError):
        return None
    if set(expected) != set(state_dict):
        return None
    if any(tuple(state_dict[k].shape) != tuple(v.shape) for k, v in expected.items()):
        return None
    return cfg
