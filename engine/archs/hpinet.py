"""HPINet: Hierarchical Pixel Integration (Liu et al., AAAI 2023).

Parameter counts (sum of p.numel()): S 405,371 (x2), 477,571 (x3), 463,131 (x4);
M 782,539 (x2), 923,939 (x3), 895,659 (x4); L 1,287,875 (x2), 1,472,515 (x3), 1,435,587 (x4).
Key names and shapes equal the authors' released checkpoints (passerer/HPINet, branch cc) once
their "module." prefix is stripped.

Each block cuts the feature map into P x P patches with stride P - 2; the last patch of a row or
column is moved back to end at the border. Patches are divided and pasted back with index tensors
built once per (H, W, P), no Python loop over patches. Pasting sums the patches in the released
code's order (so results are bit-identical to its loops) and halves every band where two
consecutive patches overlap, once per axis, exactly as the released code does: that is the mean,
except on the one row (column) covered by three patches when H - P > P - 2 and
(H - 3) % (P - 2) == 0, which gets a quarter of its sum as in the released code.

For graph export (engine.inference.graph: torch.export at a fixed input shape, then OpenVINO or
ONNX) those index tables are computed in NumPy from the shape alone, so that they enter the graph
as constants instead of data-dependent values the tracer cannot handle; attention runs 4-D and
overlaps are added with index_put_ rather than index_add_, which the converters do not all take.
None of this changes an output bit. A graph holds one input shape: the tables differ per shape.

Where this module departs from the released code (none of it matters for one normal-size image):
- feature maps smaller than P are padded (reflect, or replicate) to P for the patch step and the
  result is cropped back; the released code fails on them;
- patch matching at inference picks the match from the same image of a batch (the released code
  indexes image 0's patches for every image of the batch);
- attention runs through scaled_dot_product_attention, a bounded number of patches at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.archs.base import (
    Family,
    MemoryCost,
    StateDict,
    build_from,
    count_indexed,
    detect_exact,
    pad_to_multiple,
)

LAYERS_PER_BLOCK = 3  # one cross-attention layer, then two self-attention layers
ATTENTION_CHUNK_ELEMENTS = 1 << 24  # attention scores held at once (64 MiB in float32)
_PATCHES_8 = (12, 16, 20, 24, 12, 16, 20, 24)
_PATCHES_10 = (12, 14, 16, 20, 24, 12, 14, 16, 20, 24)
_SCALES = (2, 3, 4)


@dataclass(frozen=True)
class HPINetConfig:
    variant: str
    scale: int
    dim: int
    qk_dim: int
    mlp_dim: int
    patch_sizes: tuple[int, ...]  # one per block


_VARIANTS: dict[str, HPINetConfig] = {
    "S": HPINetConfig("S", 4, dim=40, qk_dim=24, mlp_dim=72, patch_sizes=_PATCHES_8),
    "M": HPINetConfig("M", 4, dim=56, qk_dim=32, mlp_dim=100, patch_sizes=_PATCHES_8),
    "L": HPINetConfig("L", 4, dim=64, qk_dim=36, mlp_dim=128, patch_sizes=_PATCHES_10),
    # ours, not the paper's: the bundled weights, trained on a 2-core CPU
    "T": HPINetConfig("T", 4, dim=32, qk_dim=16, mlp_dim=64, patch_sizes=(8, 12, 8, 12)),
}


# ---------------------------------------------------------------------------------------------
# Patch division and pasting


def patch_starts(size: int, patch: int) -> list[int]:
    """Offsets of the patches along one axis of length `size` >= `patch`: stride patch - 2, the
    last one moved back so that it ends at the border."""
    step = patch - 2
    return [min(i, size - patch) for i in range(0, size + step - patch, step)]


def _cover_depth(size: int, patch: int) -> int:
    """The most patches covering one coordinate of an axis of length `size` >= `patch`: 1 for a
    single patch, else 2 (consecutive patches overlap by 2 pixels, stride P - 2), 3 on the one
    coordinate where the last patch, moved back to the border, also reaches the third-last one,
    which happens when size - P > P - 2 and (size - 3) % (P - 2) == 0. A function of the shape
    alone, so that the tables below are too (see _build_patch_index)."""
    if size == patch:
        return 1
    step = patch - 2
    return 3 if size - patch > step and (size - 3) % step == 0 else 2


def _axis_tables(size: int, patch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For one axis: pixel indices of each patch (n, patch); for every coordinate, which patches
    cover it and where, in patch order (k, size), -1 where fewer than k patches do; and the
    released code's divisor exponent per coordinate (one per overlap band covering it)."""
    starts = np.array(patch_starts(size, patch), dtype=np.int64)
    pixels = starts[:, None] + np.arange(patch)
    coord = np.arange(size)
    covers = (coord >= starts[:, None]) & (coord < starts[:, None] + patch)  # (n, size)
    # rank of each covering patch among those covering the coordinate, in patch order
    rank = covers.cumsum(0) - 1
    which = np.full((_cover_depth(size, patch), size), -1, dtype=np.int64)
    n_idx, c_idx = covers.nonzero()
    which[rank[n_idx, c_idx], c_idx] = n_idx
    # band k (k >= 1) spans the overlap of patches k - 1 and k: [start_k, start_{k-1} + patch)
    bands = (coord >= starts[1:, None]) & (coord < starts[:-1, None] + patch)
    return pixels, which, bands.sum(0)


