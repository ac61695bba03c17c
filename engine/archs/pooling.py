"""Pooling over the whole feature map, the step of A2F (channel attention), RNAN (global context)
and CRAN (CRAC kernels) that a tile cannot compute from its own pixels, and how the tiles of one
image share it.

Outside `ImagePooling.tile()` the functions below are the plain operations. Inside it (the tiler
sets it around each tile's forward) they work in one of two passes over the tiles:
- recording: each call pools the tile as usual, and also adds its sums over the pixels the tile
  owns (its core) to image-wide totals;
- sharing: each call returns the image-wide value that the recording pass assembled instead.
Calls are matched by their order within one forward, the same for every tile of a network. The
shared values come from a pass whose deeper layers saw per-tile values, so they are close to,
not exactly, the whole image's (measured in BENCHMARKS.md and tests/engine/test_tiling_fidelity).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

Partial = tuple[Tensor, ...]


@dataclass
class _Tile:
    owner: ImagePooling
    offset: tuple[int, int]  # image coordinates of the tile's first row and column
    core: tuple[int, int, int, int]  # top, left, bottom, right of the core, tile coordinates
    partials: list[Partial] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    calls: int = 0


_ACTIVE: contextvars.ContextVar[_Tile | None] = contextvars.ContextVar("pooling", default=None)


class ImagePooling:
    """The image-wide pooled values of one image of `height` x `width` feature pixels (the LR
    size: the networks that pool keep it), gathered tile by tile."""

    def __init__(self, height: int, width: int) -> None:
        self.height, self.width = height, width
        self.kinds: list[str] = []
        self.totals: list[Partial] = []
        self.shared: list[Tensor] | None = None  # set by share(): the second pass

    @contextlib.contextmanager
    def tile(
        self, window: tuple[int, int, int, int], core: tuple[int, int, int, int]
    ) -> Iterator[_Tile]:
        """Run one forward of the tile `window` (top, left, bottom, right in image coordinates)
        that owns `core` (same coordinates). Yields the tile record for commit()."""
        top, left = window[:2]
        local = (core[0] - top, core[1] - left, core[2] - top, core[3] - left)
        tile = _Tile(self, (top, left), local)
        token = _ACTIVE.set(tile)
        try:
            yield tile
        finally:
            _ACTIVE.reset(token)

    def commit(self, tile: _Tile) -> None:
        """Add a recorded tile's sums to the totals (only tiles whose output is kept)."""
        if self.shared is not None:
            return
        if not self.totals:
            self.kinds, self.totals = list(tile.kinds), list(tile.partials)
            return
        if tile.kinds != self.kinds:
            raise RuntimeError("tiles of one image made different pooling calls")
        merged = zip(self.kinds, self.totals, tile.partials, strict=True)
        self.totals = [_MERGE[kind](a, b) for kind, a, b in merged]

    def share(self) -> None:
        """End the recording pass: from now on every call returns the image-wide value."""
        self.shared = [_FINAL[k](self, t) for k, t in zip(self.kinds, self.totals, strict=True)]

    def _call(self, tile: _Tile, kind: str, x: Tensor, *args: object) -> Tensor | None:
        index = tile.calls
        tile.calls += 1
        if self.shared is not None:
            if index >= len(self.shared):
                raise RuntimeError("a tile made more pooling calls than the recording pass")
            return self.shared[index].to(device=x.device, dtype=x.dtype)
        tile.kinds.append(kind)
        tile.partials.append(_PARTIAL[kind](tile, x, *args))
        return None


def _core(tile: _Tile, x: Tensor) -> Tensor:
    top, left, bottom, right = tile.core
    return x[:, :, top:bottom, left:right]


# ------------------------------------------------------------------------------ grid


