"""RNAN: Residual Neuron Attention Network (Ai et al.), not the 2019 residual non-local one.

Parameter counts (sum of p.numel()): paper 17,135,557 (x2), 17,320,197 (x3), 17,283,269 (x4);
light 2,333,047 (x2), 2,517,687 (x3), 2,480,759 (x4). Paper Table 2: 17.30M.
"paper": C=64, G=10, B=20, M=1, N=2, r=16; "light" (CPU): C=64, G=4, B=6, M=1, N=2, r=16;
"tiny" (the bundled weights, trained on a 2-core CPU): C=32, G=2, B=4, M=1, N=2, r=16.

Choices where the paper is silent:
- Input mean shift: subtract the DIV2K RGB mean at the input and add it back at the output, as in
  EDSR [10] which the paper follows; it is a fixed, non-persistent buffer (no parameters, no keys).
- GC block placement: after the local residual, as eq. (5) writes it: F_g = GC(F_{g-1} + DF(...)).
- No activation between the 1x1 and 3x3 fusion convs (RDN style), none in the sub-pixel upsampler.
- Blocks per group: section 2.2 says 10, section 3.1 says 20; B = 20 is what gives Table 2's 17.30M.
- Reconstruction: one 3x3 conv C -> 3 ("three 3x3 kernels").
- GC block initialisation follows GCNet: its last 1x1 conv starts at zero, so each GC block starts
  as the identity.
No authors' checkpoints exist; the state-dict key names below are ours.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from engine.archs.base import Family, MemoryCost, StateDict, build_from, count_indexed, detect_exact
from engine.archs.pooling import softmax_pool

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


@dataclass(frozen=True)
class RNANConfig:
    variant: str
    scale: int
    channels: int = 64
    n_groups: int = 10  # G
    n_blocks: int = 20  # B, RNA blocks per group
    block_interval: int = 1  # M: every M-th block output is fused inside a group
    group_interval: int = 2  # N: every N-th group output is fused globally
    gc_reduction: int = 16  # r, GC bottleneck ratio


_VARIANTS: dict[str, RNANConfig] = {
    "paper": RNANConfig(variant="paper", scale=4),
    "light": RNANConfig(variant="light", scale=4, n_groups=4, n_blocks=6),
    "tiny": RNANConfig(variant="tiny", scale=4, channels=32, n_groups=2, n_blocks=4),
}
_SCALES = (2, 3, 4)


class NeuronAttention(nn.Module):
    """t * sigmoid(PW(ReLU(DW(t)))), DW a depthwise 3x3 conv, PW a 1x1 conv."""

    def __init__(self, *, channels: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.pw = nn.Conv2d(channels, channels, 1)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return t * torch.sigmoid(self.pw(torch.relu(self.dw(t))))


class RNABlock(nn.Module):
    """x + NA(conv2(ReLU(conv1(x))))."""

    def __init__(self, *, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.na = NeuronAttention(channels=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.na(self.conv2(torch.relu(self.conv1(x))))


class GlobalContext(nn.Module):
    """GCNet block: softmax attention pooling, bottleneck transform, broadcast add."""

    def __init__(self, *, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = channels // reduction
        self.key = nn.Conv2d(channels, 1, 1)
        self.down = nn.Conv2d(channels, hidden, 1)
        self.norm = nn.LayerNorm([hidden, 1, 1])
        self.up = nn.Conv2d(hidden, channels, 1)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        context = softmax_pool(x, self.key(x))  # (N, C, 1, 1)
        return x + self.up(torch.relu(self.norm(self.down(context))))


class GCRG(nn.Module):
    """B RNA blocks, fusion of every M-th block output (1x1 -> 3x3) + group input, then GC."""

    def __init__(self, *, channels: int, n_blocks: int, block_interval: int, gc_reduction: int):
        super().__init__()
        self.block_interval = block_interval
        self.blocks = nn.ModuleList(RNABlock(channels=channels) for _ in range(n_blocks))
        n_fused = n_blocks // block_interval
        self.fuse_reduce = nn.Conv2d(n_fused * channels, channels, 1)
        self.fuse_conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.gc = GlobalContext(channels=channels, reduction=gc_reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fused, h = [], x
        for i, block in enumerate(self.blocks, start=1):
            h = block(h)
            if i % self.block_interval == 0:
                fused.append(h)
        return self.gc(x + self.fuse_conv(self.fuse_reduce(torch.cat(fused, dim=1))))


def _upsampler(channels: int, scale: int) -> nn.Sequential:
    """Sub-pixel convolution: x2 and x3 one stage, x4 two x2 stages."""
    factors = {2: [2], 3: [3], 4: [2, 2]}[scale]
    layers: list[nn.Module] = []
    for f in factors:
        layers += [nn.Conv2d(channels, channels * f * f, 3, padding=1), nn.PixelShuffle(f)]
    return nn.Sequential(*layers)


class RNAN(nn.Module):
    def __init__(
        self,
        *,
        scale: int,
        channels: int = 64,
        n_groups: int = 10,
        n_blocks: int = 20,
        block_interval: int = 1,
        group_interval: int = 2,
        gc_reduction: int = 16,
    ) -> None:
        super().__init__()
        _check(scale, channels, n_groups, n_blocks, block_interval, group_interval, gc_reduction)
        self.scale = scale
        self.group_interval = group_interval
        self.register_buffer(
            "rgb_mean", torch.tensor(DIV2K_RGB_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.head = nn.Conv2d(3, channels, 3, padding=1)
        self.groups = nn.ModuleList(
            GCRG(
                channels=channels,
                n_blocks=n_blocks,
                block_interval=block_interval,
                gc_reduction=gc_reduction,
            )
            for _ in range(n_groups)
        )
        n_fused = n_groups // group_interval
        self.fuse_reduce = nn.Conv2d(n_fused * channels, channels, 1)
        self.fuse_conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.upsampler = _upsampler(channels, scale)
        self.tail = nn.Conv2d(channels, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f0 = self.head(x - self.rgb_mean)
        fused, h = [], f0
        for g, group in enumerate(self.groups, start=1):
            h = group(h)
            if g % self.group_interval == 0:
                fused.append(h)
        h = f0 + self.fuse_conv(self.fuse_reduce(torch.cat(fused, dim=1)))
        return self.tail(self.upsampler(h)) + self.rgb_mean


def _check(scale: int, channels: int, groups: int, blocks: int, m: int, n: int, r: int) -> None:
    if scale not in _SCALES:
        raise ValueError(f"RNAN scale must be one of {_SCALES}, got {scale}")
    if min(channels, groups, blocks, m, n, r) < 1:
        raise ValueError("RNAN hyper-parameters must be positive")
    if blocks % m or groups % n:
        raise ValueError(
            f"intervals must divide their counts: B={blocks}, M={m}, G={groups}, N={n}"
        )
    if channels % r:
        raise ValueError(f"GC reduction {r} must divide the channel count {channels}")


def config(variant: str, scale: int) -> RNANConfig:
    if variant not in _VARIANTS:
        raise ValueError(f"unknown RNAN variant {variant!r}; known: {tuple(_VARIANTS)}")
    if scale not in _SCALES:
        raise ValueError(f"RNAN scale must be one of {_SCALES}, got {scale}")
    return replace(_VARIANTS[variant], scale=scale)


def build(cfg: RNANConfig) -> RNAN:
    return build_from(RNAN, cfg)


def _read_config(sd: StateDict) -> RNANConfig | None:
    head, reduce_ = sd.get("head.weight"), sd.get("fuse_reduce.weight")
    block_reduce, gc_down = sd.get("groups.0.fuse_reduce.weight"), sd.get("groups.0.gc.down.weight")
    if any(t is None or t.ndim != 4 for t in (head, reduce_, block_reduce, gc_down)):
        return None
    channels = head.shape[0]
    groups = count_indexed(sd, "groups.{}.gc.key.weight")
    blocks = count_indexed(sd, "groups.0.blocks.{}.conv1.weight")
    n_fused_groups, rem_g = divmod(reduce_.shape[1], channels)
    n_fused_blocks, rem_b = divmod(block_reduce.shape[1], channels)
    hidden = gc_down.shape[0]
    if rem_g or rem_b or not (n_fused_groups and n_fused_blocks and hidden and blocks):
        return None
    if groups % n_fused_groups or blocks % n_fused_blocks or channels % hidden:
        return None
    ups = [
        sd[f"upsampler.{i}.weight"].shape[0] // channels
        for i in (0, 2, 4)
        if f"upsampler.{i}.weight" in sd
    ]
    scale = {(4,): 2, (9,): 3, (4, 4): 4}.get(tuple(ups))
    if scale is None:
        return None
    found = RNANConfig(
        variant="custom",
        scale=scale,
        channels=channels,
        n_groups=groups,
        n_blocks=blocks,
        block_interval=blocks // n_fused_blocks,
        group_interval=groups // n_fused_groups,
        gc_reduction=channels // hidden,
    )
    for name in _VARIANTS:
        if config(name, scale) == replace(found, variant=name):
            return replace(found, variant=name)
    return found


def detect(state_dict: StateDict) -> RNANConfig | None:
    """The config whose module has exactly these keys and shapes, or None."""
    return detect_exact(_read_config, build, state_dict)


FAMILY = Family(
    name="RNAN",
    summary="Balanced detail and speed",  # tiny 0.48x
    variant_summaries={
        "light": "Fine detail; slow on a CPU",  # 0.11x
        "paper": "Fine detail; very slow without a GPU",  # 0.02x
    },
    variants=tuple(_VARIANTS),
    config=config,
    build=build,
    detect=detect,
    input_range=1.0,
    tiling_safe=False,  # the GC blocks pool over the whole image
    tile_overlap=16,
    memory=MemoryCost(
        {
            "paper": {2: 20300, 3: 20000, 4: 23000},
            "light": {2: 8200, 3: 11100, 4: 17400},
            "tiny": {2: 2900, 3: 4600, 4: 7100},
        }
    ),
    shared_pooling=True,
    own_variants={
        "light": "C=64, G=4, B=6 (paper: G=10, B=20)",
        "tiny": "C=32, G=2, B=4 (paper: C=64, G=10, B=20)",
    },
)
