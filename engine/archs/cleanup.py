"""The clean-up network: a 1x restoration network that removes JPEG artifacts and sensor noise
from an LR image before any upscaler sees it (ours, not from a paper).

Built from A2F's blocks (engine.archs.a2f, Wang et al. 2020): the same head, WDSR-A blocks with
attentive auxiliary features and sub-pixel tail, at scale 1, so the tail and the input skip are
3x3 convolutions at the input's resolution. Lighter than A2F-SD (narrower blocks) so that it adds
at most half of A2F-SD x4's time on a photo. Its input skip starts as the identity and its tail at
zero: an untrained clean-up returns its input, and training learns only the correction.

The upscalers were trained on clean LR images (MATLAB bicubic of clean photos); this network maps a
photo's LR image back towards that. It is registered beside the four families as a restorer
(registry.RESTORERS): loaded, tiled, exported and cached like them, never offered as an upscaler.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.archs.a2f import A2F
from engine.archs.base import Family, MemoryCost, StateDict, build_from, detect_exact

SCALES = (1,)
# variant -> (n_feats, n_blocks, block_feats)
_VARIANTS: dict[str, tuple[int, int, int]] = {"S": (16, 6, 64)}


@dataclass(frozen=True)
class CleanupConfig:
    variant: str
    scale: int
    n_feats: int
    n_blocks: int
    block_feats: int


class Cleanup(A2F):
    """A2F at scale 1, starting as the identity."""

    def __init__(self, *, scale: int, n_feats: int, n_blocks: int, block_feats: int) -> None:
        super().__init__(scale=scale, n_feats=n_feats, n_blocks=n_blocks, block_feats=block_feats)
        skip, tail = self.skip[0], self.tail[0]
        if skip.weight_v.is_meta:
            return
        with torch.no_grad():
            identity = torch.zeros_like(skip.weight_v)
            for c in range(3):
                identity[c, c, 1, 1] = 1.0
            skip.weight_v.copy_(identity)
            skip.weight_g.fill_(1.0)
            skip.bias.zero_()
            tail.weight_g.zero_()
            tail.bias.zero_()


def config(variant: str, scale: int) -> CleanupConfig:
    if variant not in _VARIANTS:
        raise ValueError(f"unknown clean-up variant {variant!r}; known: {tuple(_VARIANTS)}")
    if scale not in SCALES:
        raise ValueError(f"the clean-up network works at scale 1, not {scale}")
    n_feats, n_blocks, block_feats = _VARIANTS[variant]
    return CleanupConfig(variant, scale, n_feats, n_blocks, block_feats)


def build(cfg: CleanupConfig) -> Cleanup:
    return build_from(Cleanup, cfg)


def _read_config(sd: StateDict) -> CleanupConfig | None:
    head, tail = sd.get("head.0.weight_v"), sd.get("tail.0.weight_v")
    if head is None or tail is None or head.ndim != 4 or tail.ndim != 4 or tail.shape[0] != 3:
        return None
    n_feats = int(head.shape[0])
    n_blocks = 0
    while f"body.{n_blocks}.body.0.weight_v" in sd:
        n_blocks += 1
    block_feats = int(sd["body.0.body.0.weight_v"].shape[0])
    found = (n_feats, n_blocks, block_feats)
    variant = next((v for v, shape in _VARIANTS.items() if shape == found), None)
    return None if variant is None else config(variant, 1)


def detect(state_dict: StateDict) -> CleanupConfig | None:
    """The clean-up variant whose module has exactly these keys and shapes, or None."""
    return detect_exact(_read_config, build, state_dict)


FAMILY = Family(
    name="Cleanup",
    summary="Removes JPEG artifacts and noise before upscaling",
    variants=tuple(_VARIANTS),
    config=config,
    build=build,
    detect=detect,
    input_range=255.0,
    tiling_safe=False,  # A2F's channel attention pools the whole feature map
    # context a tile adds in front of the upscaler's own (engine.inference.cascade): a JPEG
    # block's width; the tiled cascade stays within the tiling-fidelity bound (test_cleanup)
    tile_overlap=8,
    # A2F-SD x4's working memory per LR pixel, an upper bound for the narrower blocks
    memory=MemoryCost({"S": {1: 2000}}),
    shared_pooling=True,
    scales=SCALES,
    own_variants={"S": "a 1x network from A2F's blocks: 16 features, 6 blocks of 64"},
)
