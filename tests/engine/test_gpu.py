"""CUDA paths: run on a machine with an NVIDIA GPU (skipped elsewhere, e.g. in CI)."""

from __future__ import annotations

import math

import pytest
import torch

from engine import UpscaleOptions, Upscaler, build_untrained, load_model
from engine.imaging.color import tensor_to_uint8

pytestmark = pytest.mark.gpu


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.double() - b.double()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_agrees_with_fp32_on_cuda(shared_dir, precision):
    desc = load_model(shared_dir / "official-weights" / "a2f" / "AAF_SD_x4.pt")
    x = torch.rand(1, 3, 96, 80, generator=torch.Generator().manual_seed(0))
    full = Upscaler(desc, UpscaleOptions(device="cuda", tile=0)).upscale_tensor(x)
    half = Upscaler(desc, UpscaleOptions(device="cuda", tile=0, precision=precision))
    threshold = 45 if precision == "fp16" else 35  # bf16 keeps 8 mantissa bits, fp16 11
    assert _psnr(full, half.upscale_tensor(x)) > threshold


@pytest.mark.parametrize("tile", [0, 32])
def test_cuda_output_matches_cpu(tile):
    desc = build_untrained("A2F-SD", 2)
    x = torch.rand(1, 3, 70, 90, generator=torch.Generator().manual_seed(1))
    cpu = Upscaler(desc, UpscaleOptions(device="cpu", tile=tile)).upscale_tensor(x)
    gpu = Upscaler(desc, UpscaleOptions(device="cuda", tile=tile)).upscale_tensor(x)
    assert tensor_to_uint8(cpu).shape == tensor_to_uint8(gpu).shape == (140, 180, 3)
    assert _psnr(cpu, gpu) > 50
