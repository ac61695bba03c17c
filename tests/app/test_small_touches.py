"""Zoom shown in percent, a quality setting only for the formats that have one, and a save that
says it is saving."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QApplication

from app.jobs import bicubic_choice
from app.views.canvas import CompareCanvas, PaneContent
from tests.app.conftest import write_png


def test_zoom_percentage_is_shown(window):
    canvas = window.upscale.canvas
    canvas.actual_size()
    assert canvas.zoom_label.text() == "Zoom 100%"
    canvas.state.set_view(2.5, canvas.state.center)
    assert canvas.zoom_label.text() == "Zoom 250%"


def test_quality_only_for_jpeg_and_webp(window):
    out = window.upscale.output_box
    for key, enabled in (("png", False), ("jpeg", True), ("webp", True), ("tiff", False)):
        out.save_format.setCurrentIndex(out.save_format.findData(key))
        assert out.quality.isEnabled() is enabled, key
    batch = window.batch
    for key, enabled in (("keep", True), ("png", False), ("jpeg", True)):
        batch.format.setCurrentIndex(batch.format.findData(key))
        assert batch.quality.isEnabled() is enabled, key


def test_saving_is_announced_then_saved(qtbot, window, tmp_path):
    window.settings.auto_run = False
    tab = window.upscale
    assert tab.panel.selector.set_current(bicubic_choice(2))
    tab.open_path(write_png(tmp_path / "in.png", 12, 12))
    qtbot.waitUntil(lambda: tab.input is not None)
    tab.run()
    qtbot.waitUntil(lambda: len(tab.results) == 1 and not tab.busy)
    said: list[str] = []
    tab.message.connect(lambda text, level: said.append(text))
    task = tab.save_result(tab.selected_result(), tmp_path / "out.png")
    assert said[0] == "Saving out.png..."
    qtbot.waitUntil(lambda: not task.running)
    qtbot.waitUntil(lambda: said[-1].startswith("Saved "))


def test_no_tile_count_before_any_run(window):
    assert not window.upscale.progress.isTextVisible()


def _fitted_canvas(qtbot):
    canvas = CompareCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(900, 500)
    lr = np.zeros((60, 60, 3), np.uint8)
    canvas.set_contents([PaneContent("input", "Input", lr, 4.0, kind="input")])
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.fit()
    return canvas, lr


def _three_more(canvas, lr) -> None:
    sr = np.zeros((240, 240, 3), np.uint8)
    more = [PaneContent(k, k, sr, 1.0) for k in ("a", "b", "reference")]
    canvas.set_contents([canvas.contents["input"], *more])


def test_a_fitted_view_fits_again_when_outputs_arrive(qtbot):
    canvas, lr = _fitted_canvas(qtbot)
    one_pane = canvas.state.zoom
    _three_more(canvas, lr)
    qtbot.waitUntil(lambda: canvas.state.zoom < one_pane * 0.7)
    assert canvas.stays_fitted


def test_a_zoomed_view_stays_as_the_user_left_it(qtbot):
    canvas, lr = _fitted_canvas(qtbot)
    canvas.zoom_in()
    zoomed = canvas.state.zoom
    _three_more(canvas, lr)
    QApplication.processEvents()
    assert not canvas.stays_fitted
    assert canvas.state.zoom == zoomed
