"""Panes draw from a pyramid (app.views.pyramid, issue 32): each level is the area halving of the
one below, levels are built as rows arrive, and 100% zoom shows the output's exact pixels, read
from the store on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF

from app.jobs import upscale_kept
from app.qimage import qimage_to_array
from app.views.canvas import CompareCanvas, PaneContent
from app.views.pyramid import MIN_SIDE, Pyramid
from engine import ImageData, UpscaleOptions, Upscaler, load_model, uint8_to_tensor

RNG = np.random.default_rng(3)


@pytest.mark.parametrize(("h", "w"), [(1001, 777), (2048, 1024), (300, 5)])
def test_each_level_is_the_area_halving_of_the_one_below(h: int, w: int) -> None:
    pixels = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    built = Pyramid(h, w)
    top = 0
    while top < h:  # bands of uneven heights, as the tiler gives them
        rows = int(RNG.integers(1, 97))
        built.add_rows(pixels[top : top + rows])
        top += rows
    assert built.rows_ready == h
    assert max(built.level_shape(built.count - 1)) <= MIN_SIDE
    below = pixels
    for level in range(1, built.count):
        halved = np.asarray(Image.fromarray(below).reduce(2))
        mine = built.region(level, 0, 0, *built.level_shape(level))
        assert mine.shape == halved.shape
        assert np.abs(mine.astype(int) - halved).max() <= 1
        below = mine
    whole = Pyramid.of(pixels)
    assert all(np.array_equal(a, b) for a, b in zip(whole.levels, built.levels, strict=True))
    assert Pyramid.of(pixels) is whole  # made once per array


def test_the_level_drawn_has_a_pixel_per_screen_pixel() -> None:
    p = Pyramid(4000, 3000)
    chosen = [p.level_for(r) for r in (0.5, 1, 1.9, 2, 3.9, 4, 100)]
    assert chosen == [0, 0, 0, 1, 1, 2, p.count - 1]


def _kept_output(tmp_path: Path, monkeypatch) -> tuple:
    monkeypatch.setenv("SRSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    small = RNG.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    lr = np.asarray(Image.fromarray(small).resize((300, 400), Image.Resampling.BICUBIC))
    up = Upscaler(load_model("bicubic", scale=2), UpscaleOptions(tile=64, device="cpu"))
    image = ImageData(rgb=uint8_to_tensor(lr)[0])
    return (*upscale_kept(up, image), lr)


def test_a_kept_output_is_drawn_at_100_percent_exactly(qtbot, tmp_path, monkeypatch) -> None:
    store, pyramid, _ = _kept_output(tmp_path, monkeypatch)
    assert pyramid.base is None and pyramid.store is store  # level 0 stays on disk
    exact = store.read(0, store.height)
    canvas = CompareCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(420, 360)
    canvas.show()
    canvas.set_contents([PaneContent("a", "A", pyramid)])
    pane = canvas.panes[0]
    canvas.state.set_view(1.0, QPointF(310.5, 420.5))  # a region in the middle, 100%
    shot = qimage_to_array(pane.grab().toImage())
    h, w = shot.shape[:2]
    x0, y0 = int(310.5 - w / 2 + 0.5), int(420.5 - h / 2 + 0.5)
    # below the title box, away from the selection frame
    inner = (slice(80, h - 8), slice(8, w - 8))
    expected = exact[y0 : y0 + h, x0 : x0 + w][inner]
    assert np.array_equal(shot[inner], expected)
    canvas.fit()  # and at fit: drawn from a smaller level, no full-size image made
    level = pyramid.level_for(1 / canvas.state.zoom)
    assert level >= 1
    assert pane.content is not None and pane.content.value_at(5, 7) == (5, 7, tuple(exact[7, 5]))


def test_the_bicubic_preview_is_made_per_region_and_equals_the_bicubic_model() -> None:
    from types import SimpleNamespace

    from app.jobs import bicubic_preview
    from engine import tensor_to_uint8

    small = RNG.integers(0, 256, (75, 65, 3), dtype=np.uint8)
    lr = np.asarray(Image.fromarray(small).resize((260, 300), Image.Resampling.BICUBIC))
    image = ImageData(rgb=uint8_to_tensor(lr)[0])
    preview = bicubic_preview(SimpleNamespace(should_stop=lambda: False), image, 3)
    whole = Upscaler(load_model("bicubic", scale=3), UpscaleOptions(tile=0, device="cpu"))
    expected = tensor_to_uint8(whole.upscale_image(image).rgb)
    assert preview.base is None and preview.store is None  # nothing of output size kept
    assert np.array_equal(preview.whole(), expected)  # 900 rows: two strips of 512 and more
    assert np.array_equal(preview.region(0, 511, 100, 530, 400), expected[511:530, 100:400])
    halved = np.asarray(Image.fromarray(expected).reduce(2))
    assert np.abs(preview.region(1, 0, 0, 450, 390).astype(int) - halved).max() <= 1
