"""The Batch tab: a queue of files and folders, output settings, a per-file status table, overall
progress with ETA, pause / cancel, and the report (engine.batch does the work)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.downloads import DownloadManager
from app.jobs import ModelChoice, Step, run_batch_job
from app.panels.model_picker import ModelPicker, PickerTimes
from app.panels.side_boxes import LOSSY_FORMATS
from app.panels.upscale_tab import IMAGE_FILTER
from app.run_control import RunControl
from app.screen_fit import fit_scroll_width
from app.settings import AppSettings
from app.theme import icon
from app.workers import TaskHandle, start_task
from engine import (
    PROGRESS_STEPS,
    BatchJob,
    BatchReport,
    FileRecord,
    RunOutcome,
    SRStudioError,
    UpscaleOptions,
    collect_inputs,
    image_size,
)

COLUMNS = ("File", "Status", "Time (s)", "Size", "Details")
STATUS_COLORS = {
    "done": "#2e9d4f",
    "failed": "#d0443e",
    "cancelled": "#b07d12",
    "skipped": "#7a7f88",
    "running": "#2f6fde",
}
FORMATS = (
    ("keep", "Keep the input's"),
    ("png", "PNG"),
    ("jpeg", "JPEG"),
    ("webp", "WebP"),
    ("tiff", "TIFF"),
)
REPORT_STEM = "srstudio-batch-report"
SIZE_SAMPLE = 200  # queued files whose headers are read for the estimated time


def megapixels(path: str) -> float | None:
    """An image file's size in megapixels, from its header read by the engine's checked opener
    (None when it cannot be read: the batch's own run reports why)."""
    try:
        width, height = image_size(path)
    except (SRStudioError, OSError, ValueError):
        return None
    return width * height / 1e6


class BatchTab(QWidget):
    message = Signal(str, str)
    busy_changed = Signal(bool)
    batch_finished = Signal(object)  # BatchReport
    stale = Signal()  # what was said before (no output folder...) no longer applies

    def __init__(
        self,
        settings: AppSettings,
        options_fn: Callable[[], UpscaleOptions],
        parent: QWidget | None = None,
        downloads: DownloadManager | None = None,
        device_name: Callable[[], str] | None = None,
    ) -> None:
        """`options_fn`: the run options (the Upscale tab's); `downloads`: the app's one download
        queue (the model picker's downloads go through it); `device_name`: the device the
        options run on, in words (for the estimated times)."""
        super().__init__(parent)
        self.settings = settings
        self.options_fn = options_fn
        self.inputs: list[str] = []  # files and folders, as queued
        self.rows: dict[str, int] = {}  # input file -> table row
        self.task: TaskHandle | None = None
        self.report: BatchReport | None = None
        self.report_files: tuple[Path, Path] | None = None
        self._megapixels: dict[str, float | None] = {}  # input file -> its size, read once

        # ---------------------------------------------------------------- queue
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.setColumnWidth(0, 260)
        self.table.setColumnWidth(1, 90)
        self.table.setColumnWidth(2, 70)
        self.table.setColumnWidth(3, 170)
        self.add_files_button = QPushButton(icon("fa5s.plus"), "Add files...")
        self.add_folder_button = QPushButton(icon("fa5s.folder-plus"), "Add folder...")
        self.remove_button = QPushButton(icon("fa5s.minus"), "Remove")
        self.clear_button = QPushButton(icon("fa5s.trash"), "Clear")
        self.table.setToolTip("The images to upscale, one row each, with their outcome")
        self.add_files_button.setToolTip("Add image files to the queue")
        self.add_folder_button.setToolTip("Add every image of a folder to the queue")
        self.remove_button.setToolTip("Take the selected rows out of the queue")
        self.clear_button.setToolTip("Empty the queue (no file is deleted)")
        self.add_files_button.clicked.connect(self.ask_files)
        self.add_folder_button.clicked.connect(self.ask_folder)
        self.remove_button.clicked.connect(self.remove_selected)
        self.clear_button.clicked.connect(self.clear)
        queue_buttons = QHBoxLayout()
        for b in (
            self.add_files_button,
            self.add_folder_button,
            self.remove_button,
            self.clear_button,
        ):
            queue_buttons.addWidget(b)
        queue_buttons.addStretch(1)
        self.queue_label = QLabel("Queue is empty: add files or folders, or drop them here.")

        self.control = RunControl("Start", pause=True, inline=True)
        self.progress, self.status = self.control.progress, self.control.status
        self.start_button = self.control.start_button
        self.pause_button = self.control.pause_button
        self.cancel_button = self.control.cancel_button
        self.open_folder_button = QPushButton(icon("fa5s.folder-open"), "Open output folder")
        self.open_report_button = QPushButton(icon("fa5s.file-alt"), "Open report")
        self.start_button.setToolTip("Upscale every queued image with the model on the right")
        self.pause_button.setToolTip("Pause after the current tile; press again to resume")
        self.cancel_button.setToolTip("Stop the batch; the images already written are kept")
        self.open_folder_button.setToolTip("Show the output folder in the file manager")
        self.open_report_button.setToolTip(
            "The batch report: every file with its outcome, time and sizes"
        )
        self.control.start_clicked.connect(self.start)
        self.control.pause_toggled.connect(self.set_paused)
        self.control.cancel_clicked.connect(self.cancel)
        self.open_folder_button.clicked.connect(self.open_output_folder)
        self.open_report_button.clicked.connect(self.open_report)
        for b in (self.open_folder_button, self.open_report_button):
            self.control.add_button(b)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addLayout(queue_buttons)
        left_layout.addWidget(self.queue_label)
        left_layout.addWidget(self.table, 1)
        left_layout.addWidget(self.control)

        # ---------------------------------------------------------------- settings
        self.selector = ModelPicker(downloads)
        self.selector.error.connect(lambda text: self.message.emit(text, "error"))
        self.selector.list.setToolTip(
            "The networks you can use at this scale, and those one download away: what each "
            "is good for, its quality (bar), its time for the queued images on this computer "
            "and where it comes from. Hover over a row for the exact figures."
        )
        self.selector.time_caption.setToolTip(
            "Quality: the bar runs from plain bicubic enlargement (empty) to the best score "
            "in the papers (full), on the Set5 test photos. Time: for all the queued images on "
            "this computer (per megapixel while the queue is empty)."
        )
        # The times are estimated while the tab is shown, and wait while the batch runs.
        self.times = PickerTimes(
            self.selector,
            options_fn,
            device_name or (lambda: "this computer"),
            idle_words="a 1-megapixel image (the queue is empty)",
            parent=self,
        )
        self.times.active = False
        self.busy_changed.connect(self.times.set_blocked)
        model_box = QGroupBox("Model")
        QVBoxLayout(model_box).addWidget(self.selector)
        note = QLabel(
            "Tile size, extra quality, exact tiles, device and precision: as in the Upscale/Compare"
            " tab."
        )
        note.setWordWrap(True)
        model_box.layout().addWidget(note)

        self.output_dir = QLineEdit(settings.batch_output_dir)
        self.output_dir.setPlaceholderText("choose a folder")
        self.output_dir.setToolTip("Where the upscaled images are written")
        browse = QPushButton(icon("fa5s.folder-open"), "")
        browse.setToolTip("Choose the output folder")
        browse.clicked.connect(self.ask_output_dir)
        out_row = QHBoxLayout()
        out_row.addWidget(self.output_dir, 1)
        out_row.addWidget(browse)
        self.format = QComboBox()
        for key, name in FORMATS:
            self.format.addItem(name, key)
        self.format.setCurrentIndex(max(0, self.format.findData(settings.batch_format)))
        self.format.setToolTip(
            "File format of the outputs: the input's own, or PNG / TIFF (lossless), JPEG / WebP "
            "(smaller)"
        )
        self.quality = QSpinBox()
        self.quality.setRange(1, 100)
        self.quality.setValue(settings.batch_quality)
        self.quality.setToolTip("JPEG / WebP quality: 95 is near lossless, 80 much smaller")
        self.format.currentIndexChanged.connect(self._format_changed)
        self.template = QLineEdit(settings.batch_template)
        self.template.setToolTip(
            "File names of the outputs. Fields: {stem} (the input's name), {ext}, {model}, "
            "{family}, {variant}, {scale}, {index}"
        )
        self.skip_existing = QCheckBox("Skip files whose output exists")
        self.skip_existing.setChecked(settings.batch_skip_existing)
        self.skip_existing.setToolTip(
            "Leave an image alone when its output file is already there (to resume a batch)"
        )
        self.recursive = QCheckBox("Include subfolders")
        self.recursive.setChecked(settings.batch_recursive)
        self.recursive.setToolTip("Queued folders: take the images of their subfolders too")
        self.recursive.toggled.connect(self._expand)
        self.output_dir.editingFinished.connect(self._expand)
        self.output_dir.textChanged.connect(lambda text: text.strip() and self.stale.emit())
        output_box = QGroupBox("Output")
        form = QFormLayout(output_box)
        form.addRow("Folder", out_row)
        form.addRow("Format", self.format)
        form.addRow("Quality", self.quality)
        form.addRow("Names", self.template)
        form.addRow("", self.skip_existing)
        form.addRow("", self.recursive)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 4, 0)
        right_layout.addWidget(model_box)
        right_layout.addWidget(output_box)
        right_layout.addStretch(1)
        right.setMinimumWidth(320)
        # Scrolls vertically on a small screen (the model list is tall), never squeezed.
        scroll = self.side_scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(right)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self._fit_side()

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(scroll)
        splitter.setCollapsible(1, False)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setSizes([900, max(420, scroll.minimumWidth())])  # the picker's lines unelided
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)
        self.selector.restore(settings)
        self._format_changed()
        self._update_enabled()

    def showEvent(self, event) -> None:  # noqa: N802
        self.times.active = True
        self.times.update()  # the options may have changed on the Upscale tab
        super().showEvent(event)

    def hideEvent(self, event) -> None:  # noqa: N802
        self.times.active = False  # no new estimate for a tab not shown
        super().hideEvent(event)

    def changeEvent(self, event) -> None:  # noqa: N802
        # A new theme or font changes what the side column's controls need.
        if event.type() in (QEvent.Type.StyleChange, QEvent.Type.FontChange):
            self._fit_side()
        super().changeEvent(event)

    def _fit_side(self) -> None:
        scroll = self.side_scroll
        fit_scroll_width(scroll)
        extra = scroll.verticalScrollBar().sizeHint().width() + 2 * scroll.frameWidth()
        scroll.setMinimumWidth(max(scroll.minimumWidth(), scroll.widget().minimumWidth() + extra))

    def _format_changed(self, *_args) -> None:
        # "Keep" may keep JPEG or WebP inputs, which take the quality.
        self.quality.setEnabled(self.format.currentData() in ("keep", *LOSSY_FORMATS))

    # ================================================================= settings

    def store(self, s: AppSettings) -> None:
        """The output settings (the model is the Upscale tab's setting: restored from it)."""
        s.batch_output_dir = self.output_dir.text().strip()
        s.batch_format = self.format.currentData()
        s.batch_quality = self.quality.value()
        s.batch_template = self.template.text().strip()
        s.batch_skip_existing = self.skip_existing.isChecked()
        s.batch_recursive = self.recursive.isChecked()

    # ================================================================= queue

    def ask_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Add images", self.settings.last_open_dir, IMAGE_FILTER
        )
        self.add_paths(paths)

    def ask_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Add folder", self.settings.last_open_dir)
        if path:
            self.add_paths([path])

    def ask_output_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder", self.output_dir.text())
        if path:
            self.output_dir.setText(path)
            self._expand()

    def add_paths(self, paths: list[str]) -> None:
        if self.busy:
            self.message.emit("The batch is running; add files after it ends.", "info")
            return
        for path in paths:
            if path not in self.inputs:
                self.inputs.append(str(path))
        self._expand()

    def remove_selected(self) -> None:
        if self.busy:
            return
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        files = {self.table.item(r, 0).data(Qt.ItemDataRole.UserRole) for r in rows}
        kept = []
        for item in self.inputs:
            if item in files:
                continue
            if Path(item).is_dir():  # a folder with some of its files removed: queue the rest
                inside = [f for f in self._files_of(item) if f not in files]
                if len(inside) < len(self._files_of(item)):
                    kept.extend(inside)
                    continue
            kept.append(item)
        self.inputs = kept
        self._expand()

    def clear(self) -> None:
        if not self.busy:
            self.inputs.clear()
            self._expand()

    def _job(self) -> BatchJob:
        fmt = self.format.currentData()
        return BatchJob(
            inputs=list(self.inputs),
            output_dir=Path(self.output_dir.text().strip() or "."),
            recursive=self.recursive.isChecked(),
            name_template=self.template.text().strip(),
            format=None if fmt == "keep" else fmt,
            quality=self.quality.value(),
            skip_existing=self.skip_existing.isChecked(),
        )

    def _files_of(self, folder: str) -> list[str]:
        job = self._job()
        return [str(p) for p in collect_inputs(BatchJob([folder], job.output_dir, job.recursive))]

    def _expand(self) -> None:
        """The table: one row per input file, folders expanded (engine.batch.collect_inputs)."""
        if self.busy:
            return
        files = [str(p) for p in collect_inputs(self._job())] if self.inputs else []
        self.table.setRowCount(len(files))
        self.rows = {}
        for row, path in enumerate(files):
            self.rows[path] = row
            name = QTableWidgetItem(Path(path).name)
            name.setData(Qt.ItemDataRole.UserRole, path)
            name.setToolTip(path)
            self.table.setItem(row, 0, name)
            self._set_row(row, "waiting", "", "", "")
        folders = sum(Path(p).is_dir() for p in self.inputs)
        self.queue_label.setText(
            f"{len(files)} image{'s' * (len(files) != 1)} queued"
            + (f" from {folders} folder{'s' * (folders != 1)}" if folders else "")
            if files
            else "Queue is empty: add files or folders, or drop them here."
        )
        self._show_batch_size(files)
        self._update_enabled()

    def _show_batch_size(self, files: list[str]) -> None:
        """The picker's times: for the queued images (their megapixels), else per megapixel.
        Headers are read on this (GUI) thread, so a queue of thousands is measured on an even
        sample of SIZE_SAMPLE files and the total scaled to the queue."""
        sample = files[:: -(-len(files) // SIZE_SAMPLE)] if files else []
        known_before = self._megapixels
        self._megapixels = {
            path: known_before[path] if path in known_before else megapixels(path)
            for path in sample
        }
        known = [mp for mp in self._megapixels.values() if mp is not None]
        share = len(known) / len(sample) if sample else 0.0
        scale = len(files) / len(sample) if sample else 0.0
        self.times.set_batch(round(len(files) * share), sum(known) * scale)

    def refresh_models(self, installed: ModelChoice | None = None) -> None:
        """Re-read the installed weights (a download, an import, a training run, weights moved
        to the trash). `installed`: weights just installed; selected when they are the release
        this tab's picker offered (its download)."""
        offered = self.selector.offered
        self.selector.refresh()
        if installed is None or offered is None or self.busy:
            return
        if (offered.family, offered.variant, offered.scale) == (
            installed.family,
            installed.variant,
            installed.scale,
        ):
            self.selector.set_current(installed)

    def _set_row(self, row: int, status: str, seconds: str, size: str, details: str) -> None:
        for column, text in ((1, status), (2, seconds), (3, size), (4, details)):
            item = QTableWidgetItem(text)
            if column == 1 and status in STATUS_COLORS:
                item.setForeground(QColor(STATUS_COLORS[status]))
            if column == 4:
                item.setToolTip(text)
            self.table.setItem(row, column, item)

    def row_status(self, row: int) -> str:
        return self.table.item(row, 1).text()

    # ================================================================= run

    @property
    def busy(self) -> bool:
        return self.task is not None and self.task.running

    def start(self) -> TaskHandle | None:
        if self.busy:
            return None
        if not self.rows:
            self.message.emit("The queue is empty.", "info")
            return None
        out = self.output_dir.text().strip()
        if not out:
            self.message.emit("Choose an output folder first.", "error")
            return None
        try:
            job = self._job()
            options = self.options_fn()
        except SRStudioError as exc:
            self.message.emit(str(exc), "error")
            return None
        self._expand()
        choice = self.selector.current()
        report_path = Path(out) / REPORT_STEM
        self.report, self.report_files = None, None
        self.stale.emit()
        self.task = start_task(
            self, lambda ctx: run_batch_job(ctx, job, choice, options, report_path)
        )
        w = self.task.worker
        w.event.connect(self._event)
        w.progress.connect(self._progress)
        w.finished.connect(self._finished)
        w.failed.connect(self._failed)
        w.cancelled.connect(self._cancelled)
        self.control.begin(f"Loading {choice.label}...")
        self._update_enabled()
        self.busy_changed.emit(True)
        return self.task

    def set_paused(self, paused: bool) -> None:
        if not self.busy:
            self.pause_button.setChecked(False)
            return
        self.task.pause(paused)
        self.control.set_paused(paused, "Paused (after the current tile).")

    def cancel(self) -> None:
        if self.busy:
            self.task.cancel()
            self.task.pause(False)
            self.status.setText("Cancelling...")

    def _event(self, obj: object) -> None:
        if isinstance(obj, Step):
            self.control.show_step(obj.text)
        elif isinstance(obj, FileRecord):
            self._record(obj)

    def _record(self, record: FileRecord) -> None:
        row = self.rows.get(record.input)
        if row is None:
            return
        size = ""
        if record.input_size:
            size = "x".join(map(str, record.input_size))
            if record.output_size:
                size += " -> " + "x".join(map(str, record.output_size))
        details = "; ".join([record.reason or (record.output or ""), *record.warnings])
        seconds = f"{record.seconds:.2f}" if record.seconds else ""
        self._set_row(row, record.status, seconds, size, details)

    def _progress(self, done: int, total: int) -> None:
        if total <= 0:
            return
        statuses = [self.row_status(r) for r in range(self.table.rowCount())]
        if "running" not in statuses and "waiting" in statuses:
            self._set_row(statuses.index("waiting"), "running", "", "", "")
        files = total // PROGRESS_STEPS
        text = f"Upscaling: {done // PROGRESS_STEPS} of {files} file{'s' * (files != 1)} done"
        self.control.show_work(done, total, text)

    def _finished(self, found: tuple[BatchReport, tuple[Path, Path] | None]) -> None:
        self.report, self.report_files = found
        outcome = RunOutcome.CANCELLED if self.report.cancelled else RunOutcome.DONE
        self.control.finish(
            outcome,
            self.report.summary()
            + (f". Report: {self.report_files[1]}" if self.report_files else ""),
        )
        failed = len(self.report.failed)
        if failed:
            self.message.emit(
                f"Batch finished; {failed} file{'s' * (failed != 1)} failed "
                "(see the table for the reasons).",
                "error",
            )
        self._done()
        self.batch_finished.emit(self.report)

    def _failed(self, text: str) -> None:
        self.control.finish(RunOutcome.FAILED, "The batch could not run.")
        self.message.emit(text, "error")
        self._done()

    def _cancelled(self) -> None:
        self.control.finish(RunOutcome.CANCELLED, "Cancelled.")
        self._done()

    def _done(self) -> None:
        self.task = None
        self._update_enabled()
        self.busy_changed.emit(False)

    def open_output_folder(self) -> None:
        folder = Path(self.output_dir.text().strip())
        if not folder.is_dir():
            self.message.emit(f"The output folder {folder} does not exist yet.", "info")
            return
        self._open(folder.resolve(), "folders", "the folder")

    def open_report(self) -> None:
        if self.report_files:
            self._open(Path(self.report_files[1]), "text files", "the report")

    def _open(self, path: Path, kind: str, what: str) -> None:
        """Open `path` with the desktop's program, or say where it is when there is none."""
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
            self.message.emit(f"Nothing on this computer opens {kind}: {what} is {path}", "info")

    def _update_enabled(self) -> None:
        busy = self.busy
        for b in (
            self.add_files_button,
            self.add_folder_button,
            self.remove_button,
            self.clear_button,
        ):
            b.setEnabled(not busy)
        self.control.set_busy(busy, can_start=bool(self.rows))
        self.open_report_button.setEnabled(self.report_files is not None)
        self.selector.setEnabled(not busy)

    def shutdown(self, wait_ms: int = 5000) -> None:
        """The window closes: the batch is cancelled and the estimates stopped, their threads
        waited for."""
        if self.task is not None:
            self.cancel()
            self.task.wait(wait_ms)
        self.times.shutdown(wait_ms)
