"""The clean-up network: a 1x restoration network that removes JPEG artifacts and sensor noise
from an LR image before any upscaler sees it (ours, not from a paper).

Built from A2F's blocks (engine.archs.a2f, Wang et al. 2020): the same head, WDSR-A blocks with
attentive auxiliary features and sub-pixel tail, at scale 1, so the tail and the input skip are
3x3 convolutions at the input's resolution. Variant M first folds each 2x2 pixels into 12 channels
(pixel unshuffle, as FFDNet does for denoising) and unfolds them at the end: its blocks, as wide
as A2F's own (32 features, 128 inside), run on a quarter of the pixels, so that for the work of
variant S (16 features at full resolution) it has four times the weights and sees twice as far,
past a JPEG block's edges. Either adds at most half of A2F-SD x4's time on a photo. Its input
skip starts as the identity and its tail at zero: an untrained clean-up returns its input, and
training learns only the correction.

The upscalers were trained on clean LR images (MATLAB bicubic of clean photos); this network maps a
photo's LR image back towards that. It is registered beside the four families as a restorer
(registry.RESTORERS): loaded, tiled, exported and cached like them, never offered as an upscaler.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.archs.a2f import A2F, WNConv2d
from engine.archs.base import Family, MemoryCost, StateDict, build_from, detect_exact

SCALES = (1,)
# variant -> (n_feats, n_blocks, block_feats, unshuffle)
_VARIANTS: dict[str, tuple[int, int, int, int]] = {"S": (16, 6, 64, 1), "M": (32, 6, 128, 2)}


@dataclass(frozen=True)
class CleanupConfig:
    variant: str
    scale: int
    n_feats: int
    n_blocks: int
    block_feats: int
    unshuffle: int = 1


class Cleanup(A2F):
    """A2F at scale 1 (on 2x2-folded pixels when unshuffle is 2), starting as the identity."""

    def __init__(
        self, *, scale: int, n_feats: int, n_blocks: int, block_feats: int, unshuffle: int = 1
    ) -> None:
        if scale != 1 or unshuffle < 1:
            raise ValueError("the clean-up network works at scale 1")
        # A2F's tail at scale `unshuffle` unfolds the features back to full resolution
        super().__init__(
            scale=unshuffle, n_feats=n_feats, n_blocks=n_blocks, block_feats=block_feats
        )
        self.scale, self.unshuffle = 1, unshuffle
        folded = 3 * unshuffle * unshuffle
        if unshuffle > 1:
            fold = nn.PixelUnshuffle(unshuffle)
            self.head = nn.Sequential(fold, WNConv2d(in_channels=folded, out_channels=n_feats))
            self.skip = nn.Sequential(
                fold,
                WNConv2d(in_channels=folded, out_channels=folded),
                nn.PixelShuffle(unshuffle),
            )
        skip, tail = self.skip[-2], self.tail[0]
        if skip.weight_v.is_meta:
            return
        with torch.no_grad():
            identity = torch.zeros_like(skip.weight_v)
            for c in range(folded):
                identity[c, c, 1, 1] = 1.0
            skip.weight_v.copy_(identity)
            skip.weight_g.fill_(1.0)
            skip.bias.zero_()
            tail.weight_g.zero_()
            tail.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.unshuffle
        h, w = x.shape[-2:]
        if u == 1 or (h % u == 0 and w % u == 0):
            return super().forward(x)
        # an odd side: one replicated row or column, cut off again
        padded = F.pad(x, (0, -w % u, 0, -h % u), mode="replicate")
        return super().forward(padded)[..., :h, :w].contiguous()


def config(variant: str, scale: int) -> CleanupConfig:
    if variant not in _VARIANTS:
        raise ValueError(f"unknown clean-up variant {variant!r}; known: {tuple(_VARIANTS)}")
    if scale not in SCALES:
        raise ValueError(f"the clean-up network works at scale 1, not {scale}")
    return CleanupConfig(variant, scale, *_VARIANTS[variant])


def build(cfg: CleanupConfig) -> Cleanup:
    return build_from(Cleanup, cfg)


def _read_config(sd: StateDict) -> CleanupConfig | None:
    head = sd.get("head.0.weight_v", sd.get("head.1.weight_v"))
    tail = sd.get("tail.0.weight_v")
    if head is None or tail is None or head.ndim != 4 or tail.ndim != 4:
        return None
    unshuffle = next((u for u in (1, 2) if tail.shape[0] == 3 * u * u), None)
    if unshuffle is None or "body.0.body.0.weight_v" not in sd:
        return None
    n_feats = int(head.shape[0])
    n_blocks = 0
    while f"body.{n_blocks}.body.0.weight_v" in sd:
        n_blocks += 1
    block_feats = int(sd["body.0.body.0.weight_v"].shape[0])
    found = (n_feats, n_blocks, block_feats, unshuffle)
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
    memory=MemoryCost({"S": {1: 2000}, "M": {1: 2000}}),
    shared_pooling=True,
    scales=SCALES,
    own_variants={
        "S": "a 1x network from A2F's blocks: 16 features, 6 blocks of 64",
        "M": "a 1x network from A2F's blocks on 2x2-folded pixels: 32 features, 6 blocks of 128",
    },
)
