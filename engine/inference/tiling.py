"""Tiled inference: overlapping tiles blended with feathered weights into bands of finished
output rows, automatic tile size, and recovery from out-of-memory errors and half-precision
overflow.

Layout. The LR image is cut into a grid of cores of at most `tile` x `tile` pixels (evenly sized),
run row of tiles by row of tiles. Each tile runs on its core plus `overlap` LR pixels of context on
every side (clipped at the image border), read into one input buffer reused from tile to tile. Its
output is blended in with a weight that is 1 inside the core, 0 in the outer half of the context,
and a raised-cosine ramp across the `overlap`-wide band centred on each core boundary; the ramps of
two neighbours add up to 1, and the accumulated weight is divided out. So a network whose
receptive field reaches at most ceil(overlap / 2) LR pixels gives exactly its whole-image output,
and a flat image stays flat: no seam. Rows no tile left can reach are handed on at once
(stream_tiled; engine.inference.blending): no full-size canvas or weight image is ever made.

Image-wide pooling (A2F's channel attention, RNAN's global context, CRAN's CRAC kernels) sees only
the tile. With shared_pooling the tiles run twice, the first pass gathering each pooling's
image-wide value (engine.archs.pooling) and the second, the one kept, using it in every tile; the
Upscaler asks for that for small tiles or when exact tiles are wanted, and lets large tiles pool
on their own in one pass. HPINet's patch matching cannot be shared this way; it relies on overlap.

Out of memory (CUDA, MPS, or a failed CPU allocation): the cache is emptied, the tile side is
halved and every tile not done yet, the failed one included, is cut into tiles of the new side;
finished tiles keep their results.

Half precision: each tile's input is cast to `dtype` and the forward is expected to run in that
precision (the Upscaler's forward autocasts by input dtype); an output with NaN or Inf is
redone in float32.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from engine.archs.pooling import ImagePooling
from engine.archs.registry import memory_cost
from engine.descriptor import ModelDescriptor
from engine.errors import Cancelled, ProgressFn, SRStudioError, StopFn, never_stop, no_progress
from engine.inference.blending import BlockAccumulator, Convert, Span, WeightCache
from engine.inference.devices import free_memory_bytes

Forward = Callable[[Tensor], Tensor]

MIN_TILE = 32  # smallest automatic tile side (LR pixels)
MIN_OOM_TILE = 8  # out of memory below this side: give up
# The output rows held while a row of tiles runs (converted as they finish, engine.inference.
# blending: 3 bytes an HR pixel at 8 bits, 6 at 16) are kept under BAND_BYTES by making tiles
# wider than tall.
BAND_BYTES = 192 << 20
BAND_BYTES_PER_PIXEL = 6
MIN_BAND_ROWS = 16
TILE_MULTIPLE = 8
GPU_FRACTION = 0.5  # of free GPU memory one tile may use (cuDNN workspaces, fragmentation)
RAM_FRACTION = 0.25  # of available RAM one tile may use (the input and output live there too)
# A cap on the CPU. Larger tiles repeat less context: A2F-SD x4 on a 12 MP photo gets tiles of
# 600 LR pixels with it and the whole run stays within 1.5 GiB (BENCHMARKS.md).
CPU_TILE_BUDGET = 768 << 20
HALF_FACTOR = 0.75  # fp16/bf16 autocast versus float32: measured 0.64-0.73 (bf16, CPU)

UNKNOWN_COST = 60_000  # bytes per LR pixel of a network not calibrated: assume a heavy one


@dataclass(frozen=True)
class Rect:
    """A core region of the LR image: rows [top, bottom), columns [left, right)."""

    top: int
    left: int
    bottom: int
    right: int


def estimate_bytes_per_lr_pixel(
    descriptor: ModelDescriptor, dtype: torch.dtype = torch.float32, *, pixels: int = 0
) -> float:
    """Working memory of one forward, per LR input pixel, for a tile of `pixels` pixels: the
    family's own MemoryCost (engine.archs), UNKNOWN_COST for a network it does not know."""
    known = memory_cost(descriptor.family)
    cost = known and known.bytes_per_lr_pixel(descriptor.variant, descriptor.scale, pixels)
    if cost is None:
        cost = float(UNKNOWN_COST)
    if dtype in (torch.float16, torch.bfloat16):
        cost *= HALF_FACTOR
    return cost


