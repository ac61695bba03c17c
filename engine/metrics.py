"""PSNR and SSIM with BasicSR's conventions (the papers' protocol, shared/specs/evaluation.md).

Inputs are HxWx3 (or HxW) arrays in 0..255, any dtype; all maths in float64. `crop_border` pixels
are shaved from every side; `y_channel` measures Y of YCbCr (float, or rounded with `round_y`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from engine.imaging.color import rgb_to_y


def _prepare(img: np.ndarray, crop_border: int, y_channel: bool, round_y: bool) -> np.ndarray:
    img = np.asarray(img, dtype=np.float64)
    if img.ndim == 2:
        img = img[..., None]
    if y_channel and img.shape[2] == 3:
        img = rgb_to_y(img, round_y=round_y)[..., None]
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    return img


def _check(img: np.ndarray, img2: np.ndarray) -> None:
    if np.shape(img) != np.shape(img2):
        raise ValueError(f"image shapes differ: {np.shape(img)} vs {np.shape(img2)}")


def psnr(
    img: np.ndarray,
    img2: np.ndarray,
    *,
    crop_border: int,
    y_channel: bool = True,
    round_y: bool = False,
) -> float:
    _check(img, img2)
    a = _prepare(img, crop_border, y_channel, round_y)
    b = _prepare(img2, crop_border, y_channel, round_y)
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(255.0**2 / mse))


SSIM_WINDOW = 11


def _gaussian_window(size: int = SSIM_WINDOW, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)[None, None]


def _ssim_channel(a: torch.Tensor, b: torch.Tensor, window: torch.Tensor) -> float:
    return float(_ssim_map(a, b, window).mean())


def _ssim_map(a: torch.Tensor, b: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def filt(t: torch.Tensor) -> torch.Tensor:  # "valid" filtering: no padding
        return torch.nn.functional.conv2d(t[None, None], window)[0, 0]

    mu1, mu2 = filt(a), filt(b)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = filt(a * a) - mu1_sq
    sigma2_sq = filt(b * b) - mu2_sq
    sigma12 = filt(a * b) - mu12
    return ((2 * mu12 + c1) * (2 * sigma12 + c2)) / (
        (mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2)
    )


def ssim(
    img: np.ndarray,
    img2: np.ndarray,
    *,
    crop_border: int,
    y_channel: bool = True,
    round_y: bool = False,
) -> float:
    """MATLAB reference SSIM: 11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03, L 255, valid
    filtering, mean of the map; the mean over channels when not on Y."""
    _check(img, img2)
    a = _prepare(img, crop_border, y_channel, round_y)
    b = _prepare(img2, crop_border, y_channel, round_y)
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after cropping, "
            f"got {a.shape[1]}x{a.shape[0]}"
        )
    window = _gaussian_window()
    ta, tb = torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(np.ascontiguousarray(b))
    return float(
        np.mean([_ssim_channel(ta[..., c], tb[..., c], window) for c in range(a.shape[2])])
    )


STRIP_ROWS = 256  # rows of SSIM map a strip of score_rows makes


def score_rows(
    read: Callable[[int, int], np.ndarray],
    reference: np.ndarray,
    *,
    crop_border: int,
    height: int,
    width: int,
    round_y: bool = False,
) -> tuple[float, float]:
    """(PSNR, SSIM) on Y of an image `height` x `width` read a strip of rows at a time
    (`read(top, bottom)` -> HxWx3 uint8 rows) against `reference` (at least as large; its top
    left part is used): psnr() and ssim() of the whole images to within rounding, with no
    full-size float copy. Each strip takes the window's rows below it too, so that every row of
    the SSIM map is made once."""
    if reference.shape[0] < height or reference.shape[1] < width:
        raise ValueError(f"image shapes differ: {(height, width)} vs {reference.shape[:2]}")
    c = crop_border
    rows, cols = height - 2 * c, width - 2 * c
    if min(rows, cols) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after cropping, "
            f"got {max(cols, 0)}x{max(rows, 0)}"
        )
    window = _gaussian_window()
    halo = SSIM_WINDOW - 1
    squared, ssim_sum, map_rows = 0.0, 0.0, rows - halo
    for top in range(0, map_rows, STRIP_ROWS):
        bottom = min(rows, top + STRIP_ROWS + halo)  # rows of the cropped image
        a = rgb_to_y(read(c + top, c + bottom)[:, c : c + cols], round_y=round_y)
        b = rgb_to_y(reference[c + top : c + bottom, c : c + cols, :3], round_y=round_y)
        own = min(STRIP_ROWS, map_rows - top)  # image rows this strip alone measures for PSNR
        last = top + STRIP_ROWS >= map_rows
        counted = slice(0, bottom - top if last else own)
        squared += float(np.sum((a[counted] - b[counted]) ** 2))
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        ssim_sum += _ssim_map(ta, tb, window)[:own].sum().item()
    mse = squared / (rows * cols)
    psnr_value = float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))
    return psnr_value, ssim_sum / (map_rows * (cols - halo))
