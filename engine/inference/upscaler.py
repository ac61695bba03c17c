"""Upscaler: a model descriptor plus options -> upscaled tensors and images.

Precision: the weights stay float32; fp16/bf16 run the network under autocast, decided by the dtype
of each input tile, so the tiler can redo a tile that came out non-finite in plain float32.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import torch

from engine.descriptor import ModelDescriptor
from engine.errors import ProgressFn, SRStudioError, StopFn, never_stop, no_progress
from engine.imaging.io import ImageData
from engine.imaging.resize import imresize
from engine.inference.devices import resolve_device, resolve_dtype
from engine.inference.ensemble import TRANSFORMS, ensemble, ensemble_forward
from engine.inference.tiling import auto_tile_size, part_progress, upscale_tiled

PRECISIONS = ("fp32", "fp16", "bf16")
ALPHA_MODES = ("bicubic", "network")
MAX_OUTSCALE = 16.0


@dataclass(frozen=True)
class UpscaleOptions:
    """tile: LR tile side in pixels; None = auto (from free memory), 0 = the whole image at once.
    tile_overlap: LR pixels each tile shares with its neighbours (None: the model's own).
    ensemble: x8 self-ensemble (flips and rotations averaged; 8 times slower).
    device: "auto", "cpu", "cuda", "cuda:N" or "mps". precision: "fp32", "fp16" or "bf16".
    outscale: final scale of the output relative to the input (e.g. 1.5 or 6), reached by a
    MATLAB-bicubic resize of the network's output (output sides: input sides x outscale, rounded
    half up); None = the model's scale.
    alpha: how an alpha channel is upscaled: "bicubic" (default) or "network" (as a gray image)."""

    tile: int | None = None
    tile_overlap: int | None = None
    ensemble: bool = False
    device: str = "auto"
    precision: str = "fp32"
    outscale: float | None = None
    alpha: str = "bicubic"

    def __post_init__(self) -> None:
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


class Upscaler:
    def __init__(self, descriptor: ModelDescriptor, options: UpscaleOptions | None = None) -> None:
        if descriptor.model is None:
            raise SRStudioError(f"{descriptor.label} has no network loaded")
        self.descriptor = descriptor
        self.options = options or UpscaleOptions()
        self.device = resolve_device(self.options.device)
        self.dtype = resolve_dtype(self.options.precision, self.device)
        self.model = descriptor.model.to(self.device).eval()
        forward = self._forward
        self._run = ensemble_forward(forward) if self.options.ensemble else forward

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
        with torch.no_grad():
            if x.dtype == torch.float32:
                return self.model(x)
            with torch.autocast(device_type=self.device.type, dtype=x.dtype):
                return self.model(x).float()

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
        if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3 or min(x.shape[-2:]) < 1:
            raise ValueError(f"expected a (1, 3, H, W) tensor, got {tuple(x.shape)}")
        x = x.detach().to(device="cpu", dtype=torch.float32).contiguous()
        overlap = self.options.tile_overlap
        tile = self._tile(*x.shape[-2:])
        tiled = functools.partial(
            upscale_tiled,
            scale=self.descriptor.scale,
            tile=tile,
            overlap=self.descriptor.tile_overlap if overlap is None else overlap,
            device=self.device,
            dtype=self.dtype,
            shared_pooling=self.descriptor.shared_pooling,
            should_stop=should_stop,
        )
        if self.options.ensemble and self.descriptor.shared_pooling and tile is not None:
            # each flip / rotation of the image gets its own tiles sharing their pooled values
            n = len(TRANSFORMS)
            y = ensemble(
                lambda t, i: tiled(self._forward, t, on_progress=part_progress(on_progress, i, n)),
                x,
            )
        else:
            y = tiled(self._run, x, on_progress=on_progress)
        size = self.output_size(*x.shape[-2:])
        if tuple(y.shape[-2:]) != size:
            y = imresize(y.float(), size=size)
        return y.float().clamp_(0, 1)

    def upscale_image(
        self,
        img: ImageData,
        *,
        on_progress: ProgressFn = no_progress,
        should_stop: StopFn = never_stop,
    ) -> ImageData:
        """Colour through the network; alpha by bicubic or the network; grayscale stays grayscale;
        DPI scaled with the pixels; bit depth, ICC profile and EXIF carried over."""
        by_network = img.alpha is not None and self.options.alpha == "network"
        passes = 2 if by_network else 1
        rgb = self.upscale_tensor(
            img.rgb.unsqueeze(0),
            on_progress=part_progress(on_progress, 0, passes),
            should_stop=should_stop,
        )[0]
        if img.grayscale:
            rgb = rgb.mean(dim=0, keepdim=True).expand(3, -1, -1).contiguous()
        out_h, out_w = rgb.shape[-2:]
        alpha = None
        if img.alpha is not None and by_network:
            gray = img.alpha.float().expand(3, -1, -1).unsqueeze(0)
            progress = part_progress(on_progress, 1, passes)
            alpha = self.upscale_tensor(gray, on_progress=progress, should_stop=should_stop)[0]
            alpha = alpha.mean(dim=0, keepdim=True)
        elif img.alpha is not None:
            alpha = imresize(img.alpha.float(), size=(out_h, out_w)).clamp_(0, 1)
        dpi = None
        if img.dpi is not None:
            dpi = (img.dpi[0] * out_w / img.width, img.dpi[1] * out_h / img.height)
        return dataclasses.replace(img, rgb=rgb, alpha=alpha, dpi=dpi)
