from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from engine.inference.ensemble import ensemble_forward


def test_equivariant_network_is_unchanged() -> None:
    nearest = nn.Upsample(scale_factor=2, mode="nearest")
    x = torch.rand(1, 3, 5, 7)
    y = ensemble_forward(nearest)(x)
    assert y.shape == (1, 3, 10, 14) and y.dtype == torch.float32
    assert torch.allclose(y, nearest(x), atol=1e-6)


def test_runs_the_eight_flips_and_rotations() -> None:
    x, seen = torch.rand(1, 3, 4, 6), []

    def record(t: Tensor) -> Tensor:
        seen.append(t.clone())
        return nn.functional.interpolate(t, scale_factor=3, mode="nearest")

    assert ensemble_forward(record)(x).shape == (1, 3, 12, 18)
    assert len(seen) == 8
    arr = x[0].numpy()
    expected = [np.rot90(a, k, axes=(1, 2)) for a in (arr, arr[:, :, ::-1]) for k in range(4)]
    assert sorted(tuple(t.shape[2:]) for t in seen) == [(4, 6)] * 4 + [(6, 4)] * 4
    for want in expected:  # every transform once
        assert sum(np.array_equal(t[0].numpy(), want) for t in seen) == 1


def test_matches_an_independent_average_for_a_network_that_is_not_equivariant() -> None:
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 3, 3, padding=1).eval()  # an asymmetric kernel: not flip-equivariant
    x = torch.rand(1, 3, 6, 9)
    with torch.no_grad():
        y = ensemble_forward(conv)(x)
        plain = conv(x)
        outs = []
        for flip in (False, True):
            for k in range(4):
                a = x[0].numpy()[:, :, ::-1] if flip else x[0].numpy()
                a = np.ascontiguousarray(np.rot90(a, k, axes=(1, 2)))
                out = conv(torch.from_numpy(a)[None])[0].numpy()
                out = np.rot90(out, -k, axes=(1, 2))
                outs.append(out[:, :, ::-1] if flip else out)
    assert (y - plain).abs().max() > 1e-3
    assert np.allclose(y[0].numpy(), np.mean(outs, axis=0), atol=1e-6)


def test_keeps_the_input_dtype_and_averages_in_float32() -> None:
    dtypes = []

    def half_net(t: Tensor) -> Tensor:
        dtypes.append(t.dtype)
        return t * 2

    x = torch.rand(1, 3, 4, 4)
    y = ensemble_forward(half_net)(x.bfloat16())
    assert dtypes == [torch.bfloat16] * 8 and y.dtype == torch.float32
    assert torch.allclose(y, x * 2, atol=0.02)


@pytest.mark.parametrize("size", [(1, 1), (2, 3)])
def test_does_not_touch_the_input(size: tuple[int, int]) -> None:
    x = torch.rand(1, 3, *size)
    before = x.clone()
    y = ensemble_forward(lambda t: t)(x)  # a forward that hands back its own input
    assert torch.equal(x, before) and torch.allclose(y, x, atol=1e-7)