def _tile_budget(device: torch.device, free_bytes: int) -> float:
    if device.type == "cuda":
        return free_bytes * GPU_FRACTION
    return min(free_bytes * RAM_FRACTION, CPU_TILE_BUDGET)


def _fits(descriptor: ModelDescriptor, dtype: torch.dtype, pixels: int, budget: float) -> bool:
    return pixels * estimate_bytes_per_lr_pixel(descriptor, dtype, pixels=pixels) <= budget


def auto_tile_size(
    descriptor: ModelDescriptor,
    device: torch.device,
    dtype: torch.dtype,
    *,
    free_bytes: int | None = None,
    image_size: tuple[int, int] | None = None,
) -> int | None:
    """An LR tile side (a multiple of 8, at least 32) whose tiles, context included, use a safe
    share of the free memory of `device`; None when `image_size` (H, W) is given and the whole
    image fits in one pass."""
    device = torch.device(device)
    if free_bytes is None:
        free_bytes = free_memory_bytes(device)
    budget = _tile_budget(device, free_bytes)
    if image_size is not None and _fits(descriptor, dtype, image_size[0] * image_size[1], budget):
        return None
    overlap = descriptor.tile_overlap
    side = math.isqrt(int(budget / estimate_bytes_per_lr_pixel(descriptor, dtype)))
    while side > 0 and not _fits(descriptor, dtype, side * side, budget):
        side -= TILE_MULTIPLE  # HPINet's quadratic term
    tile = (side - 2 * overlap) // TILE_MULTIPLE * TILE_MULTIPLE
    return max(MIN_TILE, tile)


