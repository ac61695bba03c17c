"""Knowing the input: the JPEG quality a file was saved at, and how noisy its pixels are.

    jq = jpeg_quality(path)           # JpegQuality | None (None: not a JPEG)
    sigma = noise_sigma(rgb)          # Gaussian noise sigma on the 0..255 scale
    describe(jq, sigma)               # "JPEG, saved at quality about 70; little or no noise"
    inspect_input(path)               # both for a file, and the phrase

JPEG quality. libjpeg (and Pillow, which uses it) scales the two tables of ITU-T T.81 Annex K by
S = 5000 / Q for Q < 50 and 200 - 2Q otherwise; each entry becomes (base * S + 50) // 100,
clamped to 1..255 (1..32767 for 16-bit tables). The 100 qualities give 100 distinct table pairs,
so a file written by libjpeg gives its quality back exactly; other encoders (cameras, phones,
editors) use their own tables, and the nearest IJG quality is given when it is close, None when
nothing is. Pillow reads the tables (`Image.quantization`: natural order in the Pillow used here,
zig-zag order in some older ones; both are tried) but has no inverse of this scaling, nor does any
library this project depends on.

Noise. No library here estimates noise (scikit-image's estimate_sigma is a wavelet-MAD estimator
that reads texture as noise, and would bring SciPy and scikit-image along). This is the
weak-texture patch method of Liu, Tanaka & Okutomi ("Single-image noise level estimation for
blind denoising", IEEE TIP 2013): the smallest eigenvalue of the covariance of image patches is
the noise variance when the patches hold little texture, and patches whose gradient energy is
above what noise alone would give (a 1 - 1e-6 quantile) are left out, iterating from the
estimate of all patches. Two changes make it hold on textured images and real files:
- the patches are colour patches (5x5x3 = 75 numbers): natural texture is largely shared by the
  three channels, so some colour direction is nearly free of it, while noise that differs from
  channel to channel (sensor and film grain, synthetic noise) is there in every direction;
- patches near 0 or 255 (within 3 sigma) are left out, where clipping hides part of the noise.
The smallest eigenvalue of a sample covariance of N patches of d numbers is biased low by
(1 - sqrt(d/N))^2 (Marchenko-Pastur); the estimate is corrected for it. A large image is
measured on 250 000 patch positions drawn with a fixed seed: about 0.4 s of one core for 12 MP.

What it sees (Set14 x4; tests/engine/test_input_quality.py): Gaussian noise of sigma 5 to 20
added to the HR images reads within 20 % (0.84 to 1.18 times) of the noise the image then holds,
the sigma added and the image's own in quadrature: two film scans, baboon and face, carry grain of
their own (visible at 100 %, read as 3.7 and 1.8), so sigma 5 added reads 1.28 and 1.25 times 5.
The LR images (62x90 to 192x128 pixels) read within 20 % too. The clean images read below 4
(HR baboon 3.7, the black-and-white film scan "man" 3.3, LR below 2), hence LITTLE_NOISE.
Patches are kept as the image's own dtype and made float a chunk at a time: 35 MB at most for a
12 MP photo.
Blind spots: noise that is the same in all channels (grey noise) is seen only in a grayscale
image, as it is shaped like luma texture. A JPEG that stored its colour at half resolution
(4:2:0, 4:2:2, as most do) kept little colour noise, so inspect_input measures the luma there
(noise_sigma(..., luma=True)), where texture does read as noise (a clean baboon saved at
quality 90 as sigma 11); and JPEG quality 75 or lower has removed most noise of sigma 10 or less.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image, JpegImagePlugin

from engine.errors import SRStudioError
from engine.imaging.io import read_rgb_uint8
from engine.imaging.safe_open import open_image

log = logging.getLogger(__name__)

# ITU-T T.81 Annex K, tables K.1 (luminance) and K.2 (chrominance), natural (row) order.
LUMINANCE = (
    (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55)
    + (14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62)
    + (18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92)
    + (49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)
)
CHROMINANCE = (17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99) + (
    (24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99) + (99,) * 32
)
# ZIGZAG[k] is the natural-order index of the k-th coefficient in zig-zag order.
ZIGZAG = (
    (0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5)
    + (12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28)
    + (35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51)
    + (58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63)
)
# The nearest IJG quality is given when the tables differ from its tables by at most this much
# on average (mean |log(entry / IJG entry)|: 0.1 is about 10 % per entry); beyond, "unknown".
MATCH_LIMIT = 0.1

# Noise sigma (0..255) below which an image reads as having "little or no noise" (film grain of
# a clean scan included), and from which it reads as "noisy" rather than as having "some noise".
LITTLE_NOISE = 4.0
NOISY = 8.0

_PATCH = 5  # side of the square patches
_MAX_PATCHES = 250_000  # patch positions looked at; larger images are sampled (seeded)
_COVARIANCE_PATCHES = 50_000  # patches a covariance is taken from
_MIN_SAMPLES = 4  # patches per number in a patch that a covariance needs
_ROUNDS = 5  # weak-texture selections after the first estimate, at most
_SETTLED = 1e-2  # relative change of the variance at which the rounds stop
_CLIP_MARGIN = 3.0  # sigmas from 0 and 255 within which a patch's mean is left out
_Z = 4.753  # standard normal quantile of 1 - 1e-6: the gradient threshold's confidence
_SEED = 0
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # BT.601, as JPEG's YCbCr


@dataclass(frozen=True)
class JpegQuality:
    quality: int | None  # nearest IJG (libjpeg) quality 1..100; None when none is close
    exact: bool  # the file's tables are exactly libjpeg's at that quality
    error: float  # mean |log(entry / IJG entry)| of the nearest quality: 0.0 when exact


@dataclass(frozen=True)
class InputQuality:
    format: str  # Pillow's format name: "JPEG", "PNG", ...
    jpeg: JpegQuality | None  # None for anything but a JPEG
    noise_sigma: float  # estimated Gaussian noise sigma on the 0..255 scale (see noise_sigma)

    @property
    def description(self) -> str:
        return describe(self.jpeg, self.noise_sigma, format_name=self.format)


# ------------------------------------------------------------------------------ JPEG quality


def ijg_table(base: tuple[int, ...], quality: int, *, baseline: bool = True) -> np.ndarray:
    """libjpeg's jpeg_set_quality: a base table scaled for `quality` 1..100."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    table = (np.asarray(base, np.int64) * scale + 50) // 100
    return np.clip(table, 1, 255 if baseline else 32767)


