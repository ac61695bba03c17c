"""Saved choices that no longer apply (issue 35): the app starts with the default, says once what it
changed and why, in words that fit the install, and keeps the saved choice for later."""

from __future__ import annotations

import sys

import pytest

from app.main_window import MainWindow
from app.settings import AppSettings, load_settings, save_settings
from engine import openvino_missing


@pytest.fixture
def no_openvino(monkeypatch):
    import app.panels.model_panel as panel

    monkeypatch.setattr(panel, "openvino_available", lambda: False)
    monkeypatch.setattr("engine.inference.openvino_backend.available", lambda: False)


class Saved(dict):
    """What save_settings writes, without a file."""

    def setValue(self, key: str, value: object) -> None:  # noqa: N802
        self[key] = value

    def sync(self) -> None:
        pass

    def __bool__(self) -> bool:  # save_settings takes an empty store for none
        return True


def _saved(win: MainWindow) -> Saved:
    win.upscale.store(win.settings)
    stored = Saved()
    save_settings(win.settings, stored)
    return stored


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
    stored = _saved(win)
    assert (stored["backend"], stored["device"], stored["precision"]) == (
        "openvino",
        "cuda:7",
        "fp16",
    )
    panel.engine.setCurrentIndex(panel.engine.findData("auto"))  # the user picks another
    stored = _saved(win)
    assert stored["backend"] == "auto" and stored["device"] == "cuda:7"


def test_choices_that_apply_are_used_and_nothing_is_said(qtbot) -> None:
    win = _window(qtbot, AppSettings(backend="torch", device="cpu", precision="fp32"))
    assert win.settings.note() == "" and not win.message_bar.isVisible()
    assert win.upscale.panel.device.currentData() == "cpu"


def test_a_bundle_says_what_the_build_lacks_never_pip(monkeypatch) -> None:
    assert "pip install" in openvino_missing()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert openvino_missing() == "OpenVINO is not part of this build"


def test_a_weights_file_gone_and_a_newer_model_fall_back_and_stay_saved(
    qtbot, tmp_path, bundled_weights
) -> None:
    gone = str(tmp_path / "my-run.safetensors")
    stored = Saved(family="FancyNet", variant="XL", weights_path=gone, device="cpu")
    stored["loaded_weights"] = [f"A2F|SD|2|{gone}"]

    class Store(Saved):
        def contains(self, key: str) -> bool:
            return key in self

        def value(self, key: str) -> object:
            return self[key]

    settings = load_settings(Store(stored))
    assert (settings.family, settings.variant, settings.weights_path) == ("A2F", "SD", "")
    win = _window(qtbot, settings)
    text = win.message_bar.label.text()
    assert text.startswith("The model used last time ('FancyNet-XL') is not one this version")
    assert "; 1 weights file loaded before is not there. They stay saved" in text
    saved = _saved(win)
    assert (saved["family"], saved["variant"], saved["weights_path"]) == ("FancyNet", "XL", gone)
    assert saved["loaded_weights"] == [f"A2F|SD|2|{gone}"]
