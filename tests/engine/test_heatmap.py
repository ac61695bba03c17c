from __future__ import annotations

import numpy as np

from engine.imaging.heatmap import FULL_SCALE, difference_map


def test_difference_map_is_black_where_equal_and_hot_where_different():
    ref = np.random.default_rng(3).integers(0, 256, size=(6, 6, 3)).astype(np.uint8)
    out = ref.copy()
    out[0, 0] = 255 - ref[0, 0]
    heat = difference_map(out, ref)
    assert heat.shape == (6, 6, 3) and heat.dtype == np.uint8
    assert (heat[1:, 1:] == 0).all()
    big = np.zeros((2, 2, 3), np.uint8)
    assert (difference_map(big + 255, big) == 255).all()  # >= FULL_SCALE levels: white
    assert FULL_SCALE < 255
