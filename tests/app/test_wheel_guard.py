"""The wheel changes no setting without intent (issue 33, item 3): over every combo box, spin
box and slider of every tab, a wheel turn without focus leaves its value and scrolls the panel
around it; with focus, it changes the value as Qt's controls do."""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSlider,
    QAbstractSpinBox,
    QComboBox,
    QScrollArea,
    QScrollBar,
)

from app.wheel_guard import _scroll_area
from tests.app.test_canvas import _wheel as wheel


def _wheel(widget, steps: int) -> None:
    wheel(widget, steps, QPointF(widget.rect().center()))


def _value(widget) -> object:
    if isinstance(widget, QComboBox):
        return widget.currentIndex()
    if isinstance(widget, QAbstractSpinBox):
        return widget.text()
    return widget.value()


def _controls(root) -> list:
    found = root.findChildren(QComboBox) + root.findChildren(QAbstractSpinBox)
    found += [s for s in root.findChildren(QAbstractSlider) if not isinstance(s, QScrollBar)]
    return [w for w in found if w.isEnabled() and w.isVisibleTo(root)]


def test_no_tab_changes_a_setting_on_an_unfocused_wheel(qtbot, window):
    window.resize(1280, 720)
    checked = 0
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        page = window.tabs.widget(index)
        qtbot.wait(10)
        for control in _controls(page):
            assert control.focusPolicy() != Qt.FocusPolicy.WheelFocus, control
            control.clearFocus()
            before = _value(control)
            _wheel(control, -1)
            _wheel(control, 1)
            _wheel(control, -1)
            assert _value(control) == before, (window.tabs.tabText(index), control)
            checked += 1
    assert checked >= 8


def test_the_wheel_scrolls_the_panel_and_a_focused_control_still_takes_it(qtbot, window):
    window.resize(1280, 720)
    window.show()
    panel = window.upscale.panel
    combo = panel.cleanup
    area = _scroll_area(combo)
    assert isinstance(area, QAbstractScrollArea)
    if isinstance(area, QScrollArea):
        area.widget().setMinimumHeight(area.viewport().height() + 400)  # room to scroll
    bar = area.verticalScrollBar()
    bar.setValue(0)
    before = combo.currentIndex()
    combo.clearFocus()
    _wheel(combo, -1)
    assert combo.currentIndex() == before
    assert bar.value() > 0  # the panel scrolled instead
    combo.setFocus()
    qtbot.waitUntil(combo.hasFocus, timeout=5000)
    _wheel(combo, -1)
    assert combo.currentIndex() != before
