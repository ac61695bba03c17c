"""Help (keyboard shortcuts), About (versions and devices), the compare picker and the in-window
message bar used for errors (never a modal box that could block a run or a test)."""

from __future__ import annotations

import platform
import sys
from collections.abc import Sequence

import numpy as np
import PySide6
import torch
from PySide6.QtCore import Qt, QTimer, qVersion
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.jobs import ModelChoice
from engine import list_devices

try:
    from importlib.metadata import PackageNotFoundError, version
except ImportError:  # pragma: no cover
    version = None


def app_version() -> str:
    try:
        return version("srstudio") if version else "0.1.0"
    except PackageNotFoundError:
        return "0.1.0"


class MessageBar(QFrame):
    """A dismissible line at the top of the window: errors stay until closed, info fades."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBar")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("\u2715")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)
        self.source: object | None = None  # who said it (a tab), for clear_from
        self.hide()

    def clear_from(self, source: object) -> None:
        """`source`'s message no longer applies: hide it (another's stays)."""
        if self.source is source:
            self.hide()

    def show_message(self, text: str, level: str = "error", source: object | None = None) -> None:
        self.source = source
        self.setProperty("level", level)
        self.style().unpolish(self)
        self.style().polish(self)
        self.label.setText(text)
        self.show()
        if level == "error":
            self._timer.stop()
        else:
            self._timer.start(6000)

    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""


SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("Ctrl+O", "Open an image"),
    ("Ctrl+V", "Paste an image from the clipboard"),
    ("Ctrl+S", "Save the selected output"),
    ("Ctrl+Shift+C", "Copy the selected output to the clipboard"),
    ("Ctrl+R / F5", "Upscale with the selected model"),
    ("Ctrl+M", "Compare several models"),
    ("Esc", "Cancel the running job"),
    ("Ctrl+L", "Load a reference (HR) image for metrics"),
    ("+ / -  or wheel", "Zoom in / out (up to 32x, nearest pixels)"),
    ("F / Ctrl+0", "Fit the image in the panes"),
    ("1 / Ctrl+1", "Actual pixels (100%)"),
    ("Drag", "Pan (all panes together)"),
    ("W", "Side by side / before-after wipe"),
    ("D", "Difference heat-map"),
    ("B", "Input pane: square pixels (nearest) / smooth (bicubic)"),
    ("Ctrl+Tab", "Next tab"),
    ("Ctrl+T", "Light / dark theme"),
    ("F1", "This help"),
    ("Ctrl+Q", "Quit"),
)


def close_buttons() -> QDialogButtonBox:
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.button(QDialogButtonBox.StandardButton.Close).setToolTip("Close this window")
    return buttons


class HelpDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("SR Studio - keyboard shortcuts")
        table = QTableWidget(len(SHORTCUTS), 2)
        table.setHorizontalHeaderLabels(["Keys", "Action"])
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, (keys, action) in enumerate(SHORTCUTS):
            table.setItem(row, 0, QTableWidgetItem(keys))
            table.setItem(row, 1, QTableWidgetItem(action))
        table.setToolTip("Keyboard shortcuts of the main window")
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        tips = QLabel(
            "Drop images on the window to upscale them; drop folders to queue them in "
            "the Batch tab. Hover over the panes to read pixel values."
        )
        tips.setWordWrap(True)
        buttons = close_buttons()
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(tips)
        layout.addWidget(buttons)
        self.resize(540, 720)


def about_text() -> str:
    devices = "<br>".join(f"&nbsp;&nbsp;{d.spec}: {d.name}" for d in list_devices())
    cuda = torch.version.cuda or "none"
    return (
        f"<h3>SR Studio {app_version()}</h3>"
        "<p>Image super-resolution with RNAN, CRAN, A2F and HPINet.</p>"
        f"<p>Python {platform.python_version()} ({sys.platform})<br>"
        f"PyTorch {torch.__version__} (CUDA {cuda})<br>"
        f"NumPy {np.__version__}<br>"
        f"PySide6 {PySide6.__version__}, Qt {qVersion()}</p>"
        f"<p>Devices:<br>{devices}</p>"
    )


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About SR Studio")
        self.label = QLabel(about_text())
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = close_buttons()
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addWidget(buttons)


class CompareDialog(QDialog):
    """Tick the models to run on the current image (all at one scale)."""

    def __init__(
        self,
        choices: Sequence[ModelChoice],
        checked: Sequence[ModelChoice],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare models")
        self.list = QListWidget()
        for choice in choices:
            item = QListWidgetItem(choice.label)
            item.setData(Qt.ItemDataRole.UserRole, choice)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                Qt.CheckState.Checked if choice in checked else Qt.CheckState.Unchecked
            )
            self.list.addItem(item)
        self.list.setToolTip("Tick the models to run; each output gets its own pane")
        self.both_cleanups = QCheckBox("Each with and without the clean-up")
        self.both_cleanups.setToolTip(
            "Two panes a model: as it is, and after the clean-up network has removed JPEG blocks"
            " and noise from the input"
        )
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Run")
        buttons.button(QDialogButtonBox.StandardButton.Ok).setToolTip(
            "Run the ticked models on the current image"
        )
        buttons.button(QDialogButtonBox.StandardButton.Cancel).setToolTip("Run nothing")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Models to run on the current image:"))
        layout.addWidget(self.list)
        layout.addWidget(self.both_cleanups)
        layout.addWidget(buttons)

    def selected(self) -> list[ModelChoice]:
        items = (self.list.item(i) for i in range(self.list.count()))
        return [
            i.data(Qt.ItemDataRole.UserRole)
            for i in items
            if i.checkState() == Qt.CheckState.Checked
        ]
