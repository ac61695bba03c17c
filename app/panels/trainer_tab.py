"""The Train tab: base model and data folders, options, start / pause / stop / continue, live loss
and validation-PSNR plots, ETA, an LR/SR/HR preview refreshed at each validation, and the log.

engine.training.train runs on a worker thread (app.workers); its events arrive here through
queued signals. Pause blocks the run between iterations; Stop ends it after the current one and
writes its state, which Continue resumes exactly.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.qimage import array_to_qimage
from app.run_control import RunControl
from app.screen_fit import fit_scroll_width
from app.theme import icon
from app.workers import TaskContext, TaskHandle, start_task
from engine import (
    LogEvent,
    LossEvent,
    RunOutcome,
    SRStudioError,
    TrainConfig,
    TrainResult,
    ValidationEvent,
    cpu_native_bf16,
    format_seconds,
    list_devices,
    model_names,
    train,
)

START_FROM = (
    ("scratch", "Scratch (random weights)"),
    ("installed", "Installed weights of this model"),
    ("file", "A weights file"),
)
DEGRADATION_NAMES = (  # what the trained network is for, then how its LR inputs are made
    ("BI", "Clean images (bicubic, as the papers)"),
    ("real", "Photos from phones and the web (blur, noise, JPEG)"),
    ("BD", "Slightly blurred images (7x7 Gaussian blur, then bicubic)"),
    ("DN", "Noisy images (bicubic, then Gaussian noise)"),
)
CPU_PRECISION_NAMES = (
    ("auto", "Automatic"),
    ("fp32", "Full precision (fp32)"),
    ("bf16", "bf16 (fast only where the CPU has it built in)"),
)
PREVIEW_SIDE = 200
NEEDS_DATA = "Choose a model and at least one folder of HR images."
READY = "Ready to train: press Start."


class LinePlot(QWidget):
    """A minimal line plot (x ascending): axes with the value range, the curve, the last value."""

    def __init__(self, title: str, color: str, unit: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.title, self.color, self.unit = title, QColor(color), unit
        self.points: list[tuple[float, float]] = []
        self.setMinimumSize(220, 140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def add_point(self, x: float, y: float) -> None:
        if math.isfinite(y):
            self.points.append((float(x), float(y)))
            self.update()

    def clear(self) -> None:
        self.points.clear()
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        p.fillRect(self.rect(), pal.base())
        text = pal.text().color()
        p.setPen(text)
        last = f": {self.points[-1][1]:.4g}{self.unit}" if self.points else ""
        p.drawText(
            QRectF(8, 4, self.width() - 16, 18), Qt.AlignmentFlag.AlignLeft, self.title + last
        )
        area = QRectF(48, 26, max(1, self.width() - 58), max(1, self.height() - 48))
        grid = QColor(text)
        grid.setAlpha(60)
        p.setPen(QPen(grid, 1))
        p.drawRect(area)
        if not self.points:
            p.setPen(text)
            p.drawText(area, Qt.AlignmentFlag.AlignCenter, "no data yet")
            return
        xs = [pt[0] for pt in self.points]
        ys = [pt[1] for pt in self.points]
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
        if y1 - y0 < 1e-12:
            y0, y1 = y0 - 0.5, y1 + 0.5
        x1 = x1 if x1 > x0 else x0 + 1

        def at(x: float, y: float) -> QPointF:
            return QPointF(
                area.left() + (x - x0) / (x1 - x0) * area.width(),
                area.bottom() - (y - y0) / (y1 - y0) * area.height(),
            )

        p.setPen(text)
        small = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        p.drawText(QRectF(0, area.top() - 8, 44, 16), small, f"{y1:.3g}")
        p.drawText(QRectF(0, area.bottom() - 8, 44, 16), small, f"{y0:.3g}")
        p.drawText(
            QRectF(area.left(), area.bottom() + 2, 80, 16), Qt.AlignmentFlag.AlignLeft, f"{x0:g}"
        )
        p.drawText(
            QRectF(area.right() - 80, area.bottom() + 2, 80, 16),
            Qt.AlignmentFlag.AlignRight,
            f"{x1:g}",
        )
        path = QPainterPath(at(*self.points[0]))
        for x, y in self.points[1:]:
            path.lineTo(at(x, y))
        p.setPen(QPen(self.color, 1.6))
        p.drawPath(path)
        if len(self.points) < 30:
            p.setBrush(self.color)
            for x, y in self.points:
                p.drawEllipse(at(x, y), 2.5, 2.5)


class TrainerTab(QWidget):
    message = Signal(str, str)  # text, level ("info" / "error")
    busy_changed = Signal(bool)
    model_trained = Signal(str)  # path of a weights file just written (for the model lists)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.task: TaskHandle | None = None
        self.last_result: TrainResult | None = None
        self._last_loss: float | None = None

        settings = self._build_settings()
        monitor = self._build_monitor()
        # The settings column scrolls vertically only, so it must never be narrower than what
        # its fields need (plus the vertical scroll bar), or their right edge would be cut off.
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(settings)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.settings_scroll = scroll
        fit_scroll_width(self.settings_scroll)
        splitter = QSplitter()
        splitter.addWidget(scroll)
        splitter.addWidget(monitor)
        splitter.setCollapsible(0, False)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([max(440, scroll.minimumWidth()), 1000])
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self._update_enabled()

    def changeEvent(self, event) -> None:  # noqa: N802
        # A new theme or font changes what the fields need.
        if event.type() in (QEvent.Type.StyleChange, QEvent.Type.FontChange):
            fit_scroll_width(self.settings_scroll)
        super().changeEvent(event)

    # ================================================================= building

    def _build_settings(self) -> QWidget:
        d = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
        self.model_combo = QComboBox()
        self.model_combo.addItems(model_names())
        self.model_combo.setCurrentText("A2F-SD")
        self.model_combo.setToolTip("The network to train (family and size)")
        self.scale_combo = QComboBox()
        for s in (2, 3, 4):
            self.scale_combo.addItem(f"x{s}", s)
        self.scale_combo.setCurrentIndex(2)
        self.scale_combo.setToolTip("The upscaling factor the network learns")
        self.start_combo = QComboBox()
        for key, text in START_FROM:
            self.start_combo.addItem(text, key)
        self.start_combo.setToolTip(
            "Scratch: random weights (long training). Installed weights or a file: fine-tune "
            "them (much quicker)"
        )
        self.start_combo.currentIndexChanged.connect(self._update_enabled)
        self.base_edit = QLineEdit()
        self.base_edit.setPlaceholderText(".safetensors, .pt or .pth")
        self.base_edit.setToolTip("The weights file to start from")
        self.base_button = QPushButton(icon("fa5s.folder-open"), "")
        self.base_button.setToolTip("Choose the weights to start from")
        self.base_button.clicked.connect(self._ask_base)
        base_row = _row(self.base_edit, self.base_button)
        model_box = QGroupBox("Network")
        form = QFormLayout(model_box)
        form.addRow("Model", self.model_combo)
        form.addRow("Scale", self.scale_combo)
        form.addRow("Start from", self.start_combo)
        form.addRow("Weights", base_row)

        self.folders = QTreeWidget()
        self.folders.setHeaderLabels(["HR folder", "LR folder (optional)"])
        self.folders.setRootIsDecorated(False)
        self.folders.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.folders.setMinimumHeight(90)
        self.folders.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # keep the folder's name
        self.folders.header().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.folders.setToolTip(
            "Folders of training images: sharp high-resolution (HR) photos; their "
            "low-resolution (LR) versions are made from them unless you give an LR folder"
        )
        add = QPushButton(icon("fa5s.folder-plus"), "Add HR...")
        add.setToolTip("Add a folder of sharp, high-resolution (HR) training images")
        add.clicked.connect(self._ask_hr)
        set_lr = QPushButton("Set LR...")
        set_lr.setToolTip("Paired data: the LR images of the selected HR folder (same names)")
        set_lr.clicked.connect(self._ask_lr)
        remove = QPushButton(icon("fa5s.minus"), "Remove")
        remove.setToolTip("Take the selected folder out of the list (nothing is deleted)")
        remove.clicked.connect(self._remove_folder)
        self.degradation_combo = QComboBox()
        for key, text in DEGRADATION_NAMES:
            self.degradation_combo.addItem(text, key)
            self.degradation_combo.setItemData(
                self.degradation_combo.count() - 1, text, Qt.ItemDataRole.ToolTipRole
            )
        # Long item texts must not widen the whole column; the popup still shows them in full.
        self.degradation_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.degradation_combo.setMinimumContentsLength(20)
        self.degradation_combo.setToolTip(
            "What the network is trained for: how its low-resolution training inputs are made "
            "from the HR images. Photos from phones and the web: random blur, resizing, sensor "
            "noise and JPEG at quality 40-95, as real photos are made"
        )
        self.degradation_combo.currentIndexChanged.connect(self._update_enabled)
        self.noise_spin = _dspin(0, 100, d["noise_level"], 1, step=5)
        self.noise_spin.setToolTip("Noise standard deviation on the 0..255 scale")
        self.patch_spin = _spin(8, 512, d["patch_size"])
        self.patch_spin.setToolTip("Side of the LR patches (HR patches are scale times larger)")
        self.batch_spin = _spin(1, 512, d["batch_size"])
        self.batch_spin.setToolTip("Batch size: patches per training step (more needs memory)")
        data_box = QGroupBox("Data")
        form = QFormLayout(data_box)
        form.addRow(self.folders)
        form.addRow(_row(add, set_lr, remove, stretch=True))
        form.addRow("Train for", self.degradation_combo)
        form.addRow("Noise level", self.noise_spin)

        self.iterations_spin = _spin(1, 10_000_000, d["iterations"], step=1000)
        self.iterations_spin.setToolTip(
            "Training steps: more is better and longer (thousands for a fine-tune)"
        )
        devices = list_devices()
        self.device_combo = QComboBox()
        self.device_combo.addItem("Automatic", "auto")
        for dev in devices:
            self.device_combo.addItem(dev.name, dev.spec)
        self.device_combo.setToolTip(
            "Compute device. Automatic: the first CUDA GPU, else Apple MPS, else the CPU."
        )
        has_cuda = any(dev.spec.startswith("cuda") for dev in devices)
        self.amp_check = QCheckBox("Faster half-precision maths (GPU)")
        self.amp_check.setChecked(d["amp"] and has_cuda)
        self.amp_check.setEnabled(has_cuda)
        self.amp_check.setVisible(has_cuda)
        self.amp_check.setToolTip(
            "Mixed precision (AMP, fp16) on a CUDA GPU: faster training in less memory"
        )
        self._has_gpu = any(not dev.spec.startswith("cpu") for dev in devices)
        self.device_combo.currentIndexChanged.connect(self._update_enabled)
        native = cpu_native_bf16()
        self.cpu_precision_combo = QComboBox()
        for key, text in CPU_PRECISION_NAMES:
            if key == "auto":
                text += ": bf16 (built into this CPU)" if native else ": full precision (fp32)"
            self.cpu_precision_combo.addItem(text, key)
        self.cpu_precision_combo.setToolTip(
            "Number format of the training maths on the CPU. bf16 is faster on CPUs that compute "
            "it natively (AVX512-BF16 or AMX: recent Intel Xeon and AMD EPYC)"
            + (", as this one does" if native else "; this one does not, so bf16 would be slower")
            + ". Automatic chooses bf16 only there. The weights, the loss and the saved file "
            "stay full precision."
        )
        train_box = QGroupBox("Training")
        form = QFormLayout(train_box)
        form.addRow("Iterations", self.iterations_spin)
        form.addRow("Run on", self.device_combo)
        form.addRow("", self.amp_check)
        form.addRow("CPU precision", self.cpu_precision_combo)
        advanced_box = self._build_advanced(d)

        self.val_edit = QLineEdit()
        self.val_edit.setPlaceholderText("none: hold out part of the training images")
        self.val_edit.textChanged.connect(self._update_enabled)
        self.val_edit.setToolTip(
            "Validation: HR images, not used for training, on which the PSNR is measured"
        )
        val_button = QPushButton(icon("fa5s.folder-open"), "")
        val_button.setToolTip("Choose the folder of validation images")
        val_button.clicked.connect(self._ask_val)
        self.split_spin = _dspin(0, 0.5, 0.05, 2, step=0.05)
        self.split_spin.setSpecialValueText("no validation")
        self.split_spin.setToolTip(
            "Without a validation folder: the fraction of the training images kept aside to "
            "measure the PSNR"
        )
        self.val_every_spin = _spin(1, 1_000_000, d["val_every"], step=100)
        self.val_every_spin.setToolTip("Measure the PSNR (and save the best weights) this often")
        self.output_edit = QLineEdit()
        self.output_edit.setPlaceholderText("automatic: a new file in the model library")
        self.output_edit.setToolTip("Where the trained weights are written (.safetensors)")
        out_button = QPushButton(icon("fa5s.save"), "")
        out_button.setToolTip("Choose where to write the trained weights")
        out_button.clicked.connect(self._ask_output)
        val_box = QGroupBox("Validation and output")
        form = QFormLayout(val_box)
        form.addRow("Folder (HR)", _row(self.val_edit, val_button))
        form.addRow("Held out", self.split_spin)
        form.addRow("Every (iterations)", self.val_every_spin)
        form.addRow("Output", _row(self.output_edit, out_button))

        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText("Advanced settings")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.setAutoRaise(True)
        self.advanced_toggle.setToolTip(
            "Patch and batch size, learning rate and its schedule, gradient clipping, EMA, seed, "
            "memory layout"
        )
        self.advanced_toggle.toggled.connect(self.show_advanced)
        self.advanced_box = advanced_box
        advanced_box.hide()

        panel = QWidget()
        column = QVBoxLayout(panel)
        for box in (model_box, data_box, train_box, val_box):
            column.addWidget(box)
        column.addWidget(self.advanced_toggle)
        column.addWidget(advanced_box)
        column.addStretch(1)
        return panel

    def _build_advanced(self, d: dict) -> QGroupBox:
        self.lr_edit = QLineEdit()
        self.lr_edit.setPlaceholderText("auto: 1e-4 from scratch, 2e-5 fine-tuning")
        self.lr_edit.setToolTip("Learning rate: the size of each training step")
        self.schedule_combo = QComboBox()
        self.schedule_combo.addItems(["cosine", "step"])
        self.schedule_combo.setToolTip(
            "How the learning rate decreases: cosine (smoothly) or step (halved at set points)"
        )
        self.warmup_spin = _spin(-1, 1_000_000, -1, step=100)
        self.warmup_spin.setSpecialValueText("auto (iterations / 20)")
        self.warmup_spin.setToolTip("Warm-up: iterations over which the learning rate ramps up")
        self.clip_spin = _dspin(0, 1000, d["grad_clip"], 3, step=0.1)
        self.clip_spin.setSpecialValueText("off")
        self.clip_spin.setToolTip("Gradient clipping: caps each step, against unstable runs")
        self.ema_spin = _dspin(0, 0.9999, d["ema"], 4, step=0.001)
        self.ema_spin.setSpecialValueText("off")
        self.ema_spin.setToolTip(
            "EMA decay: the weights saved are a running average of the trained ones (smoother)"
        )
        self.seed_spin = _spin(0, 2**31 - 1, d["seed"])
        self.seed_spin.setToolTip("Random seed: the same seed and data give the same run")
        self.channels_last_check = QCheckBox("Channels-last memory layout (NHWC)")
        self.channels_last_check.setChecked(d["channels_last"])
        self.channels_last_check.setToolTip(
            "Store images pixel by pixel rather than plane by plane: faster for convolutions on "
            "some CPUs and GPUs; off by default (measured no faster on a 2-core AVX2 CPU)"
        )
        box = QGroupBox("Advanced")
        form = QFormLayout(box)
        form.addRow("Patch size (LR px)", self.patch_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Learning rate", self.lr_edit)
        form.addRow("Schedule", self.schedule_combo)
        form.addRow("Warm-up", self.warmup_spin)
        form.addRow("Gradient clip", self.clip_spin)
        form.addRow("EMA decay", self.ema_spin)
        form.addRow("Seed", self.seed_spin)
        form.addRow("", self.channels_last_check)
        return box

    def show_advanced(self, shown: bool) -> None:
        self.advanced_toggle.setChecked(shown)
        self.advanced_toggle.setArrowType(
            Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow
        )
        self.advanced_box.setVisible(shown)

    def _build_monitor(self) -> QWidget:
        self.control = RunControl("Start", pause=True, stop=True, cancel=False, inline=True)
        self.start_button = self.control.start_button
        self.pause_button = self.control.pause_button
        self.stop_button = self.control.stop_button
        self.continue_button = QPushButton(icon("fa5s.step-forward"), "Continue")
        self.continue_button.setToolTip("Resume the stopped run from its last state")
        self.start_button.setToolTip("Start training with these settings")
        self.pause_button.setToolTip("Pause after the current iteration; press again to resume")
        self.stop_button.setToolTip("End the run, keeping its weights and state (Continue resumes)")
        self.control.start_clicked.connect(self.start)
        self.control.pause_toggled.connect(self.set_paused)
        self.control.stop_clicked.connect(self.stop)
        self.continue_button.clicked.connect(self.continue_run)
        self.control.add_button(self.continue_button, before_progress=True)
        self.progress_bar, self.status_label = self.control.progress, self.control.status
        self.status_label.setText(NEEDS_DATA)

        self.loss_plot = LinePlot("Training loss (L1)", "#2f6fde")
        self.psnr_plot = LinePlot("Validation PSNR", "#2e9d4f", " dB")
        plots = _row(self.loss_plot, self.psnr_plot)

        preview = QGroupBox("Validation preview")
        grid = QGridLayout(preview)
        self.preview_labels: list[QLabel] = []
        for col, name in enumerate(("LR (nearest)", "SR", "HR")):
            image = QLabel("-")
            image.setAlignment(Qt.AlignmentFlag.AlignCenter)
            image.setMinimumSize(PREVIEW_SIDE, PREVIEW_SIDE)
            grid.addWidget(image, 0, col)
            caption = QLabel(name)
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            grid.addWidget(caption, 1, col)
            self.preview_labels.append(image)

        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.log_view.setPlaceholderText("The training log appears here.")

        monitor = QWidget()
        column = QVBoxLayout(monitor)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.control)
        column.addWidget(plots, 2)
        column.addWidget(preview)
        column.addWidget(self.log_view, 1)
        return monitor

    # ================================================================= folders and files

    def add_hr_folder(self, hr: str, lr: str | None = None) -> None:
        item = QTreeWidgetItem([hr, lr or ""])
        item.setToolTip(0, hr)
        item.setToolTip(1, lr or "")
        self.folders.addTopLevelItem(item)
        self.folders.setCurrentItem(item)
        self._show_readiness()

    def _ask_hr(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of HR training images")
        if folder:
            self.add_hr_folder(folder)

    def _ask_lr(self) -> None:
        item = self.folders.currentItem()
        if item is None:
            self.message.emit("Select an HR folder first.", "info")
            return
        folder = QFileDialog.getExistingDirectory(self, f"LR images for {item.text(0)}")
        if folder:
            item.setText(1, folder)
            item.setToolTip(1, folder)

    def _remove_folder(self) -> None:
        item = self.folders.currentItem()
        if item is not None:
            self.folders.takeTopLevelItem(self.folders.indexOfTopLevelItem(item))
            self._show_readiness()

    def _show_readiness(self) -> None:
        """Whether there is data to train on, unless the status says something else."""
        if self.status_label.text() in (NEEDS_DATA, READY):
            self.status_label.setText(READY if self.folders.topLevelItemCount() else NEEDS_DATA)

    def _ask_base(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Weights to start from", "", "Weights (*.safetensors *.pt *.pth)"
        )
        if path:
            self.base_edit.setText(path)

    def _ask_val(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of HR validation images")
        if folder:
            self.val_edit.setText(folder)

    def _ask_output(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Trained weights", "", "Weights (*.safetensors)"
        )
        if path:
            self.output_edit.setText(
                path if path.endswith(".safetensors") else path + ".safetensors"
            )

    # ================================================================= settings -> config

    def config(self) -> TrainConfig:
        """The settings as a TrainConfig (SRStudioError says what is wrong)."""
        rows = [self.folders.topLevelItem(i) for i in range(self.folders.topLevelItemCount())]
        hr_dirs = tuple(r.text(0) for r in rows)
        lr_dirs = tuple(r.text(1) for r in rows)
        if any(lr_dirs) and not all(lr_dirs):
            raise SRStudioError("give an LR folder for every HR folder, or for none")
        start = self.start_combo.currentData()
        model = self.model_combo.currentText()
        base = None
        if start == "installed":
            base = model
        elif start == "file":
            base = self.base_edit.text().strip()
            if not base:
                raise SRStudioError("choose the weights file to start from")
        text = self.lr_edit.text().strip()
        try:
            rate = float(text) if text else None
        except ValueError:
            raise SRStudioError(f"learning rate: {text!r} is not a number") from None
        val_dir = self.val_edit.text().strip() or None
        return TrainConfig(
            model=None if start == "file" else model,
            scale=None if start == "file" else self.scale_combo.currentData(),
            base=base,
            hr_dirs=hr_dirs,
            lr_dirs=lr_dirs if all(lr_dirs) and lr_dirs else None,
            degradation=self.degradation_combo.currentData(),
            noise_level=self.noise_spin.value(),
            patch_size=self.patch_spin.value(),
            batch_size=self.batch_spin.value(),
            iterations=self.iterations_spin.value(),
            lr=rate,
            schedule=self.schedule_combo.currentText(),
            warmup=None if self.warmup_spin.value() < 0 else self.warmup_spin.value(),
            grad_clip=self.clip_spin.value(),
            ema=self.ema_spin.value(),
            val_dir=val_dir,
            val_split=0.0 if val_dir else self.split_spin.value(),
            val_every=self.val_every_spin.value(),
            seed=self.seed_spin.value(),
            output=self.output_edit.text().strip() or None,
            device=self.device_combo.currentData(),
            amp=self.amp_check.isChecked(),
            precision=self.cpu_precision_combo.currentData(),
            channels_last=self.channels_last_check.isChecked(),
        )

    # ================================================================= running

    @property
    def running(self) -> bool:
        return self.task is not None and self.task.running

    def start(self) -> None:
        try:
            config = self.config()
        except SRStudioError as exc:
            self._error(str(exc))
            return
        self.loss_plot.clear()
        self.psnr_plot.clear()
        for label in self.preview_labels:
            label.clear()
            label.setText("-")
        self.log_view.clear()
        self._run(config)

    def continue_run(self) -> None:
        """Resume the last stopped run (the iterations field may have been raised meanwhile)."""
        if self.last_result is None:
            return
        try:
            config = self.config()
        except SRStudioError as exc:
            self._error(str(exc))
            return
        iterations = max(config.iterations, self.last_result.iterations)
        self._run(
            dataclasses.replace(
                config, resume=True, output=self.last_result.output, iterations=iterations
            )
        )

    def _run(self, config: TrainConfig) -> None:
        if self.running:
            return

        def work(ctx: TaskContext) -> TrainResult:
            return train(
                config,
                on_progress=ctx.on_progress,
                should_stop=ctx.should_stop,
                on_event=ctx.emit,
            )

        self.task = start_task(self, work)
        w = self.task.worker
        w.progress.connect(self._on_progress)
        w.event.connect(self._on_event)
        w.finished.connect(self._on_finished)
        w.failed.connect(self._on_failed)
        w.cancelled.connect(self._on_cancelled)
        w.done.connect(self._on_done)
        self.control.begin("Preparing the data...")
        self.busy_changed.emit(True)
        self._update_enabled()

    def set_paused(self, paused: bool) -> None:
        if not self.running:
            return
        self.task.pause(paused)  # type: ignore[union-attr]
        self.control.set_paused(paused, "Paused (after the current iteration).")

    def stop(self) -> None:
        if self.running:
            self.task.cancel()  # type: ignore[union-attr]
            self.status_label.setText("Stopping after the current iteration...")
            self.stop_button.setEnabled(False)

    def shutdown(self, timeout_ms: int = 60_000) -> None:
        """Stop a run and wait for its thread (the window is closing)."""
        if self.task is not None:
            self.task.cancel()
            self.task.wait(timeout_ms)

    # ================================================================= worker signals

    def _on_progress(self, done: int, total: int) -> None:
        loss = f", loss {self._last_loss:.4f}" if self._last_loss is not None else ""
        elapsed = format_seconds(self.control.elapsed)
        self.control.show_work(done, total, f"Iteration {done} of {total}{loss}, {elapsed} elapsed")

    def _on_event(self, event: object) -> None:
        if isinstance(event, LossEvent):
            self._last_loss = event.loss
            self.loss_plot.add_point(event.iteration, event.loss)
        elif isinstance(event, ValidationEvent):
            self.psnr_plot.add_point(event.iteration, event.psnr)
            if event.preview is not None:
                self._show_preview(event.preview)
        elif isinstance(event, LogEvent):
            self._log(event.text)

    def _show_preview(self, preview: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        for label, pixels in zip(self.preview_labels, preview, strict=True):
            pixmap = QPixmap.fromImage(array_to_qimage(pixels))
            label.setPixmap(
                pixmap.scaled(
                    PREVIEW_SIDE,
                    PREVIEW_SIDE,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.FastTransformation,
                )
            )

    def _on_finished(self, result: TrainResult) -> None:
        self.last_result = result
        best = f", best validation PSNR {result.best_psnr:.3f} dB" if result.best_psnr else ""
        outcome = RunOutcome.STOPPED if result.stopped else RunOutcome.DONE
        if outcome is RunOutcome.STOPPED:
            text = f"Stopped at iteration {result.iterations}{best}. Continue resumes it."
        else:
            text = (
                f"Done: {result.iterations} iterations{best} in {format_seconds(result.seconds)}."
            )
        self.control.finish(outcome, f"{text}\nWeights: {result.output}")
        self.message.emit(
            f"Training {'stopped' if outcome is RunOutcome.STOPPED else 'finished'}: "
            f"{result.output}",
            "info",
        )
        if Path(result.output).is_file():
            self.model_trained.emit(result.output)

    def _on_failed(self, text: str) -> None:
        self.control.finish(RunOutcome.FAILED, "")
        self._error(f"Training failed: {text}")

    def _on_cancelled(self) -> None:
        self.control.finish(RunOutcome.CANCELLED, "Cancelled.")

    def _on_done(self) -> None:
        self.busy_changed.emit(False)
        self._update_enabled()

    # ================================================================= helpers

    def _log(self, text: str) -> None:
        self.log_view.appendPlainText(f"{time.strftime('%H:%M:%S')}  {text}")

    def _error(self, text: str) -> None:
        self.status_label.setText(text)
        self._log(text)
        self.message.emit(text, "error")

    def _update_enabled(self, *_args) -> None:
        running = self.running
        from_file = self.start_combo.currentData() == "file"
        self.base_edit.setEnabled(from_file)
        self.base_button.setEnabled(from_file)
        self.model_combo.setEnabled(not from_file)
        self.noise_spin.setEnabled(self.degradation_combo.currentData() == "DN")
        self.split_spin.setEnabled(not self.val_edit.text().strip())
        device = self.device_combo.currentData()
        self.cpu_precision_combo.setEnabled(
            device == "cpu" or (device == "auto" and not self._has_gpu)
        )
        self.control.set_busy(running)
        stopped = self.last_result is not None and self.last_result.stopped
        self.continue_button.setEnabled(not running and stopped)


def _row(*widgets: QWidget, stretch: bool = False) -> QWidget:
    box = QWidget()
    layout = QHBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        layout.addWidget(w, 1 if isinstance(w, QLineEdit) else 0)
    if stretch:
        layout.addStretch(1)
    return box


def _spin(low: int, high: int, value: int, step: int = 1) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.setValue(value)
    return spin


def _dspin(low: float, high: float, value: float, decimals: int, step: float) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setDecimals(decimals)
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.setValue(value)
    return spin
