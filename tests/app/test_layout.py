"""The window fits small screens (1280x720, 1366x768): it opens within the available area, and
every control of the Upscale tab's side panel can be reached, unclipped, by scrolling it."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QRect
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QMainWindow,
    QWidget,
)

from app.compact_toolbar import NARROW, WIDE, CompactToolBar
from app.main_window import MainWindow
from app.screen_fit import FRAME, default_geometry, fit_to_screen
from app.settings import AppSettings

INTERACTIVE = (QAbstractButton, QComboBox, QAbstractSpinBox, QLineEdit, QAbstractItemView)
SCREENS = [QRect(0, 0, 1280, 720), QRect(0, 0, 1366, 768), QRect(0, 0, 1366, 728)]


def test_default_geometry_fits_a_small_screen_and_a_big_one():
    small = default_geometry(QRect(0, 0, 1366, 768))
    assert QRect(0, 0, 1366, 768).contains(small.marginsAdded(FRAME))
    assert small.width() < 1440
    big = default_geometry(QRect(0, 0, 1920, 1080))
    assert (big.width(), big.height()) == (1440, 900)
    assert QRect(0, 0, 1920, 1080).contains(big.marginsAdded(FRAME))


def test_saved_geometry_is_clamped_to_the_screen():
    screen = QRect(0, 0, 1366, 768)
    off = fit_to_screen(QRect(900, 500, 1600, 1000), screen)
    assert screen.contains(off.marginsAdded(FRAME))
    inside = QRect(100, 120, 800, 500)
    assert fit_to_screen(inside, screen) == inside


def _side_controls(win: MainWindow) -> list[QWidget]:
    side = win.upscale.side_scroll.widget()
    found = []
    for w in side.findChildren(QWidget):
        if not isinstance(w, INTERACTIVE) or w.objectName().startswith("qt_"):
            continue
        if isinstance(w.parent(), QComboBox | QAbstractSpinBox) or not w.isVisibleTo(side):
            continue
        found.append(w)
    return found


@pytest.mark.parametrize("screen", SCREENS, ids=lambda r: f"{r.width()}x{r.height()}")
def test_side_panel_controls_are_reachable_and_unclipped(qtbot, monkeypatch, screen):
    monkeypatch.setattr(MainWindow, "available_geometry", lambda self: QRect(screen))
    win = MainWindow(AppSettings(geometry=b""))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    QApplication.processEvents()  # pending layouts
    assert screen.contains(win.geometry().marginsAdded(FRAME)), win.geometry()
    assert win.width() >= win.minimumSizeHint().width()

    scroll = win.upscale.side_scroll
    viewport = scroll.viewport()
    window_rect = win.rect()
    assert window_rect.contains(QRect(scroll.mapTo(win, QPoint(0, 0)), scroll.size()))
    controls = _side_controls(win)
    assert len(controls) > 15
    side, bar = scroll.widget(), scroll.verticalScrollBar()
    assert side.width() <= viewport.width()
    for w in controls:
        in_side = QRect(w.mapTo(side, QPoint(0, 0)), w.size())
        bar.setValue(in_side.bottom() + 1 - viewport.height())  # scrolled until it shows
        rect = QRect(w.mapTo(viewport, QPoint(0, 0)), w.size())
        name = f"{type(w).__name__} {getattr(w, 'text', lambda: '')()!r}"
        assert viewport.rect().contains(rect), f"{name} at {rect} outside {viewport.rect()}"
        assert w.width() >= w.minimumSizeHint().width(), f"{name} squeezed"


def test_tab_actions_live_in_the_upscale_tab(window):
    toolbars = window.findChildren(type(window.upscale.file_toolbar))
    assert all(window.upscale.isAncestorOf(t) for t in toolbars)
    assert window.upscale.actions["run"] in window.upscale.file_toolbar.actions()
    window.tabs.setCurrentWidget(window.batch)
    assert not window.upscale.file_toolbar.isVisible()


def test_toolbar_drops_its_texts_when_narrow_and_shows_them_again(qtbot):
    host = QMainWindow()
    qtbot.addWidget(host)
    toolbar = CompactToolBar("Test")
    for text in ("Open image", "Save output", "Compare models", "Load reference"):
        toolbar.addAction(QAction(text, host))
    host.setCentralWidget(toolbar)
    host.resize(900, 100)
    host.show()
    qtbot.waitExposed(host)
    assert toolbar.toolButtonStyle() == WIDE
    wide = toolbar.wide_width()
    host.resize(wide // 2, 100)
    qtbot.waitUntil(lambda: toolbar.toolButtonStyle() == NARROW)
    host.resize(wide + 50, 100)
    qtbot.waitUntil(lambda: toolbar.toolButtonStyle() == WIDE)
