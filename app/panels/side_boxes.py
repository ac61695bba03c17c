"""The boxes of the Upscale/Compare tab's side panel: Run (buttons, progress, time left),
Metrics and comparison (reference, simulate, summary table, export) and Output (format, quality,
save)."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
)

from app.jobs import Metrics, ModelResult
from app.run_control import RunControl
from app.theme import icon

SAVE_FORMATS = (("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WebP"), ("tiff", "TIFF"))
LOSSY_FORMATS = ("jpeg", "webp")  # the formats with a quality setting
COLUMNS = ("Model", "Time (s)", "PSNR (dB)", "SSIM")
PSNR_COLUMN, SSIM_COLUMN = 2, 3


def metrics_lines(m: Metrics) -> list[str]:
    if m.psnr is None:
        return [f"no metrics: {m.error}"] if m.error else []
    return [f"PSNR {m.psnr:.3f} dB", f"SSIM {m.ssim:.4f}"]


class RunBox(QGroupBox):
    """Upscale / Compare / Pause / Cancel, the progress bar and a status line with the time
    left: the shared run control (app.run_control) with the Compare button added."""

    def __init__(self) -> None:
        super().__init__("Run")
        self.control = RunControl("Upscale", pause=True)
        self.run_button = self.control.start_button
        self.compare_button = QPushButton(icon("fa5s.balance-scale"), "Compare...")
        self.control.add_button(self.compare_button, after_start=True)
        self.pause_button = self.control.pause_button
        self.cancel_button = self.control.cancel_button
        self.pause_button.setToolTip("Pause after the current tile; press again to resume")
        self.run_button.setToolTip("Upscale the image with the selected model (Ctrl+R)")
        self.compare_button.setToolTip(
            "Run several models on the image, to compare them side by side (Ctrl+M)"
        )
        self.cancel_button.setToolTip("Stop the run; the outputs already done are kept (Esc)")
        self.progress, self.status = self.control.progress, self.control.status
        self.status.setText("Open or drop an image to start.")
        layout = QVBoxLayout(self)
        layout.addWidget(self.control)

    def set_busy(self, busy: bool, can_run: bool) -> None:
        self.control.set_busy(busy, can_run)
        self.compare_button.setEnabled(can_run and not busy)


class MetricsBox(QGroupBox):
    """Reference or simulate, the summary table (one row per output) and the exports."""

    row_selected = Signal(int)

    def __init__(self) -> None:
        super().__init__("Metrics and comparison")
        self.reference_button = QPushButton(icon("fa5s.bullseye"), "Load reference...")
        self.reference_button.setToolTip(
            "Open the original high-resolution (HR) image of this one, to measure how close "
            "each output gets to it (PSNR/SSIM) (Ctrl+L)"
        )
        self.clear_reference_button = QPushButton("Clear")
        self.clear_reference_button.setToolTip("Forget the reference image")
        self.simulate_check = QCheckBox("Test on this image (shrink it, then upscale)")
        self.simulate_check.setToolTip(
            "Simulate: treat the current image as the ground truth (HR). Its low-resolution "
            "version (LR) is made with MATLAB's bicubic, that is upscaled, and the result is "
            "measured against the image."
        )
        self.reference_label = QLabel()
        self.reference_label.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setMinimumHeight(130)
        self.table.itemSelectionChanged.connect(self._selection)
        self.table.setToolTip(
            "One row per output: time, and with a reference PSNR (dB, higher is closer) and "
            "SSIM (0..1). Click a row to select its pane."
        )
        self.export_png_button = QPushButton(icon("fa5s.file-image"), "Export PNG...")
        self.export_png_button.setToolTip("Save the panes as shown, side by side, in one PNG")
        self.export_csv_button = QPushButton(icon("fa5s.file-csv"), "Export CSV...")
        self.export_csv_button.setToolTip("Save the table as a CSV file (for a spreadsheet)")
        ref_row = QHBoxLayout()
        ref_row.addWidget(self.reference_button)
        ref_row.addWidget(self.clear_reference_button)
        export_row = QHBoxLayout()
        export_row.addWidget(self.export_png_button)
        export_row.addWidget(self.export_csv_button)
        layout = QVBoxLayout(self)
        layout.addLayout(ref_row)
        layout.addWidget(self.simulate_check)
        layout.addWidget(self.reference_label)
        layout.addWidget(self.table)
        layout.addLayout(export_row)
        self.show_reference(None, "", None)

    def show_reference(self, size: tuple[int, int] | None, name: str, simulated: int | None):
        if size is None:
            self.reference_label.setText("No reference: scores (PSNR/SSIM) need one.")
            self.reference_label.setToolTip("")
            return
        how = f"the input is it shrunk x{simulated}" if simulated else "loaded"
        self.reference_label.setText(
            f"Reference {name} ({size[0]}x{size[1]}, {how}). Scored as in the papers."
        )
        self.reference_label.setToolTip(
            "PSNR and SSIM on the luma (Y) channel, with a border of scale pixels left out "
            "(the papers' protocol)"
        )

    def fill(self, results: Iterable[ModelResult]) -> None:
        results = list(results)
        self.table.setRowCount(len(results))
        for row, result in enumerate(results):
            m = result.metrics
            cells = [
                (result.label, result.label),
                (f"{result.seconds:.2f}", result.seconds),
                (f"{m.psnr:.3f}" if m.psnr is not None else "-", m.psnr),
                (f"{m.ssim:.4f}" if m.ssim is not None else "-", m.ssim),
            ]
            for column, (text, value) in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, value)
                if column == 0:
                    item.setToolTip(f"{result.params:,} parameters; weights: {result.source}")
                elif column == 1:
                    item.setToolTip(f"on {result.device}")
                elif m.error:
                    item.setToolTip(m.error)
                self.table.setItem(row, column, item)

    def select_row(self, row: int) -> None:
        self.table.blockSignals(True)
        self.table.selectRow(row)
        self.table.blockSignals(False)

    def _selection(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.row_selected.emit(rows[0].row())

    def set_enabled(self, has_output: bool, has_reference: bool) -> None:
        self.export_png_button.setEnabled(has_output)
        self.export_csv_button.setEnabled(has_output)
        self.clear_reference_button.setEnabled(has_reference)


class OutputBox(QGroupBox):
    """Save format and quality, with the Save and Copy actions."""

    def __init__(self, save: QAction, copy: QAction) -> None:
        super().__init__("Output")
        self.save_format = QComboBox()
        for key, name in SAVE_FORMATS:
            self.save_format.addItem(name, key)
        self.quality = QSpinBox()
        self.quality.setRange(1, 100)
        self.save_format.setToolTip(
            "File format of a saved output: PNG and TIFF are lossless, JPEG and WebP smaller"
        )
        self.quality.setToolTip("JPEG / WebP quality: 95 is near lossless, 80 much smaller")
        row = QHBoxLayout()
        for action in (save, copy):
            button = QToolButton()
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            row.addWidget(button)
        form = QFormLayout(self)
        form.addRow("Format", self.save_format)
        form.addRow("Quality", self.quality)
        form.addRow(row)
        self.save_format.currentIndexChanged.connect(self._format_changed)
        self._format_changed()

    def _format_changed(self, *_args) -> None:
        self.quality.setEnabled(self.save_format.currentData() in LOSSY_FORMATS)
