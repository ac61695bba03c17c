"""The Upscale tab's model panel: the model picker (app.panels.model_picker: installed networks,
bicubic, weights files the user loads, the authors' releases), what is known of the chosen model,
and the run options (tile, self-ensemble, device, engine, precision)."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.downloads import DownloadManager
from app.jobs import BICUBIC, ModelChoice
from app.panels.model_picker import ModelPicker, PickerTimes
from app.settings import TILE_SIZES, AppSettings
from engine import (
    BACKENDS,
    CLEANUP_MODES,
    PRECISIONS,
    DeviceInfo,
    UpscaleOptions,
    WeightsEntry,
    best_weights,
    get_family,
    installed_weights,
    list_devices,
    native_bf16,
    openvino_available,
    openvino_missing,
    param_count,
    published_psnr,
    variant_note,
)

TILE_MODES = (("auto", "Automatic"), ("manual", "Fixed size"), ("whole", "Whole image"))
PRECISION_NAMES = {
    "fp32": "Full precision (fp32)",
    "fp16": "Half precision (fp16, GPU)",
    "bf16": "Half precision (bf16)",
}
ENGINE_NAMES = {"auto": "Automatic", "torch": "PyTorch", "openvino": "OpenVINO"}
CLEANUP_NAMES = {  # the clean-up network before the upscaler (engine.inference.cleanup_choice)
    "auto": "Automatic: JPEGs and noisy photos",
    "on": "Always",
    "off": "Off",
}


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def precision_choices(devices: list[DeviceInfo], cpu_bf16: bool = False) -> list[str]:
    """fp32, and the half precisions only where a CUDA GPU can run them; bf16 also where the
    CPU computes it natively through OpenVINO (cpu_bf16)."""
    if any(d.spec.startswith("cuda") for d in devices):
        return [p for p in PRECISIONS if p in PRECISION_NAMES]
    return ["fp32", "bf16"] if cpu_bf16 else ["fp32"]


def cpu_half(precision: str, cpu_bf16: bool) -> bool:
    """Whether a precision can run on the CPU here (bf16 through OpenVINO, where native)."""
    return precision == "fp32" or (precision == "bf16" and cpu_bf16)


def library_entry(choice: ModelChoice) -> WeightsEntry | None:
    """The installed file behind a choice: its own file when it has one, else the best one."""
    if choice.family == BICUBIC:
        return None
    if choice.path:
        path = Path(choice.path).resolve()
        return next((e for e in installed_weights() if e.path.resolve() == path), None)
    return best_weights(choice.family, choice.variant, choice.scale)


def _own_variants(family: str) -> Mapping[str, str]:
    """A family's own (lighter) variants; none for a network this version does not know."""
    try:
        return get_family(family).own_variants
    except ValueError:
        return {}


def published_text(choice: ModelChoice) -> str:
    """The paper's Set5 / Set14 figures for this network, on one line."""
    parts = []
    for dataset in ("Set5", "Set14"):
        found = published_psnr(choice.family, choice.variant, choice.scale, dataset)
        if found is not None:
            psnr, ssim = found
            parts.append(f"{dataset} {psnr:.2f} dB" + (f" / {ssim:.4f}" if ssim else ""))
    if parts:
        return "Paper's score: " + ", ".join(parts)
    if choice.family != BICUBIC and choice.variant in _own_variants(choice.family):
        return "Paper's score: none (the paper measured only its own, larger configuration)"
    return "Paper's score: none (not a network from the papers)"


