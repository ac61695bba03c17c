"""Blending tile outputs into finished bands of output rows, without a full-size canvas.

Each tile's output is added in with a feathered weight (see engine.inference.tiling for the
layout): 1 inside its core, a raised-cosine ramp across the `overlap`-wide band centred on each
core boundary inside the image, 0 in the outer half of its context. The weighted sums and the sum
of the weights are kept, per column block, only for the pixels some tile can still add to; once
no tile left can reach them (the tiler knows which tiles are left), they are divided by their
weight and converted to what is kept (8-bit samples for a file) at once; rows every block has
finished are handed on. So memory holds about one row of tiles of converted output plus the
seams the tiles share, never the whole image and never a row of tiles of float sums.

Why hand-written: no library blends a stream of tiles into bands. The weights depend only on
where a tile's core sits in its window and on which of its sides are image borders, so each
axis's ramp is computed once per such shape and reused; a full-size weight image per run was what
the old code did.
"""

from __future__ import annotations

import math
from collections.abc import Callable
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
    """The blend weights of a tile: 1-D ramps per axis shape, computed once, and their outer
    product, made per tile. (Caching the 2-D tiles instead kept one per combination of row and
    column shapes: an evenly split 48 MP image has dozens, ~14 MB each.)"""

    def __init__(self, half: int, scale: int) -> None:
        self.half, self.scale = half, scale
        self._ramps: dict[tuple, tuple[Tensor, slice]] = {}

    def get(self, rows: Span, cols: Span) -> tuple[Tensor, slice, slice]:
        """(weights over the non-zero part, its HR rows, its HR columns within the window)."""
        wy, ys = self._ramp(rows)
        wx, xs = self._ramp(cols)
        return wy[:, None] * wx[None, :], ys, xs

    def _ramp(self, span: Span) -> tuple[Tensor, slice]:
        key = span.key()
        found = self._ramps.get(key)
        if found is None:
            w = ramp(span, self.half, self.scale)
            where = support(w)
            found = self._ramps[key] = (w[where], where)
        return found


BLOCK_COLUMNS = 256  # HR columns a block of the accumulator spans

Convert = Callable[[Tensor], Tensor]  # finished (1, C, h, w) float32 -> (h, w, channels) stored


class BlockAccumulator:
    """Weighted sums of tile outputs and their weights, full width, kept in column blocks of
    BLOCK_COLUMNS: each block's rows that no tile left can reach are divided by their weight,
    converted (`convert`: e.g. quantised to 8 bits, 3 bytes a pixel instead of 16) into a store
    of rows, and dropped from the block at once; `finish` hands on the store's rows once every
    block has them. So the float sums held are the seams tiles still share (the overlap band
    under a row of tiles, the blocks beside a tile whose neighbour is not done) plus the blocks
    of the tile just added, not a row of tiles of float output."""

    def __init__(self, width: int, convert: Convert) -> None:
        self.width, self.convert = width, convert
        self.bounds = [(c, min(width, c + BLOCK_COLUMNS)) for c in range(0, width, BLOCK_COLUMNS)]
        self.blocks = [_Block(c1 - c0) for c0, c1 in self.bounds]
        self.store: Tensor | None = None  # (capacity, width, channels): converted rows
        self.store_top = 0  # image row of store row 0
        self._handed = 0  # store rows handed on by finish(), dropped at the next call

    def add(self, y: Tensor, w: Tensor, row: int, col: int) -> None:
        """Add tile output `y` (1, C, h, w) with weights `w` (h, w) at image row/column."""
        self._drop_handed()
        for (c0, c1), block in zip(self.bounds, self.blocks, strict=True):
            lo, hi = max(c0, col), min(c1, col + w.shape[1])
            if lo < hi:
                block.add(y[:, :, :, lo - col : hi - col], w[:, lo - col : hi - col], row, lo - c0)

    def finish(self, limits: list[int]) -> Tensor | None:
        """Convert each block's rows above its limit (the first row a tile left can reach in
        it); the rows every block has converted: a view of the store valid until the next call."""
        self._drop_handed()
        for (c0, c1), block, stop in zip(self.bounds, self.blocks, limits, strict=True):
            if stop > block.top:
                top = block.top
                self._put(self.convert(block.take(stop)), top, c0, c1)
        n = min(b.top for b in self.blocks) - self.store_top
        if n <= 0 or self.store is None:
            return None
        self._handed = n
        return self.store[:n]

    def _put(self, values: Tensor, top: int, c0: int, c1: int) -> None:
        rows = top - self.store_top + values.shape[0]
        if self.store is None or self.store.shape[0] < rows:
            store = values.new_empty((rows, self.width, values.shape[2]))
            if self.store is not None:
                store[: self.store.shape[0]] = self.store
            self.store = store
        self.store[top - self.store_top : rows, c0:c1] = values

    def _drop_handed(self) -> None:
        n, self._handed = self._handed, 0
        if n == 0 or self.store is None:
            return
        self.store_top += n
        filled = max(b.top for b in self.blocks) - self.store_top
        if filled > 0:  # rows some blocks converted ahead of others: a seam's worth at most
            self.store[:filled] = self.store[n : n + filled].clone()