def tile_shape(side: int, width: int, *, overlap: int, scale: int, banded: bool) -> tuple[int, int]:
    """(rows, columns) of a tile's core: side x side, unless (banded) the rows of output that one
    row of such tiles spans, held as float32 sums and weights until finished, would exceed
    BAND_BYTES for an LR image `width` pixels wide; then fewer rows and more columns, about the
    same area."""
    if not banded:
        return side, side
    row_bytes = width * scale * BAND_BYTES_PER_PIXEL
    rows = BAND_BYTES // row_bytes // scale - overlap
    rows = max(MIN_BAND_ROWS, rows // TILE_MULTIPLE * TILE_MULTIPLE)
    return (side, side) if side <= rows else (rows, side * side // rows)


def layout(height: int, width: int, tile: int, *, overlap: int, scale: int) -> list[Rect]:
    """The cores the tiler cuts an LR image into for a tile side (before any out-of-memory
    halving)."""
    shape = tile_shape(tile, width, overlap=overlap, scale=scale, banded=True)
    return _split_rect(Rect(0, 0, height, width), shape, overlap, height, width)


def _split(start: int, stop: int, tile: int) -> list[tuple[int, int]]:
    """[start, stop) cut into the fewest pieces of at most `tile`, evenly sized."""
    n = max(1, -(-(stop - start) // tile))
    bounds = [start + (stop - start) * i // n for i in range(n + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _split_rect(
    rect: Rect, tile: tuple[int, int], overlap: int, height: int, width: int
) -> list[Rect]:
    """Tiles of at most `tile` (rows, columns) over `rect`. An image side no longer than a tile
    with its context (tile + 2 * overlap) is not cut at all: every piece would read the whole side
    anyway, so cutting it would only repeat the same work."""
    whole_rows = (rect.top, rect.bottom) == (0, height) and height <= tile[0] + 2 * overlap
    whole_cols = (rect.left, rect.right) == (0, width) and width <= tile[1] + 2 * overlap
    rows = [(0, height)] if whole_rows else _split(rect.top, rect.bottom, tile[0])
    cols = [(0, width)] if whole_cols else _split(rect.left, rect.right, tile[1])
    return [Rect(t, l, b, r) for t, b in rows for l, r in cols]


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def _release(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def _run(forward: Forward, patch: Tensor, device: torch.device, dtype: torch.dtype) -> Tensor:
    """One tile through the network; redone in float32 when half precision overflowed. `patch`
    is the tiler's own buffer: the forward may work in place on it."""
    with torch.no_grad():
        y = forward(patch.to(device=device, dtype=dtype))
        if dtype != torch.float32 and not bool(torch.isfinite(y).all()):
            del y
            y = forward(patch.to(device=device, dtype=torch.float32))
        return y.to(device="cpu", dtype=torch.float32)


def upscale_tiled(forward: Forward, x: Tensor, **options: Any) -> Tensor:
    """x: (1, C, H, W) float32 on the CPU -> (1, C', H * scale, W * scale) float32 on the CPU:
    the bands of stream_tiled (same keyword arguments) put together."""
    scale = options["scale"]
    out: Tensor | None = None
    row = 0
    for band in stream_tiled(forward, x, **options):
        if out is None:
            if band.shape[2] == x.shape[2] * scale:
                # the whole image in one band (one pass, or one row of tiles): kept as it is, and
                # the stream run to its end (its last progress report), which leaves it alone
                out, row = band, band.shape[2]
                continue
            out = torch.empty(1, band.shape[1], x.shape[2] * scale, x.shape[3] * scale)
        out[:, :, row : row + band.shape[2]] = band
        row += band.shape[2]
    assert out is not None
    return out.contiguous()  # a band may be a channels-last view of the blend's store


def stream_tiled(
    forward: Forward,
    x: Tensor,
    *,
    scale: int,
    tile: int | None,
    overlap: int,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
    shared_pooling: bool = False,
    on_progress: ProgressFn = no_progress,
    should_stop: StopFn = never_stop,
    convert: Convert | None = None,
    fixed_windows: bool = False,
) -> Iterator[Tensor]:
    """x: (1, C, H, W) float32 (or uint8 samples, read as /255) on the CPU -> bands of output
    rows, top to bottom, each
    (1, C', rows, W * scale) float32 on the CPU, handed on as soon as no tile left can add to
    them (engine.inference.blending); a band is a view valid until the next one is asked for.
    convert: what finished pixels are kept and handed on as, made from each finished piece
    (1, C', h, w) as soon as it is finished: the bands are then (rows, W * scale, channels) of
    what it returns (e.g. 8-bit samples: a row of tiles held in 3 bytes a pixel, not 12).
    tile: LR core side, None = the whole image in one pass. shared_pooling: the network pools
    only through engine.archs.pooling; when the image takes several tiles, a first pass over them
    gathers the image-wide pooled values that the second pass, the one kept, uses in every tile.
    on_progress(done, total) after each tile (total grows when an out-of-memory error splits the
    remaining tiles); should_stop() is asked before each tile and raises Cancelled.
    fixed_windows: every window of the image gets the shape of the largest core plus its context
    (a window at the border reaches further into the image instead of being clipped), for
    backends that compile a network per input shape (engine.inference.openvino_backend)."""
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"expected a (1, C, H, W) tensor, got {tuple(x.shape)}")
    if tile is not None and tile < 1:
        raise ValueError(f"tile must be None or >= 1, got {tile}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    if x.dtype != torch.uint8:  # 8-bit samples are divided by 255 a window at a time (_input)
        x = x.detach().to(device="cpu", dtype=torch.float32)
    height, width = x.shape[-2:]
    tiler = _Tiler(
        forward,
        x,
        side=max(height, width) if tile is None else tile,
        overlap=overlap,
        scale=scale,
        device=torch.device(device),
        dtype=dtype,
        should_stop=should_stop,
        banded=tile is not None,
        fixed=fixed_windows,
    )
    pooling = None
    if shared_pooling and len(tiler.layout()) > 1:
        pooling = ImagePooling(height, width)
        for _ in tiler.tiles(part_progress(on_progress, 0, 2), pooling):
            pass  # the recording pass: its outputs are not kept
        pooling.share()
        on_progress = part_progress(on_progress, 1, 2)
    whole = Rect(0, 0, height, width)
    half = overlap // 2
    weights = WeightCache(half, scale)
    blend = BlockAccumulator(width * scale, convert or _channels_last)
    reach = _PendingReach(tiler, blend.bounds, half, scale)
    for core, window, y in tiler.tiles(on_progress, pooling):
        if core == whole and window == whole:
            on_progress(1, 1)
            yield y if convert is None else convert(y)  # the whole image in one pass
            return
        w, ys, xs = weights.get(_rows(core, window, height), _cols(core, window, width))
        blend.add(y[:, :, ys, xs], w, window.top * scale + ys.start, window.left * scale + xs.start)
        del y
        band = blend.finish(reach.limits())
        if band is not None:
            yield band if convert is not None else band.permute(2, 0, 1).unsqueeze(0)


def _channels_last(piece: Tensor) -> Tensor:
    return piece[0].permute(1, 2, 0)


class _PendingReach:
    """Per HR column block, the first HR row a tile not done yet can add to (the image's height
    when none can): what BlockAccumulator.finish may convert. The pending tiles' reach is worked
    out once per layout, as (block, top row) entries in tile order: tiles are only taken from
    the front until an out-of-memory split lays the rest out again, so each call is one numpy
    minimum over the entries of the tiles still pending. (A loop over pending tiles x blocks at
    every tile was quadratic in the tiles: thousands of them on a 48 MP image in small tiles.)"""

    def __init__(self, tiler: _Tiler, bounds: list[tuple[int, int]], half: int, scale: int):
        self.tiler, self.half, self.scale = tiler, half, scale
        self.c0 = np.array([c0 for c0, _ in bounds])
        self.c1 = np.array([c1 for _, c1 in bounds])
        self._layout: deque[Rect] | None = None  # the pending tiles the entries describe
        self._count = 0
        self._starts: list[int] = []  # tile k's first entry
        self._blocks = self._tops = np.zeros(0, dtype=np.int64)

    def limits(self) -> list[int]:
        pending = self.tiler.pending
        if pending is not self._layout:
            self._index(pending)
        start = self._starts[self._count - len(pending)]  # tiles taken from the front since
        limits = np.full(len(self.c0), self.tiler.height * self.scale, dtype=np.int64)
        np.minimum.at(limits, self._blocks[start:], self._tops[start:])
        return limits.tolist()

    def _index(self, pending: deque[Rect]) -> None:
        tiler, half, scale = self.tiler, self.half, self.scale
        blocks: list[int] = []
        tops: list[int] = []
        self._starts = [0]
        for core in pending:
            window = tiler.window(core)
            top = _rows(core, window, tiler.height).reach(half)[0] * scale
            left, right = (v * scale for v in _cols(core, window, tiler.width).reach(half))
            first = int(np.searchsorted(self.c1, left, side="right"))  # c1 > left
            end = int(np.searchsorted(self.c0, right, side="left"))  # c0 < right
            blocks.extend(range(first, end))
            tops.extend([top] * (end - first))
            self._starts.append(len(blocks))
        self._layout, self._count = pending, len(pending)
        self._blocks = np.array(blocks, dtype=np.intp)
        self._tops = np.array(tops, dtype=np.int64)


def _rows(core: Rect, window: Rect, height: int) -> Span:
    return Span(window.top, window.bottom, core.top, core.bottom, height)


def _cols(core: Rect, window: Rect, width: int) -> Span:
    return Span(window.left, window.right, core.left, core.right, width)


class _Tiler:
    """The tiles of one image and the network's output for each, the tile side halved after an
    out-of-memory error (for the rest of this image, later passes included)."""

    def __init__(
        self,
        forward: Forward,
        x: Tensor,
        *,
        side: int,
        overlap: int,
        scale: int,
        device: torch.device,
        dtype: torch.dtype,
        should_stop: StopFn,
        banded: bool = False,
        fixed: bool = False,
    ) -> None:
        self.forward, self.x, self.side, self.overlap, self.scale = forward, x, side, overlap, scale
        self.device, self.dtype, self.should_stop = device, dtype, should_stop
        self.height, self.width = x.shape[-2:]
        self.banded, self.fixed = banded, fixed
        self._window_shape: tuple[int, int] | None = None  # with `fixed`, set by layout()
        self.pending: deque[Rect] = deque()  # tiles not done yet, during tiles()
        self._buffer: Tensor | None = None  # the input windows, reused from tile to tile

    def layout(self, rects: list[Rect] | None = None) -> list[Rect]:
        h, w, ov = self.height, self.width, self.overlap
        shape = tile_shape(self.side, w, overlap=ov, scale=self.scale, banded=self.banded)
        rects = rects or [Rect(0, 0, h, w)]
        cores = [r for rect in rects for r in _split_rect(rect, shape, ov, h, w)]
        if self.fixed:
            self._window_shape = fixed_shape(cores, ov, h, w)
        return cores

    def tiles(
        self, on_progress: ProgressFn, pooling: ImagePooling | None = None
    ) -> Iterator[tuple[Rect, Rect, Tensor]]:
        """(core, window, output) for every tile; the window is the core plus its context."""
        pending = self.pending = deque(self.layout())
        done = 0
        while pending:
            if self.should_stop():
                raise Cancelled()
            core = pending[0]
            window = self.window(core)
            records: list = []
            run = self.forward
            if pooling is not None:
                run = functools.partial(self._recorded, pooling, window, core, records)
            patch = self._input(window)
            try:
                y = _run(run, patch, self.device, self.dtype)
            except RuntimeError as exc:
                if not is_out_of_memory(exc):
                    raise
                y = None  # leave the except block first, so the failed tile's tensors are freed
            if y is None:
                _release(self.device)
                if self.side // 2 < MIN_OOM_TILE:
                    raise SRStudioError(
                        f"out of memory on {self.device} even with {self.side}-pixel tiles; close "
                        "other programs, choose a lower precision or run on the CPU"
                    ) from None
                self.side //= 2
                pending = self.pending = deque(self.layout(list(pending)))
                continue
            pending.popleft()
            rows, cols = window.bottom - window.top, window.right - window.left
            expected = (rows * self.scale, cols * self.scale)
            if y.dim() != 4 or tuple(y.shape[-2:]) != expected:
                raise SRStudioError(
                    f"the network returned {tuple(y.shape)} for a {rows}x{cols} input; "
                    f"expected {expected} at x{self.scale}"
                )
            if pooling is not None and records:
                pooling.commit(records[-1])
            yield core, window, y
            done += 1
            on_progress(done, done + len(pending))

    def window(self, core: Rect) -> Rect:
        if self._window_shape is None:
            return window(core, self.overlap, self.height, self.width)
        return fixed_window(core, self._window_shape, self.overlap, self.height, self.width)

    def _input(self, window: Rect) -> Tensor:
        """The window's pixels, copied into a buffer reused from tile to tile."""
        rows, cols = window.bottom - window.top, window.right - window.left
        n = self.x.shape[1] * rows * cols
        if self._buffer is None or self._buffer.numel() < n:
            self._buffer = torch.empty(n)
        patch = self._buffer[:n].view(1, self.x.shape[1], rows, cols)
        patch.copy_(self.x[:, :, window.top : window.bottom, window.left : window.right])
        return patch.div_(255.0) if self.x.dtype == torch.uint8 else patch

    def _recorded(
        self, pooling: ImagePooling, window: Rect, core: Rect, records: list, patch: Tensor
    ) -> Tensor:
        box = (window.top, window.left, window.bottom, window.right)
        with pooling.tile(box, (core.top, core.left, core.bottom, core.right)) as record:
            records[:] = [record]  # a float32 redo replaces the half-precision try
            return self.forward(patch)


def window(core: Rect, overlap: int, height: int, width: int) -> Rect:
    """The core plus its context, clipped at the image border."""
    return Rect(
        max(0, core.top - overlap),
        max(0, core.left - overlap),
        min(height, core.bottom + overlap),
        min(width, core.right + overlap),
    )


def fixed_shape(cores: list[Rect], overlap: int, height: int, width: int) -> tuple[int, int]:
    """fixed_windows' one shape: the largest core plus its context, within the image."""
    rows = max(c.bottom - c.top for c in cores) + 2 * overlap
    cols = max(c.right - c.left for c in cores) + 2 * overlap
    return min(height, rows), min(width, cols)


def fixed_window(core: Rect, shape: tuple[int, int], overlap: int, height: int, width: int) -> Rect:
    """The core's window of `shape`: its context, moved inside the image at the border."""
    rows, cols = shape
    top = min(max(0, core.top - overlap), height - rows)
    left = min(max(0, core.left - overlap), width - cols)
    return Rect(top, left, top + rows, left + cols)


def windows(
    cores: list[Rect], overlap: int, height: int, width: int, *, fixed: bool = False
) -> list[Rect]:
    """The window each core is run in (stream_tiled's, with `fixed` its fixed_windows')."""
    if not fixed:
        return [window(c, overlap, height, width) for c in cores]
    shape = fixed_shape(cores, overlap, height, width)
    return [fixed_window(c, shape, overlap, height, width) for c in cores]


def part_progress(on_progress: ProgressFn, index: int, count: int) -> ProgressFn:
    """Report pass `index` of `count` equal passes as part of one overall progress."""
    if count == 1:
        return on_progress

    def report(done: int, total: int) -> None:
        on_progress(index * total + done, count * total)

    return report