@cache
def _ijg_tables() -> tuple[tuple[int, np.ndarray, np.ndarray], ...]:
    """(quality, luminance, chrominance) for every quality, with 8-bit tables (what baseline
    JPEGs, Pillow's included, hold) and where they differ, 16-bit ones."""
    found = []
    for q in range(1, 101):
        for baseline in (True, False):
            lum = ijg_table(LUMINANCE, q, baseline=baseline)
            chrom = ijg_table(CHROMINANCE, q, baseline=baseline)
            if baseline or lum.max() > 255 or chrom.max() > 255:
                found.append((q, lum, chrom))
    return tuple(found)


def jpeg_quality(source: str | os.PathLike[str] | Image.Image) -> JpegQuality | None:
    """The quality a JPEG was saved at, from its quantisation tables; None for another format.
    A path is opened by engine.imaging.safe_open (header only; no pixel is decoded)."""
    if isinstance(source, Image.Image):
        return _quality_of(source)
    with open_image(source) as im:
        return _quality_of(im)


def _quality_of(im: Image.Image) -> JpegQuality | None:
    if im.format not in ("JPEG", "MPO"):
        return None
    found = getattr(im, "quantization", None) or {}
    tables = [np.asarray(found[k], np.int64) for k in sorted(found)]
    if not tables or any(t.shape != (64,) for t in tables):
        return JpegQuality(None, False, math.inf)
    natural = _match(tables)
    zigzag = _match([_from_zigzag(t) for t in tables])  # Pillow before 8.0
    best = min(natural, zigzag, key=lambda m: (m.error, not m.exact))
    log.debug("JPEG tables: nearest IJG quality %s (error %.3f)", best.quality, best.error)
    return best


def _from_zigzag(table: np.ndarray) -> np.ndarray:
    natural = np.empty(64, np.int64)
    natural[list(ZIGZAG)] = table
    return natural


def _match(tables: list[np.ndarray]) -> JpegQuality:
    """The IJG quality whose tables are nearest: table 0 is compared with the luminance table,
    the others with the chrominance table (a grayscale JPEG has table 0 only)."""
    found = np.log(np.maximum(np.stack(tables), 1))
    best_q, best_error, exact = 0, math.inf, False
    for q, lum, chrom in _ijg_tables():
        ref = np.stack([lum] + [chrom] * (len(tables) - 1))
        error = float(np.abs(found - np.log(ref)).mean())
        if error < best_error or (error == best_error and q > best_q):
            best_q, best_error = q, error
            exact = all(np.array_equal(t, r) for t, r in zip(tables, ref, strict=True))
    if exact:
        return JpegQuality(best_q, True, 0.0)
    return JpegQuality(best_q if best_error <= MATCH_LIMIT else None, False, best_error)


