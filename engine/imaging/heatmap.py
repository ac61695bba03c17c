"""Difference heat-map: |Y(output) - Y(reference)| through a "hot" colour map, for display only
(the numbers come from engine.metrics)."""

from __future__ import annotations

import numpy as np

from engine.imaging.color import rgb_to_y

FULL_SCALE = 32.0  # a Y difference of this many levels (of 255) or more shows as the hottest colour


def _colormap() -> np.ndarray:
    """256 RGB entries: black -> dark red -> orange -> yellow -> white ("hot")."""
    t = np.linspace(0.0, 1.0, 256)
    r = np.clip(t * 3.0, 0, 1)
    g = np.clip(t * 3.0 - 1.0, 0, 1)
    b = np.clip(t * 3.0 - 2.0, 0, 1)
    return (np.stack([r, g, b], axis=1) * 255).round().astype(np.uint8)


_LUT = _colormap()


def difference_map(pixels: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 heat-map of two HxWx3 uint8 images; the reference may be larger (cropped)."""
    h, w = pixels.shape[:2]
    diff = np.abs(rgb_to_y(pixels) - rgb_to_y(reference[:h, :w, :3]))
    index = np.clip(diff * (255.0 / FULL_SCALE), 0, 255).astype(np.uint8)
    return _LUT[index]