class ModelPanel(QWidget):
    """The model picker, run options and model information. The picker's estimated times are
    for the image of set_image_size() with these options, on a worker thread."""

    changed = Signal()
    error = Signal(str)

    def __init__(
        self, parent: QWidget | None = None, downloads: DownloadManager | None = None
    ) -> None:
        super().__init__(parent)
        self.selector = ModelPicker(downloads)
        self.times = PickerTimes(
            self.selector, self.options, lambda: self.device.currentText(), parent=self
        )
        self.estimator = self.times.estimator
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.info.setObjectName("modelInfo")
        self.info.setToolTip(
            "Scores are PSNR in dB (then SSIM, 0..1): how close an upscaled benchmark image is "
            "to its original, higher is better.\nMeasured as in the papers: on the luma (Y) "
            "channel, a border of scale pixels left out. Set5 and Set14 are the papers' test "
            "images."
        )
        self._measured: dict[tuple[ModelChoice, bool], float] = {}  # (choice, ensemble) -> dB

        model_box = QGroupBox("Model")
        model_layout = QVBoxLayout(model_box)
        model_layout.addWidget(self.selector)
        model_layout.addWidget(self.info)

        self.tile_mode = QComboBox()
        for key, text in TILE_MODES:
            self.tile_mode.addItem(text, key)
        self.tile_mode.setToolTip(
            "Tiling: the image is upscaled in square tiles, blended at the seams, so that it fits "
            "in memory.\nAutomatic: the largest tile that fits. Whole image: no tiles (the most "
            "memory)."
        )
        self.tile_size = QSpinBox()
        self.tile_size.setRange(*TILE_SIZES)
        self.tile_size.setSingleStep(16)
        self.tile_size.setValue(256)
        self.tile_size.setSuffix(" px")
        self.tile_size.setToolTip("Tile side in input pixels (with a fixed tile size)")
        self.ensemble = QCheckBox("Extra quality (8x slower)")
        self.ensemble.setToolTip(
            "x8 self-ensemble: the image is upscaled in its 8 flips and rotations and the "
            "results are averaged. A little sharper and cleaner (about +0.1 dB PSNR), 8 times "
            "the time."
        )
        self.exact_tiles = QCheckBox("Exact tiles (slower)")
        self.exact_tiles.setToolTip(
            "Two passes over the tiles so that A2F, RNAN and CRAN see image-wide statistics in "
            "every tile: the output equals the whole-image one. Off: large tiles pool on their "
            "own (one pass, measured within 0.005 dB on photos); small tiles still run twice."
        )
        devices = list_devices()
        self.device = QComboBox()
        self.device.addItem("Automatic", "auto")
        for d in devices:
            memory = f" - {d.total_memory / 2**30:.0f} GB" if d.total_memory else ""
            self.device.addItem(f"{d.name}{memory}", d.spec)
        self.device.setToolTip(
            "Compute device. Automatic: the first CUDA GPU, else Apple MPS, else the CPU."
        )
        self.engine = QComboBox()
        has_openvino = openvino_available()
        for key in BACKENDS:
            self.engine.addItem(ENGINE_NAMES[key], key)
        if not has_openvino:  # greyed out, with the reason in the tooltip
            self.engine.model().item(self.engine.findData("openvino")).setEnabled(False)
        self.engine.setToolTip(
            "What runs the network on the CPU. PyTorch: the reference. OpenVINO: Intel's engine "
            "for CPUs, usually faster; it prepares each model once (seconds) and keeps it for "
            "the next runs. Automatic: OpenVINO where it can run the model, else PyTorch."
            + ("" if has_openvino else f" {openvino_missing()}.")
        )
        self._cpu_bf16 = has_openvino and native_bf16()
        self.precision = QComboBox()
        for key in precision_choices(devices, self._cpu_bf16):
            self.precision.addItem(PRECISION_NAMES[key], key)
        self.precision.setToolTip(
            "Number format of the computation. Full precision (fp32) everywhere; half "
            "precision (fp16, bf16) on a CUDA GPU, and bf16 through OpenVINO on a CPU that "
            "computes it natively: faster, and differs from fp32 by a fraction of a grey level."
        )

        self.cleanup = QComboBox()
        for key in CLEANUP_MODES:
            self.cleanup.addItem(CLEANUP_NAMES[key], key)
        self.cleanup.setToolTip(
            "Clean-up: a small network removes JPEG blocks, ringing and sensor noise before the "
            "image is upscaled, so that they are not sharpened into streaks. Automatic: for "
            "JPEGs saved below quality 90 and for noisy images; clean PNG and TIFF files are "
            "upscaled as they are. What it decides for the open image is shown below."
        )
        self.cleanup_hint = QLabel()
        self.cleanup_hint.setWordWrap(True)
        self.cleanup_hint.hide()

        tile_row = QHBoxLayout()
        tile_row.addWidget(self.tile_mode)
        tile_row.addWidget(self.tile_size)
        options_box = QGroupBox("Options")
        form = QFormLayout(options_box)
        form.addRow("Clean-up", self.cleanup)
        form.addRow("", self.cleanup_hint)
        form.addRow("Tile size", tile_row)
        form.addRow("", self.ensemble)
        form.addRow("", self.exact_tiles)
        form.addRow("Run on", self.device)
        form.addRow("Engine", self.engine)
        form.addRow("Precision", self.precision)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(model_box)
        layout.addWidget(options_box)

        self.selector.changed.connect(self._on_change)
        self.selector.error.connect(self.error)
        for combo in (self.tile_mode, self.device, self.engine, self.precision, self.cleanup):
            combo.currentIndexChanged.connect(self._on_change)
        self.tile_size.valueChanged.connect(self._on_change)
        self.ensemble.toggled.connect(self._on_change)
        self.exact_tiles.toggled.connect(self._on_change)
        self._on_change()

    def set_cleanup_hint(self, text: str) -> None:
        """What the clean-up will do for the open image ("" hides the line)."""
        self.cleanup_hint.setText(text)
        self.cleanup_hint.setVisible(bool(text))

    def _on_change(self, *_args) -> None:
        self.tile_size.setEnabled(self.tile_mode.currentData() == "manual")
        on_cpu = self.device.currentData() == "cpu"
        on_gpu = str(self.device.currentData()).startswith(("cuda", "mps"))
        self.engine.setEnabled(not on_gpu)  # OpenVINO runs on the CPU only
        cpu_bf16 = self._cpu_bf16 and self.engine.currentData() != "torch"
        if on_cpu and not cpu_half(self.precision.currentData(), cpu_bf16):
            self.precision.setCurrentIndex(self.precision.findData("fp32"))
        self.precision.setEnabled(self.precision.count() > 1 and (not on_cpu or cpu_bf16))
        self._show_info()
        self.estimate_times()
        self.changed.emit()

    # ------------------------------------------------------------ estimated times

    def set_image_size(self, size: tuple[int, int] | None) -> None:
        """The LR image the picker's times are for (height, width); None: per megapixel."""
        self.times.set_image_size(size)

    def set_busy(self, busy: bool) -> None:
        """A run holds the machine: estimates wait for it (both would be slowed)."""
        self.times.set_blocked(busy)

    def estimate_times(self) -> None:
        """(Re)estimate the listed models' times when what changes them changed (PickerTimes)."""
        self.times.update()

    def shutdown(self, wait_ms: int = 5000) -> None:
        self.times.shutdown(wait_ms)

    def current(self) -> ModelChoice:
        return self.selector.current()

    def options(self) -> UpscaleOptions:
        mode = self.tile_mode.currentData()
        tile = None if mode == "auto" else (0 if mode == "whole" else self.tile_size.value())
        return UpscaleOptions(
            tile=tile,
            ensemble=self.ensemble.isChecked(),
            exact_tiles=self.exact_tiles.isChecked(),
            device=self.device.currentData(),
            precision=self.precision.currentData(),
            backend=self.engine.currentData(),
            cleanup=self.cleanup.currentData(),
        )

    def restore(self, s: AppSettings) -> None:
        self.selector.restore(s)
        self.tile_mode.setCurrentIndex(max(0, self.tile_mode.findData(s.tile_mode)))
        self.tile_size.setValue(min(max(s.tile_size, TILE_SIZES[0]), TILE_SIZES[1]))
        self.ensemble.setChecked(s.ensemble)
        self.exact_tiles.setChecked(s.exact_tiles)
        self.cleanup.setCurrentIndex(max(0, self.cleanup.findData(s.cleanup)))
        self._restore_choice(s, self.device, "device", "auto", self._device_gone)
        self._restore_choice(s, self.engine, "backend", "torch", self._engine_gone)
        self._restore_choice(s, self.precision, "precision", "fp32", self._precision_gone)

    @staticmethod
    def _restore_choice(s: AppSettings, combo: QComboBox, name: str, default: str, why) -> None:
        """Select the saved value where it still applies; else the default, the saved one held
        (AppSettings.hold: said once, and saved again unless the user picks another)."""
        saved = getattr(s, name)
        index = combo.findData(saved)
        if saved == default or (index >= 0 and combo.model().item(index).isEnabled()):
            combo.setCurrentIndex(max(0, index))
            return
        combo.setCurrentIndex(max(0, combo.findData(default)))
        s.hold(name, default, f"{why(saved)}: using {combo.currentText()}")

    @staticmethod
    def _device_gone(saved: str) -> str:
        return f"the device used last time ({saved}) is not here"

    @staticmethod
    def _engine_gone(saved: str) -> str:
        return openvino_missing() if saved == "openvino" else f"{saved} cannot run here"

    @staticmethod
    def _precision_gone(saved: str) -> str:
        return f"{PRECISION_NAMES.get(saved, saved)} cannot run on this machine"

    def store(self, s: AppSettings) -> None:
        self.selector.store(s)
        s.tile_mode = self.tile_mode.currentData()
        s.tile_size = self.tile_size.value()
        s.ensemble = self.ensemble.isChecked()
        s.exact_tiles = self.exact_tiles.isChecked()
        s.device = self.device.currentData()
        s.backend = self.engine.currentData()
        s.precision = self.precision.currentData()
        s.cleanup = self.cleanup.currentData()

    def refresh(self, select: ModelChoice | None = None) -> bool:
        """Re-read the installed weights; select `select` when given and available."""
        self.selector.refresh()
        return self.selector.set_current(select) if select is not None else False

    def offer_file(self, path: str) -> None:
        """List and select a weights file just written (a training run): from the library when
        it was saved there, else recognised by loading it (in a worker)."""
        self.selector.refresh()
        target = Path(path).resolve()
        for choice in self.selector.file_choices():
            if Path(choice.path).resolve() == target:  # type: ignore[arg-type]
                self.selector.set_current(choice)
                return
        self.selector.load_weights(path)

    def set_measured(self, choice: ModelChoice, psnr: float, ensemble: bool = False) -> None:
        self._measured[(choice, ensemble)] = psnr
        if choice == self.current():
            self._show_info()

    def clear_measured(self) -> None:
        """A new image: the PSNR measured on the previous one no longer applies."""
        self._measured.clear()
        self._show_info()

    def _show_info(self) -> None:
        choice = self.current()
        params = param_count(choice.family, choice.variant, choice.scale)
        lines = [f"<b>{choice.name} x{choice.scale}</b>"]
        lines.append(f"Parameters: {params:,}" if params is not None else "Parameters: unknown")
        if choice.family != BICUBIC:
            lines.append(f"Variant: {variant_note(choice.family, choice.variant)}")
        meta: dict = {}
        entry = library_entry(choice)
        if choice.family == BICUBIC:
            lines.append("Weights: none (MATLAB bicubic, built in)")
        elif entry is not None:
            meta = entry.metadata
            lines.append(f"Weights: {entry.origin}, {html.escape(entry.path.name)}")
            if meta.get("release"):
                lines.append(f"Release: {html.escape(str(meta['release']))}")
        elif choice.path:
            lines.append(f"Weights: file {html.escape(str(choice.path))}")
        row = next((e for e in self.selector.entries() if e.installed and e.choice == choice), None)
        if row is not None and row.quality is not None and row.quality.basis != "paper":
            lines.append(html.escape(row.quality_text()))  # the bundled files' own Set5 score
        lines.append(published_text(choice))
        measured = []
        if _is_number(meta.get("psnr")):  # a crafted file may put anything there
            measured.append(f"{meta['psnr']:.2f} dB (on the photos its training held out)")
        if (choice, False) in self._measured:
            measured.append(f"{self._measured[(choice, False)]:.2f} dB (this image)")
        if (choice, True) in self._measured:
            measured.append(f"{self._measured[(choice, True)]:.2f} dB (this image, extra quality)")
        lines.append("Measured: " + (", ".join(measured) if measured else "-"))
        self.info.setText("<br>".join(lines))
