from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from engine.evaluate import make_lr
from engine.imaging.resize import imresize


def test_output_size_is_ceil_of_scaled_size():
    x = torch.rand(1, 3, 7, 10)
    assert imresize(x, 2).shape == (1, 3, 14, 20)
    assert imresize(x, 1 / 3).shape == (1, 3, 3, 4)
    assert imresize(x, 1.5).shape == (1, 3, 11, 15)
    assert imresize(x, size=(5, 9)).shape == (1, 3, 5, 9)
    assert imresize(x[0], 2).shape == (3, 14, 20)


def test_constant_image_stays_constant_up_and_down():
    x = torch.full((1, 1, 9, 13), 0.37, dtype=torch.float64)
    for s in (4, 3, 2, 1 / 2, 1 / 3, 1 / 4):
        assert torch.allclose(imresize(x, s), torch.full_like(imresize(x, s), 0.37), atol=1e-12)


def test_linear_ramp_is_reproduced_in_the_interior():
    # The cubic kernel (a = -0.5) reproduces linear functions away from the borders.
    ramp = torch.arange(32, dtype=torch.float64).repeat(4, 1)[None, None]
    up = imresize(ramp, 2)[0, 0, 0]
    centres = (torch.arange(64, dtype=torch.float64) + 0.5) / 2 - 0.5  # output pixel -> input coord
    assert torch.allclose(up[4:-4], centres[4:-4], atol=1e-10)


def test_one_pixel_input_upscales_to_constant():
    x = torch.tensor([[[[0.25]], [[0.5]], [[0.75]]]])
    y = imresize(x, 4)
    assert y.shape == (1, 3, 4, 4)
    assert torch.allclose(y, x.expand(1, 3, 4, 4), atol=1e-6)


def test_edge_modes_differ_only_near_the_border():
    torch.manual_seed(1)
    x = torch.rand(1, 3, 40, 40, dtype=torch.float64)
    a = imresize(x, 1 / 4, edge="replicate")
    b = imresize(x, 1 / 4, edge="symmetric")
    assert not torch.allclose(a, b)
    assert torch.allclose(a[..., 2:-2, 2:-2], b[..., 2:-2, 2:-2], atol=1e-12)


def test_rejects_bad_arguments():
    x = torch.rand(1, 3, 4, 4)
    with pytest.raises(ValueError):
        imresize(x)
    with pytest.raises(ValueError):
        imresize(x, -2)
    with pytest.raises(ValueError):
        imresize(x, 2, edge="wrap")
    with pytest.raises(TypeError):
        imresize(x.to(torch.uint8), 2)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_downscale_reproduces_the_benchmark_lr_files(shared_dir, scale):
    """The LR files of shared/benchmarks were made with MATLAB's imresize on uint8 images."""
    differing, total = 0, 0
    for hr_path in sorted((shared_dir / "benchmarks" / "Set5" / f"x{scale}" / "HR").glob("*.png")):
        hr = np.array(Image.open(hr_path).convert("RGB"))
        lr = np.array(Image.open(str(hr_path).replace("/HR/", "/LR/")).convert("RGB"))
        mine = make_lr(hr, scale)
        assert mine.shape == lr.shape
        diff = np.abs(mine.astype(int) - lr.astype(int))
        assert diff.max() <= 1
        differing += int((diff > 0).sum())
        total += diff.size
    # x3 and x4 match exactly; x2 has a handful of exact .5 ties that round the other way.
    assert differing / total < 1e-4
