"""LR images made the way real photos are made: blur, a resize by an arbitrary method, sensor
noise and JPEG, optionally twice (second order), after Real-ESRGAN's RealESRNet pipeline
(../shared/specs/real-inputs.md) with narrower ranges around the photos people upscale.

Hand-written rather than taken from basicsr: basicsr's pipeline runs on the GPU in batches (its
JPEG is DiffJPEG, not the libjpeg that wrote the user's file) and drags in its training stack;
here every patch is degraded on the CPU by Pillow's own JPEG encoder, from a generator the caller
seeds, so a patch is a pure function of (seed, sample number) like the rest of engine.training.

`degrade_real(hr, scale, rng, options)` makes the LR image for an upscaler (scale 2-4) or, at
scale 1, the damaged input of the clean-up network, whose target is the clean image itself.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from engine.errors import SRStudioError
from engine.imaging.resize import imresize

RESIZE_METHODS = ("bicubic", "bilinear", "area")


@dataclass(frozen=True)
class RealDegradation:
    """The ranges one patch's degradation is drawn from (JPEG quality 1-100, noise sigma on the
    0..255 scale). At scale 1 there is no blur and no resize: the clean-up network restores the
    LR image an upscaler expects, blur included."""

    jpeg: tuple[int, int] = (40, 95)
    noise: tuple[float, float] = (1.0, 15.0)
    noise_probability: float = 0.6  # the rest: no noise before the JPEG
    poisson_probability: float = 0.3  # of the noisy ones: signal-dependent (shot) noise
    gray_noise_probability: float = 0.4  # the same noise in all three channels
    blur_probability: float = 0.5  # scale > 1 only
    blur_sigma: tuple[float, float] = (0.2, 1.5)  # in HR pixels
    second_order_probability: float = 0.25  # noise and JPEG once more (an edited, re-shared file)
    subsampling_420_probability: float = 0.8  # Pillow's default chroma subsampling; else 4:4:4
    resize_methods: tuple[str, ...] = RESIZE_METHODS  # drawn from, one a patch (scale > 1)

    def __post_init__(self) -> None:
        lo, hi = self.jpeg
        if not (1 <= lo <= hi <= 100):
            raise SRStudioError(f"JPEG qualities must lie in 1-100, low first; got {lo}-{hi}")
        lo_n, hi_n = self.noise
        if not (0 <= lo_n <= hi_n <= 100 and math.isfinite(hi_n)):
            raise SRStudioError(f"noise sigmas must lie in 0-100, low first; got {lo_n}-{hi_n}")
        unknown = set(self.resize_methods) - set(RESIZE_METHODS) or not self.resize_methods
        if unknown:
            raise SRStudioError(f"resize methods must be some of {', '.join(RESIZE_METHODS)}")

    def describe(self) -> dict[str, object]:
        """What a trained file's metadata records."""
        return {"kind": "real", **asdict(self)}


def parse_range(text: str, *, what: str, integer: bool) -> tuple[float, float]:
    """'50-90' or '75' -> (50, 90) / (75, 75); a one-line SRStudioError for anything else."""
    parts = text.strip().split("-")
    try:
        values = [int(p) if integer else float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2):
        raise SRStudioError(f"{what} must be LOW-HIGH or one value, e.g. 50-90; got {text!r}")
    low, high = values[0], values[-1]
    return (low, high)


def degrade_real(
    hr: np.ndarray, scale: int, rng: np.random.Generator, options: RealDegradation
) -> np.ndarray:
    """uint8 HxWx3 (sides multiples of `scale`) -> uint8 (H/scale)x(W/scale)x3."""
    h, w = hr.shape[0] // scale, hr.shape[1] // scale
    x = torch.from_numpy(np.ascontiguousarray(hr)).permute(2, 0, 1).double()
    if scale > 1:
        if rng.random() < options.blur_probability:
            x = _blur(x, rng, options.blur_sigma)
        methods = options.resize_methods
        x = _resize(x, (h, w), methods[int(rng.integers(len(methods)))])
    img = _noise(x.permute(1, 2, 0).numpy(), rng, options)
    img = _jpeg(img, rng, options)
    if rng.random() < options.second_order_probability:
        img = _jpeg(_noise(img.astype(np.float64), rng, options, strength=0.5), rng, options)
    return img


def _blur(x: torch.Tensor, rng: np.random.Generator, sigmas: tuple[float, float]) -> torch.Tensor:
    """An isotropic or anisotropic (rotated) Gaussian, 7-15 pixels, reflect-padded."""
    size = int(rng.choice([7, 9, 11, 13, 15]))
    s1 = rng.uniform(*sigmas)
    s2 = s1 if rng.random() < 0.5 else rng.uniform(*sigmas)
    theta = rng.uniform(0, math.pi)
    r = np.arange(size) - size // 2
    yy, xx = np.meshgrid(r, r, indexing="ij")
    c, s = math.cos(theta), math.sin(theta)
    u, v = c * xx + s * yy, -s * xx + c * yy
    k = np.exp(-0.5 * ((u / s1) ** 2 + (v / s2) ** 2))
    kernel = torch.from_numpy(k / k.sum()).expand(3, 1, size, size)
    pad = size // 2
    mode = "reflect" if min(x.shape[-2:]) > pad else "replicate"
    padded = F.pad(x[None], (pad, pad, pad, pad), mode=mode)
    return F.conv2d(padded, kernel, groups=3)[0]


def _resize(x: torch.Tensor, size: tuple[int, int], method: str) -> torch.Tensor:
    if method == "bicubic":  # MATLAB's, antialiased, as the benchmark LR images are made
        return imresize(x, size=size)
    mode = "bilinear" if method == "bilinear" else "area"
    extra = {"align_corners": False, "antialias": True} if mode == "bilinear" else {}
    return F.interpolate(x[None], size=size, mode=mode, **extra)[0]


def _noise(
    img: np.ndarray, rng: np.random.Generator, options: RealDegradation, strength: float = 1.0
) -> np.ndarray:
    """Gaussian or Poisson noise on a float HxWx3 image in 0..255 -> rounded uint8."""
    if rng.random() < options.noise_probability and options.noise[1] > 0:
        gray = rng.random() < options.gray_noise_probability
        shape = img.shape[:2] + ((1,) if gray else (3,))
        if rng.random() < options.poisson_probability:
            # shot noise: variance proportional to the signal, scaled to the same sigma range
            # at mid-grey (sigma at 128 = sigma_mid)
            sigma_mid = rng.uniform(*options.noise) * strength
            base = img.mean(axis=2, keepdims=True) if gray else img
            std = sigma_mid * np.sqrt(np.clip(base, 0, 255) / 128.0)
            img = img + std * rng.standard_normal(shape)
        else:
            img = img + rng.uniform(*options.noise) * strength * rng.standard_normal(shape)
    return np.clip(np.floor(img + 0.5), 0, 255).astype(np.uint8)


def _jpeg(img: np.ndarray, rng: np.random.Generator, options: RealDegradation) -> np.ndarray:
    quality = int(rng.integers(options.jpeg[0], options.jpeg[1] + 1))
    subsampling = 2 if rng.random() < options.subsampling_420_probability else 0
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, "JPEG", quality=quality, subsampling=subsampling)
    buffer.seek(0)
    with Image.open(buffer, formats=["JPEG"]) as decoded:  # our own bytes, still only JPEG
        return np.asarray(decoded.convert("RGB")).copy()
