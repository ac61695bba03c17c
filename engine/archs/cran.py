"""CRAN: Context Reasoning Attention Network (Zhang et al., ICCV 2021).

RCAN residual-in-residual backbone whose groups end with a CRAB: an EDSR residual block whose two
convolutions are context reasoning attention convolutions (CRAC), convolutions whose kernel is
modulated per image by a mask computed from the pooled input.

Choices where the paper is silent (no code or checkpoints were released):
- W_phi, W_theta, W_g, W_r are all c_in x c_in linear maps: the embeddings keep the descriptor
  width, as in the visual semantic reasoning GCN the paper builds on (VSRN, Li et al. 2019), and
  W_r must be c_in x c_in for Eq. (2) to type-check. R is not normalised (Eq. 1 as printed).
- Every linear layer of the CRAC attention path (W_E, W_phi, W_theta, W_g, W_r, W_ci, W_A1, W_A2)
  is bias-free and there is no BatchNorm or extra ReLU: only the printed equations. The modulated
  convolution keeps its usual bias.
- The grouped linear W_ci has one (c_in/g x c_out/g) weight per group (a grouped 1x1 conv1d).
- RGB mean shift on the 0..1 scale (rgb_range = 1): x - mean in, + mean out, no x255. It is a
  constant, not a parameter, and not stored in the state dict.
These give 15,663,603 parameters at x2 (paper: 14.94M, +4.84%), 15,848,243 at x3, 15,811,315 at x4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from engine.archs.base import Family, MemoryCost, StateDict, build_from, count_indexed, detect_exact
from engine.archs.pooling import grid_pool

KERNEL_SIZE = 3
SCALES = (2, 3, 4)
DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


@dataclass(frozen=True)
class CRANConfig:
    variant: str
    scale: int
    n_groups: int = 10
    n_blocks: int = 20  # per group; the last one is the CRAB
    n_feats: int = 64
    crac_groups: int = 16  # g of the grouped linear channel interaction
    embed_dim: int = 64  # width of the W_phi / W_theta embeddings


_PRESETS: dict[str, dict[str, int]] = {
    "paper": {"n_groups": 10, "n_blocks": 20, "n_feats": 64, "crac_groups": 16, "embed_dim": 64},
    "light": {"n_groups": 3, "n_blocks": 6, "n_feats": 64, "crac_groups": 16, "embed_dim": 64},
    "tiny": {"n_groups": 2, "n_blocks": 4, "n_feats": 32, "crac_groups": 8, "embed_dim": 32},
}


class CRAC(nn.Module):
    """Context reasoning attention convolution: a k x k conv (zero padding, stride 1) whose kernel
    W is replaced per image by W * F_A, F_A computed from the input's global context."""

    def __init__(
        self, *, in_channels: int, out_channels: int, kernel_size: int, groups: int, embed_dim: int
    ) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"channels {in_channels}/{out_channels} not divisible by {groups}")
        k2 = kernel_size * kernel_size
        e = k2 // 2
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        self.encode = nn.Linear(k2, e, bias=False)  # W_E
        self.phi = nn.Linear(in_channels, embed_dim, bias=False)  # W_phi
        self.theta = nn.Linear(in_channels, embed_dim, bias=False)  # W_theta
        self.gcn = nn.Linear(in_channels, in_channels, bias=False)  # W_g
        self.res = nn.Linear(in_channels, in_channels, bias=False)  # W_r
        self.channel = nn.Conv1d(in_channels, out_channels, 1, groups=groups, bias=False)  # W_ci
        self.spatial_out = nn.Linear(e, k2, bias=False)  # W_A1
        self.spatial_in = nn.Linear(e, k2, bias=False)  # W_A2
        # Same initialisation as nn.Conv2d.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        bound = 1 / math.sqrt(in_channels * k2)
        nn.init.uniform_(self.bias, -bound, bound)

    def modulated_weight(self, x: torch.Tensor) -> torch.Tensor:
        """W* = W * F_A for each image: (N, c_out, c_in, k, k)."""
        n, c_in = x.shape[:2]
        k = self.kernel_size
        pooled = grid_pool(x, k).flatten(2)  # (N, c_in, k*k)
        ctx = self.encode(pooled)  # F_C: (N, c_in, e)
        desc = ctx.transpose(1, 2)  # F_C^T: (N, e, c_in), row i is descriptor f_i
        affinity = self.phi(desc) @ self.theta(desc).transpose(1, 2)  # R: (N, e, e)
        gate = torch.sigmoid(self.res(self.gcn(affinity @ desc)))  # (N, e, c_in)
        ctx = gate.transpose(1, 2) * ctx + ctx  # F_C*: (N, c_in, e)
        a_out = self.spatial_out(self.channel(ctx))  # F_A1 = F_CI W_A1: (N, c_out, k*k)
        a_in = self.spatial_in(ctx)  # F_A2 = F_C* W_A2: (N, c_in, k*k)
        mask = torch.sigmoid(
            a_out[:, :, None, :] + a_in[:, None, :, :]
        )  # F_A: (N, c_out, c_in, k*k)
        return self.weight.unsqueeze(0) * mask.view(n, -1, c_in, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c_in, h, w = x.shape
        weight = self.modulated_weight(x)
        c_out = weight.shape[1]
        # One kernel per image: fold the batch into the channel axis and convolve with groups=N.
        out = F.conv2d(
            x.reshape(1, n * c_in, h, w),
            weight.reshape(n * c_out, c_in, self.kernel_size, self.kernel_size),
            self.bias.repeat(n),
            padding=self.kernel_size // 2,
            groups=n,
        )
        return out.view(n, c_out, h, w)


def _conv(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, KERNEL_SIZE, padding=KERNEL_SIZE // 2)


class ResBlock(nn.Module):
    """EDSR block x + conv2(relu(conv1(x))); with CRACs it is the CRAB."""

    def __init__(self, *, n_feats: int, crac: bool, crac_groups: int, embed_dim: int) -> None:
        super().__init__()
        if crac:
            kw = {
                "in_channels": n_feats,
                "out_channels": n_feats,
                "kernel_size": KERNEL_SIZE,
                "groups": crac_groups,
                "embed_dim": embed_dim,
            }
            self.conv1: nn.Module = CRAC(**kw)
            self.conv2: nn.Module = CRAC(**kw)
        else:
            self.conv1 = _conv(n_feats, n_feats)
            self.conv2 = _conv(n_feats, n_feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class ResidualGroup(nn.Module):
    def __init__(self, *, n_blocks: int, n_feats: int, crac_groups: int, embed_dim: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            *(
                ResBlock(
                    n_feats=n_feats,
                    crac=i == n_blocks - 1,
                    crac_groups=crac_groups,
                    embed_dim=embed_dim,
                )
                for i in range(n_blocks)
            )
        )
        self.conv = _conv(n_feats, n_feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(self.blocks(x))


def _upsampler(scale: int, n_feats: int) -> nn.Sequential:
    """ESPCN sub-pixel convolution as in RCAN/EDSR: x4 = two x2 stages, x3 one stage."""
    if scale == 3:
        factors = [3]
    elif scale in (2, 4):
        factors = [2] * (scale // 2)
    else:
        raise ValueError(f"CRAN supports scales {SCALES}, not {scale}")
    layers: list[nn.Module] = []
    for f in factors:
        layers += [_conv(n_feats, n_feats * f * f), nn.PixelShuffle(f)]
    return nn.Sequential(*layers)


class CRAN(nn.Module):
    def __init__(
        self,
        *,
        scale: int,
        n_groups: int,
        n_blocks: int,
        n_feats: int,
        crac_groups: int,
        embed_dim: int,
    ) -> None:
        super().__init__()
        if min(n_groups, n_blocks, n_feats, crac_groups, embed_dim) < 1:
            raise ValueError("CRAN hyper-parameters must be positive")
        self.scale = scale
        self.register_buffer(
            "rgb_mean", torch.tensor(DIV2K_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.head = _conv(3, n_feats)
        self.body = nn.Sequential(
            *(
                ResidualGroup(
                    n_blocks=n_blocks, n_feats=n_feats, crac_groups=crac_groups, embed_dim=embed_dim
                )
                for _ in range(n_groups)
            )
        )
        self.body_conv = _conv(n_feats, n_feats)
        self.upsample = _upsampler(scale, n_feats)
        self.tail = _conv(n_feats, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.head(x - self.rgb_mean)
        feat = feat + self.body_conv(self.body(feat))
        return self.tail(self.upsample(feat)) + self.rgb_mean


def config(variant: str, scale: int) -> CRANConfig:
    if variant not in _PRESETS:
        raise ValueError(f"unknown CRAN variant {variant!r}; known: {tuple(_PRESETS)}")
    if scale not in SCALES:
        raise ValueError(f"CRAN supports scales {SCALES}, not {scale}")
    return CRANConfig(variant=variant, scale=scale, **_PRESETS[variant])


def build(cfg: CRANConfig) -> CRAN:
    return build_from(CRAN, cfg)


def _read_config(sd: StateDict) -> CRANConfig | None:
    head = sd.get("head.weight")
    if head is None or tuple(head.shape[1:]) != (3, KERNEL_SIZE, KERNEL_SIZE):
        return None
    n_feats = int(head.shape[0])
    n_groups = count_indexed(sd, "body.{}.conv.weight")
    n_blocks = count_indexed(sd, "body.0.blocks.{}.conv1.weight")
    if n_groups < 1 or n_blocks < 1:
        return None
    crab = f"body.0.blocks.{n_blocks - 1}.conv1"
    phi, channel = sd.get(f"{crab}.phi.weight"), sd.get(f"{crab}.channel.weight")
    up = sd.get("upsample.0.weight")
    if phi is None or channel is None or up is None or channel.ndim != 3 or channel.shape[1] < 1:
        return None
    stages = 0  # conv, PixelShuffle, conv, ...: the convs sit at even indices
    while f"upsample.{2 * stages}.weight" in sd:
        stages += 1
    ratio = int(up.shape[0]) // max(n_feats, 1)
    scale = {(9, 1): 3, (4, 1): 2, (4, 2): 4}.get((ratio, stages))
    if scale is None:
        return None
    return CRANConfig(
        variant="custom",
        scale=scale,
        n_groups=n_groups,
        n_blocks=n_blocks,
        n_feats=n_feats,
        crac_groups=n_feats // int(channel.shape[1]),
        embed_dim=int(phi.shape[0]),
    )


def detect(state_dict: StateDict) -> CRANConfig | None:
    """The config of a CRAN state dict (read from keys and shapes), or None if it is not one."""
    cfg = detect_exact(_read_config, build, state_dict)
    if cfg is None:
        return None
    for name in _PRESETS:
        if replace(cfg, variant=name) == config(name, cfg.scale):
            return replace(cfg, variant=name)
    return cfg


FAMILY = Family(
    name="CRAN",
    summary="Clean edges; medium speed",  # tiny 0.61x
    variant_summaries={
        "light": "Clean edges; slow on a CPU",  # 0.15x
        "paper": "Clean edges; very slow without a GPU",  # 0.03x
    },
    variants=tuple(_PRESETS),
    config=config,
    build=build,
    detect=detect,
    input_range=1.0,
    tiling_safe=False,  # every CRAC pools the whole input to build its kernels
    tile_overlap=16,
    memory=MemoryCost(
        {
            "paper": {2: 3000, 3: 6900, 4: 12300},
            "light": {2: 3300, 3: 6900, 4: 12000},
            "tiny": {2: 2700, 3: 3700, 4: 7300},
        }
    ),
    shared_pooling=True,
    own_variants={
        "light": "3 groups x 6 blocks (paper: 10 x 20)",
        "tiny": "2 groups x 4 blocks, 32 channels (paper: 10 x 20, 64)",
    },
    scales=SCALES,
)