class _PatchIndex(NamedTuple):
    """Index tensors for dividing an (h, w) map into patches and pasting them back."""

    gather: torch.Tensor  # (n * P * P,) flat map pixel of every patch pixel
    first: torch.Tensor  # (h * w,) flat patch pixel of the first patch covering each map pixel
    # further covering patches, in the order the released code adds them: for each, the map
    # pixels they cover and the flat patch pixels that land there
    extras: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    weight: torch.Tensor  # (h * w, 1) the released code's divisor, as a power-of-two factor


def _build_patch_index(h: int, w: int, patch: int, device: torch.device) -> _PatchIndex:
    """The tables, computed in NumPy from the shape alone: while torch.export traces the network,
    torch operations on these tables would be recorded into the graph, where the cover depth,
    nonzero() and the sizes of the extra terms would be data-dependent values it cannot trace.
    Built this way, they enter the traced graph as constant tensors."""
    rows, row_which, row_exp = _axis_tables(h, patch)
    cols, col_which, col_exp = _axis_tables(w, patch)
    nw = cols.shape[0]
    gather = (rows[:, None, :, None] * w + cols[None, :, None, :]).reshape(-1)
    offset_r = np.arange(h) - rows[row_which, 0]  # garbage where row_which is -1, masked below
    offset_c = np.arange(w) - cols[col_which, 0]
    terms = []
    # (k-th row cover, k-th column cover) pairs in lexicographic order = row-major patch order
    for pr, orow in zip(row_which, offset_r, strict=True):
        for pc, ocol in zip(col_which, offset_c, strict=True):
            source = ((pr[:, None] * nw + pc) * patch + orow[:, None]) * patch + ocol
            pixels = ((pr[:, None] >= 0) & (pc >= 0)).reshape(-1).nonzero()[0]
            terms.append((pixels, source.reshape(-1)[pixels]))
    weight = np.ldexp(np.float32(1), -(row_exp[:, None] + col_exp)).reshape(-1, 1)

    def tensor(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(a)
        return t if t.device == device else t.to(device)  # a traced .to() is a node per table

    extras = tuple((tensor(pixels), tensor(sources)) for pixels, sources in terms[1:])
    return _PatchIndex(tensor(gather), tensor(terms[0][1]), extras, tensor(weight))


_cached_patch_index = lru_cache(maxsize=20)(_build_patch_index)  # ~30 MB each at 1000x1000


def _patch_index(h: int, w: int, patch: int, device: torch.device) -> _PatchIndex:
    """The tables for (h, w, P), cached: a few image sizes x patch sizes."""
    if torch.compiler.is_compiling():
        # under torch.export / torch.compile the tensors made here are the tracer's fake
        # tensors, which must not outlive the trace in the cache
        return _build_patch_index(h, w, patch, device)
    return _cached_patch_index(h, w, patch, device)


def _batched(index: torch.Tensor, batch: int, stride: int) -> torch.Tensor:
    """`index` into one item of a batch flattened into rows -> the same rows for every item."""
    if batch == 1:
        return index
    offsets = torch.arange(batch, device=index.device)[:, None] * stride
    return (index + offsets).reshape(-1)


def divide_patches(x: torch.Tensor, patch: int) -> torch.Tensor:
    """(b, h, w, c) channels-last map, h and w >= patch -> (b, n, P, P, c), patches in row-major
    order. Gathers whole rows of a (pixels, c) matrix: the fast case of index_select."""
    b, h, w, c = x.shape
    gather = _patch_index(h, w, patch, x.device).gather
    out = x.reshape(b * h * w, c).index_select(0, _batched(gather, b, h * w))
    return out.view(b, -1, patch, patch, c)


def paste_patches(patches: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Inverse of divide_patches: (b, n, P, P, c) -> (b, h, w, c), overlaps averaged."""
    b, n, patch, _, c = patches.shape
    index = _patch_index(h, w, patch, patches.device)
    stride = n * patch * patch
    src = patches.reshape(b * stride, c)
    out = src.index_select(0, _batched(index.first, b, stride))
    for pixels, sources in index.extras:
        more = src.index_select(0, _batched(sources, b, stride))
        rows = _batched(pixels, b, h * w)
        # each map pixel at most once per term, so this is index_add_ to the bit; OpenVINO
        # cannot convert a traced index_add
        out.index_put_((rows,), out.index_select(0, rows) + more)
    return out.view(b, h * w, c).mul_(index.weight.to(out.dtype)).view(b, h, w, c)


# ---------------------------------------------------------------------------------------------
# Network


class Match(nn.Module):
    """Global patch aggregation: each patch is paired with its most similar other patch."""

    def __init__(self, *, dim: int) -> None:
        super().__init__()
        self.scale = dim**-0.5
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(b, n, L, c) patch tokens -> (b, n, L, c) matched patches."""
        b, n, length, c = tokens.shape
        q = self.norm(tokens.mean(dim=2))
        sim = torch.matmul(q, q.transpose(-1, -2)) * self.scale
        # the released code's self exclusion: a lone patch still matches itself. The identity
        # comes from numpy, a constant of the traced graph: OpenVINO 2026.4 cannot convert the
        # arange torch.eye becomes once n >= 256 (a uint16 index).
        eye = torch.from_numpy(np.eye(n, dtype=np.float32)).to(sim.device, sim.dtype)
        sim = sim - 100 * eye
        if self.training:
            hard = F.gumbel_softmax(sim, tau=1.0, hard=True, dim=-1)
            return torch.matmul(hard, tokens.reshape(b, n, -1)).view(b, n, length, c)
        index = sim.max(dim=-1).indices
        return tokens[torch.arange(b, device=tokens.device)[:, None], index]


class Attention(nn.Module):
    """Single-head attention without bias or output projection; cross-attention when given a
    context (keys and values from it), self-attention otherwise."""

    def __init__(self, *, dim: int, qk_dim: int) -> None:
        super().__init__()
        self.scale = qk_dim**-0.5
        self.to_q = nn.Linear(dim, qk_dim, bias=False)
        self.to_k = nn.Linear(dim, qk_dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        # (patches, 1 head, L, c), the same numbers as 3-D: torch's ONNX exporter takes only 4-D
        # attention, and OpenVINO 2026.4's CPU plugin crashes compiling this network's 3-D one
        q = self.to_q(x).unsqueeze(1)
        k = self.to_k(context).unsqueeze(1)
        v = self.to_v(context).unsqueeze(1)
        # q/k and v widths differ, so this is the math kernel: it holds (batch, L, L) scores;
        # chunking the batch (the patches) bounds that memory on large images
        length = q.shape[2]
        chunk = max(1, ATTENTION_CHUNK_ELEMENTS // (length * length))
        outs = [
            F.scaled_dot_product_attention(qc, kc, vc, scale=self.scale)
            for qc, kc, vc in zip(q.split(chunk), k.split(chunk), v.split(chunk), strict=True)
        ]
        return (outs[0] if len(outs) == 1 else torch.cat(outs)).squeeze(1)


class FFN(nn.Module):
    def __init__(self, *, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class PreNorm(nn.Module):
    """fn(LayerNorm(x), ...): only the first argument is normalised."""

    def __init__(self, *, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: torch.Tensor, *args: torch.Tensor | None) -> torch.Tensor:
        return self.fn(self.norm(x), *args)


class Block(nn.Module):
    """Three pre-norm transformer layers over the tokens of each patch; the first one attends to
    the matched patch (keys and values from it, not normalised)."""

    def __init__(self, *, dim: int, qk_dim: int, mlp_dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    PreNorm(dim=dim, fn=Attention(dim=dim, qk_dim=qk_dim)),
                    PreNorm(dim=dim, fn=FFN(dim=dim, hidden=mlp_dim)),
                ]
            )
            for _ in range(LAYERS_PER_BLOCK)
        )

    def forward(self, x: torch.Tensor, matched: torch.Tensor) -> torch.Tensor:
        for i, (attn, ffn) in enumerate(self.layers):
            x = attn(x, matched if i == 0 else None) + x
            x = ffn(x) + x
        return x


class HPINet(nn.Module):
    def __init__(
        self, *, scale: int, dim: int, qk_dim: int, mlp_dim: int, patch_sizes: tuple[int, ...]
    ) -> None:
        super().__init__()
        if scale not in _SCALES:
            raise ValueError(f"HPINet scale must be one of {_SCALES}, got {scale}")
        if min(patch_sizes, default=0) < 3:
            raise ValueError(f"patch sizes must be >= 3, got {patch_sizes}")
        self.scale = scale
        self.patch_sizes = tuple(patch_sizes)
        self.first_conv = nn.Conv2d(3, dim, 3, 1, 1)
        self.cross_match = nn.ModuleList(Match(dim=dim) for _ in patch_sizes)
        self.blocks = nn.ModuleList(
            Block(dim=dim, qk_dim=qk_dim, mlp_dim=mlp_dim) for _ in patch_sizes
        )
        self.mid_convs = nn.ModuleList(nn.Conv2d(dim, dim, 3, 1, 1) for _ in patch_sizes)
        if scale == 4:
            self.upconv1 = nn.Conv2d(dim, dim * 4, 3, 1, 1)
            self.upconv2 = nn.Conv2d(dim, dim * 4, 3, 1, 1)
        else:
            self.upconv = nn.Conv2d(dim, dim * scale**2, 3, 1, 1)
        self.last_conv = nn.Conv2d(dim, 3, 3, 1, 1)

    def _integrate(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Block i on the patches of x; returns the pasted-back map (same size as x)."""
        patch = self.patch_sizes[i]
        h, w = x.shape[-2:]
        x, _, _ = pad_to_multiple(x, 1, minimum=patch)
        b, c, hp, wp = x.shape
        patches = divide_patches(x.permute(0, 2, 3, 1), patch)  # (b, n, P, P, c)
        n = patches.shape[1]
        tokens = patches.view(b, n, patch * patch, c)
        matched = self.cross_match[i](tokens)
        out = self.blocks[i](tokens.flatten(0, 1), matched.flatten(0, 1))
        pasted = paste_patches(out.view(b, n, patch, patch, c), hp, wp)
        return pasted[:, :h, :w].permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        # channels last: free views to and from patch tokens, and faster convolutions on CPU
        x = self.first_conv(x.contiguous(memory_format=torch.channels_last))
        for i, conv in enumerate(self.mid_convs):
            x = x + conv(self._integrate(i, x))
        if self.scale == 4:
            x = F.leaky_relu(F.pixel_shuffle(self.upconv1(x), 2), 0.1)
            x = F.leaky_relu(F.pixel_shuffle(self.upconv2(x), 2), 0.1)
        else:
            x = F.leaky_relu(F.pixel_shuffle(self.upconv(x), self.scale), 0.1)
        return (base + self.last_conv(x)).contiguous()


# ---------------------------------------------------------------------------------------------
# Registry functions


def config(variant: str, scale: int) -> HPINetConfig:
    if variant not in _VARIANTS:
        raise ValueError(f"unknown HPINet variant {variant!r}; known: {tuple(_VARIANTS)}")
    if scale not in _SCALES:
        raise ValueError(f"HPINet scale must be one of {_SCALES}, got {scale}")
    return replace(_VARIANTS[variant], scale=scale)


def build(cfg: HPINetConfig) -> HPINet:
    return build_from(HPINet, cfg)


def _read_config(sd: StateDict) -> HPINetConfig | None:
    dim = sd["first_conv.weight"].shape[0]
    qk_dim = sd["blocks.0.layers.0.0.fn.to_q.weight"].shape[0]
    mlp_dim = sd["blocks.0.layers.0.1.fn.fc1.weight"].shape[0]
    n_blocks = count_indexed(sd, "blocks.{}.layers.0.0.norm.weight")
    if "upconv1.weight" in sd:
        scale = 4
    else:
        scale = {4: 2, 9: 3}.get(sd["upconv.weight"].shape[0] // max(dim, 1))
    if scale is None:
        return None
    for cfg in _VARIANTS.values():
        if (cfg.dim, cfg.qk_dim, cfg.mlp_dim, len(cfg.patch_sizes)) == (
            dim,
            qk_dim,
            mlp_dim,
            n_blocks,
        ):
            return replace(cfg, scale=scale)
    return None


def detect(state_dict: StateDict) -> HPINetConfig | None:
    """The variant whose module has exactly these keys and shapes, or None."""
    return detect_exact(_read_config, build, state_dict)


FAMILY = Family(
    name="HPINet",
    summary="Sharpest; very slow without a GPU",  # S 0.07x, M 0.05x, L 0.04x
    # T: 0.34x on 128x128, 0.25x on the 12 MP photo at x2 (416 s against A2F-SD's 102 s)
    variant_summaries={"T": "Sharp on photos; slow on a CPU"},
    variants=tuple(_VARIANTS),
    config=config,
    build=build,
    detect=detect,
    input_range=1.0,
    tiling_safe=False,  # patch matching pairs patches across the whole image
    tile_overlap=40,  # Set14 x4, tiles of 48: +0.0103 dB off the whole image at 32, -0.0020 at 40
    memory=MemoryCost(
        {
            "S": {2: 12000, 3: 14800, 4: 15700},
            "M": {2: 13300, 3: 13200, 4: 15400},
            "L": {2: 21600, 3: 20700, 4: 29800},
            "T": {2: 5100, 3: 4800, 4: 9500},
        },
        # patch matching holds three (patches x patches) float32 arrays, with patches = pixels /
        # 10^2 for its smallest patch (12 pixels, stride 10)
        per_tile_pixel=3 * 4 / 100**2,
    ),
    own_variants={"T": "dim 32, 4 blocks of patches 8/12 (paper S: dim 40, 8 blocks of 12-24)"},
    dynamic_graph=False,  # the patch tables are built for one input shape (one graph per shape)
)
