"""The Upscale/Compare tab: the input, model outputs and reference in the compare canvas; runs
of one or several models on a worker thread; metrics against a reference; save, copy, export."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import qtawesome as qta
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QGuiApplication, QImage, QKeySequence
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
    QMenu,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app import export, jobs
from app.dialogs import CompareDialog
from app.jobs import Metrics, ModelChoice, ModelFailed, ModelResult, RunRequest, Stage
from app.panels.model_panel import ModelPanel
from app.qimage import array_to_qimage, qimage_to_array
from app.settings import AppSettings
from app.views.canvas import CompareCanvas, PaneContent
from app.views.heatmap import difference_map
from app.workers import TaskHandle, start_task
from engine.imaging.io import FORMAT_EXTENSIONS, READ_EXTENSIONS, ImageData

IMAGE_FILTER = "Images (" + " ".join(f"*{e}" for e in READ_EXTENSIONS) + ");;All files (*)"
SAVE_FORMATS = (("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WebP"), ("tiff", "TIFF"))
COLUMNS = ("Model", "Time (s)", "Device", "PSNR (dB)", "SSIM", "Parameters")


def format_seconds(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def metrics_text(m: Metrics) -> str:
    if m.psnr is None:
        return m.error and f"no metrics: {m.error}"
    return f"PSNR {m.psnr:.3f} dB  SSIM {m.ssim:.4f}"


class UpscaleTab(QWidget):
    message = Signal(str, str)  # text, level ("error" or "info")
    busy_changed = Signal(bool)
    folder_dropped = Signal(list)  # paths for the batch queue
    recent_changed = Signal()

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.source: ImageData | None = None  # the image opened
        self.source_pixels: np.ndarray | None = None
        self.source_name = ""
        self.input: ImageData | None = None  # what runs take: the source, or its simulated LR
        self.input_pixels: np.ndarray | None = None
        self.reference: np.ndarray | None = None
        self.reference_name = ""
        self.simulated_scale: int | None = None
        self.results: dict[str, ModelResult] = {}
        self.cache: dict = {}  # ModelChoice -> ModelDescriptor, used by the run worker only
        self.previews: dict[int, np.ndarray] = {}  # bicubic views of the input by scale
        self.heatmaps: dict[str, np.ndarray] = {}
        self.task: TaskHandle | None = None
        self.side_tasks: list[TaskHandle] = []
        self._generation = 0
        self._stage: Stage | None = None
        self._stage_start = 0.0
        self._run_start = 0.0

        self.canvas = CompareCanvas()
        self.canvas.selection_changed.connect(self._selection_changed)
        self.panel = ModelPanel()
        self.panel.error.connect(lambda text: self.message.emit(text, "error"))
        self.panel.changed.connect(self._model_changed)
        self._build_actions()
        self._build_side()
        self._restore(settings)

        toolbar = QToolBar("View")
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for name in ("fit", "actual", "zoom_in", "zoom_out", None, "wipe", "heatmap",
                     "bicubic_input"):
            if name is None:
                toolbar.addSeparator()
            else:
                toolbar.addAction(self.actions[name])
        self.panes_button = QToolButton()
        self.panes_button.setText("Panes")
        self.panes_button.setIcon(qta.icon("fa5s.th-large"))
        self.panes_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.panes_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.panes_menu = QMenu(self)
        self.panes_menu.aboutToShow.connect(self._fill_panes_menu)
        self.panes_button.setMenu(self.panes_menu)
        toolbar.addWidget(self.panes_button)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(toolbar)
        left_layout.addWidget(self.canvas, 1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.side)
        scroll.setMinimumWidth(330)
        self.splitter = QSplitter()
        self.splitter.addWidget(left)
        self.splitter.addWidget(scroll)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setSizes([900, 360])
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.splitter)
        self._update_enabled()

    # ================================================================= construction

    def _action(self, name: str, text: str, icon: str, shortcuts, slot, checkable=False) -> None:
        action = QAction(qta.icon(icon), text, self)
        keys = [QKeySequence(k) for k in shortcuts]
        if keys:
            action.setShortcuts(keys)
            action.setToolTip(f"{text} ({', '.join(k.toString() for k in keys)})")
        action.setCheckable(checkable)
        (action.toggled if checkable else action.triggered).connect(slot)
        self.actions[name] = action
        self.addAction(action)

    def _build_actions(self) -> None:
        self.actions: dict[str, QAction] = {}
        a = self._action
        a("open", "Open...", "fa5s.folder-open", ["Ctrl+O"], self.ask_open)
        a("paste", "Paste", "fa5s.paste", ["Ctrl+V"], self.paste)
        a("save", "Save output...", "fa5s.save", ["Ctrl+S"], self.ask_save)
        a("copy", "Copy output", "fa5s.copy", ["Ctrl+Shift+C"], self.copy_output)
        a("run", "Upscale", "fa5s.play", ["Ctrl+R", "F5"], lambda: self.run())
        a("compare", "Compare models...", "fa5s.balance-scale", ["Ctrl+M"], self.ask_compare)
        a("cancel", "Cancel", "fa5s.stop", ["Esc"], self.cancel)
        a("reference", "Load reference...", "fa5s.bullseye", ["Ctrl+L"], self.ask_reference)
        a("fit", "Fit", "fa5s.expand", ["F", "Ctrl+0"], self.canvas.fit)
        a("actual", "100%", "fa5s.search", ["1", "Ctrl+1"], self.canvas.actual_size)
        a("zoom_in", "Zoom in", "fa5s.search-plus", ["+", "=", "Ctrl++"], self.canvas.zoom_in)
        a("zoom_out", "Zoom out", "fa5s.search-minus", ["-", "Ctrl+-"], self.canvas.zoom_out)
        a("wipe", "Wipe", "fa5s.columns", ["W"], self.set_wipe, checkable=True)
        a("heatmap", "Difference", "fa5s.fire", ["D"], self.set_heatmap, checkable=True)
        a("bicubic_input", "Bicubic input", "fa5s.image", ["B"], self.set_bicubic_input,
          checkable=True)
        self.actions["wipe"].setToolTip("Before/after wipe instead of side by side (W)")
        self.actions["heatmap"].setToolTip("Show |Y difference| to the reference as a heat-map (D)")
        self.actions["bicubic_input"].setToolTip(
            "Show the input at output size with MATLAB bicubic instead of nearest pixels (B)")

    def _build_side(self) -> None:
        self.run_button = QPushButton(qta.icon("fa5s.play", color="white"), "Upscale")
        self.run_button.setObjectName("primary")
        self.run_button.clicked.connect(lambda: self.run())
        self.compare_button = QPushButton(qta.icon("fa5s.balance-scale"), "Compare...")
        self.compare_button.clicked.connect(self.ask_compare)
        self.cancel_button = QPushButton(qta.icon("fa5s.stop"), "Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("%v / %m tiles")
        self.progress.setValue(0)
        self.status = QLabel("Open or drop an image to start.")
        self.status.setObjectName("runStatus")
        self.status.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.compare_button)
        buttons.addWidget(self.cancel_button)
        run_box = QGroupBox("Run")
        run_layout = QVBoxLayout(run_box)
        run_layout.addLayout(buttons)
        run_layout.addWidget(self.progress)
        run_layout.addWidget(self.status)

        self.simulate_check = QCheckBox("Simulate: treat the image as HR, upscale its bicubic LR")
        self.simulate_check.toggled.connect(self.set_simulate)
        self.reference_button = QPushButton(qta.icon("fa5s.bullseye"), "Load reference...")
        self.reference_button.clicked.connect(self.ask_reference)
        self.clear_reference_button = QPushButton("Clear")
        self.clear_reference_button.clicked.connect(self.clear_reference)
        self.reference_label = QLabel("No reference: PSNR/SSIM need one.")
        self.reference_label.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMinimumHeight(130)
        self.table.itemSelectionChanged.connect(self._table_selection)
        self.export_png_button = QPushButton(qta.icon("fa5s.file-image"), "Export PNG...")
        self.export_png_button.clicked.connect(self.ask_export_png)
        self.export_csv_button = QPushButton(qta.icon("fa5s.file-csv"), "Export CSV...")
        self.export_csv_button.clicked.connect(self.ask_export_csv)
        ref_row = QHBoxLayout()
        ref_row.addWidget(self.reference_button)
        ref_row.addWidget(self.clear_reference_button)
        export_row = QHBoxLayout()
        export_row.addWidget(self.export_png_button)
        export_row.addWidget(self.export_csv_button)
        metrics_box = QGroupBox("Metrics and comparison")
        metrics_layout = QVBoxLayout(metrics_box)
        metrics_layout.addLayout(ref_row)
        metrics_layout.addWidget(self.simulate_check)
        metrics_layout.addWidget(self.reference_label)
        metrics_layout.addWidget(self.table)
        metrics_layout.addLayout(export_row)

        self.save_format = QComboBox()
        for key, name in SAVE_FORMATS:
            self.save_format.addItem(name, key)
        self.quality = QSpinBox()
        self.quality.setRange(1, 100)
        self.quality.setToolTip("JPEG / WebP quality")
        save_row = QHBoxLayout()
        for name in ("save", "copy"):
            button = QToolButton()
            button.setDefaultAction(self.actions[name])
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            save_row.addWidget(button)
        output_box = QGroupBox("Output")
        output_form = QFormLayout(output_box)
        output_form.addRow("Format", self.save_format)
        output_form.addRow("Quality", self.quality)
        output_form.addRow(save_row)

        self.side = QWidget()
        side_layout = QVBoxLayout(self.side)
        side_layout.setContentsMargins(0, 0, 4, 0)
        side_layout.addWidget(self.panel)
        side_layout.addWidget(run_box)
        side_layout.addWidget(metrics_box)
        side_layout.addWidget(output_box)
        side_layout.addStretch(1)

    # ================================================================= settings

    def _restore(self, s: AppSettings) -> None:
        from app.panels.model_panel import decode_file_choice

        for text in s.loaded_weights:
            choice = decode_file_choice(text)
            if choice is not None and Path(choice.path).is_file():
                self.panel.selector.add_choice(choice)
        wanted = ModelChoice(s.family, s.variant, s.scale, s.weights_path or None)
        self.panel.selector.set_current(wanted)
        index = self.panel.tile_mode.findData(s.tile_mode)
        self.panel.tile_mode.setCurrentIndex(max(0, index))
        self.panel.tile_size.setValue(s.tile_size)
        self.panel.ensemble.setChecked(s.ensemble)
        self.panel.device.setCurrentIndex(max(0, self.panel.device.findData(s.device)))
        self.panel.precision.setCurrentIndex(max(0, self.panel.precision.findData(s.precision)))
        self.save_format.setCurrentIndex(max(0, self.save_format.findData(s.save_format)))
        self.quality.setValue(s.quality)
        self.actions["wipe"].setChecked(s.view_mode == "wipe")
        self.actions["bicubic_input"].setChecked(s.input_display == "bicubic")

    def store(self, s: AppSettings) -> None:
        from app.panels.model_panel import encode_file_choice

        choice = self.panel.current()
        s.family, s.variant, s.scale = choice.family, choice.variant, choice.scale
        s.weights_path = choice.path or ""
        s.loaded_weights = [encode_file_choice(c) for c in self.panel.selector.file_choices()]
        s.tile_mode = self.panel.tile_mode.currentData()
        s.tile_size = self.panel.tile_size.value()
        s.ensemble = self.panel.ensemble.isChecked()
        s.device = self.panel.device.currentData()
        s.precision = self.panel.precision.currentData()
        s.save_format = self.save_format.currentData()
        s.quality = self.quality.value()
        s.view_mode = self.canvas.mode
        s.input_display = "bicubic" if self.actions["bicubic_input"].isChecked() else "nearest"

    # ================================================================= input

    def ask_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open image", self.settings.last_open_dir, IMAGE_FILTER)
        if path:
            self.open_path(path)

    def open_paths(self, paths: list[str]) -> None:
        """Dropped paths: one image opens here; folders and several files go to the batch queue."""
        if len(paths) == 1 and not Path(paths[0]).is_dir():
            self.open_path(paths[0])
        elif paths:
            self.folder_dropped.emit(paths)

    def open_path(self, path: str | Path) -> None:
        path = str(path)
        if Path(path).is_dir():
            self.folder_dropped.emit([path])
            return
        self.status.setText(f"Reading {Path(path).name}...")
        task = self._side_task(lambda ctx: jobs.read_input(path))
        task.worker.finished.connect(lambda found: self._opened(path, *found))
        task.worker.failed.connect(self._read_failed)

    def _read_failed(self, text: str) -> None:
        self.status.setText("Could not open the image.")
        self.message.emit(text, "error")

    def _opened(self, path: str, image: ImageData, pixels: np.ndarray) -> None:
        self.settings.last_open_dir = str(Path(path).parent)
        self.settings.add_recent(path)
        self.recent_changed.emit()
        self.set_source(image, pixels, Path(path).name)

    def paste(self) -> None:
        self.paste_image(QGuiApplication.clipboard().image(), "clipboard")

    def paste_image(self, image: QImage | None, name: str = "dropped image") -> None:
        if image is None or image.isNull():
            self.message.emit(f"The {name} holds no image.", "error")
            return
        pixels = qimage_to_array(image)
        self.set_source(jobs.from_pixels(pixels), pixels, name)

    def set_source(self, image: ImageData, pixels: np.ndarray, name: str) -> None:
        """A new image: earlier outputs, reference and previews are dropped (a run is stopped)."""
        self._stop_run()
        self.source, self.source_pixels, self.source_name = image, pixels, name
        self.input, self.input_pixels = image, pixels
        self.reference, self.reference_name, self.simulated_scale = None, "", None
        self._clear_outputs()
        h, w = pixels.shape[:2]
        self.status.setText(f"{name}: {w}x{h}")
        if self.simulate_check.isChecked():
            self._simulate(then_run=self.settings.auto_run)
            return
        self._refresh()
        if self.settings.auto_run:
            self.run()

    def _clear_outputs(self) -> None:
        self.results.clear()
        self.heatmaps.clear()
        self.previews.clear()
        self.table.setRowCount(0)
        self.canvas.selected_key = None

    # ================================================================= reference / simulate

    def ask_reference(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open reference (HR) image", self.settings.last_open_dir, IMAGE_FILTER)
        if path:
            self.load_reference(path)

    def load_reference(self, path: str | Path) -> None:
        path = str(path)
        if self.simulate_check.isChecked():
            self.simulate_check.setChecked(False)
        task = self._side_task(lambda ctx: jobs.read_input(path))
        task.worker.finished.connect(lambda found: self.set_reference(found[1], Path(path).name))
        task.worker.failed.connect(lambda text: self.message.emit(text, "error"))

    def set_reference(self, pixels: np.ndarray | None, name: str) -> None:
        self.reference, self.reference_name = pixels, name
        self.heatmaps.clear()
        self._update_reference_label()
        self._remeasure()
        self._refresh()

    def clear_reference(self) -> None:
        if self.simulate_check.isChecked():
            self.simulate_check.setChecked(False)
        else:
            self.set_reference(None, "")

    def _update_reference_label(self) -> None:
        if self.reference is None:
            self.reference_label.setText("No reference: PSNR/SSIM need one.")
            return
        h, w = self.reference.shape[:2]
        how = (f"simulated: the input is its x{self.simulated_scale} MATLAB-bicubic LR"
               if self.simulated_scale else "loaded")
        self.reference_label.setText(
            f"Reference {self.reference_name} ({w}x{h}, {how}). PSNR/SSIM on Y, "
            "scale pixels shaved (paper protocol).")

    def set_simulate(self, on: bool) -> None:
        if self.source is None:
            return
        self._stop_run()
        self._clear_outputs()
        if on:
            self._simulate(then_run=self.settings.auto_run)
        else:
            self.input, self.input_pixels = self.source, self.source_pixels
            self.simulated_scale = None
            self.set_reference(None, "")

    def _simulate(self, *, then_run: bool) -> None:
        source, scale = self.source, self.panel.current().scale
        task = self._side_task(lambda ctx: jobs.simulate(source, scale))
        task.worker.finished.connect(lambda sim: self._simulated(sim, then_run))
        task.worker.failed.connect(self._simulate_failed)

    def _simulate_failed(self, text: str) -> None:
        self.simulate_check.blockSignals(True)
        self.simulate_check.setChecked(False)
        self.simulate_check.blockSignals(False)
        self.message.emit(text, "error")

    def _simulated(self, sim: jobs.SimulatedInput, then_run: bool) -> None:
        if not self.simulate_check.isChecked() or self.source is None:
            return
        self.input, self.input_pixels = sim.lr, sim.lr_pixels
        self.simulated_scale = sim.scale
        self.previews.clear()
        self.set_reference(sim.hr_pixels, f"{self.source_name} (as HR)")
        if then_run:
            self.run()

    def _model_changed(self) -> None:
        scale = self.panel.current().scale
        if self.simulate_check.isChecked() and self.source is not None \
                and self.simulated_scale not in (None, scale) and not self.busy:
            self._clear_outputs()
            self._simulate(then_run=False)
        elif not self.results:
            self._refresh()

    def _remeasure(self) -> None:
        if not self.results:
            return
        outputs = [(k, r.pixels, r.choice.scale) for k, r in self.results.items()]
        reference, generation = self.reference, self._generation
        task = self._side_task(lambda ctx: jobs.measure_all(ctx, outputs, reference))
        task.worker.finished.connect(lambda found: self._measured(found, generation))

    def _measured(self, found: dict[str, Metrics], generation: int) -> None:
        if generation != self._generation:
            return
        for key, metrics in found.items():
            if key in self.results:
                self.results[key].metrics = metrics
                self._record_measured(self.results[key])
        self._fill_table()
        self._refresh()

    # ================================================================= runs

    @property
    def busy(self) -> bool:
        return self.task is not None and self.task.running

    def run(self, choices: list[ModelChoice] | None = None) -> TaskHandle | None:
        if self.input is None:
            self.message.emit("Open or drop an image first.", "info")
            return None
        if self.busy:
            self.message.emit("A run is already going; cancel it first.", "info")
            return None
        choices = choices or [self.panel.current()]
        try:
            options = self.panel.options()
        except Exception as exc:  # SRStudioError from bad option combinations
            self.message.emit(str(exc), "error")
            return None
        scales = {c.scale for c in choices}
        if len(scales) > 1:
            self.message.emit("Models compared together must share one scale.", "error")
            return None
        if self.simulated_scale and scales != {self.simulated_scale}:
            self.message.emit(
                f"The simulated input is for x{self.simulated_scale}; pick x{self.simulated_scale}"
                " models or turn Simulate off and on again.", "error")
            return None
        if self.results and {r.choice.scale for r in self.results.values()} != scales:
            self.results.clear()
            self.heatmaps.clear()
            self.table.setRowCount(0)
        request = RunRequest(self.input, tuple(choices), options, self.reference)
        self._generation += 1
        generation = self._generation
        cache = self.cache
        self.task = start_task(self, lambda ctx: jobs.run_models(ctx, request, cache))
        worker = self.task.worker
        worker.event.connect(lambda obj: self._run_event(obj, generation))
        worker.progress.connect(lambda d, t: self._run_progress(d, t, generation))
        worker.finished.connect(lambda n: self._run_finished(n, generation))
        worker.failed.connect(lambda text: self._run_failed(text, generation))
        worker.cancelled.connect(lambda: self._run_cancelled(generation))
        self._run_start = time.perf_counter()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status.setText("Starting...")
        self._update_enabled()
        self.busy_changed.emit(True)
        return self.task

    def cancel(self) -> None:
        if self.busy:
            self.task.cancel()
            self.status.setText("Cancelling...")

    def _stop_run(self) -> None:
        """Stop a run whose input is being replaced; its later events are ignored."""
        if self.busy:
            self.task.cancel()
        self._generation += 1

    def _run_event(self, obj: object, generation: int) -> None:
        if generation != self._generation:
            return
        if isinstance(obj, Stage):
            self._stage, self._stage_start = obj, time.perf_counter()
            self.status.setText(f"{obj.label} ({obj.index + 1}/{obj.count}): loading...")
        elif isinstance(obj, ModelResult):
            key = obj.choice.label
            self.results[key] = obj
            self.heatmaps.pop(key, None)
            self._record_measured(obj)
            self._fill_table()
            self._refresh()
            if self.canvas.selected_key is None or self.canvas.selected_key not in self.results:
                self.canvas.select(key)
        elif isinstance(obj, ModelFailed):
            self.message.emit(f"{obj.choice.label}: {obj.message}", "error")

    def _record_measured(self, result: ModelResult) -> None:
        if result.metrics.psnr is not None:
            self.panel.set_measured(result.choice, result.metrics.psnr)

    def _run_progress(self, done: int, total: int, generation: int) -> None:
        if generation != self._generation or total <= 0:
            return
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        stage = self._stage
        label = f"{stage.label} ({stage.index + 1}/{stage.count})" if stage else ""
        elapsed = time.perf_counter() - self._stage_start
        eta = None
        if done > 0:
            left = elapsed / done * (total - done)
            per_model = elapsed / done * total
            eta = left + (stage.count - stage.index - 1) * per_model if stage else left
        self.status.setText(f"{label}: tile {done}/{total}, ETA {format_seconds(eta)}")

    def _run_done(self) -> None:
        self.task = None
        self._stage = None
        self._update_enabled()
        self.busy_changed.emit(False)

    def _run_finished(self, count: int, generation: int) -> None:
        if generation == self._generation:
            seconds = time.perf_counter() - self._run_start
            self.status.setText(f"Done: {count} output{'s' * (count != 1)} in {seconds:.1f} s.")
            self.progress.setValue(self.progress.maximum())
        self._run_done()

    def _run_failed(self, text: str, generation: int) -> None:
        if generation == self._generation:
            self.status.setText("Failed.")
            self.message.emit(text, "error")
        self._run_done()

    def _run_cancelled(self, generation: int) -> None:
        if generation == self._generation:
            kept = len(self.results)
            self.status.setText(f"Cancelled ({kept} finished output{'s' * (kept != 1)} kept).")
        self._run_done()

    def ask_compare(self) -> None:
        if self.input is None:
            self.message.emit("Open or drop an image first.", "info")
            return
        scale = self.simulated_scale or self.panel.current().scale
        choices = [c for c in self.panel.selector.choices if c.scale == scale]
        checked = [r.choice for r in self.results.values()] or [self.panel.current()]
        dialog = CompareDialog(choices, checked, self)
        if dialog.exec() and dialog.selected():
            self.compare(dialog.selected())

    def compare(self, choices: list[ModelChoice]) -> TaskHandle | None:
        """Run several models on the input; each gets a pane and a table row."""
        return self.run(list(dict.fromkeys(choices)))

    # ================================================================= view

    def display_scale(self) -> int:
        if self.results:
            return next(iter(self.results.values())).choice.scale
        return self.simulated_scale or self.panel.current().scale

    def set_wipe(self, on: bool) -> None:
        self.canvas.set_mode("wipe" if on else "side")

    def set_heatmap(self, on: bool) -> None:
        if on and self.reference is None:
            self.message.emit("The difference view needs a reference (load one, or Simulate).",
                              "info")
        self._refresh()

    def set_bicubic_input(self, on: bool) -> None:
        self._refresh()

    def _input_content(self) -> PaneContent | None:
        if self.input_pixels is None:
            return None
        scale = self.display_scale()
        h, w = self.input_pixels.shape[:2]
        title = "Input (LR)" if self.simulated_scale else f"Input: {self.source_name}"
        info = [f"{w}x{h}, shown x{scale}"]
        if self.actions["bicubic_input"].isChecked():
            preview = self.previews.get(scale)
            if preview is None:
                self._make_preview(scale)
            else:
                return PaneContent("input", title, preview, 1.0, [*info, "bicubic"], "input")
        return PaneContent("input", title, self.input_pixels, float(scale), [*info, "nearest"],
                           "input")

    def _make_preview(self, scale: int) -> None:
        image, generation = self.input, self._generation
        task = self._side_task(lambda ctx: jobs.bicubic_preview(ctx, image, scale))
        task.worker.finished.connect(lambda arr: self._preview_ready(scale, arr, generation))
        task.worker.failed.connect(lambda text: self.message.emit(text, "error"))

    def _preview_ready(self, scale: int, pixels: np.ndarray, generation: int) -> None:
        if generation == self._generation:
            self.previews[scale] = pixels
            self._refresh()

    def _output_content(self, key: str, result: ModelResult) -> PaneContent:
        info = [f"{result.seconds:.2f} s on {result.device}"]
        text = metrics_text(result.metrics)
        if text:
            info.append(text)
        if self.actions["heatmap"].isChecked() and self.reference is not None \
                and result.metrics.psnr is not None:
            heat = self.heatmaps.get(key)
            if heat is None:
                heat = self.heatmaps[key] = difference_map(result.pixels, self.reference)
            return PaneContent(key, f"{result.label}: difference", heat, 1.0,
                               [*info, "|Y diff| 0 to 32+ levels"], "heatmap")
        return PaneContent(key, result.label, result.pixels, 1.0, info, "output")

    def pane_contents(self) -> list[PaneContent]:
        contents = []
        inp = self._input_content()
        if inp is not None:
            contents.append(inp)
        contents.extend(self._output_content(k, r) for k, r in self.results.items())
        if self.reference is not None:
            h, w = self.reference.shape[:2]
            contents.append(PaneContent("reference", "Reference (HR)", self.reference, 1.0,
                                        [f"{self.reference_name}, {w}x{h}"], "reference"))
        return contents

    def _refresh(self) -> None:
        self.canvas.set_contents(self.pane_contents())
        self._update_enabled()

    def _fill_panes_menu(self) -> None:
        self.panes_menu.clear()
        for key, content in self.canvas.contents.items():
            action = self.panes_menu.addAction(content.title)
            action.setCheckable(True)
            action.setChecked(key not in self.canvas.hidden)
            action.toggled.connect(lambda on, k=key: self.canvas.set_hidden(k, not on))

    def _selection_changed(self, key: str) -> None:
        keys = list(self.results)
        if key in keys:
            self.table.blockSignals(True)
            self.table.selectRow(keys.index(key))
            self.table.blockSignals(False)
        self._update_enabled()

    def _table_selection(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        keys = list(self.results)
        if rows and rows[0].row() < len(keys):
            self.canvas.select(keys[rows[0].row()])

    def _fill_table(self) -> None:
        self.table.setRowCount(len(self.results))
        for row, result in enumerate(self.results.values()):
            m = result.metrics
            cells = [
                (result.label, result.label),
                (f"{result.seconds:.2f}", result.seconds),
                (result.device, result.device),
                (f"{m.psnr:.3f}" if m.psnr is not None else "-", m.psnr),
                (f"{m.ssim:.4f}" if m.ssim is not None else "-", m.ssim),
                (f"{result.params:,}", result.params),
            ]
            for column, (text, value) in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, value)
                if column == 0:
                    item.setToolTip(result.source)
                if column in (3, 4) and m.error:
                    item.setToolTip(m.error)
                self.table.setItem(row, column, item)

    # ================================================================= outputs

    def selected_result(self) -> ModelResult | None:
        key = self.canvas.selected_key
        if key in self.results:
            return self.results[key]
        return next(reversed(self.results.values()), None) if self.results else None

    def default_name(self, result: ModelResult, fmt: str) -> str:
        stem = Path(self.source_name).stem or "image"
        return f"{stem}_{result.choice.name}_x{result.choice.scale}.{FORMAT_EXTENSIONS[fmt]}"

    def ask_save(self) -> None:
        result = self.selected_result()
        if result is None:
            self.message.emit("There is no output to save yet.", "info")
            return
        fmt = self.save_format.currentData()
        start = str(Path(self.settings.last_save_dir or self.settings.last_open_dir)
                    / self.default_name(result, fmt))
        path, _ = QFileDialog.getSaveFileName(self, "Save output", start,
                                              "Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff)")
        if path:
            self.save_result(result, path)

    def save_result(self, result: ModelResult, path: str | Path) -> TaskHandle:
        """Write in a worker; the format comes from the file name, else the Format choice."""
        path = Path(path)
        fmt = None if path.suffix else self.save_format.currentData()
        if fmt is not None:
            path = path.with_suffix("." + FORMAT_EXTENSIONS[fmt])
        quality = self.quality.value()
        self.settings.last_save_dir = str(path.parent)
        task = self._side_task(lambda ctx: jobs.save_output(result.output, path, fmt, quality))
        task.worker.finished.connect(lambda p: self.message.emit(f"Saved {p}", "info"))
        task.worker.failed.connect(lambda text: self.message.emit(f"Not saved: {text}", "error"))
        return task

    def copy_output(self) -> None:
        result = self.selected_result()
        if result is None:
            self.message.emit("There is no output to copy yet.", "info")
            return
        QGuiApplication.clipboard().setImage(array_to_qimage(result.pixels))
        self.message.emit(f"Copied {result.label} to the clipboard.", "info")

    def export_contents(self) -> list[PaneContent]:
        """What the side-by-side export shows: the panes as displayed (the input at output size)."""
        contents = self.pane_contents()
        return [replace(c, info=list(c.info)) for c in contents]

    def ask_export_png(self) -> None:
        if not self.results:
            self.message.emit("Run a model (or Compare) first.", "info")
            return
        start = str(Path(self.settings.last_save_dir) / "comparison.png")
        path, _ = QFileDialog.getSaveFileName(self, "Export side by side", start, "PNG (*.png)")
        if path:
            self.export_png(path)

    def export_png(self, path: str | Path) -> None:
        try:
            export.save_qimage(export.side_by_side(self.export_contents()), path)
        except (OSError, ValueError) as exc:
            self.message.emit(f"Export failed: {exc}", "error")
            return
        self.message.emit(f"Exported {path}", "info")

    def ask_export_csv(self) -> None:
        if not self.results:
            self.message.emit("Run a model (or Compare) first.", "info")
            return
        start = str(Path(self.settings.last_save_dir) / "comparison.csv")
        path, _ = QFileDialog.getSaveFileName(self, "Export table", start, "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def csv_rows(self) -> list[list[object]]:
        rows = []
        for r in self.results.values():
            h, w = r.pixels.shape[:2]
            psnr = f"{r.metrics.psnr:.4f}" if r.metrics.psnr is not None else ""
            ssim = f"{r.metrics.ssim:.6f}" if r.metrics.ssim is not None else ""
            rows.append([r.label, f"{r.seconds:.4f}", r.device, psnr, ssim, r.params, r.source,
                         w, h])
        return rows

    def export_csv(self, path: str | Path) -> None:
        try:
            export.write_csv(self.csv_rows(), path)
        except OSError as exc:
            self.message.emit(f"Export failed: {exc}", "error")
            return
        self.message.emit(f"Exported {path}", "info")

    # ================================================================= helpers

    def _side_task(self, fn) -> TaskHandle:
        task = start_task(self, fn)
        self.side_tasks.append(task)
        task.worker.done.connect(lambda: self._side_done(task))
        return task

    def _side_done(self, task: TaskHandle) -> None:
        if task in self.side_tasks:
            self.side_tasks.remove(task)

    def _update_enabled(self) -> None:
        busy = self.busy
        has_input = self.input is not None
        has_output = bool(self.results)
        self.run_button.setEnabled(has_input and not busy)
        self.compare_button.setEnabled(has_input and not busy)
        self.cancel_button.setEnabled(busy)
        self.actions["run"].setEnabled(has_input and not busy)
        self.actions["compare"].setEnabled(has_input and not busy)
        self.actions["cancel"].setEnabled(busy)
        for name in ("save", "copy"):
            self.actions[name].setEnabled(has_output)
        self.export_png_button.setEnabled(has_output)
        self.export_csv_button.setEnabled(has_output)
        self.clear_reference_button.setEnabled(self.reference is not None)

    def shutdown(self, wait_ms: int = 5000) -> None:
        """Cancel everything and wait for the threads (window closing)."""
        for task in [self.task, *self.side_tasks]:
            if task is not None:
                task.cancel()
        for task in [self.task, *self.side_tasks]:
            if task is not None:
                task.wait(wait_ms)
