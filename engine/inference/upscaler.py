"""Upscaler: a model descriptor plus options -> upscaled tensors and images.

Precision: the weights stay float32; fp16/bf16 run the network under autocast, decided by the dtype
of each input tile, so the tiler can redo a tile that came out non-finite in plain float32.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import logging
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.descriptor import ModelDescriptor
from engine.errors import ProgressFn, SRStudioError, StopFn, never_stop, no_progress
from engine.imaging.input_quality import InputQuality
from engine.imaging.io import ImageData, OutputLayout
from engine.imaging.output_store import OutputStore
from engine.imaging.resize import imresize
from engine.imaging.stream_writers import write_bands
from engine.inference import allocator
from engine.inference.backends import resolve_backend
from engine.inference.blending import Convert
from engine.inference.cascade import with_cleanup
from engine.inference.cleanup_choice import CleanupDecision, CleanupReason
from engine.inference.cleanup_choice import check_mode as check_cleanup_mode
from engine.inference.cleanup_choice import decide as decide_cleanup
from engine.inference.devices import resolve_device, resolve_dtype
from engine.inference.ensemble import TRANSFORMS, ensemble, ensemble_forward
from engine.inference.tiling import (
    auto_tile_size,
    layout,
    part_progress,
    stream_tiled,
    upscale_tiled,
    windows,
)
from engine.progress import counting_passes

PRECISIONS = ("fp32", "fp16", "bf16")
ALPHA_MODES = ("bicubic", "network")
MAX_OUTSCALE = 16.0
# Tile cores of at least this many LR pixels pool on their own (one pass) unless exact_tiles is
# set; an image with a smaller core runs twice, sharing the pooled values (BENCHMARKS.md: A2F-SD
# x4, cores of 250 x 250 on a photo: +0.0002 dB; x2, cores of 288 x 180 on Set14: -0.0069 dB).
ONE_PASS_MIN_PIXELS = 240 * 240

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpscaleOptions:
    """tile: LR tile side in pixels; None = auto (from free memory), 0 = the whole image at once.
    tile_overlap: LR pixels each tile shares with its neighbours (None: the model's own).
    ensemble: x8 self-ensemble (flips and rotations averaged; 8 times slower).
    device: "auto", "cpu", "cuda", "cuda:N" or "mps". precision: "fp32", "fp16" or "bf16".
    outscale: final scale of the output relative to the input (e.g. 1.5 or 6), reached by a
    MATLAB-bicubic resize of the network's output (output sides: input sides x outscale, rounded
    half up); None = the model's scale.
    alpha: how an alpha channel is upscaled: "bicubic" (default) or "network" (as a gray image).
    exact_tiles: for networks that pool over the whole image (A2F, RNAN, CRAN), always run the
    tiles twice so that they share the image-wide pooled values (engine.archs.pooling); by
    default that is done only when some tile core is smaller than ONE_PASS_MIN_PIXELS, and
    larger tiles pool on their own in one pass (BENCHMARKS.md: within 0.005 dB there).
    backend: "torch" (the reference), "openvino" (CPU; engine.inference.openvino_backend) or
    "auto" (OpenVINO where it can run the network, else PyTorch). An image whose tiles share
    pooled values runs on PyTorch: a converted network pools within its input only.
    cleanup: the clean-up network (engine.archs.cleanup) before the upscaler: "on", "off", or
    "auto" (for compressed JPEGs and noisy images; engine.inference.cleanup_choice). The engine
    default is "off"; the CLI and the app default to "auto"."""

    tile: int | None = None
    tile_overlap: int | None = None
    ensemble: bool = False
    device: str = "auto"
    precision: str = "fp32"
    outscale: float | None = None
    alpha: str = "bicubic"
    exact_tiles: bool = False
    backend: str = "torch"
    cleanup: str = "off"

    def __post_init__(self) -> None:
        check_cleanup_mode(self.cleanup)
        if self.tile is not None and (isinstance(self.tile, bool) or self.tile < 0):
            raise SRStudioError(
                f"tile must be None (auto), 0 (whole image) or > 0, got {self.tile}"
            )
        if self.tile_overlap is not None and self.tile_overlap < 0:
            raise SRStudioError(f"tile overlap must be >= 0, got {self.tile_overlap}")
        if self.precision not in PRECISIONS:
            raise SRStudioError(f"precision must be one of {', '.join(PRECISIONS)}")
        if self.alpha not in ALPHA_MODES:
            raise SRStudioError(f"alpha must be one of {', '.join(ALPHA_MODES)}")
        if self.outscale is not None and not (
            math.isfinite(self.outscale) and 0 < self.outscale <= MAX_OUTSCALE
        ):
            raise SRStudioError(
                f"outscale must be > 0 and <= {MAX_OUTSCALE:g}, got {self.outscale}"
            )


@dataclass(frozen=True)
class RunPlan:
    """tiles: tiles an image is cut into; rounds: times the tiler goes over them (2 when pooled
    values are shared, x8 for a self-ensemble then); passes: network passes a tile in a round
    (8 for a self-ensemble run tile by tile). The tiler reports tiles x rounds. What the
    network runs in all: rounds x passes x (tiles runs on `pixels` LR pixels)."""

    tiles: int
    rounds: int
    passes: int
    pixels: int = 0  # LR pixels the network reads in one round: the tiles with their context


class Upscaler:
    def __init__(
        self,
        descriptor: ModelDescriptor,
        options: UpscaleOptions | None = None,
        *,
        cleanup: ModelDescriptor | None = None,
    ) -> None:
        """`cleanup`: the clean-up network for options.cleanup "auto"/"on" (default: the
        installed one, engine.library.cleanup_weights)."""
        if descriptor.model is None:
            raise SRStudioError(f"{descriptor.label} has no network loaded")
        allocator.tune()  # keep tile-sized memory from being returned and faulted in again
        self.descriptor = descriptor
        self.options = options or UpscaleOptions()
        self.device = resolve_device(self.options.device)
        self.dtype = resolve_dtype(self.options.precision, self.device)
        self.model = descriptor.model.to(self.device).eval()
        self.backend = resolve_backend(
            self.options.backend, descriptor, self.device, self.options.precision
        )
        self._network: Any = self.model
        if self.backend == "openvino":
            from engine.inference.openvino_backend import OpenVinoNetwork

            self._network = OpenVinoNetwork(descriptor)
        self._run = self._ensembled(self._forward)
        # where tiles share pooled values (engine.archs.pooling works inside torch's module only)
        self._torch_run = self._ensembled(self._torch_forward)
        self._cleanup = cleanup
        self._cleaned: Upscaler | None = None
        self._cleanup_missing = self.options.cleanup == "off" or descriptor.family == "Bicubic"
        self._decided: tuple[ImageData, CleanupDecision] | None = None

    @property
    def cleaned(self) -> Upscaler | None:
        """The same upscaler with the clean-up network in front; made (and the network loaded)
        on first use only, so that estimates and clean images never pay for it."""
        if self._cleaned is None and not self._cleanup_missing:
            cleanup = self._cleanup or _installed_cleanup()
            if cleanup is None:
                self._cleanup_missing = True
                return None
            plain = dataclasses.replace(self.options, cleanup="off")
            upscaler = _trained_behind(self.descriptor, cleanup) or self.descriptor
            self._cleaned = Upscaler(with_cleanup(upscaler, cleanup), plain)
        return self._cleaned

    def cleanup_decision(
        self, img: ImageData, quality: InputQuality | None = None
    ) -> CleanupDecision:
        """Whether `img` goes through the clean-up network first, and why (measured once per
        image, or not at all when its `quality` is given: the methods below ask again as they
        call each other)."""
        if self._decided is not None and self._decided[0] is img:
            return self._decided[1]
        mode = "off" if self.descriptor.family == "Bicubic" else self.options.cleanup
        decision = decide_cleanup(mode, img, quality)  # bicubic: no network to clean up for
        if decision.on and self.cleaned is None:
            decision = CleanupDecision(False, CleanupReason.NO_NETWORK, decision.quality)
        self._decided = (img, decision)
        return decision

    def for_image(self, img: ImageData) -> Upscaler:
        """The upscaler that runs `img`: this one, or the one with the clean-up in front."""
        if self.cleaned is not None and self.cleanup_decision(img).on:
            return self.cleaned
        return self

    @property
    def network(self) -> Any:
        """What runs the forward passes (the torch module, or OpenVINO's network)."""
        return self._network

    @contextlib.contextmanager
    def counting_passes(self, on_pass: Callable[[], None]) -> Iterator[None]:
        """on_pass() after each network pass while the block runs, whichever runs the image
        (OpenVINO's network, or PyTorch's for an image whose tiles share pooled values)."""
        with contextlib.ExitStack() as stack:
            for network in {id(n): n for n in (self.model, self._network)}.values():
                stack.enter_context(counting_passes(network, on_pass))
            yield

    @property
    def scale(self) -> float:
        """The output/input size ratio (outscale when given, else the model's scale)."""
        return float(self.options.outscale or self.descriptor.scale)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        if self.options.outscale is None:
            return height * self.descriptor.scale, width * self.descriptor.scale
        s = self.options.outscale  # sizes rounded half up, never below 1 pixel
        return max(1, math.floor(height * s + 0.5)), max(1, math.floor(width * s + 0.5))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._network is not self.model:
            return self._network(x)  # OpenVINO: the precision follows the input's dtype
        return self._torch_forward(x)

    def _torch_forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            if x.dtype == torch.float32:
                return self.model(x)
            with torch.autocast(device_type=self.device.type, dtype=x.dtype):
                return self.model(x).float()

    def _shared(self, tile: int | None, height: int, width: int) -> bool:
        """Whether the tiles run twice to share image-wide pooled values: for networks that pool,
        when exact tiles are asked for or some tile's core is smaller than ONE_PASS_MIN_PIXELS."""
        if tile is None or not self.descriptor.shared_pooling:
            return False
        if self.options.exact_tiles:
            return True
        cores = layout(height, width, tile, overlap=self._overlap(), scale=self.descriptor.scale)
        smallest = min((c.bottom - c.top) * (c.right - c.left) for c in cores)
        return len(cores) > 1 and smallest < ONE_PASS_MIN_PIXELS

    def tiling(self, height: int, width: int) -> str:
        """How an LR image of this size is run, in words (for logs, reports and the app)."""
        tile = self._tile(height, width)
        shared = self._shared(tile, height, width)
        engine = ", OpenVINO" if self.backend == "openvino" and not shared else ""
        if tile is None:
            return "whole image, one pass" + engine
        text = f"tiles of {tile} (+{self._overlap()} context)"
        if not self.descriptor.shared_pooling:
            return text + engine
        if shared:
            return text + ", pooling shared between tiles (exact, 2 passes)"
        return text + ", pooling per tile (1 pass)" + engine

    def plan(self, height: int, width: int) -> RunPlan:
        """How many tiles an LR image of this size takes, how many rounds over them, and how many
        network passes each tile of a round makes (before any out-of-memory split)."""
        tile = self._tile(height, width)
        tiles, pixels = 1, height * width
        shared = self._shared(tile, height, width)
        if tile is not None:
            scale, overlap = self.descriptor.scale, self._overlap()
            cores = layout(height, width, tile, overlap=overlap, scale=scale)
            tiles = len(cores)
            fixed = self._fixed_windows(shared)
            run = windows(cores, overlap, height, width, fixed=fixed)
            pixels = sum((w.bottom - w.top) * (w.right - w.left) for w in run)
        ensemble = len(TRANSFORMS) if self.options.ensemble else 1
        if shared:  # each flip / rotation is tiled on its own, twice
            return RunPlan(tiles, rounds=2 * ensemble, passes=1, pixels=pixels)
        return RunPlan(tiles, rounds=1, passes=ensemble, pixels=pixels)

    def _layout(self, height: int, width: int) -> dict[str, Any]:
        """The tiler's arguments for an LR image of this size (and a log line saying them)."""
        log.info(
            "%s x%d: %s", self.descriptor.name, self.descriptor.scale, self.tiling(height, width)
        )
        tile = self._tile(height, width)
        shared = self._shared(tile, height, width)
        if shared and self.backend == "openvino":
            log.info("engine: PyTorch for this image (its tiles share pooled values)")
        return {
            "scale": self.descriptor.scale,
            "tile": tile,
            "overlap": self._overlap(),
            "device": self.device,
            "dtype": self.dtype,
            "shared_pooling": shared,
            "fixed_windows": self._fixed_windows(shared),
        }

    def _fixed_windows(self, shared: bool) -> bool:
        """Whether every tile of an image gets one shape: where OpenVINO compiles per shape."""
        return self.backend == "openvino" and not shared

    def _ensembled(self, forward: Any) -> Any:
        return ensemble_forward(forward) if self.options.ensemble else forward

    def _runner(self, shared: bool) -> Any:
        """The forward the tiler calls: PyTorch's module where the tiles share pooled values,
        else the backend's; ensembled if asked."""
        return self._torch_run if shared else self._run

    def _overlap(self) -> int:
        overlap = self.options.tile_overlap
        return self.descriptor.tile_overlap if overlap is None else overlap

    def _tile(self, height: int, width: int) -> int | None:
        tile = self.options.tile
        if tile is None:
            size = (height, width)
            return auto_tile_size(self.descriptor, self.device, self.dtype, image_size=size)
        return None if tile == 0 else tile

    def upscale_tensor(
        self,
        x: torch.Tensor,
        *,
        on_progress: ProgressFn = no_progress,
        should_stop: StopFn = never_stop,
    ) -> torch.Tensor:
        """(1, 3, H, W) float in [0, 1] -> (1, 3, H', W') float32 on the CPU, clamped to [0, 1],
        where (H', W') = output_size(H, W). Raises Cancelled when should_stop() turns True."""
        x = _checked(x)
        layout = self._layout(*x.shape[-2:])
        tiled = functools.partial(upscale_tiled, **layout, should_stop=should_stop)
        if self.options.ensemble and layout["shared_pooling"]:
            # each flip / rotation of the image gets its own tiles sharing their pooled values
            n = len(TRANSFORMS)
            y = ensemble(
                lambda t, i: tiled(
                    self._torch_forward, t, on_progress=part_progress(on_progress, i, n)
                ),
                x,
            )
        else:
            y = tiled(self._runner(layout["shared_pooling"]), x, on_progress=on_progress)
        size = self.output_size(*x.shape[-2:])
        if tuple(y.shape[-2:]) != size:
            y = imresize(y.float(), size=size)
        return y.float().clamp_(0, 1)

    def _streams(self, height: int, width: int) -> bool:
        """Whether the output can be made band by band: not when an outscale resizes the whole
        network output, nor for a tiled self-ensemble that shares pooling (each flip and rotation
        of the whole image is tiled on its own)."""
        scale = self.descriptor.scale
        if self.output_size(height, width) != (height * scale, width * scale):
            return False
        shared = self._shared(self._tile(height, width), height, width)
        return not (self.options.ensemble and shared)

    def upscale_bands(
        self,
        x: torch.Tensor,
        *,
        on_progress: ProgressFn = no_progress,
        should_stop: StopFn = never_stop,
        convert: Convert | None = None,
    ) -> Iterator[torch.Tensor]:
        """upscale_tensor's output as bands of rows, top to bottom, each (1, 3, rows, W') float32
        clamped to [0, 1], made as the tiles finish them (engine.inference.tiling.stream_tiled):
        no full-size image exists unless an outscale or a shared-pooling ensemble needs one (then
        it is one band). A band is a view valid until the next one is asked for. With `convert`
        (stream_tiled's: it gets the pieces unclamped), bands of what it makes instead."""
        x = _checked(x)
        if not self._streams(*x.shape[-2:]):
            whole = self.upscale_tensor(x, on_progress=on_progress, should_stop=should_stop)
            yield whole if convert is None else convert(whole)
            return
        layout = self._layout(*x.shape[-2:])
        for band in stream_tiled(
            self._runner(layout["shared_pooling"]),
            x,
            **layout,
            on_progress=on_progress,
            should_stop=should_stop,
            convert=convert,
        ):
            yield band.clamp_(0, 1) if convert is None else band

    def image_bands(
        self,
        img: ImageData,
        *,
        on_progress: ProgressFn = no_progress,
        should_stop: StopFn = never_stop,
        convert: Convert | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """upscale_image's pixels as bands of rows, top to bottom: (rgb (3, rows, W'), alpha
        (1, rows, W') or None), float32 in [0, 1], views valid until the next band. With
        `convert` (upscale_bands'), rgb is the band it makes, (rows, W', channels), and a gray
        image is left to it."""
        if (runner := self.for_image(img)) is not self:
            yield from runner.image_bands(
                img, on_progress=on_progress, should_stop=should_stop, convert=convert
            )
            return
        out_h, out_w = self.output_size(img.height, img.width)
        by_network = img.alpha is not None and self.options.alpha == "network"
        progress = _Progress(on_progress, 2 if by_network else 1)
        colour = self.upscale_bands(
            img.rgb.unsqueeze(0),
            on_progress=progress.part(0),
            should_stop=should_stop,
            convert=convert,
        )
        alpha: _AlphaRows | None = None
        if img.alpha is not None and by_network:
            gray = img.alpha.float().expand(3, -1, -1).unsqueeze(0)
            bands = self.upscale_bands(gray, on_progress=progress.part(1), should_stop=should_stop)
            alpha = _AlphaRows(bands=(b[0].mean(dim=0, keepdim=True) for b in bands))
        elif img.alpha is not None:
            alpha = _AlphaRows(source=img.alpha.float(), size=(out_h, out_w))
        row = 0
        for band in colour:
            if convert is not None:
                rgb, rows = band, band.shape[0]
            else:
                rgb = band[0]
                if img.grayscale:
                    rgb = _gray(rgb).contiguous()
                rows = rgb.shape[1]
            yield rgb, None if alpha is None else alpha.take(row, row + rows)
            row += rows
        if alpha is not None:
            alpha.close()

    def output_image(self, img: ImageData) -> ImageData:
        """What upscale_image returns, less its pixels: size, bit depth, grayscale, ICC, EXIF and
        DPI scaled with the pixels; rgb and alpha are zero-strided placeholders of the output's
        shape that take no memory (not to be written to)."""
        out_h, out_w = self.output_size(img.height, img.width)
        dpi = None
        if img.dpi is not None:
            dpi = (img.dpi[0] * out_w / img.width, img.dpi[1] * out_h / img.height)
        rgb = torch.zeros(3, 1, 1).expand(3, out_h, out_w)
        alpha = None if img.alpha is None else torch.zeros(1, 1, 1).expand(1, out_h, out_w)
        return dataclasses.replace(img, rgb=rgb, alpha=alpha, dpi=dpi)

    def upscale_to_file(
        self,
        img: ImageData,
        path: str | os.PathLike[str],
        *,
        format: str | None = None,
        quality: int = 95,
        compress_level: int = 6,
        on_progress: ProgressFn = no_progress,
        should_stop: StopFn = never_stop,
    ) -> tuple[ImageData, list[str]]:
        """upscale_image written to `path` as it is made, band by band
        (engine.imaging.stream_writers.write_bands): no float32 copy of the output exists, and
        PNG and TIFF are never held whole. Returns (output_image(img), write_bands' warnings);
        a cancel or a failure leaves no file."""
        if (runner := self.for_image(img)) is not self:
            return runner.upscale_to_file(
                img,
                path,
                format=format,
                quality=quality,
                compress_level=compress_level,
                on_progress=on_progress,
                should_stop=should_stop,
            )
        out = self.output_image(img)

        def rows(layout: OutputLayout) -> Iterator[np.ndarray]:
            return self.quantized_bands(
                img, layout, on_progress=on_progress, should_stop=should_stop
            )

        warnings = write_bands(
            path, out, rows, format=format, quality=quality, compress_level=compress_level
        )
        return out, warnings

    def upscale_to_store(
        self,
        img: ImageData,
        *,
        store: OutputStore | None = None,
        on_band: Callable[[int, np.ndarray], None] | None = None,
        on_progress: ProgressFn = no_progress,
        should_stop: StopFn = never_stop,
    ) -> OutputStore:
        """upscale_image kept on disk as it is made (engine.imaging.output_store), in the
        samples a PNG of it would hold: no float32 or full-size copy exists in memory. `store`:
        an empty one made for output_image(img) (default: a new one in the cache folder).
        `on_band(top, samples)` sees each band once it is kept. A cancel or a failure deletes
        the store."""
        store = store or OutputStore(self.output_image(img))
        try:
            for band in self.quantized_bands(
                img, store.layout, on_progress=on_progress, should_stop=should_stop
            ):
                top = store.rows
                store.append(band)
                if on_band is not None:
                    on_band(top, band)
        except BaseException:
            store.close()
            raise
        return store

    def quantized_bands(
        self,
        img: ImageData,
        layout: OutputLayout,
        *,
        on_progress: ProgressFn = no_progress,
        should_stop: StopFn = never_stop,
    ) -> Iterator[np.ndarray]:
        """image_bands as the rows `layout` writes, (rows, W', channels) 8- or 16-bit. The tiles'
        finished pieces are quantised at once, so a row of tiles is held in 3 bytes a pixel (6
        at 16 bits) instead of float sums; not where alpha is composited into the colour (JPEG
        of an image with alpha), which needs both at once."""
        if (runner := self.for_image(img)) is not self:
            yield from runner.quantized_bands(
                img, layout, on_progress=on_progress, should_stop=should_stop
            )
            return
        kw: dict[str, Any] = {"on_progress": on_progress, "should_stop": should_stop}
        if layout.composite and img.alpha is not None:
            for rgb, alpha in self.image_bands(img, **kw):
                yield layout.quantize(rgb, alpha)
            return

        def colour(piece: torch.Tensor) -> torch.Tensor:
            rgb = piece[0].clamp_(0, 1)
            return torch.from_numpy(layout.quantize(_gray(rgb) if img.grayscale else rgb, None))

        for rgb, alpha in self.image_bands(img, **kw, convert=colour):
            if layout.alpha and alpha is not None:
                yield np.concatenate([rgb.numpy(), layout.quantize_alpha(alpha)], axis=2)
            else:
                yield rgb.numpy()

    def upscale_image(
        self,
        img: ImageData,
        *,
        on_progress: ProgressFn = no_progress,
        should_stop: StopFn = never_stop,
    ) -> ImageData:
        """Colour through the network; alpha by bicubic or the network; grayscale stays grayscale;
        DPI scaled with the pixels; bit depth, ICC profile and EXIF carried over."""
        if (runner := self.for_image(img)) is not self:
            return runner.upscale_image(img, on_progress=on_progress, should_stop=should_stop)
        out_h, out_w = self.output_size(img.height, img.width)
        alpha_out = None if img.alpha is None else torch.empty(1, out_h, out_w)
        out = dataclasses.replace(
            self.output_image(img), rgb=torch.empty(3, out_h, out_w), alpha=alpha_out
        )
        row = 0
        for rgb, alpha in self.image_bands(img, on_progress=on_progress, should_stop=should_stop):
            rows = rgb.shape[1]
            out.rgb[:, row : row + rows] = rgb
            if out.alpha is not None and alpha is not None:
                out.alpha[:, row : row + rows] = alpha
            row += rows
        return out


class _Progress:
    """Progress of `count` equal passes that run interleaved, reported as one."""

    def __init__(self, on_progress: ProgressFn, count: int) -> None:
        self.on_progress, self.count = on_progress, count
        self.states = [(0, 0)] * count

    def part(self, index: int) -> ProgressFn:
        if self.count == 1:
            return self.on_progress

        def report(done: int, total: int) -> None:
            self.states[index] = (done, total)
            known = max(t for _, t in self.states)
            total_all = sum(t or known for _, t in self.states)
            self.on_progress(sum(d for d, _ in self.states), total_all)

        return report


class _AlphaRows:
    """An alpha channel handed out by rows: from bands of the network's output (held until
    taken), or resized from `source` by MATLAB bicubic a strip at a time."""

    # LR rows of context a strip needs beyond the rows it gives: the cubic kernel reaches 2
    MARGIN = 3

    def __init__(
        self,
        *,
        bands: Iterator[torch.Tensor] | None = None,
        source: torch.Tensor | None = None,
        size: tuple[int, int] = (0, 0),
    ) -> None:
        self.bands, self.source, self.size = bands, source, size
        self.held: list[torch.Tensor] = []
        self.top = 0  # output row of the first held row

    def take(self, start: int, stop: int) -> torch.Tensor:
        if self.source is not None:
            return self._resized(self.source, start, stop)
        assert self.bands is not None and start == self.top
        while sum(b.shape[1] for b in self.held) < stop - start:
            self.held.append(next(self.bands))
        rows = torch.cat(self.held, dim=1) if len(self.held) > 1 else self.held[0]
        self.held = [rows[:, stop - start :]] if rows.shape[1] > stop - start else []
        self.top = stop
        return rows[:, : stop - start]

    def close(self) -> None:
        """Run the network's bands to their end (its last progress report comes after them)."""
        for _ in self.bands or ():
            pass

    def _resized(self, alpha: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        height = alpha.shape[-2]
        out_h, out_w = self.size
        if (start, stop) == (0, out_h) or out_h % height:
            return imresize(alpha, size=(out_h, out_w))[:, start:stop].clamp_(0, 1)
        s = out_h // height  # an integer scale: a strip with margins gives the same rows
        lo = max(0, start // s - self.MARGIN)
        hi = min(height, -(-stop // s) + self.MARGIN)
        strip = imresize(alpha[:, lo:hi], size=((hi - lo) * s, out_w))
        return strip[:, start - lo * s : stop - lo * s].clamp_(0, 1)


def _installed_cleanup() -> ModelDescriptor | None:
    """The installed clean-up network, loaded (once per file and version of it); None (logged)
    where there is none."""
    from engine.library import cleanup_weights

    entry = cleanup_weights()
    if entry is None:
        log.warning("no clean-up network installed: images are upscaled as they are")
        return None
    st = entry.path.stat()
    loaded = _load_weights(str(entry.path), st.st_mtime_ns, st.st_size)
    # a module of its own: Upscaler moves its network to its device in place
    return dataclasses.replace(loaded, model=copy.deepcopy(loaded.model))


def _trained_behind(upscaler: ModelDescriptor, cleanup: ModelDescriptor) -> ModelDescriptor | None:
    """The upscaler's weights trained further behind this clean-up network
    (engine.library.behind_cleanup), loaded; None where there are none."""
    from engine.library import behind_cleanup

    up, clean = Path(upscaler.source), Path(cleanup.source)
    if not (up.is_file() and clean.is_file()):
        return None
    entry = behind_cleanup(up, clean)
    if entry is None:
        return None
    log.info("behind the clean-up: %s", entry.path.name)
    st = entry.path.stat()
    loaded = _load_weights(str(entry.path), st.st_mtime_ns, st.st_size)
    if (loaded.family, loaded.variant, loaded.scale) != (
        upscaler.family,
        upscaler.variant,
        upscaler.scale,
    ):
        return None
    return dataclasses.replace(loaded, model=copy.deepcopy(loaded.model))


@functools.lru_cache(maxsize=2)
def _load_weights(path: str, mtime_ns: int, size: int) -> ModelDescriptor:
    from engine.checkpoints import load_model

    return load_model(path)


def _gray(rgb: torch.Tensor) -> torch.Tensor:
    """(3, h, w) -> the channels' mean, as three equal channels (a view)."""
    return rgb.mean(dim=0, keepdim=True).expand(3, -1, -1)


def _checked(x: torch.Tensor) -> torch.Tensor:
    """The one tensor contract: (1, 3, H, W), made float32, contiguous, on the CPU; uint8 samples
    (ImageData.rgb read with eight_bit) stay uint8 for the tiler, which reads them as x / 255."""
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3 or min(x.shape[-2:]) < 1:
        raise ValueError(f"expected a (1, 3, H, W) tensor, got {tuple(x.shape)}")
    dtype = torch.uint8 if x.dtype == torch.uint8 else torch.float32
    return x.detach().to(device="cpu", dtype=dtype).contiguous()
