"""Blending tile outputs into finished bands of output rows, without a full-size canvas.

Each tile's output is added in with a feathered weight (see engine.inference.tiling for the
layout): 1 inside its core, a raised-cosine ramp across the `overlap`-wide band centred on each
core boundary inside the image, 0 in the outer half of its context. The weighted sums and the sum
of the weights are kept only for the rows that some tile can still add to; once no tile left can
reach a row (the tiler knows which tiles are left), that row is divided by its weight and handed
on. So memory holds about one row of tiles of output, never the whole image.

Why hand-written: the weights depend only on where a tile's core sits in its window and on which
of its sides are image borders, so one weight tile per such shape is computed and reused for every
tile of that shape (a grid has at most nine), and the two accumulators are reused across rows;
allocating a fresh tile of weights and a full-size weight image per run was what the old code did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Span:
    """One axis of a tile in LR pixels: its window [lo, hi) and its core [a, b) in an image
    `length` pixels long."""

    lo: int
    hi: int
    a: int
    b: int
    length: int

    def key(self) -> tuple[int, int, int, bool, bool]:
        """What the weights along this axis depend on (positions relative to the core)."""
        a = self.a
        return (self.lo - a, self.hi - a, self.b - a, a > 0, self.b < self.length)

    def reach(self, half: int) -> tuple[int, int]:
        """The LR rows [start, stop) the tile's weights can be non-zero on."""
        start = max(self.lo, self.a - half) if self.a > 0 else self.lo
        stop = min(self.hi, self.b + half) if self.b < self.length else self.hi
        return start, stop


def ramp(span: Span, half: int, scale: int) -> Tensor:
    """Blend weights along one axis for the HR pixels of span.lo..hi: raised-cosine ramps of LR
    width 2 * half centred on each core boundary inside the image (a hard cut when half is 0)."""
    offset, end, core, cut_before, cut_after = span.key()
    hr = torch.arange((end - offset) * scale, dtype=torch.float64)
    u = offset + (hr + 0.5) / scale  # LR position from the core's start
    w = torch.ones_like(u)
    if half == 0:
        w *= (u >= 0) & (u < core)
    else:
        if cut_before:
            w *= _raised_cosine((u + half) / (2 * half))
        if cut_after:
            w *= _raised_cosine(((core + half) - u) / (2 * half))
    return w.float()


def _raised_cosine(t: Tensor) -> Tensor:
    return 0.5 - 0.5 * torch.cos(math.pi * t.clamp(0, 1))


def support(w: Tensor) -> slice:
    """The span where a 1-D weight is non-zero (it is one run)."""
    nonzero = torch.nonzero(w).flatten()
    return slice(int(nonzero[0]), int(nonzero[-1]) + 1)


class WeightCache:
    """The 2-D weight tile (and where it is non-zero) per tile shape, computed once."""

    def __init__(self, half: int, scale: int) -> None:
        self.half, self.scale = half, scale
        self._tiles: dict[tuple, tuple[Tensor, slice, slice]] = {}

    def get(self, rows: Span, cols: Span) -> tuple[Tensor, slice, slice]:
        """(weights over the non-zero part, its HR rows, its HR columns within the window)."""
        key = (rows.key(), cols.key())
        found = self._tiles.get(key)
        if found is None:
            wy, wx = ramp(rows, self.half, self.scale), ramp(cols, self.half, self.scale)
            ys, xs = support(wy), support(wx)
            found = (wy[ys, None] * wx[None, xs], ys, xs)
            self._tiles[key] = found
        return found


class RowAccumulator:
    """Weighted sums of tile outputs and their weights for the HR rows [top, top + rows held),
    full width; `finish(stop)` divides the rows above `stop` out and hands them on."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.top = 0  # image row of buffer row 0
        self.sums: Tensor | None = None  # (1, C, capacity, width)
        self.weights: Tensor | None = None  # (1, 1, capacity, width)
        self._handed = 0  # rows handed on by finish(), dropped at the next call

    def add(self, y: Tensor, w: Tensor, row: int, col: int) -> None:
        """Add tile output `y` (1, C, h, w) with weights `w` (h, w) at image row/column."""
        self._drop_handed()
        h, wd = w.shape
        self._reserve(y.shape[1], row + h - self.top)
        assert self.sums is not None and self.weights is not None
        r = slice(row - self.top, row - self.top + h)
        c = slice(col, col + wd)
        self.sums[:, :, r, c].addcmul_(y, w)
        self.weights[:, :, r, c] += w

    def finish(self, stop: int) -> Tensor | None:
        """The finished rows [top, stop), normalised: a view valid until the next call."""
        self._drop_handed()
        n = stop - self.top
        if n <= 0 or self.sums is None or self.weights is None:
            return None
        band = self.sums[:, :, :n].div_(self.weights[:, :, :n])
        self._handed = n
        return band

    def _drop_handed(self) -> None:
        n, self._handed = self._handed, 0
        if n == 0 or self.sums is None or self.weights is None:
            return
        self.top += n
        capacity = self.sums.shape[2]
        for buf in (self.sums, self.weights):
            rest = buf[:, :, n:].clone()  # at most the rows of one overlap: small
            buf[:, :, : capacity - n] = rest
            buf[:, :, capacity - n :].zero_()

    def _reserve(self, channels: int, rows: int) -> None:
        if self.sums is not None and self.sums.shape[2] >= rows:
            return
        sums = torch.zeros(1, channels, rows, self.width)
        weights = torch.zeros(1, 1, rows, self.width)
        if self.sums is not None and self.weights is not None:
            held = self.sums.shape[2]
            sums[:, :, :held] = self.sums
            weights[:, :, :held] = self.weights
        self.sums, self.weights = sums, weights