def grid_pool(x: Tensor, k: int) -> Tensor:
    """(N, C, H, W) -> (N, C, k, k): adaptive average pooling over k x k cells."""
    tile = _ACTIVE.get()
    shared = tile.owner._call(tile, "grid", x, k) if tile is not None else None
    return F.adaptive_avg_pool2d(x, k) if shared is None else shared


def mean_pool(x: Tensor) -> Tensor:
    """(N, C, H, W) -> (N, C, 1, 1) mean over H and W: the one-cell grid."""
    return grid_pool(x, 1)


def _cells(length: int, k: int) -> list[tuple[int, int]]:
    """adaptive_avg_pool's cells along one axis: [floor(i L / k), ceil((i + 1) L / k))."""
    return [(i * length // k, -(-(i + 1) * length // k)) for i in range(k)]


def _grid_partial(tile: _Tile, x: Tensor, k: int) -> Partial:
    image, (oy, ox) = tile.owner, tile.offset
    top, left, bottom, right = tile.core
    sums = x.new_zeros(x.shape[0], x.shape[1], k, k, dtype=torch.float64)
    for i, (r0, r1) in enumerate(_cells(image.height, k)):
        rows = slice(max(r0 - oy, top), min(r1 - oy, bottom))
        if rows.start >= rows.stop:
            continue
        for j, (c0, c1) in enumerate(_cells(image.width, k)):
            cols = slice(max(c0 - ox, left), min(c1 - ox, right))
            if cols.start < cols.stop:
                sums[:, :, i, j] = x[:, :, rows, cols].sum((2, 3), dtype=torch.float64)
    return (sums,)


def _grid_final(image: ImagePooling, total: Partial) -> Tensor:
    (s,) = total
    k = s.shape[-1]
    rows = torch.tensor([b - a for a, b in _cells(image.height, k)], dtype=torch.float64)
    cols = torch.tensor([b - a for a, b in _cells(image.width, k)], dtype=torch.float64)
    return (s / (rows[:, None] * cols[None, :]).to(s.device)).float()


# ------------------------------------------------------------------------------ softmax


def softmax_pool(x: Tensor, logits: Tensor) -> Tensor:
    """(N, C, H, W) and (N, 1, H, W) -> (N, C, 1, 1): x averaged with weights softmax(logits)
    over all H * W positions (GCNet's context)."""
    tile = _ACTIVE.get()
    shared = tile.owner._call(tile, "softmax", x, logits) if tile is not None else None
    if shared is not None:
        return shared
    n, c = x.shape[:2]
    weights = torch.softmax(logits.flatten(1), dim=1)  # (N, H*W)
    return torch.bmm(x.flatten(2), weights.unsqueeze(2)).view(n, c, 1, 1)


def _softmax_partial(tile: _Tile, x: Tensor, logits: Tensor) -> Partial:
    """(max logit m, sum of exp(l - m) * x, sum of exp(l - m)) over the core, in float64."""
    lg = _core(tile, logits).flatten(1).double()  # (N, P)
    m = lg.max(dim=1).values
    e = torch.exp(lg - m[:, None])
    s = (_core(tile, x).flatten(2).double() * e[:, None, :]).sum(2)
    return m, s, e.sum(1)


def _softmax_merge(a: Partial, b: Partial) -> Partial:
    m = torch.maximum(a[0], b[0])
    fa, fb = torch.exp(a[0] - m), torch.exp(b[0] - m)
    return m, a[1] * fa[:, None] + b[1] * fb[:, None], a[2] * fa + b[2] * fb


def _softmax_final(image: ImagePooling, total: Partial) -> Tensor:
    _, s, z = total
    return (s / z[:, None]).float()[:, :, None, None]


def _add(a: Partial, b: Partial) -> Partial:
    return tuple(x + y for x, y in zip(a, b, strict=True))


_PARTIAL = {"grid": _grid_partial, "softmax": _softmax_partial}
_MERGE = {"grid": _add, "softmax": _softmax_merge}
_FINAL = {"grid": _grid_final, "softmax": _softmax_final}