class _Block:
    """One column block: float sums and weights of the HR rows [top, top + held)."""

    # Buffers are allocated in whole multiples of this many rows, so that the heap (kept from
    # tile to tile by engine.inference.allocator) sees a few sizes again and again instead of
    # fragmenting into many (a seam of 2 x 12 LR rows at x4 is exactly 3 of them).
    QUANTUM = 32

    def __init__(self, width: int) -> None:
        self.width = width
        self.top = 0  # image row of buffer row 0: the rows above are converted
        self.held = 0  # rows of the buffers in use
        self.sums: Tensor | None = None  # (1, C, capacity, block columns)
        self.weights: Tensor | None = None  # (1, 1, capacity, block columns)

    def add(self, y: Tensor, w: Tensor, row: int, col: int) -> None:
        h = w.shape[0]
        self._reserve(y.shape[1], row + h - self.top)
        assert self.sums is not None and self.weights is not None
        r, c = slice(row - self.top, row - self.top + h), slice(col, col + w.shape[1])
        self.sums[:, :, r, c].addcmul_(y, w)
        self.weights[:, :, r, c] += w

    def take(self, stop: int) -> Tensor:
        """The rows [top, stop) divided by their weight (a tile has reached every one), dropped
        from the buffers, which keep only the rows below (a new, smaller allocation: a block
        must not keep a row of tiles' worth of capacity)."""
        n = stop - self.top
        assert self.sums is not None and self.weights is not None and self.held >= n
        done = self.sums[:, :, :n].div_(self.weights[:, :, :n])
        rest = self.held - n
        sums, weights = self._new(self.sums.shape[1], rest)
        sums[:, :, :rest] = self.sums[:, :, n : self.held]
        weights[:, :, :rest] = self.weights[:, :, n : self.held]
        self.sums, self.weights = sums, weights
        self.top, self.held = stop, rest
        return done

    def _reserve(self, channels: int, rows: int) -> None:
        if self.sums is not None and self.sums.shape[2] >= rows:
            self.held = max(self.held, rows)
            return
        sums, weights = self._new(channels, rows)
        if self.sums is not None and self.weights is not None:
            sums[:, :, : self.held] = self.sums[:, :, : self.held]
            weights[:, :, : self.held] = self.weights[:, :, : self.held]
        self.sums, self.weights, self.held = sums, weights, max(self.held, rows)

    def _new(self, channels: int, rows: int) -> tuple[Tensor, Tensor]:
        """Zeroed buffers of at least `rows` rows, a multiple of QUANTUM."""
        capacity = max(1, -(-rows // self.QUANTUM)) * self.QUANTUM
        return (
            torch.zeros(1, channels, capacity, self.width),
            torch.zeros(1, 1, capacity, self.width),
        )
