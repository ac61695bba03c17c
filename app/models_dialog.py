"""The Models dialog: the authors' released checkpoints (download, resumable and sha256-checked,
with progress and Cancel) and the installed weights (bundled, downloaded, imported, trained),
plus "Import..." for a local file and "Move to trash" for the user's own weights. Errors are
shown in the dialog, never as a crash."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import qtawesome as qta
from PySide6.QtCore import QDir, QFile, QStandardPaths, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.dialogs import MessageBar
from app.downloads import DownloadManager
from app.jobs import ModelChoice
from app.panels.weights_files import WEIGHTS_FILTER
from app.theme import icon
from app.workers import TaskHandle, start_task
from engine import (
    RELEASES,
    Release,
    RunOutcome,
    WeightsEntry,
    best_weights,
    format_size,
    import_weights,
    scan_weights,
    user_dir,
)


def release_status(release: Release, entries: list[WeightsEntry]) -> str:
    """ "downloaded" / "imported" when installed, else how much a stopped download has kept."""
    for entry in entries:
        if entry.metadata.get("release") == release.name:
            return entry.origin
    part = user_dir() / (release.filename + ".part")
    if part.is_file() and release.size:
        return f"not installed ({part.stat().st_size / release.size:.0%} downloaded)"
    return "not installed"


class ModelsDialog(QDialog):
    """Lists releases and installed weights; `installed` carries the model an import made
    available (the library choice that now resolves to the best weights). Downloads go through
    the app's DownloadManager (`downloads`), whose `installed` signal says what they installed,
    wherever they were started."""

    installed = Signal(object)  # ModelChoice
    removed = Signal()

    def __init__(
        self, parent: QWidget | None = None, downloads: DownloadManager | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("SR Studio - models")
        self.task: TaskHandle | None = None  # an import
        self.downloads = downloads or DownloadManager(self)
        self.downloads.changed.connect(self._download_changed)
        self.downloads.installed.connect(self._downloaded)
        self.downloads.finished.connect(self._download_finished)
        self.message_bar = MessageBar()

        self.releases = _tree(["Release", "Network", "Scale", "Size", "Status"])
        self.releases.setToolTip(
            "Weights published by the networks' authors; double-click one to download it"
        )
        self.releases.itemSelectionChanged.connect(self._update_enabled)
        self.releases.itemDoubleClicked.connect(lambda *_: self.download_selected())
        self.download_button = QPushButton(icon("fa5s.download"), "Download")
        self.download_button.clicked.connect(self.download_selected)
        self.cancel_button = QPushButton(icon("fa5s.times"), "Cancel")
        self.cancel_button.setToolTip("Stop the download; the bytes kept let Download resume it")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        release_box = QGroupBox("Released by the authors (A2F, HPINet)")
        column = QVBoxLayout(release_box)
        column.addWidget(self.releases)
        column.addWidget(_row(self.download_button, self.cancel_button, self.progress))

        self.installed_list = _tree(["Model", "Scale", "Origin", "Preferred", "File"])
        self.installed_list.headerItem().setToolTip(
            3, "The file used for this model and scale: downloaded over imported over bundled"
        )
        self.installed_list.setToolTip(
            "Weights on this computer: shipped with SR Studio (bundled), downloaded, imported or "
            "trained here"
        )
        self.installed_list.itemSelectionChanged.connect(self._update_enabled)
        self.import_button = QPushButton(icon("fa5s.file-import"), "Import...")
        self.import_button.setToolTip(
            "Install a local RNAN, CRAN, A2F or HPINet weights file (.safetensors, .pt, .pth)"
        )
        self.import_button.clicked.connect(self._ask_import)
        self.trash_button = QPushButton(icon("fa5s.trash-alt"), "Move to trash")
        self.trash_button.setToolTip(
            "Move the selected downloaded, imported or trained weights to the trash "
            "(the weights that ship with SR Studio stay)"
        )
        self.trash_button.clicked.connect(self._ask_trash)
        self.folder_label = QLabel()
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.folder_label.setWordWrap(True)
        installed_box = QGroupBox("Installed weights")
        column = QVBoxLayout(installed_box)
        column.addWidget(self.installed_list)
        column.addWidget(_row(self.import_button, self.trash_button, self.folder_label))

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.button(QDialogButtonBox.StandardButton.Close).setToolTip(
            "Close this window (a download goes on)"
        )
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message_bar)
        layout.addWidget(release_box)
        layout.addWidget(installed_box, 1)
        layout.addWidget(buttons)
        self.resize(860, 640)
        self.refresh()

    # ================================================================= lists

    def refresh(self) -> None:
        """Re-read what is installed; the selected release stays selected."""
        entries, broken = scan_weights()
        selected = self.selected_release()
        self.releases.clear()
        for release in RELEASES:
            item = QTreeWidgetItem(
                [
                    release.name,
                    f"{release.family}-{release.variant}",
                    f"x{release.scale}",
                    format_size(release.size),
                    release_status(release, entries),
                ]
            )
            item.setData(0, Qt.ItemDataRole.UserRole, release)
            installed = not item.text(4).startswith("not installed")
            item.setIcon(4, _icon("fa5s.check-circle" if installed else "fa5s.circle", installed))
            item.setToolTip(0, release.url)
            item.setTextAlignment(3, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.releases.addTopLevelItem(item)
            if release == selected:
                self.releases.setCurrentItem(item)

        self.installed_list.clear()
        used: dict[tuple[str, str, int], WeightsEntry | None] = {}
        for entry in entries:
            key = (entry.family, entry.variant, entry.scale)
            if key not in used:
                used[key] = best_weights(*key)
            best = used[key]
            item = QTreeWidgetItem(
                [
                    entry.name,
                    f"x{entry.scale}",
                    entry.origin,
                    "yes" if best is not None and best.path == entry.path else "",
                    entry.path.name,
                ]
            )
            item.setToolTip(4, str(entry.path))
            item.setData(0, Qt.ItemDataRole.UserRole, entry)
            self.installed_list.addTopLevelItem(item)
        for bad in broken:  # listed, never used: a damaged or crafted file in the folder
            item = QTreeWidgetItem([bad.path.name, "", "unreadable", "", bad.path.name])
            item.setToolTip(0, bad.reason)
            item.setToolTip(2, bad.reason)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            item.setForeground(2, self.palette().placeholderText())
            self.installed_list.addTopLevelItem(item)
        if not entries and not broken:
            self.installed_list.addTopLevelItem(QTreeWidgetItem(["(none yet)"]))
        for tree in (self.releases, self.installed_list):
            _fit_columns(tree)
        rows = self.releases.topLevelItemCount() * max(1, self.releases.sizeHintForRow(0))
        header = self.releases.header().sizeHint().height()
        self.releases.setMinimumHeight(rows + header + 2 * self.releases.frameWidth() + 2)
        note = f"; {len(broken)} unreadable file(s) skipped (hover for why)" if broken else ""
        self.folder_label.setText(f"Installed into {user_dir()}{note}")
        self._update_enabled()

    def release_rows(self) -> dict[str, str]:
        """Release name -> status, as listed (for tests and the screenshot script)."""
        return {item.text(0): item.text(4) for item in _items(self.releases)}

    def installed_rows(self) -> list[tuple[str, str, str]]:
        """(model, scale, origin) of each installed file, as listed."""
        items = _items(self.installed_list)
        return [(item.text(0), item.text(1), item.text(2)) for item in items if item.text(1)]

    def selected_entry(self) -> WeightsEntry | None:
        return _data(self.installed_list.currentItem())

    def select_entry(self, path: Path) -> bool:
        return _select(self.installed_list, lambda item: getattr(_data(item), "path", 0) == path)

    def selected_release(self) -> Release | None:
        return _data(self.releases.currentItem())

    def select_release(self, name: str) -> bool:
        return _select(self.releases, lambda item: item.text(0) == name)

    # ================================================================= download / import

    @property
    def busy(self) -> bool:
        return (self.task is not None and self.task.running) or self.downloads.busy

    def _selected_release_installed(self) -> bool:
        item = self.releases.currentItem()
        return item is not None and not item.text(4).startswith("not installed")

    def download_selected(self) -> TaskHandle | None:
        release = self.selected_release()
        if release is None or self.busy or self._selected_release_installed():
            return None
        self.message_bar.hide()
        task = self.downloads.download([release])
        self._update_enabled()
        return task

    def import_file(self, path: str) -> TaskHandle | None:
        if self.busy:
            return None
        self.progress.setRange(0, 0)
        self.progress.setFormat(f"importing {Path(path).name}...")
        self.message_bar.hide()
        return self._start(lambda ctx: import_weights(path), self._imported)

    def cancel(self) -> None:
        if self.downloads.busy:
            self.downloads.cancel()
            self.cancel_button.setEnabled(False)

    def trash(self, entry: WeightsEntry) -> bool:
        """Move the entry's files to the system trash (nothing is deleted outright); say what
        happened in the message bar."""
        if not entry.removable or self.busy:
            return False
        # Qt's freedesktop trash gives up when ~/.local/share is missing (a fresh account).
        QDir().mkpath(QStandardPaths.writableLocation(QStandardPaths.GenericDataLocation))
        moved = []
        for path in entry.files:
            if not path.exists():
                continue
            if not QFile(str(path)).moveToTrash():
                kept = f"{moved[0].name} was moved" if moved else "nothing was moved"
                self.message_bar.show_message(
                    f"Could not move {path} to the trash ({kept}). Remove it yourself if you "
                    "no longer want it.",
                    "error",
                )
                self.refresh()
                return False
            moved.append(path)
        self.refresh()
        self.message_bar.show_message(
            f"Moved {entry.name} x{entry.scale} ({entry.origin}, {entry.path.name}) to the trash.",
            "info",
        )
        self.removed.emit()
        return True

    def _ask_trash(self) -> None:
        entry = self.selected_entry()
        if entry is None or not entry.removable:
            return
        answer = QMessageBox.question(
            self,
            "Move to trash",
            f"Move {entry.name} x{entry.scale} ({entry.origin}) to the trash?\n\n{entry.path}",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.trash(entry)

    def _ask_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import weights", "", WEIGHTS_FILTER)
        if path:
            self.import_file(path)

    def _start(self, fn, on_finished) -> TaskHandle:
        self.task = start_task(self, fn)
        w = self.task.worker
        w.finished.connect(on_finished)
        w.failed.connect(self._failed)
        w.cancelled.connect(self._cancelled)
        w.done.connect(self._done)
        self._update_enabled()
        return self.task

    def _download_changed(self) -> None:
        """Show the download going on (started here, in the model picker or by the offer)."""
        d = self.downloads
        if d.busy:
            total = d.total_bytes
            if d.done_bytes <= 0 or total <= 0:
                self.progress.setRange(0, 0)  # busy until the first byte count arrives
            else:
                self.progress.setRange(0, 1000)
                self.progress.setValue(int(1000 * min(d.done_bytes, total) / total))
            self.progress.setFormat(d.progress_text())
        self._update_enabled()

    def _downloaded(self, release: Release, path: Path) -> None:
        self._finish_progress(f"{release.name}: installed")
        self.refresh()
        self.message_bar.show_message(
            f"Installed {release.name} (sha256 verified) as {path}.", "info"
        )

    def _download_finished(self, outcome: RunOutcome, text: str) -> None:
        if outcome is RunOutcome.FAILED:
            self._finish_progress("failed")
            self.message_bar.show_message(text, "error")
        elif outcome is RunOutcome.CANCELLED:
            self._finish_progress("cancelled")
            self.message_bar.show_message(text, "info")
        self.refresh()

    def _imported(self, entry: WeightsEntry) -> None:
        self._finish_progress(f"imported {entry.path.name}")
        self.refresh()
        self.message_bar.show_message(
            f"Imported {entry.name} x{entry.scale} as {entry.path.name}.", "info"
        )
        self.installed.emit(ModelChoice(entry.family, entry.variant, entry.scale))

    def _failed(self, text: str) -> None:
        self._finish_progress("failed")
        self.message_bar.show_message(f"Import failed: {text}", "error")
        self.refresh()

    def _cancelled(self) -> None:
        self._finish_progress("cancelled")
        self.refresh()

    def _finish_progress(self, text: str) -> None:
        self.progress.setRange(0, 1000)
        self.progress.setValue(1000 if text.endswith("installed") else 0)
        self.progress.setFormat(text)

    def _done(self) -> None:
        self._update_enabled()

    def _update_enabled(self) -> None:
        busy = self.busy
        installed = self._selected_release_installed()
        self.download_button.setEnabled(
            not busy and self.selected_release() is not None and not installed
        )
        self.download_button.setToolTip(
            "Installed: this release is already in the library"
            if installed
            else "Download the selected release, check its sha256, install"
        )
        self.import_button.setEnabled(not busy)
        entry = self.selected_entry()
        self.trash_button.setEnabled(not busy and entry is not None and entry.removable)
        self.cancel_button.setEnabled(self.downloads.busy)

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Cancel a download or an import and wait for its thread (the window is closing)."""
        self.downloads.shutdown(timeout_ms)
        if self.task is not None:
            self.task.cancel()
            self.task.wait(timeout_ms)