# ------------------------------------------------------------------------------------- noise


def noise_sigma(rgb: np.ndarray, *, luma: bool = False) -> float:
    """The Gaussian noise sigma (0..255 scale) of an HxWx3 (or HxW) image, uint8 or float on
    0..255, as the sigma of noise independent in R, G and B. A grayscale image (three equal
    channels) is measured on one channel. luma: measure the luma alone and give the sigma that
    luma noise means per channel (for JPEGs whose colour was stored at half resolution)."""
    a = np.asarray(rgb)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3):
        raise SRStudioError(f"noise_sigma needs an HxW or HxWx3 image, not {a.shape}")
    gain = 1.0
    if a.shape[2] == 3 and _is_gray(a):
        a = a[..., :1]
    elif a.shape[2] == 3 and luma:
        gain = float(np.linalg.norm(_LUMA))
    patches = _sample_patches(a)
    if a.shape[2] == 3 and luma:
        patches = _luma(patches)
    if len(patches) < _MIN_SAMPLES * patches.shape[1] * _PATCH**2:
        return 0.0  # too small to tell noise from detail: about 20x20 pixels
    sigma = _weak_texture_sigma(patches) / gain
    log.debug("noise sigma %.2f from %d patches (luma: %s)", sigma, len(patches), luma)
    return sigma


def _luma(patches: np.ndarray) -> np.ndarray:
    """(N, 3, P, P) -> (N, 1, P, P) float32 luma, taken of the sampled patches only (a 12 MP
    image's luma would be 48 MB more); a weighted sum, not a matrix product: see
    _smallest_eigenvalue."""
    y = np.zeros((len(patches), 1) + patches.shape[2:], np.float32)
    for channel, weight in enumerate(_LUMA):
        y[:, 0] += weight * patches[:, channel].astype(np.float32)
    return y


def _is_gray(a: np.ndarray) -> bool:
    few = a[::97, ::89]  # most colour images differ here already
    if not (np.array_equal(few[..., 0], few[..., 1]) and np.array_equal(few[..., 1], few[..., 2])):
        return False
    return bool(np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 1], a[..., 2]))


def _sample_patches(a: np.ndarray) -> np.ndarray:
    """(N, channels, P, P) patches in the image's own dtype (uint8 for a file: a quarter of the
    memory of float32), at every position or at a seeded sample of them."""
    if min(a.shape[:2]) < _PATCH:
        return np.empty((0, a.shape[2], _PATCH, _PATCH), a.dtype)
    windows = sliding_window_view(a, (_PATCH, _PATCH), axis=(0, 1))  # h, w, c, P, P
    h, w = windows.shape[:2]
    if h * w > _MAX_PATCHES:
        at = np.sort(np.random.default_rng(_SEED).choice(h * w, _MAX_PATCHES, replace=False))
    else:
        at = np.arange(h * w)
    rows, cols = np.divmod(at, w)
    return windows[rows, cols]


def _weak_texture_sigma(patches: np.ndarray) -> float:
    n, channels = patches.shape[:2]
    gradient, means = _patch_statistics(patches)
    lowest, highest = means.min(axis=1), means.max(axis=1)
    flat = patches.reshape(n, -1)
    threshold = _noise_gradient_quantile(channels)
    variance = _smallest_eigenvalue(flat, np.arange(n))
    for _ in range(_ROUNDS):
        margin = _CLIP_MARGIN * math.sqrt(variance)
        keep = (gradient < variance * threshold) & (lowest > margin) & (highest < 255 - margin)
        rows = np.flatnonzero(keep)
        if len(rows) < _MIN_SAMPLES * flat.shape[1]:
            break
        previous, variance = variance, _smallest_eigenvalue(flat, rows)
        if abs(variance - previous) <= _SETTLED * previous:
            break
    return math.sqrt(variance)


