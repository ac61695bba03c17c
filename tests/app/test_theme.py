"""Both themes: tool bar icons in the palette's text colour, check boxes that can be seen."""

from __future__ import annotations

from collections import Counter

import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication, QCheckBox

from app.theme import THEMES, apply_theme, icon


@pytest.fixture
def themed(qapp):
    yield lambda name: apply_theme(qapp, name)
    apply_theme(qapp, "light")


def _main_colour(pixmap) -> QColor:
    image = pixmap.toImage()
    found = Counter(
        image.pixel(x, y)
        for x in range(image.width())
        for y in range(image.height())
        if image.pixelColor(x, y).alpha() == 255
    )
    return QColor.fromRgba(found.most_common(1)[0][0])


@pytest.mark.parametrize("theme", THEMES)
def test_icons_are_drawn_in_the_palette_text_colour(themed, theme):
    themed(theme)
    palette = QApplication.palette()
    save = icon("fa5s.save")
    text = palette.color(QPalette.ColorRole.ButtonText)
    assert _main_colour(save.pixmap(QSize(32, 32))) == text
    disabled = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText)
    assert _main_colour(save.pixmap(QSize(32, 32), QIcon.Mode.Disabled)) == disabled


def test_toolbar_icons_follow_a_theme_change(window, themed):
    action = window.upscale.actions["open"]
    themed("dark")
    assert _main_colour(action.icon().pixmap(QSize(24, 24))).lightness() > 180
    themed("light")
    assert _main_colour(action.icon().pixmap(QSize(24, 24))).lightness() < 80


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("checked", [False, True])
def test_check_boxes_stand_out_from_the_window(qtbot, themed, theme, checked):
    themed(theme)
    box = QCheckBox("Extra quality")
    qtbot.addWidget(box)
    box.setChecked(checked)
    box.show()
    qtbot.waitExposed(box)
    image = box.grab().toImage()
    window = QApplication.palette().color(QPalette.ColorRole.Window).lightness()
    side = min(image.height(), 24)  # the indicator is at the left
    contrast = max(
        abs(image.pixelColor(x, y).lightness() - window) for x in range(side) for y in range(side)
    )
    assert contrast > 90
