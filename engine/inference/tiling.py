"""Tiled inference: overlapping tiles blended with feathered weights, automatic tile size, and
recovery from out-of-memory errors and half-precision overflow.

Layout. The LR image is cut into a grid of cores of at most `tile` x `tile` pixels (evenly sized).
Each tile runs on its core plus `overlap` LR pixels of context on every side (clipped at the
image border). Its output is blended in with a weight that is 1 inside the core, 0 in the outer
half of the context, and a raised-cosine ramp across the `overlap`-wide band centred on each
core boundary; the ramps of two neighbours add up to 1, and the accumulated weight is divided
out at the end. So a network whose receptive field reaches at most ceil(overlap / 2) LR pixels
gives exactly its whole-image output, and a flat image stays flat: no seam.

Image-wide pooling (A2F's channel attention, RNAN's global context, CRAN's CRAC kernels) would
see only the tile: for those networks (shared_pooling) the tiles run twice, the first pass
gathering each pooling's image-wide value (engine.archs.pooling) and the second, the one kept,
using it in every tile. HPINet's patch matching cannot be shared this way; it relies on overlap.

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

import torch
from torch import Tensor

from engine.archs.pooling import ImagePooling
from engine.descriptor import ModelDescriptor
from engine.errors import Cancelled, ProgressFn, SRStudioError, StopFn, never_stop, no_progress
from engine.inference.devices import free_memory_bytes

Forward = Callable[[Tensor], Tensor]

MIN_TILE = 32  # smallest automatic tile side (LR pixels)
MIN_OOM_TILE = 8  # out of memory below this side: give up
TILE_MULTIPLE = 8
GPU_FRACTION = 0.5  # of free GPU memory one tile may use (cuDNN workspaces, fragmentation)
RAM_FRACTION = 0.25  # of available RAM one tile may use (the output canvas lives there too)
CPU_TILE_BUDGET = 512 << 20  # a cap on the CPU: larger tiles are no faster there
HALF_FACTOR = 0.75  # fp16/bf16 autocast versus float32: measured 0.64-0.73 (bf16, CPU)

# Peak working memory of one float32 forward on the CPU, in bytes per LR input pixel, by scale.
# Measured by `.venv/bin/python bench/bench_tiling.py --calibrate --threads 1`: peak RSS growth of
# a 96x96 and a 192x192 forward after a warm-up (random weights, torch 2.13), the larger of the
# two per-pixel values plus 15%. Bicubic: its output and two resize passes, counted by hand.
_COST: dict[tuple[str, str], dict[int, int]] = {
    ("RNAN", "paper"): {2: 20300, 3: 20000, 4: 23000},
    ("RNAN", "light"): {2: 8200, 3: 11100, 4: 17400},
    ("RNAN", "tiny"): {2: 2900, 3: 4600, 4: 7100},
    ("CRAN", "paper"): {2: 3000, 3: 6900, 4: 12300},
    ("CRAN", "light"): {2: 3300, 3: 6900, 4: 12000},
    ("CRAN", "tiny"): {2: 2700, 3: 3700, 4: 7300},
    ("A2F", "S"): {2: 4600, 3: 4800, 4: 4600},
    ("A2F", "SD"): {2: 5200, 3: 4500, 4: 4600},
    ("A2F", "M"): {2: 8500, 3: 10200, 4: 10400},
    ("A2F", "L"): {2: 11100, 3: 11100, 4: 11400},
    ("HPINet", "S"): {2: 12000, 3: 14800, 4: 15700},
    ("HPINet", "M"): {2: 13300, 3: 13200, 4: 15400},
    ("HPINet", "L"): {2: 21600, 3: 20700, 4: 29800},
    ("HPINet", "T"): {2: 5100, 3: 4800, 4: 9500},
    ("Bicubic", "MATLAB"): {s: 4 * 4 * 3 * s * s for s in (2, 3, 4)},
}
UNKNOWN_COST = 60_000  # a network not calibrated: assume a heavy one
# HPINet's patch matching holds three (patches x patches) float32 arrays, with patches =
# pixels / 10^2 for its smallest patch (12 pixels, stride 10).
_HPINET_QUADRATIC = 3 * 4 / 100**2


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
    """Working memory of one forward, per LR input pixel, for a tile of `pixels` pixels (only
    HPINet's cost grows with the tile; the others are flat)."""
    by_scale = _COST.get((descriptor.family, descriptor.variant))
    if by_scale is None:
        cost = float(UNKNOWN_COST)
    else:  # an uncalibrated scale: the costliest calibrated one
        cost = float(by_scale.get(descriptor.scale, max(by_scale.values())))
    if descriptor.family == "HPINet":
        cost += _HPINET_QUADRATIC * pixels
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


def _split(start: int, stop: int, tile: int) -> list[tuple[int, int]]:
    """[start, stop) cut into the fewest pieces of at most `tile`, evenly sized."""
    n = max(1, -(-(stop - start) // tile))
    bounds = [start + (stop - start) * i // n for i in range(n + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _split_rect(rect: Rect, tile: int, reach: int, height: int, width: int) -> list[Rect]:
    """Tiles of at most `tile` over `rect`. An image side no longer than a tile with its context
    (tile + 2 * overlap = `reach`) is not cut at all: every piece would read the whole side anyway,
    so cutting it would only repeat the same work."""
    whole_rows = (rect.top, rect.bottom) == (0, height) and height <= reach
    whole_cols = (rect.left, rect.right) == (0, width) and width <= reach
    rows = [(0, height)] if whole_rows else _split(rect.top, rect.bottom, tile)
    cols = [(0, width)] if whole_cols else _split(rect.left, rect.right, tile)
    return [Rect(t, l, b, r) for t, b in rows for l, r in cols]


def _ramp(lo: int, hi: int, core: tuple[int, int], length: int, half: int, scale: int) -> Tensor:
    """Blend weights along one axis for the HR pixels of LR span [lo, hi) around `core`, in an
    image `length` LR pixels long: raised-cosine ramps of LR width 2 * half centred on each core
    boundary inside the image."""
    u = lo + (torch.arange((hi - lo) * scale, dtype=torch.float64) + 0.5) / scale  # LR position
    w = torch.ones_like(u)
    a, b = core
    if half == 0:
        w *= (u >= a) & (u < b)
    else:
        if a > 0:
            w *= _raised_cosine((u - (a - half)) / (2 * half))
        if b < length:
            w *= _raised_cosine(((b + half) - u) / (2 * half))
    return w.float()


def _raised_cosine(t: Tensor) -> Tensor:
    return 0.5 - 0.5 * torch.cos(math.pi * t.clamp(0, 1))


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
    """One tile through the network; redone in float32 when half precision overflowed."""
    patch = patch.clone(memory_format=torch.contiguous_format)  # the forward may work in place
    with torch.no_grad():
        y = forward(patch.to(device=device, dtype=dtype))
        if dtype != torch.float32 and not bool(torch.isfinite(y).all()):
            del y
            y = forward(patch.to(device=device, dtype=torch.float32))
        return y.to(device="cpu", dtype=torch.float32)


def upscale_tiled(
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
) -> Tensor:
    """x: (1, C, H, W) float32 on the CPU -> (1, C', H * scale, W * scale) float32 on the CPU.
    tile: LR core side, None = the whole image in one pass. shared_pooling: the network pools
    only through engine.archs.pooling; when the image takes several tiles, a first pass over them
    gathers the image-wide pooled values that the second pass, the one kept, uses in every tile.
    on_progress(done, total) after each tile (total grows when an out-of-memory error splits the
    remaining tiles); should_stop() is asked before each tile and raises Cancelled."""
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"expected a (1, C, H, W) tensor, got {tuple(x.shape)}")
    if tile is not None and tile < 1:
        raise ValueError(f"tile must be None or >= 1, got {tile}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
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
    out: Tensor | None = None
    weight: Tensor | None = None
    for core, window, y in tiler.tiles(on_progress, pooling):
        if core == whole and window == whole:
            on_progress(1, 1)
            return y  # the whole image in one pass: nothing to blend
        wy = _ramp(window.top, window.bottom, (core.top, core.bottom), height, half, scale)
        wx = _ramp(window.left, window.right, (core.left, core.right), width, half, scale)
        ys, xs = _support(wy), _support(wx)
        w = wy[ys, None] * wx[None, xs]
        if out is None or weight is None:
            out = torch.zeros(1, y.shape[1], height * scale, width * scale)
            weight = torch.zeros(1, 1, height * scale, width * scale)
        oy = slice(window.top * scale + ys.start, window.top * scale + ys.stop)
        ox = slice(window.left * scale + xs.start, window.left * scale + xs.stop)
        out[:, :, oy, ox].addcmul_(y[:, :, ys, xs], w)
        weight[:, :, oy, ox] += w
    assert out is not None and weight is not None
    return out.div_(weight)


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
    ) -> None:
        self.forward, self.x, self.side, self.overlap, self.scale = forward, x, side, overlap, scale
        self.device, self.dtype, self.should_stop = device, dtype, should_stop
        self.height, self.width = x.shape[-2:]

    def layout(self, rects: list[Rect] | None = None) -> list[Rect]:
        h, w = self.height, self.width
        reach = self.side + 2 * self.overlap
        rects = rects or [Rect(0, 0, h, w)]
        return [r for rect in rects for r in _split_rect(rect, self.side, reach, h, w)]

    def tiles(
        self, on_progress: ProgressFn, pooling: ImagePooling | None = None
    ) -> Iterator[tuple[Rect, Rect, Tensor]]:
        """(core, window, output) for every tile; the window is the core plus its context."""
        pending = deque(self.layout())
        done, ov = 0, self.overlap
        while pending:
            if self.should_stop():
                raise Cancelled()
            core = pending[0]
            window = Rect(
                max(0, core.top - ov),
                max(0, core.left - ov),
                min(self.height, core.bottom + ov),
                min(self.width, core.right + ov),
            )
            records: list = []
            run = self.forward
            if pooling is not None:
                run = functools.partial(self._recorded, pooling, window, core, records)
            patch = self.x[:, :, window.top : window.bottom, window.left : window.right]
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
                pending = deque(self.layout(list(pending)))
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

    def _recorded(
        self, pooling: ImagePooling, window: Rect, core: Rect, records: list, patch: Tensor
    ) -> Tensor:
        box = (window.top, window.left, window.bottom, window.right)
        with pooling.tile(box, (core.top, core.left, core.bottom, core.right)) as record:
            records[:] = [record]  # a float32 redo replaces the half-precision try
            return self.forward(patch)


def part_progress(on_progress: ProgressFn, index: int, count: int) -> ProgressFn:
    """Report pass `index` of `count` equal passes as part of one overall progress."""
    if count == 1:
        return on_progress

    def report(done: int, total: int) -> None:
        on_progress(index * total + done, count * total)

    return report


def _support(w: Tensor) -> slice:
    """The span where a 1-D weight is non-zero (it is one run)."""
    nonzero = torch.nonzero(w).flatten()
    return slice(int(nonzero[0]), int(nonzero[-1]) + 1)
