"""A tool bar that shows text beside its icons while they fit, and icons only when they do not
(the tooltips keep the names); what still does not fit goes behind the overflow arrow."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QToolBar, QWidget

WIDE = Qt.ToolButtonStyle.ToolButtonTextBesideIcon
NARROW = Qt.ToolButtonStyle.ToolButtonIconOnly


class CompactToolBar(QToolBar):
    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.setToolButtonStyle(WIDE)
        self._wide_width = 0  # what the tool bar needs with text, measured while it shows text

    def wide_width(self) -> int:
        if self.toolButtonStyle() == WIDE:
            self._wide_width = self.sizeHint().width()
        return self._wide_width

    def fit(self) -> None:
        style = WIDE if self.width() >= self.wide_width() else NARROW
        if style != self.toolButtonStyle():
            self.setToolButtonStyle(style)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.fit()

    def changeEvent(self, event) -> None:  # noqa: N802
        # A new font or style changes the width the text needs: measure again.
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self.setToolButtonStyle(WIDE)
            self.fit()
        super().changeEvent(event)
