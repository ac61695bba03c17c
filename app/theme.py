"""Light and dark themes: the Fusion style, a palette, and a style sheet from resources/themes/."""

from __future__ import annotations

import sys
from pathlib import Path

import qtawesome as qta
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QIconEngine, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QApplication

THEMES = ("light", "dark")


def resources_dir() -> Path:
    base = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parents[1]))
    return base / "resources"


def app_icon() -> QIcon:
    return QIcon(str(resources_dir() / "icons" / "srstudio.svg"))


class PaletteIconEngine(QIconEngine):
    """A qtawesome glyph drawn, each time it is painted, in the application palette's button text
    colour (greyed when disabled): icons follow the theme without being made again."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def clone(self) -> QIconEngine:
        return PaletteIconEngine(self.name)

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode, state: QIcon.State) -> None:
        group = (
            QPalette.ColorGroup.Disabled
            if mode == QIcon.Mode.Disabled
            else QPalette.ColorGroup.Normal
        )
        color = QGuiApplication.palette().color(group, QPalette.ColorRole.ButtonText)
        glyph = qta.icon(self.name, color=color, color_disabled=color, color_active=color)
        glyph.paint(painter, rect, Qt.AlignmentFlag.AlignCenter, QIcon.Mode.Normal, state)

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        pixmap = QPixmap(size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        self.paint(painter, QRect(0, 0, size.width(), size.height()), mode, state)
        painter.end()
        return pixmap


def icon(name: str) -> QIcon:
    """A qtawesome icon (e.g. "fa5s.save") in the theme's text colour."""
    return QIcon(PaletteIconEngine(name))


def _dark_palette() -> QPalette:
    p = QPalette()
    colors = {
        QPalette.ColorRole.Window: "#2b2e34",
        QPalette.ColorRole.WindowText: "#e6e6e6",
        QPalette.ColorRole.Base: "#1f2126",
        QPalette.ColorRole.AlternateBase: "#2b2e34",
        QPalette.ColorRole.ToolTipBase: "#3a3f47",
        QPalette.ColorRole.ToolTipText: "#f0f0f0",
        QPalette.ColorRole.Text: "#e6e6e6",
        QPalette.ColorRole.Button: "#353941",
        QPalette.ColorRole.ButtonText: "#e6e6e6",
        QPalette.ColorRole.BrightText: "#ff6b6b",
        QPalette.ColorRole.Highlight: "#3a7bec",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#7fb0ff",
        QPalette.ColorRole.PlaceholderText: "#8a8f98",
    }
    for role, color in colors.items():
        p.setColor(role, QColor(color))
    for role in (
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
        QPalette.ColorRole.WindowText,
    ):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7a7f88"))
    return p


def apply_theme(app: QApplication, name: str) -> str:
    """Apply "light" or "dark" (anything else: light); returns the theme applied."""
    name = name if name in THEMES else "light"
    app.setStyle("Fusion")
    app.setPalette(_dark_palette() if name == "dark" else app.style().standardPalette())
    qss = resources_dir() / "themes" / f"{name}.qss"
    text = qss.read_text(encoding="utf-8") if qss.is_file() else ""
    app.setStyleSheet(text.replace("@ICONS@", (resources_dir() / "icons").as_posix()))
    return name
