"""Where the main window opens: within the screen's available area (task bars excluded), with
room for the window manager's frame, whatever size was saved or is the default."""

from __future__ import annotations

from PySide6.QtCore import QMargins, QRect, QSize
from PySide6.QtWidgets import QScrollArea

DEFAULT_SIZE = QSize(1440, 900)
# Title bar and borders a window manager adds around the client area (unknown before show).
FRAME = QMargins(8, 40, 8, 8)


def fit_to_screen(rect: QRect, available: QRect) -> QRect:
    """`rect` (a client area) shrunk so that it and its frame fit in `available`, and moved
    inside it; a position that already fits is kept."""
    room = available.marginsRemoved(FRAME)
    width = max(1, min(rect.width(), room.width()))
    height = max(1, min(rect.height(), room.height()))
    x = min(max(rect.x(), room.left()), room.left() + room.width() - width)
    y = min(max(rect.y(), room.top()), room.top() + room.height() - height)
    return QRect(x, y, width, height)


def default_geometry(available: QRect) -> QRect:
    """A fresh profile: DEFAULT_SIZE, or less on a small screen, centred."""
    rect = fit_to_screen(QRect(QRect(0, 0, DEFAULT_SIZE.width(), DEFAULT_SIZE.height())), available)
    rect.moveCenter(available.marginsRemoved(FRAME).center())
    return fit_to_screen(rect, available)


def fit_scroll_width(scroll: QScrollArea) -> None:
    """A vertically scrolling column never narrower than its contents need: it scrolls, it does
    not squeeze its controls (called again when a theme or font changes what they need)."""
    scroll.setMinimumWidth(
        scroll.widget().minimumSizeHint().width()
        + scroll.verticalScrollBar().sizeHint().width()
        + 2 * scroll.frameWidth()
    )
