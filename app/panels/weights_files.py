"""The model picker's (Upscale and Batch tabs) dealings with weights files: remembering the chosen
model and loaded weights files in the settings, and "Load weights..." (recognised in a worker).

A mixin for a QWidget with `load_button`, an `error` signal, current(), set_current() and
file_choices()."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from app.catalog import encode_file_choice, library_choices, recognise_weights
from app.jobs import ModelChoice
from app.settings import AppSettings
from app.workers import start_task

WEIGHTS_FILTER = "Weights (*.safetensors *.pt *.pth *.ckpt);;All files (*)"


class WeightsFiles:
    choices: list[ModelChoice]

    def file_choices(self) -> list[ModelChoice]:
        return [c for c in self.choices if c.path]

    def reread_choices(self) -> None:
        """The installed weights read again, keeping the files loaded by hand still there."""
        found = library_choices()
        kept = [c for c in self.choices if c.path and c not in found and Path(c.path).is_file()]
        self.choices = found + kept

    def store(self, s: AppSettings) -> None:
        choice = self.current()  # type: ignore[attr-defined]
        s.family, s.variant, s.scale = choice.family, choice.variant, choice.scale
        s.weights_path = choice.path or ""
        s.loaded_weights = [encode_file_choice(c) for c in self.file_choices()]  # type: ignore[attr-defined]

    def _ask_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load weights", "", WEIGHTS_FILTER)  # type: ignore[arg-type]
        if path:
            self.load_weights(path)

    def load_weights(self, path: str) -> None:
        """Recognise a weights file in a worker; select it, or report why it cannot be used."""
        self.load_button.setEnabled(False)  # type: ignore[attr-defined]
        self._task = start_task(self, lambda ctx: recognise_weights(path))
        self._task.worker.finished.connect(self._weights_loaded)
        self._task.worker.failed.connect(self._weights_failed)

    def _weights_loaded(self, choice: ModelChoice) -> None:
        self.load_button.setEnabled(True)  # type: ignore[attr-defined]
        self.set_current(choice)  # type: ignore[attr-defined]

    def _weights_failed(self, message: str) -> None:
        self.load_button.setEnabled(True)  # type: ignore[attr-defined]
        self.error.emit(f"Cannot use these weights: {message}")  # type: ignore[attr-defined]
