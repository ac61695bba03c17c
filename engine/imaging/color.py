"""Colour and dtype conversions shared by metrics, I/O and the app."""

from __future__ import annotations

import numpy as np
import torch


def rgb_to_y(img: np.ndarray, *, round_y: bool = False) -> np.ndarray:
    """Y of YCbCr (BT.601, MATLAB rgb2ycbcr) from an HxWx3 RGB array in 0..255, as float64.

    round_y rounds Y to integers, as MATLAB does for uint8 images (the HPINet paper's protocol)."""
    img = np.asarray(img, dtype=np.float64)
    y = 16.0 + (65.481 * img[..., 0] + 128.553 * img[..., 1] + 24.966 * img[..., 2]) / 255.0
    return np.round(y) if round_y else y


def tensor_to_uint8(t: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) or (C, H, W) float tensor in [0, 1] -> HxWxC uint8, clamped and rounded
    (what saving to PNG does)."""
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError("expected a single image")
        t = t[0]
    arr = (t.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8)
    return arr.permute(1, 2, 0).cpu().numpy()


def uint8_to_tensor(arr: np.ndarray) -> torch.Tensor:
    """HxW or HxWxC uint8 array -> (1, C, H, W) float32 tensor in [0, 1]."""
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[..., None]
    t = torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1).float() / 255.0
    return t.unsqueeze(0)
