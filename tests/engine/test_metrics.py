from __future__ import annotations

import math

import numpy as np
import pytest

from engine.imaging.color import rgb_to_y
from engine.metrics import psnr, ssim


def test_rgb_to_y_matches_matlab_formula():
    img = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], dtype=np.uint8)
    y = rgb_to_y(img)
    assert y[0, 0] == pytest.approx(16.0)
    assert y[0, 1] == pytest.approx(235.0)
    assert y[0, 2] == pytest.approx(16 + 65.481)
    assert rgb_to_y(img, round_y=True)[0, 2] == 81.0


def test_psnr_of_a_known_error():
    rng = np.random.default_rng(0)
    a = rng.integers(10, 240, size=(20, 24, 3)).astype(np.uint8)
    b = a.astype(np.int16) + 1
    # RGB: every value off by one -> MSE 1.
    assert psnr(a, b, crop_border=0, y_channel=False) == pytest.approx(10 * math.log10(255**2))
    # Y: off by (65.481 + 128.553 + 24.966) / 255 = 219 / 255 everywhere.
    expected = 10 * math.log10(255**2 / (219 / 255) ** 2)
    assert psnr(a, b, crop_border=4, y_channel=True) == pytest.approx(expected)
    assert psnr(a, a, crop_border=0) == math.inf


def test_crop_border_ignores_the_border():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, size=(32, 32, 3)).astype(np.uint8)
    b = a.copy()
    b[:3] = 0
    assert psnr(a, b, crop_border=3) == math.inf
    assert psnr(a, b, crop_border=2) < 40


def _naive_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MATLAB's ssim_index written out window by window (11x11 Gaussian, sigma 1.5, valid)."""
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i : i + 11, j : j + 11], b[i : i + 11, j : j + 11]
            mu_a, mu_b = (w * pa).sum(), (w * pb).sum()
            var_a = (w * pa * pa).sum() - mu_a**2
            var_b = (w * pb * pb).sum() - mu_b**2
            cov = (w * pa * pb).sum() - mu_a * mu_b
            num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
            values.append(num / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)))
    return float(np.mean(values))


def test_ssim_equals_the_window_by_window_definition():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, size=(20, 18, 3)).astype(np.float64)
    noisy = np.clip(a + rng.normal(0, 20, a.shape), 0, 255)
    assert ssim(a, a, crop_border=0) == pytest.approx(1.0)
    value = ssim(a, noisy, crop_border=2)
    expected = _naive_ssim(rgb_to_y(a)[2:-2, 2:-2], rgb_to_y(noisy)[2:-2, 2:-2])
    assert value == pytest.approx(expected, abs=1e-12)
    rgb = ssim(a, noisy, crop_border=0, y_channel=False)
    per_channel = [_naive_ssim(a[..., c], noisy[..., c]) for c in range(3)]
    assert rgb == pytest.approx(np.mean(per_channel), abs=1e-12)
    with pytest.raises(ValueError):
        ssim(a[:8, :8], a[:8, :8], crop_border=0)


def test_shapes_must_match():
    with pytest.raises(ValueError):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)), crop_border=0)
