from __future__ import annotations

import torch
from PySide6.QtWidgets import QApplication

from app.dialogs import SHORTCUTS, AboutDialog, HelpDialog, MessageBar
from app.theme import apply_theme
from engine.inference.devices import list_devices


def test_help_lists_every_shortcut_and_about_names_versions_and_devices(qtbot):
    help_dialog = HelpDialog()
    qtbot.addWidget(help_dialog)
    table = help_dialog.findChild(type(help_dialog.children()[1]))
    assert table.rowCount() == len(SHORTCUTS)
    assert {table.item(r, 0).text() for r in range(table.rowCount())} >= {"Ctrl+O", "F1", "Esc"}
    about = AboutDialog()
    qtbot.addWidget(about)
    text = about.label.text()
    assert torch.__version__ in text
    for device in list_devices():
        assert device.name in text


def test_message_bar_keeps_errors_until_dismissed(qtbot):
    bar = MessageBar()
    qtbot.addWidget(bar)
    bar.show_message("cannot read x.png", "error")
    assert bar.text() == "cannot read x.png" and bar.property("level") == "error"
    assert not bar._timer.isActive()
    bar.show_message("saved", "info")
    assert bar._timer.isActive()


def test_themes_change_the_palette():
    app = QApplication.instance()
    assert apply_theme(app, "dark") == "dark"
    dark = app.palette().window().color().lightness()
    assert apply_theme(app, "light") == "light"
    assert app.palette().window().color().lightness() > dark
    assert apply_theme(app, "no such theme") == "light"


def test_every_shortcut_in_help_is_bound_in_the_window(window):
    from PySide6.QtGui import QAction

    bound = {
        seq.toString() for action in window.findChildren(QAction) for seq in action.shortcuts()
    }
    for keys, _ in SHORTCUTS:
        for token in keys.replace(" or wheel", "").split(" / "):
            token = token.strip()
            if token in ("Drag", "+", "-"):
                continue
            assert token in bound, f"{token} is in Help but not bound"
    assert {"+", "-"} <= bound