def _patch_statistics(patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each patch's gradient energy (N,) and channel means (N, channels), in float32, a chunk at a
    time (by torch: numpy's reductions over the short last axes take several times longer)."""
    n, channels = patches.shape[:2]
    gradient = np.empty(n, np.float32)
    means = np.empty((n, channels), np.float32)
    for start in range(0, n, _COVARIANCE_PATCHES):
        chunk = torch.from_numpy(patches[start : start + _COVARIANCE_PATCHES].astype(np.float32))
        gradient[start : start + len(chunk)] = _gradient_energy(chunk).numpy()
        means[start : start + len(chunk)] = chunk.reshape(len(chunk), channels, -1).mean(2).numpy()
    return gradient, means


def _gradient_energy(patches: torch.Tensor) -> torch.Tensor:
    """Each patch's sum of squared central differences (half the difference of the two
    neighbours), across and down, over its channels."""
    across = patches[..., 2:] - patches[..., :-2]
    down = patches[..., 2:, :] - patches[..., :-2, :]
    return 0.25 * (across.square().sum(dim=(1, 2, 3)) + down.square().sum(dim=(1, 2, 3)))


@cache
def _differences() -> np.ndarray:
    """(2 * P * (P - 2), P * P): the central differences of _gradient_energy as a matrix on a
    flattened patch."""
    rows = []
    for i in range(_PATCH):
        for j in range(_PATCH - 2):
            across, down = np.zeros((_PATCH, _PATCH)), np.zeros((_PATCH, _PATCH))
            across[i, j], across[i, j + 2] = -0.5, 0.5
            down[j, i], down[j + 2, i] = -0.5, 0.5
            rows += [across.ravel(), down.ravel()]
    return np.asarray(rows)


@cache
def _noise_gradient_quantile(channels: int) -> float:
    """The 1 - 1e-6 quantile of a patch's gradient energy (summed squared differences) for
    unit-variance white noise: a quadratic form whose law is close to a gamma (Liu et al.), whose
    quantile is taken by Wilson and Hilferty's approximation."""
    d = _differences()
    form = d.T @ d
    trace, rank = float(np.trace(form)), int(np.linalg.matrix_rank(form))
    shape, scale = channels * rank / 2, 2 * trace / rank
    return shape * scale * (1 - 1 / (9 * shape) + _Z * math.sqrt(1 / (9 * shape))) ** 3


def _smallest_eigenvalue(flat: np.ndarray, rows: np.ndarray) -> float:
    """The smallest eigenvalue of the covariance of the patches `rows`, corrected for the
    sample's size; from a spread-out sample of at most _COVARIANCE_PATCHES of them."""
    sample = torch.from_numpy(
        flat[rows[:: -(-len(rows) // _COVARIANCE_PATCHES)]].astype(np.float32)
    )
    centred = sample - sample.mean(dim=0)
    # By torch: numpy's OpenBLAS takes up to ten times longer over this tall product when the
    # cores are busy (measured: 1.2 s against 0.1 s for 100 000 patches of 75).
    covariance = (centred.T @ centred).double().numpy() / (len(sample) - 1)
    smallest = max(float(np.linalg.eigvalsh(covariance)[0]), 0.0)
    return smallest / (1 - math.sqrt(flat.shape[1] / len(sample))) ** 2


# ----------------------------------------------------------------------------------- summary


def describe(jpeg: JpegQuality | None, sigma: float, *, format_name: str | None = None) -> str:
    """One short phrase for a photographer, e.g. "JPEG, saved at quality 70; little or no noise"
    or "PNG; noisy (about sigma 12)". format_name names a file that is not a JPEG."""
    return f"{describe_format(jpeg, format_name)}; {_describe_noise(sigma)}"


def describe_format(jpeg: JpegQuality | None, format_name: str | None) -> str:
    """The file's kind, and a JPEG's quality: known when the file is read, before any noise
    is measured (the app shows it beside the image's size at once)."""
    if jpeg is None:
        return format_name if format_name and format_name != "JPEG" else "Not a JPEG"
    if jpeg.quality is None:
        return "JPEG, quality unknown (its own compression tables)"
    about = "" if jpeg.exact else "about "
    strong = " (strongly compressed)" if jpeg.quality < 50 else ""
    return f"JPEG, saved at quality {about}{jpeg.quality}{strong}"


def _describe_noise(sigma: float) -> str:
    if sigma < LITTLE_NOISE:
        return "little or no noise"
    if sigma < NOISY:
        return f"some noise (about sigma {round(sigma)})"
    return f"noisy (about sigma {round(sigma)})"


def inspect_input(path: str | os.PathLike[str]) -> InputQuality:
    """The JPEG quality (from the header) and the noise (from the decoded pixels) of a file.
    A JPEG that stored its colour at half resolution (4:2:0, 4:2:2) kept little colour noise:
    its noise is measured on the luma."""
    path = Path(path)
    with open_image(path) as im:
        fmt = im.format or "unknown"
        jpeg = _quality_of(im)
        luma = jpeg is not None and JpegImagePlugin.get_sampling(im) in (1, 2)
    return InputQuality(fmt, jpeg, noise_sigma(read_rgb_uint8(path), luma=luma))
