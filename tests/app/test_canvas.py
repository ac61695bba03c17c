from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from app.views.canvas import MAX_ZOOM, CompareCanvas, PaneContent, choose_visible


def _pixels(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _canvas(qtbot) -> tuple[CompareCanvas, np.ndarray, np.ndarray]:
    canvas = CompareCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(900, 500)
    lr, sr = _pixels(8, 10, 1), _pixels(32, 40, 2)
    canvas.set_contents(
        [
            PaneContent("input", "Input", lr, 4.0, kind="input"),
            PaneContent("a", "Model A", sr, 1.0),
        ]
    )
    canvas.show()
    qtbot.waitExposed(canvas)
    return canvas, lr, sr


def _wheel(widget, steps: int, pos: QPointF) -> None:
    event = QWheelEvent(
        pos,
        widget.mapToGlobal(pos),
        QPoint(),
        QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)


def test_zoom_and_pan_are_shared_by_all_panes(qtbot):
    canvas, _, _ = _canvas(qtbot)
    first, second = canvas.active_panes()
    assert first.state is second.state
    before = canvas.state.zoom
    centre = QPointF(first.width() / 2, first.height() / 2)
    _wheel(first, 2, centre)
    assert canvas.state.zoom == pytest.approx(before * 1.25**2)
    # The output point under the cursor stays put while zooming, in both panes alike.
    point = QPointF(10, 20)
    widget_pos = second.to_widget(point)
    _wheel(second, 1, widget_pos)
    assert second.to_output(widget_pos).x() == pytest.approx(point.x())
    assert first.to_output(widget_pos).y() == pytest.approx(point.y())
    qtbot.mousePress(first, Qt.MouseButton.LeftButton, pos=QPoint(100, 100))
    qtbot.mouseMove(first, QPoint(140, 100))
    qtbot.mouseRelease(first, Qt.MouseButton.LeftButton, pos=QPoint(140, 100))
    shifted = second.to_output(QPointF(140, 100)).x()
    assert shifted == pytest.approx(
        second.to_output(QPointF(100, 100)).x() + 40 / canvas.state.zoom
    )
    for _ in range(40):
        canvas.zoom_in()
    assert canvas.state.zoom == MAX_ZOOM


def test_fit_shows_the_whole_output_and_100_percent_is_one_to_one(qtbot):
    canvas, _, _ = _canvas(qtbot)
    canvas.fit()
    pane = canvas.active_panes()[0]
    tl, br = pane.to_widget(QPointF(0, 0)), pane.to_widget(QPointF(40, 32))
    assert tl.x() >= 0 and tl.y() >= 0 and br.x() <= pane.width() and br.y() <= pane.height()
    canvas.actual_size()
    assert canvas.state.zoom == 1.0


def test_pixel_readout_reads_each_pane_in_its_own_pixels(qtbot):
    canvas, lr, sr = _canvas(qtbot)
    text = canvas.readout_text(QPointF(9.5, 5.2))  # output pixel (9, 5) = input pixel (2, 1)
    assert text.startswith("x 9  y 5")
    assert f"Input @ 2,1: {' '.join(str(v) for v in lr[1, 2])}" in text
    assert f"Model A: {' '.join(str(v) for v in sr[5, 9])}" in text
    assert "Model A" not in canvas.readout_text(QPointF(45, 5))  # outside every image


def test_wipe_mode_shows_two_images_split_by_the_slider(qtbot):
    canvas, _, _ = _canvas(qtbot)
    canvas.set_mode("wipe")
    pane = canvas.wipe_pane
    assert pane.isVisible() and not canvas.grid_host.isVisible()
    assert (pane.content.key, pane.right.key) == ("input", "a")
    canvas.wipe_slider.setValue(250)
    assert pane.wipe == 0.25
    # Dragging the divider moves the slider too.
    x = int(pane.width() * 0.25)
    qtbot.mousePress(pane, Qt.MouseButton.LeftButton, pos=QPoint(x, 50))
    qtbot.mouseMove(pane, QPoint(int(pane.width() * 0.75), 50))
    qtbot.mouseRelease(pane, Qt.MouseButton.LeftButton, pos=QPoint(int(pane.width() * 0.75), 50))
    assert abs(canvas.wipe_slider.value() - 750) <= 3
    # A reference arriving later does not displace the output on the right...
    ref = PaneContent("reference", "Reference", _pixels(32, 40, 4), 1.0, kind="reference")
    canvas.set_contents([*canvas.contents.values(), ref])
    assert (pane.content.key, pane.right.key) == ("input", "a")
    # ...but what the user picks stays picked.
    canvas.wipe_right.activated.emit(2)
    assert pane.right.key == "reference"
    canvas.set_contents(list(canvas.contents.values()))
    assert pane.right.key == "reference"
    canvas.set_mode("side")
    assert len(canvas.active_panes()) == 3


def test_three_models_and_a_reference_keep_the_input_pane():
    keys = ["input", "a", "b", "c", "reference"]
    assert choose_visible(keys, set()) == keys
    assert choose_visible(keys, {"b"}) == ["input", "a", "c", "reference"]
    # more outputs than panes: the last outputs wait in the Panes menu, never input or reference
    many = ["input", "a", "b", "c", "d", "e", "reference"]
    assert choose_visible(many, set()) == ["input", "a", "b", "c", "d", "reference"]
    assert choose_visible(many, {"a"}) == ["input", "b", "c", "d", "e", "reference"]


def test_five_panes_show_in_a_grid_of_three_columns(qtbot):
    canvas = CompareCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(900, 600)
    canvas.show()
    pixels = np.zeros((8, 8, 3), np.uint8)
    keys = ["input", "a", "b", "c", "reference"]
    canvas.set_contents([PaneContent(k, k, pixels) for k in keys])
    panes = canvas.active_panes()
    assert [p.content.key for p in panes] == keys
    rows = {canvas.grid.getItemPosition(canvas.grid.indexOf(p))[:2] for p in panes}
    assert rows == {(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)}
