"""The Upscale/Compare tab: the input, model outputs and reference in the compare canvas; runs
of one or several models on a worker thread; metrics against a reference; save, copy, export."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QAction, QGuiApplication, QImage, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QMenu,
    QScrollArea,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app import document, export, jobs
from app.compact_toolbar import CompactToolBar
from app.dialogs import CompareDialog
from app.document import ComparisonDocument
from app.downloads import DownloadManager
from app.jobs import (
    Filling,
    Metrics,
    ModelChoice,
    ModelFailed,
    ModelResult,
    RunRequest,
    Stage,
    Upscaling,
)
from app.panels.download_offer import DownloadOffer, OfferBanner
from app.panels.model_panel import ModelPanel
from app.panels.side_boxes import MetricsBox, OutputBox, RunBox, metrics_lines
from app.qimage import array_to_qimage, qimage_to_array
from app.screen_fit import fit_scroll_width
from app.settings import AppSettings, display_name, storable
from app.theme import icon
from app.views.canvas import CompareCanvas, PaneContent
from app.views.pyramid import Pyramid
from app.workers import TaskHandle, start_task
from engine import (
    FORMAT_EXTENSIONS,
    LONG_RUN_SECONDS,
    READ_EXTENSIONS,
    ImageData,
    RunOutcome,
    SRStudioError,
    decide_auto,
    describe_format,
    format_seconds,
    measure_input,
)

IMAGE_FILTER = "Images (" + " ".join(f"*{e}" for e in READ_EXTENSIONS) + ");;All files (*)"
RUNNING_KEY = "running"  # the pane of the output being made
SAVE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff)"
FILE_TOOLS = ("open", "paste", "save", "copy", None, "run", "compare", "cancel", None, "reference")
VIEW_TOOLS = ("fit", "actual", "zoom_in", "zoom_out", None, "wipe", "heatmap", "bicubic_input")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


class UpscaleTab(QWidget):
    message = Signal(str, str)  # text, level ("error" or "info")
    busy_changed = Signal(bool)
    folder_dropped = Signal(list)  # paths for the batch queue
    recent_changed = Signal()
    stale = Signal()  # what was said about the previous image no longer applies

    def __init__(
        self,
        settings: AppSettings,
        parent: QWidget | None = None,
        downloads: DownloadManager | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.downloads = downloads or DownloadManager(self)
        # What is compared (image, input, reference, results...): a plain model rendered here.
        self.doc = ComparisonDocument()
        self.cache: dict = {}  # ModelChoice -> ModelDescriptor, used by the run worker only
        self._previews_pending: set[int] = set()
        self.task: TaskHandle | None = None
        self.side_tasks: list[TaskHandle] = []
        self._stage: Stage | None = None  # the model of the run in progress
        self._failures: list[ModelFailed] = []  # the run's models that failed, in order
        self._runs = 0  # models the run takes (twice each with and without the clean-up)
        self._passes = 1  # network passes a tile of that model (8 with the self-ensemble)
        self._rounds = 1  # rounds over the tiles (shared pooling: 2, x8 with the ensemble)

        self.canvas = CompareCanvas()
        self.canvas.selection_changed.connect(self._selection_changed)
        self.panel = ModelPanel(downloads=self.downloads)
        self.offer = DownloadOffer(settings, self.downloads, self)
        self.banner = OfferBanner(self.offer)
        # the library changed (a download, an import, a training run, the trash): offer again
        self.panel.selector.model.modelReset.connect(self.offer.update)
        self.busy_changed.connect(self.panel.set_busy)
        self._held = False  # a long run waits for Upscale (auto-run held it)
        self._estimate_serial = 0
        self.panel.error.connect(lambda text: self.message.emit(text, "error"))
        self.panel.changed.connect(self._model_changed)
        self._build_actions()
        self.run_box = RunBox()
        self.metrics_box = MetricsBox()
        self.output_box = OutputBox(self.actions["save"], self.actions["copy"])
        self._connect_boxes()
        # Shortcuts to the widgets tests and the main window use.
        self.run_button, self.cancel_button = self.run_box.run_button, self.run_box.cancel_button
        self.progress, self.status = self.run_box.progress, self.run_box.status
        self.table, self.simulate_check = self.metrics_box.table, self.metrics_box.simulate_check
        self._layout()
        self._restore(settings)
        self.doc.changed.connect(self._document_changed)
        self._update_enabled()

    # The document's state, read-only (tests and the main window read these).
    source = property(lambda self: self.doc.source)
    source_pixels = property(lambda self: self.doc.source_pixels)
    source_name = property(lambda self: self.doc.source_name)
    input = property(lambda self: self.doc.input)
    input_pixels = property(lambda self: self.doc.input_pixels)
    simulated_scale = property(lambda self: self.doc.simulated_scale)
    reference = property(lambda self: self.doc.reference)
    reference_name = property(lambda self: self.doc.reference_name)
    results = property(lambda self: self.doc.results)

    def _document_changed(self, what: str) -> None:
        """Render what changed in the document."""
        doc = self.doc
        if what == document.SOURCE and doc.source is not None:
            self._measure_quality(doc.source)
        if what in (document.SOURCE, document.REFERENCE):
            self._show_reference()
        if what in (document.SOURCE, document.INPUT):
            image = doc.input
            self.panel.set_image_size(None if image is None else (image.height, image.width))
        if what in (document.SOURCE, document.INPUT, document.QUALITY):
            self._show_cleanup_hint()
        if what == document.SOURCE or (what == document.RESULTS and not doc.results):
            self.panel.clear_measured()
            self.canvas.selected_key = None
        if what in (document.SOURCE, document.RESULTS, document.METRICS):
            for result in doc.measured():
                self.panel.set_measured(result.choice, result.metrics.psnr, result.ensemble)
            self.metrics_box.fill(doc.results.values())
        if what == document.REFERENCE:
            self._remeasure()
        self._refresh()

    # ================================================================= construction

    def _action(self, name: str, text: str, glyph: str, keys, slot, checkable=False) -> None:
        action = QAction(icon(glyph), text, self)
        sequences = [QKeySequence(k) for k in keys]
        action.setShortcuts(sequences)
        shown = ", ".join(k.toString() for k in sequences)
        action.setToolTip(f"{text} ({shown})" if shown else text)
        action.setCheckable(checkable)
        (action.toggled if checkable else action.triggered).connect(slot)
        self.actions[name] = action
        self.addAction(action)

    def _build_actions(self) -> None:
        self.actions: dict[str, QAction] = {}
        a, c = self._action, self.canvas
        a("open", "Open...", "fa5s.folder-open", ["Ctrl+O"], self.ask_open)
        a("paste", "Paste", "fa5s.paste", ["Ctrl+V"], self.paste)
        a("save", "Save output...", "fa5s.save", ["Ctrl+S"], self.ask_save)
        a("copy", "Copy output", "fa5s.copy", ["Ctrl+Shift+C"], self.copy_output)
        a("run", "Upscale", "fa5s.play", ["Ctrl+R", "F5"], lambda: self.run())
        a("compare", "Compare models...", "fa5s.balance-scale", ["Ctrl+M"], self.ask_compare)
        a("cancel", "Cancel", "fa5s.stop", ["Esc"], self.cancel)
        a("reference", "Load reference...", "fa5s.bullseye", ["Ctrl+L"], self.ask_reference)
        a("fit", "Fit", "fa5s.expand", ["F", "Ctrl+0"], c.fit)
        a("actual", "100%", "fa5s.search", ["1", "Ctrl+1"], c.actual_size)
        a("zoom_in", "Zoom in", "fa5s.search-plus", ["+", "=", "Ctrl++"], c.zoom_in)
        a("zoom_out", "Zoom out", "fa5s.search-minus", ["-", "Ctrl+-"], c.zoom_out)
        a("wipe", "Wipe", "fa5s.columns", ["W"], self.set_wipe, checkable=True)
        a("heatmap", "Difference", "fa5s.fire", ["D"], lambda on: self._refresh(), True)
        a("bicubic_input", "Smooth input", "fa5s.image", ["B"], lambda on: self._refresh(), True)
        self.actions["wipe"].setToolTip("Before/after wipe instead of side by side (W)")
        self.actions["heatmap"].setToolTip("|Y difference| to the reference as a heat-map (D)")
        self.actions["bicubic_input"].setToolTip(
            "Show the input enlarged with bicubic interpolation (what a plain resize gives), "
            "not as square pixels (nearest neighbour) (B)"
        )

    def _connect_boxes(self) -> None:
        run, metrics = self.run_box, self.metrics_box
        run.run_button.clicked.connect(lambda: self.run())
        run.compare_button.clicked.connect(self.ask_compare)
        run.cancel_button.clicked.connect(self.cancel)
        run.control.pause_toggled.connect(self.set_paused)
        metrics.reference_button.clicked.connect(self.ask_reference)
        metrics.clear_reference_button.clicked.connect(self.clear_reference)
        metrics.simulate_check.toggled.connect(self.set_simulate)
        metrics.export_png_button.clicked.connect(self.ask_export_png)
        metrics.export_csv_button.clicked.connect(self.ask_export_csv)
        metrics.row_selected.connect(self._row_selected)

    def _toolbar(self, title: str, names: tuple[str | None, ...]) -> CompactToolBar:
        toolbar = CompactToolBar(title)
        for name in names:
            if name is None:
                toolbar.addSeparator()
            else:
                toolbar.addAction(self.actions[name])
        return toolbar

    def _layout(self) -> None:
        # This tab's own actions live in its tool bar, not the window's (Batch and Train have
        # their own buttons).
        self.file_toolbar = self._toolbar("Image", FILE_TOOLS)
        toolbar = self.view_toolbar = self._toolbar("View", VIEW_TOOLS)
        panes = QToolButton()
        panes.setText("Panes")
        panes.setIcon(icon("fa5s.th-large"))
        panes.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        panes.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        panes.setToolTip("Show or hide the input, each output and the reference")
        self.panes_menu = QMenu(self)
        self.panes_menu.aboutToShow.connect(self._fill_panes_menu)
        panes.setMenu(self.panes_menu)
        toolbar.addWidget(panes)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(toolbar)
        left_layout.addWidget(self.canvas, 1)

        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 4, 0)
        for box in (self.panel, self.run_box, self.metrics_box, self.output_box):
            side_layout.addWidget(box)
        side_layout.addStretch(1)
        # The side panel scrolls as a whole, vertically only: it is never narrower than what
        # its controls need (plus the scroll bar), so nothing is cut at its right edge.
        scroll = self.side_scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(side)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        fit_scroll_width(self.side_scroll)

        self.splitter = QSplitter()
        self.splitter.addWidget(left)
        self.splitter.addWidget(scroll)
        self.splitter.setCollapsible(1, False)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setSizes([900, scroll.minimumWidth()])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 4)
        layout.setSpacing(2)
        layout.addWidget(self.file_toolbar)
        layout.addWidget(self.banner)
        layout.addWidget(self.splitter, 1)

    def changeEvent(self, event) -> None:  # noqa: N802
        # A new theme or font changes what the side panel's controls need.
        if event.type() in (QEvent.Type.StyleChange, QEvent.Type.FontChange):
            fit_scroll_width(self.side_scroll)
        super().changeEvent(event)

    # ================================================================= settings

    def _restore(self, s: AppSettings) -> None:
        self.panel.restore(s)
        out = self.output_box
        out.save_format.setCurrentIndex(max(0, out.save_format.findData(s.save_format)))
        out.quality.setValue(s.quality)
        self.actions["wipe"].setChecked(s.view_mode == "wipe")
        self.actions["bicubic_input"].setChecked(s.input_display == "bicubic")

    def store(self, s: AppSettings) -> None:
        self.panel.store(s)
        s.save_format = self.output_box.save_format.currentData()
        s.quality = self.output_box.quality.value()
        s.view_mode = self.canvas.mode
        s.input_display = "bicubic" if self.actions["bicubic_input"].isChecked() else "nearest"

    # ================================================================= input

    def ask_open(self) -> None:
        start = self.settings.last_open_dir
        path, _ = QFileDialog.getOpenFileName(self, "Open image", start, IMAGE_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> None:
        """Read an image in a worker, then show it (and upscale it when auto-run is on)."""
        path = str(path)
        if Path(path).is_dir():
            self.folder_dropped.emit([path])
            return
        self.status.setText(f"Reading {display_name(path)}...")
        serial = self.doc.reference_serial
        task = self._side_task(lambda ctx: jobs.read_input(path))
        task.worker.finished.connect(lambda found: self._opened(path, *found, serial))
        task.worker.failed.connect(self._read_failed)

    def _read_failed(self, text: str) -> None:
        self.status.setText("Could not open the image.")
        self.message.emit(text, "error")

    def _opened(self, path: str, image: ImageData, pixels: np.ndarray, serial: int) -> None:
        if storable(str(Path(path).parent)):
            self.settings.last_open_dir = str(Path(path).parent)
        self.settings.add_recent(path)
        self.recent_changed.emit()
        # A reference loaded while this image was being read belongs to it: keep that one.
        keep = serial != self.doc.reference_serial and self.reference is not None
        self.set_source(image, pixels, display_name(path), keep_reference=keep)

    def paste(self) -> None:
        self.paste_image(QGuiApplication.clipboard().image(), "clipboard")

    def paste_image(self, image: QImage | None, name: str = "dropped image") -> None:
        if image is None or image.isNull():
            self.message.emit(f"The {name} holds no image.", "error")
            return
        pixels = qimage_to_array(image)
        self.set_source(jobs.from_pixels(pixels), pixels, name)

    def set_source(
        self, image: ImageData, pixels: np.ndarray, name: str, *, keep_reference: bool = False
    ) -> None:
        """A new image: earlier outputs, reference and previews are dropped (a run is stopped)."""
        self._stop_run()
        self._held = False
        self.stale.emit()
        keep = keep_reference and not self.simulate_check.isChecked()
        self.doc.set_source(image, pixels, name, keep_reference=keep)
        self.status.setText(f"{name}: {pixels.shape[1]}x{pixels.shape[0]}")
        if self.simulate_check.isChecked():
            self._simulate(then_run=self.settings.auto_run)
            return
        if self.settings.auto_run:
            self.auto_run()

    def _clear_outputs(self) -> None:
        self.doc.clear_outputs()

    # ================================================================= reference / simulate

    def ask_reference(self) -> None:
        start = self.settings.last_open_dir
        path, _ = QFileDialog.getOpenFileName(self, "Open reference (HR)", start, IMAGE_FILTER)
        if path:
            self.load_reference(path)

    def load_reference(self, path: str | Path) -> None:
        path = str(path)
        if self.simulate_check.isChecked():
            self.simulate_check.setChecked(False)
        task = self._side_task(lambda ctx: jobs.read_input(path))
        task.worker.finished.connect(lambda found: self.set_reference(found[1], display_name(path)))
        task.worker.failed.connect(lambda text: self.message.emit(text, "error"))

    def set_reference(self, pixels: np.ndarray | None, name: str) -> None:
        """A new reference: every output's metrics are measured again."""
        self.doc.set_reference(pixels, name)

    def clear_reference(self) -> None:
        if self.simulate_check.isChecked():
            self.simulate_check.setChecked(False)
        else:
            self.set_reference(None, "")

    def _show_reference(self) -> None:
        ref = self.reference
        size = None if ref is None else (ref.shape[1], ref.shape[0])
        self.metrics_box.show_reference(size, self.reference_name, self.simulated_scale)

    def set_simulate(self, on: bool) -> None:
        if self.source is None:
            return
        self._stop_run()
        self._clear_outputs()
        if on:
            self._simulate(then_run=self.settings.auto_run)
        else:
            self.doc.use_source()

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
        self.doc.set_simulated(sim)
        if then_run:
            self.auto_run()

    def _show_cleanup_hint(self) -> None:
        """Under Options > Clean-up: what "Automatic" decides for the open image, and why."""
        doc, text = self.doc, ""
        automatic = self.panel.cleanup.currentData() == "auto"
        if automatic and doc.input is not None and not doc.simulated_scale:
            quality = doc.source_quality
            if quality is None:
                text = "For this image: measuring its JPEG quality and noise..."
            else:
                text = f"For this image: {decide_auto(quality).describe()}"
        self.panel.set_cleanup_hint(text)

    def _model_changed(self) -> None:
        self._show_cleanup_hint()
        scale = self.panel.current().scale
        resimulate = self.simulated_scale not in (None, scale) and self.source is not None
        if resimulate and self.simulate_check.isChecked() and not self.busy:
            self._clear_outputs()
            self._simulate(then_run=False)
        elif not self.results:
            self._refresh()
        if self._held and not self.busy and self.input is not None:
            self.auto_run(start=False)  # the time shown was another model's: estimate again

    def _remeasure(self) -> None:
        if not self.results:
            return
        outputs, reference, generation = self.doc.outputs(), self.reference, self.doc.generation
        task = self._side_task(lambda ctx: jobs.measure_all(ctx, outputs, reference))
        task.worker.finished.connect(lambda found: self._measured(found, generation))

    def _measured(self, found: dict[str, Metrics], generation: int) -> None:
        self.doc.set_metrics(found, generation)

    # ================================================================= runs

    @property
    def busy(self) -> bool:
        return self.task is not None and self.task.running

    def _refuse(self, choices: list[ModelChoice]) -> str:
        """Why these models cannot run now ("" when they can)."""
        if self.input is None:
            return "Open or drop an image first."
        if self.busy:
            return "A run is already going; cancel it first."
        scales = {c.scale for c in choices}
        if len(scales) > 1:
            return "Models compared together must share one scale."
        if self.simulated_scale and scales != {self.simulated_scale}:
            s = self.simulated_scale
            return f"The simulated input is for x{s}: pick x{s} models, or turn Simulate off."
        return ""

    def _request(self, choices: list[ModelChoice]) -> RunRequest | None:
        """The run of `choices` on the input, or None (the reason said) when it cannot run."""
        why = self._refuse(choices)
        if why:
            self.message.emit(why, "info")
            return None
        try:
            options = self.panel.options()
        except SRStudioError as exc:
            self.message.emit(str(exc), "error")
            return None
        quality = None if self.simulated_scale else self.doc.source_quality
        return RunRequest(self.input, tuple(choices), options, self.reference, quality=quality)

    def auto_run(self, start: bool = True) -> None:
        """An image was just opened: run the selected model, unless (setting hold_long_runs) the
        run is estimated to take over LONG_RUN_SECONDS: then the estimate is shown and the
        user starts it. start=False: only say how long the selected model would take (the
        model changed while a long run was held)."""
        self._held = False
        if not self.settings.hold_long_runs:
            if start:
                self.run()
            return
        request = self._request([self.panel.current()])
        if request is None:
            return
        generation, cache = self.doc.generation, self.cache
        self._estimate_serial += 1
        serial = self._estimate_serial
        label = request.choices[0].label
        self.run_box.control.show_step(f"{label}: estimating the time...")
        task = self._side_task(lambda ctx: jobs.estimate_run(ctx, request, cache))

        def estimated(found: tuple[float, str] | None) -> None:
            if serial == self._estimate_serial:  # else the model changed again meanwhile
                self._estimated(found, label, generation, start)

        task.worker.finished.connect(estimated)
        task.worker.failed.connect(lambda text: estimated(None))

    def _estimated(
        self, found: tuple[float, str] | None, label: str, generation: int, start: bool = True
    ) -> None:
        if generation != self.doc.generation or self.busy:
            return  # a new image, or a run started by hand meanwhile
        if found is not None and (found[0] > LONG_RUN_SECONDS or not start):
            seconds, device = found
            self._held = True
            self.run_box.control.reset()  # not started: nothing to count
            faster = " (or pick a faster model or a GPU)" if seconds > LONG_RUN_SECONDS else ""
            self.run_box.control.set_status(
                f"{label} would take about {format_seconds(seconds)} on {device}: press "
                f"Upscale to start{faster}."
            )
            return
        if start:
            self.run()
        else:
            self.run_box.control.reset()
            self.run_box.control.set_status("Press Upscale to start.")

    def run(
        self, choices: list[ModelChoice] | None = None, *, both_cleanups: bool = False
    ) -> TaskHandle | None:
        """Run the selected model (or `choices`, all at one scale) on the input; each output
        gets a pane and a table row as soon as it is done."""
        choices = choices or [self.panel.current()]
        request = self._request(choices)
        if request is None:
            return None
        request = dataclasses.replace(request, both_cleanups=both_cleanups)
        self._held = False
        self.doc.keep_scale(choices[0].scale)
        gen, cache = self.doc.next_generation(), self.cache
        task = self.task = start_task(self, lambda ctx: jobs.run_models(ctx, request, cache))
        task.event.connect(lambda obj: self._run_event(obj, gen))
        task.progress.connect(lambda d, t: self._run_progress(d, t, gen))
        task.finished.connect(lambda n: self._run_ended(task, RunOutcome.DONE, n))
        task.failed.connect(lambda text: self._run_ended(task, RunOutcome.FAILED, error=text))
        task.cancelled.connect(lambda: self._run_ended(task, RunOutcome.CANCELLED))
        self._stage, self._passes, self._rounds = None, 1, 1
        self._failures, self._runs = [], len(request.runs())
        self.run_box.control.begin("Loading the model...")
        self._update_enabled()
        self.busy_changed.emit(True)
        return self.task

    def set_paused(self, paused: bool) -> None:
        """Hold the run after the current tile (the time left stops counting), or go on."""
        if not self.busy:
            self.run_box.control.set_paused(False)
            return
        self.task.pause(paused)
        self.run_box.control.set_paused(paused, "Paused (after the current tile).")

    def cancel(self) -> None:
        if self.busy:
            self.task.cancel()
            self.task.pause(False)
            self.status.setText("Cancelling...")

    def _stop_run(self) -> None:
        """Stop a run whose input is being replaced; its later events are ignored, and a new
        run may start while it winds down."""
        if self.busy:
            self.task.cancel()
            self.task.pause(False)
            self._track(self.task)
            self.task = None
            self.busy_changed.emit(False)
        self.doc.next_generation()
        self.run_box.control.reset()

    def _model_text(self) -> str:
        stage = self._stage
        if stage is None:
            return ""
        if stage.count == 1:
            return stage.label
        return f"{stage.label} ({stage.index + 1} of {stage.count})"

    def _run_progress(self, done: int, total: int, generation: int) -> None:
        """Network passes done of the current model (tiles x passes a tile): the bar shows this
        model, the time left counts the models still to run as taking as long."""
        if generation != self.doc.generation:
            return
        passes, model = self._passes, self._model_text()
        running = total <= 0 or done < total
        pass_text = f", pass {done % passes + 1} of {passes}" if passes > 1 and running else ""
        if total <= 0:  # the tile count is not known before the first tile is done
            self.run_box.control.show_step(f"{model}: upscaling tile 1{pass_text}")
            return
        tiles_done, tiles = done // passes, total // passes
        rounds = self._rounds if tiles % self._rounds == 0 else 1  # else split: out of memory
        per_round = tiles // rounds
        if rounds > 1 and running:
            pass_text = f", round {tiles_done // per_round + 1} of {rounds}{pass_text}"
            tiles_done %= per_round
        if per_round == 1:
            text = f"{model}: upscaling the whole image{pass_text}"
        else:
            text = f"{model}: upscaling, {tiles_done} of {_plural(per_round, 'tile')}{pass_text}"
        stage = self._stage
        index, count = (stage.index, stage.count) if stage else (0, 1)
        overall = (index * total + done, count * total)
        self.run_box.control.show_work(done, total, text, shown=overall)
        self._show_filling(text)

    def _show_filling(self, text: str) -> None:
        """The pane of the output being made: its rows so far, and the run's progress on it."""
        running = self.doc.running
        content = self.canvas.contents.get(RUNNING_KEY)
        if running is None or content is None:
            return
        content.info = [text.split(": ", 1)[-1]]
        self.canvas.repaint_panes()

    def _run_event(self, obj: object, generation: int) -> None:
        if generation != self.doc.generation:
            return
        if isinstance(obj, Stage):
            self._stage, self._passes, self._rounds = obj, 1, 1
            self.run_box.control.show_step(f"{self._model_text()}: loading the model...")
        elif isinstance(obj, Upscaling):
            self._passes, self._rounds = obj.passes, max(1, obj.rounds)
            if obj.seconds is not None and self._stage is not None:
                left = obj.seconds * (self._stage.count - self._stage.index)
                if self.run_box.control.eta.remaining() is None:
                    self.run_box.control.set_estimate(left)
            self.run_box.control.show_step(f"{self._model_text()}: upscaling...")
        elif isinstance(obj, Filling):
            self.doc.set_running(obj, generation)
        elif isinstance(obj, ModelResult):
            self.doc.add_result(obj, generation)
            if self.canvas.selected_key not in self.results:
                self.canvas.select(obj.key)
        elif isinstance(obj, ModelFailed):
            self._failures.append(obj)
            self.message.emit(f"{obj.choice.label}: {obj.message}", "error")

    def _run_ended(
        self, task: TaskHandle, outcome: RunOutcome, outputs: int = 0, error: str = ""
    ) -> None:
        if task is not self.task:
            return  # a run stopped by a new input: nothing of it is shown
        self.task = None
        self._stage = None
        self.doc.set_running(None, self.doc.generation)
        seconds = self.run_box.control.elapsed
        failures = self._failures
        if outcome is RunOutcome.DONE and failures:
            first = failures[0]
            more = f" and {len(failures) - 1} more" if len(failures) > 1 else ""
            text = (
                f"{outputs} of {self._runs} done in {seconds:.1f} s; "
                f"{first.choice.label} failed{more}: {first.message}"
            )
        elif outcome is RunOutcome.DONE:
            text = f"Done: {_plural(outputs, 'output')} in {seconds:.1f} s."
        elif outcome is RunOutcome.CANCELLED:
            kept = _plural(len(self.results), "output")
            text = f"Cancelled after {seconds:.1f} s; {kept} kept."
        else:
            text = f"Failed after {seconds:.1f} s."
        self.run_box.control.finish(outcome, text)
        if error:
            self.message.emit(error, "error")
        self._update_enabled()
        self.busy_changed.emit(False)

    def ask_compare(self) -> None:
        if self.input is None:
            self.message.emit("Open or drop an image first.", "info")
            return
        scale = self.simulated_scale or self.panel.current().scale
        choices = [c for c in self.panel.selector.choices if c.scale == scale]
        checked = [r.choice for r in self.results.values()] or [self.panel.current()]
        dialog = CompareDialog(choices, checked, self)
        if dialog.exec() and dialog.selected():
            self.compare(dialog.selected(), both_cleanups=dialog.both_cleanups.isChecked())

    def compare(
        self, choices: list[ModelChoice], *, both_cleanups: bool = False
    ) -> TaskHandle | None:
        """Run several models on the input; each gets a pane and a table row (two with
        both_cleanups: without the clean-up and with it)."""
        return self.run(list(dict.fromkeys(choices)), both_cleanups=both_cleanups)

    # ================================================================= view

    def display_scale(self) -> int:
        return self.doc.display_scale(self.panel.current().scale)

    def set_wipe(self, on: bool) -> None:
        self.canvas.set_mode("wipe" if on else "side")

    def _input_content(self) -> PaneContent | None:
        if self.input_pixels is None:
            return None
        scale = self.display_scale()
        h, w = self.input_pixels.shape[:2]
        title = "Input (LR)" if self.simulated_scale else f"Input: {self.source_name}"
        info = [f"{w}x{h}, enlarged x{scale}"]
        if self.input is not None and self.input.source_format and not self.simulated_scale:
            quality = self.doc.source_quality
            if quality is None:  # the noise is being measured: the file's kind at once
                info.append(describe_format(self.input.jpeg, self.input.source_format))
            else:
                info.append(quality.description)
        if self.actions["bicubic_input"].isChecked():
            preview = self.doc.previews.get(scale)
            if preview is not None:
                smooth = [*info, "smooth (bicubic)"]
                return PaneContent("input", title, preview, 1.0, smooth, "input")
            self._make_preview(scale)
        pixels = self.input_pixels
        square = [*info, "square pixels (nearest)"]
        return PaneContent("input", title, pixels, float(scale), square, "input")

    def _measure_quality(self, image: ImageData) -> None:
        """JPEG quality and noise of a newly opened image, shown beside its size."""
        task = self._side_task(lambda ctx: measure_input(image))
        task.worker.finished.connect(lambda quality: self.doc.set_quality(image, quality))

    def _make_preview(self, scale: int) -> None:
        if scale in self._previews_pending:
            return
        self._previews_pending.add(scale)
        image, generation = self.input, self.doc.generation
        task = self._side_task(lambda ctx: jobs.bicubic_preview(ctx, image, scale))
        task.worker.finished.connect(lambda arr: self._preview_ready(scale, arr, generation))
        task.worker.failed.connect(lambda text: self.message.emit(text, "error"))
        task.worker.done.connect(lambda: self._previews_pending.discard(scale))

    def _preview_ready(self, scale: int, preview: Pyramid, generation: int) -> None:
        self.doc.set_preview(scale, preview, generation)

    def _output_content(self, key: str, result: ModelResult) -> PaneContent:
        info = [f"{result.seconds:.2f} s on {result.device}", *metrics_lines(result.metrics)]
        if result.cleanup:
            info.append(result.cleanup[0].upper() + result.cleanup[1:])
        heat = self.doc.heatmap(key) if self.actions["heatmap"].isChecked() else None
        if heat is not None:
            info.append("|Y diff|: black 0, white 32+ levels")
            return PaneContent(key, f"{result.label}: difference", heat, 1.0, info, "heatmap")
        return PaneContent(key, result.label, result.pyramid, 1.0, info, "output")

    def pane_contents(self) -> list[PaneContent]:
        """Input, each output, reference: what the canvas shows and the export draws."""
        contents = [c for c in [self._input_content()] if c is not None]
        contents.extend(self._output_content(k, r) for k, r in self.results.items())
        running = self.doc.running
        if running is not None:
            title = f"{running.label} (being made)"
            contents.append(PaneContent(RUNNING_KEY, title, running.pyramid, 1.0, [], "output"))
        if self.reference is not None:
            h, w = self.reference.shape[:2]
            info = [f"{self.reference_name}, {w}x{h}"]
            contents.append(
                PaneContent("reference", "Reference (HR)", self.reference, 1.0, info, "reference")
            )
        return contents

    def _refresh(self) -> None:
        if self.actions["heatmap"].isChecked() and self.results and self.reference is None:
            self.message.emit("The difference view needs a reference (or Simulate).", "info")
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
            self.metrics_box.select_row(keys.index(key))
        self._update_enabled()

    def _row_selected(self, row: int) -> None:
        keys = list(self.results)
        if row < len(keys):
            self.canvas.select(keys[row])

    # ================================================================= outputs

    def selected_result(self) -> ModelResult | None:
        key = self.canvas.selected_key
        if key in self.results:
            return self.results[key]
        return list(self.results.values())[-1] if self.results else None

    def _need_output(self) -> ModelResult | None:
        result = self.selected_result()
        if result is None:
            self.message.emit("There is no output yet: run a model first.", "info")
        return result

    def ask_save(self) -> None:
        result = self._need_output()
        if result is None:
            return
        fmt = self.output_box.save_format.currentData()
        stem = Path(self.source_name).stem or "image"
        extra = "_ensemble" if result.ensemble else ""
        name = f"{stem}_{result.choice.name}_x{result.choice.scale}{extra}.{FORMAT_EXTENSIONS[fmt]}"
        folder = Path(self.settings.last_save_dir or self.settings.last_open_dir)
        path, _ = QFileDialog.getSaveFileName(self, "Save output", str(folder / name), SAVE_FILTER)
        if path:
            self.save_result(result, path)

    def save_result(self, result: ModelResult, path: str | Path) -> TaskHandle:
        """Write in a worker; the format comes from the file name, else the Format choice."""
        path = Path(path)
        fmt = None if path.suffix else self.output_box.save_format.currentData()
        if fmt is not None:
            path = path.with_suffix("." + FORMAT_EXTENSIONS[fmt])
        quality = self.output_box.quality.value()
        self.settings.last_save_dir = str(path.parent)
        self.message.emit(f"Saving {path.name}...", "info")
        task = self._side_task(lambda ctx: jobs.save_output(result.store, path, fmt, quality))
        task.worker.finished.connect(lambda p: self.message.emit(f"Saved {p}", "info"))
        task.worker.failed.connect(lambda text: self.message.emit(f"Not saved: {text}", "error"))
        return task

    def copy_output(self) -> None:
        result = self._need_output()
        if result is not None:
            QGuiApplication.clipboard().setImage(array_to_qimage(result.pixels))
            self.message.emit(f"Copied {result.label} to the clipboard.", "info")

    def _ask_export(self, title: str, name: str, pattern: str) -> str:
        if self._need_output() is None:
            return ""
        start = str(Path(self.settings.last_save_dir) / name)
        return QFileDialog.getSaveFileName(self, title, start, pattern)[0]

    def ask_export_png(self) -> None:
        path = self._ask_export("Export side by side", "comparison.png", "PNG (*.png)")
        if path:
            self.export_png(path)

    def ask_export_csv(self) -> None:
        path = self._ask_export("Export table", "comparison.csv", "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_png(self, path: str | Path) -> None:
        """The panes as shown (the input at output size), side by side with their titles."""
        try:
            export.save_qimage(export.side_by_side(self.pane_contents()), path)
        except (OSError, ValueError) as exc:
            self.message.emit(f"Export failed: {exc}", "error")
            return
        self.message.emit(f"Exported {path}", "info")

    def export_csv(self, path: str | Path) -> None:
        try:
            export.write_csv(export.csv_rows(self.results.values()), path)
        except OSError as exc:
            self.message.emit(f"Export failed: {exc}", "error")
            return
        self.message.emit(f"Exported {path}", "info")

    # ================================================================= helpers

    def _side_task(self, fn) -> TaskHandle:
        return self._track(start_task(self, fn))

    def _track(self, task: TaskHandle) -> TaskHandle:
        """Keep a task in side_tasks until it is done (shutdown waits for them)."""
        self.side_tasks.append(task)
        task.done.connect(lambda: task in self.side_tasks and self.side_tasks.remove(task))
        if not task.running and task in self.side_tasks:
            self.side_tasks.remove(task)
        return task

    def _update_enabled(self) -> None:
        busy, has_input, has_output = self.busy, self.input is not None, bool(self.results)
        self.run_box.set_busy(busy, has_input)
        self.metrics_box.set_enabled(has_output, self.reference is not None)
        self.actions["run"].setEnabled(has_input and not busy)
        self.actions["compare"].setEnabled(has_input and not busy)
        self.actions["cancel"].setEnabled(busy)
        self.actions["save"].setEnabled(has_output)
        self.actions["copy"].setEnabled(has_output)

    def shutdown(self, wait_ms: int = 5000) -> None:
        """Cancel everything and wait for the threads (window closing)."""
        self.panel.shutdown(wait_ms)
        tasks = [t for t in (self.task, *self.side_tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            task.wait(wait_ms)
