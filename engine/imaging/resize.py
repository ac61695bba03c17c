"""MATLAB-compatible bicubic `imresize` on tensors.

Matches MATLAB's imresize(img, scale, 'bicubic') (and BasicSR's port of it): cubic kernel with
a = -0.5, the kernel widened by 1/scale when shrinking (antialiasing), output size
ceil(size * scale), and the dimension with the smaller scale resized first. Edges are replicated
by default: the benchmark LR files in shared/benchmarks match that exactly (with uint8 rounding
after each dimension), not current MATLAB's symmetric padding, which is available too.
"""

from __future__ import annotations

import math

import torch


def _cubic(x: torch.Tensor) -> torch.Tensor:
    ax = x.abs()
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))
    return near + far


def _weights_and_indices(
    in_len: int, out_len: int, scale: float, antialias: bool, edge: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (out_len, taps) in float64 and 0-based source indices (out_len, taps)."""
    kernel_width = 4.0
    shrink = scale < 1 and antialias
    if shrink:
        kernel_width /= scale
    x = torch.arange(1, out_len + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # 1-based source coordinate of each output pixel
    left = torch.floor(u - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]
    distance = u[:, None] - indices
    weights = scale * _cubic(distance * scale) if shrink else _cubic(distance)
    weights = weights / weights.sum(dim=1, keepdim=True)
    idx = (indices - 1).long()
    if edge == "replicate":
        return weights, idx.clamp(0, in_len - 1)
    # Symmetric padding ("mirror including the edge pixel"), repeated for very small inputs.
    idx = idx % (2 * in_len)
    return weights, torch.where(idx >= in_len, 2 * in_len - 1 - idx, idx)


def _resize_dim(
    x: torch.Tensor, dim: int, out_len: int, scale: float, antialias: bool, edge: str
) -> torch.Tensor:
    in_len = x.shape[dim]
    weights, idx = _weights_and_indices(in_len, out_len, scale, antialias, edge)
    weights = weights.to(dtype=x.dtype, device=x.device)
    taps = idx.shape[1]
    gathered = x.index_select(dim, idx.reshape(-1).to(x.device))
    shape = list(x.shape)
    shape[dim : dim + 1] = [out_len, taps]
    gathered = gathered.reshape(shape)
    wshape = [1] * len(shape)
    wshape[dim], wshape[dim + 1] = out_len, taps
    return (gathered * weights.reshape(wshape)).sum(dim=dim + 1)


def imresize(
    x: torch.Tensor,
    scale: float | None = None,
    *,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
    edge: str = "replicate",
    round_between: bool = False,
) -> torch.Tensor:
    """Resize (..., H, W) floating-point tensors by `scale` or to `size` = (H, W), MATLAB-style.

    edge: "replicate" (clamp indices: what older MATLAB releases did, and what the LR images of
    shared/benchmarks were made with) or "symmetric" (mirror: current MATLAB).
    round_between: round and clamp to 0..255 after each dimension, as MATLAB does for uint8 images
    (pass values in 0..255). Otherwise values are neither clamped nor rounded."""
    if edge not in ("replicate", "symmetric"):
        raise ValueError(f"edge must be 'replicate' or 'symmetric', got {edge!r}")
    if not x.is_floating_point():
        raise TypeError("imresize expects a floating-point tensor")
    in_h, in_w = x.shape[-2:]
    if size is not None:
        out_h, out_w = size
        scale_h, scale_w = out_h / in_h, out_w / in_w
    elif scale is not None:
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        out_h, out_w = math.ceil(in_h * scale), math.ceil(in_w * scale)
        scale_h = scale_w = float(scale)
    else:
        raise ValueError("imresize needs a scale or a size")
    if out_h < 1 or out_w < 1:
        raise ValueError(f"output size {out_h}x{out_w} is empty")
    ndim = x.dim()
    steps = [(ndim - 2, out_h, scale_h), (ndim - 1, out_w, scale_w)]
    steps.sort(key=lambda s: s[2])  # MATLAB resizes the dimension with the smaller scale first
    for dim, out_len, s in steps:
        if x.shape[dim] != out_len or s != 1:
            x = _resize_dim(x, dim, out_len, s, antialias, edge)
            if round_between:
                x = torch.floor(x + 0.5).clamp(0, 255)  # MATLAB rounds halves up
    return x
