"""The mouse wheel never changes a setting by accident: a combo box, spin box or slider takes the
wheel only when it has the keyboard focus (clicked or tabbed to); otherwise the wheel scrolls
the panel around it, as the user meant (the usual Qt remedy, for the whole app at once).

One event filter on the application sees every wheel event before its widget does. Such
widgets get Qt.StrongFocus (the wheel alone no longer focuses them); a wheel over one without
focus is handed to the nearest scroll area's viewport, or dropped where there is none."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSlider,
    QAbstractSpinBox,
    QComboBox,
    QScrollBar,
    QWidget,
)

GUARDED = (QComboBox, QAbstractSpinBox, QAbstractSlider)


def _guarded(obj: QObject) -> bool:
    # a scroll bar is a slider that is meant to take the wheel
    return isinstance(obj, GUARDED) and not isinstance(obj, QScrollBar)


class WheelGuard(QObject):
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        kind = event.type()
        if kind == QEvent.Type.Polish and _guarded(obj):
            if obj.focusPolicy() == Qt.FocusPolicy.WheelFocus:
                obj.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        elif kind == QEvent.Type.Wheel and _guarded(obj) and not obj.hasFocus():
            area = _scroll_area(obj)
            if area is not None:
                QCoreApplication.sendEvent(area.viewport(), event)
            return True
        return False


def _scroll_area(widget: QWidget) -> QAbstractScrollArea | None:
    parent = widget.parentWidget()
    while parent is not None:
        # a combo's own list view is a scroll area too: the one around the combo is wanted
        if isinstance(parent, QAbstractScrollArea) and not isinstance(parent.parent(), QComboBox):
            return parent
        parent = parent.parentWidget()
    return None


_installed: dict[int, WheelGuard] = {}


def install_wheel_guard(app: QCoreApplication) -> WheelGuard:
    """Once per application; returns the guard (kept alive here)."""
    guard = _installed.get(id(app))
    if guard is None:
        guard = _installed[id(app)] = WheelGuard(app)
        app.installEventFilter(guard)
    return guard