def _tree(headers: list[str]) -> QTreeWidget:
    tree = QTreeWidget()
    tree.setHeaderLabels(headers)
    tree.setRootIsDecorated(False)
    tree.setUniformRowHeights(True)
    tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    tree.header().setStretchLastSection(True)
    return tree


def _items(tree: QTreeWidget) -> list[QTreeWidgetItem]:
    return [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]


def _data(item: QTreeWidgetItem | None) -> Any:
    """What a row stands for (a Release or a WeightsEntry)."""
    return item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None


def _select(tree: QTreeWidget, matches: Callable[[QTreeWidgetItem], bool]) -> bool:
    for item in _items(tree):
        if matches(item):
            tree.setCurrentItem(item)
            return True
    return False


def _fit_columns(tree: QTreeWidget) -> None:
    """Each column as wide as its contents, with some air (ResizeToContents packs them tight)."""
    for column in range(tree.columnCount() - 1):
        tree.resizeColumnToContents(column)
        tree.setColumnWidth(column, tree.columnWidth(column) + 18)


def _icon(name: str, installed: bool) -> QIcon:
    return qta.icon(name, color="#2e9d4f" if installed else "#9aa0a8")


def _row(*widgets: QWidget) -> QWidget:
    box = QWidget()
    layout = QHBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        layout.addWidget(w, 1 if isinstance(w, (QProgressBar, QLabel)) else 0)
    return box
