"""Saved choices that no longer apply (issue 35): the app starts with the default, says once what it
changed and why, in words that fit the install, and keeps the saved choice for later."""

from __future__ import annotations

import sys

import pytest

from app.main_window import MainWindow
from app.settings import AppSettings
from engine import openvino_missing


@pytest.fixture
def no_openvino(monkeypatch):
    import app.panels.model_panel as panel

    monkeypatch.setattr(panel, "openvino_available", lambda: False)
    monkeypatch.setattr("engine.inference.openvino_backend.available", lambda: False)


def _window(qtbot, settings: AppSettings) -> MainWindow:
    win = MainWindow(settings)
    qtbot.addWidget(win)
    return win


def test_a_saved_openvino_without_openvino_runs_pytorch_and_says_so_once(
    qtbot, no_openvino
) -> None:
    settings = AppSettings(backend="openvino", device="cuda:7", precision="fp16")
    win = _window(qtbot, settings)
    panel = win.upscale.panel
    assert panel.engine.currentData() == "torch" and panel.device.currentData() == "auto"
    assert panel.precision.currentData() == "fp32"
    assert panel.options().backend == "torch"
    bar = win.message_bar
    text = bar.label.text()
    assert "OpenVINO is not installed (pip install srstudio[openvino]): using PyTorch" in text
    assert text.startswith("The device used last time (cuda:7) is not here: using Automatic")
    assert text.endswith("They stay saved for when they apply.")
    assert "Half precision (fp16, GPU) cannot run on this machine: using Full" in text
    stored = AppSettings()
    panel.store(stored)
    assert (stored.backend, stored.device, stored.precision) == ("openvino", "cuda:7", "fp16")
    panel.engine.setCurrentIndex(panel.engine.findData("auto"))  # the user picks another
    panel.store(stored)
    assert stored.backend == "auto" and stored.device == "cuda:7"


def test_choices_that_apply_are_used_and_nothing_is_said(qtbot) -> None:
    win = _window(qtbot, AppSettings(backend="torch", device="cpu", precision="fp32"))
    assert win.upscale.panel.restore_note == ""
    assert win.upscale.panel.device.currentData() == "cpu"


def test_a_bundle_says_what_the_build_lacks_never_pip(monkeypatch) -> None:
    assert "pip install" in openvino_missing()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert openvino_missing() == "OpenVINO is not part of this build"
