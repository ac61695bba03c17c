"""Every interactive control, on every tab and dialog, says in a tooltip what it does (with the
precise term where the label is in plain words)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSlider,
    QAbstractSpinBox,
    QComboBox,
    QHeaderView,
    QLineEdit,
    QScrollBar,
    QTabBar,
    QWidget,
)

from app.dialogs import AboutDialog, CompareDialog, HelpDialog
from app.jobs import bicubic_choice

INTERACTIVE = (
    QAbstractButton,
    QComboBox,
    QAbstractSpinBox,
    QLineEdit,
    QAbstractSlider,
    QAbstractItemView,
)
# Parts of composite widgets (a spin box's line edit, a tab bar's scroll arrows, a combo's
# list): their owner carries the tooltip.
OWNERS = (QComboBox, QAbstractSpinBox, QTabBar, QHeaderView, QAbstractItemView)


def missing_tooltips(root: QWidget) -> list[str]:
    missing = []
    for w in [root, *root.findChildren(QWidget)]:
        if not isinstance(w, INTERACTIVE) or isinstance(w, QScrollBar | QHeaderView):
            continue
        if w.objectName().startswith("qt_") or _inside_owner(w, root):
            continue
        if not w.toolTip().strip():
            text = getattr(w, "text", lambda: "")()
            missing.append(f"{type(w).__name__} {text!r} in {type(w.window()).__name__}")
    return missing


def _inside_owner(w: QWidget, root: QWidget) -> bool:
    parent = w.parentWidget()
    while parent is not None and parent is not root:
        if isinstance(parent, OWNERS):
            return True
        parent = parent.parentWidget()
    return False


def test_main_window_controls_have_tooltips(window):
    assert missing_tooltips(window) == []


def test_models_dialog_controls_have_tooltips(window):
    assert missing_tooltips(window.show_models()) == []


def test_other_dialogs_controls_have_tooltips(qtbot):
    dialogs = [HelpDialog(), AboutDialog(), CompareDialog([bicubic_choice(4)], [])]
    for dialog in dialogs:
        qtbot.addWidget(dialog)
    assert [m for d in dialogs for m in missing_tooltips(d)] == []
