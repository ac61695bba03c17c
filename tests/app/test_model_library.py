"""The model lists follow the library: a finished training run is offered at once; the model
information shows where the weights come from and the papers' figures; the Train tab's settings
column is never cut off."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtWidgets import QComboBox, QLineEdit, QPushButton, QSpinBox, QWidget

from app.jobs import ModelChoice, bicubic_choice
from app.panels.model_panel import ModelPanel
from engine import build_untrained, save_checkpoint, user_dir
from engine.quality import BUNDLED_SET5

FIELDS = (QLineEdit, QComboBox, QSpinBox, QPushButton)


def _images(folder: Path, count: int, seed: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (40, 44, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def _tiny_run(tab, tmp_path: Path, output: str = "") -> None:
    tab.model_combo.setCurrentText("A2F-SD")
    tab.scale_combo.setCurrentIndex(tab.scale_combo.findData(2))
    tab.add_hr_folder(str(_images(tmp_path / "hr", 2, 0)))
    tab.val_edit.setText(str(_images(tmp_path / "val", 1, 1)))
    tab.patch_spin.setValue(12)
    tab.batch_spin.setValue(2)
    tab.iterations_spin.setValue(2)
    tab.val_every_spin.setValue(2)
    tab.output_edit.setText(output)


def test_a_finished_training_run_is_offered_by_the_model_panels(window, qtbot, tmp_path):
    panel = window.upscale.panel
    assert not [c for c in panel.selector.choices if c.family == "A2F"]
    _tiny_run(window.trainer, tmp_path)  # automatic output: a new file in the library
    with qtbot.waitSignal(window.trainer.model_trained, timeout=60_000) as signal:
        window.trainer.start()
    path = signal.args[0]
    assert Path(path).parent == user_dir() / "trained"
    trained = ModelChoice("A2F", "SD", 2, path)
    assert trained in panel.selector.choices and trained in window.batch.selector.choices
    assert panel.current() == trained
    row = panel.selector.selected_entry()
    assert row.title == f"A2F-SD ({Path(path).name})" and row.origin_text == "trained by you"
    info = panel.info.text()
    assert f"Weights: trained, {Path(path).name}" in info
    assert "(on the photos its training held out)" in info  # from the file's metadata
    assert "Set5 37.91 dB / 0.9602" in info  # the A2F paper's figure for A2F-SD x2

    # Stays listed after another refresh (and the current choice is kept).
    panel.refresh()
    assert panel.current() == trained
    qtbot.waitUntil(lambda: not window.trainer.running, timeout=10_000)


def test_weights_written_outside_the_library_are_recognised_and_selected(window, qtbot, tmp_path):
    out = tmp_path / "elsewhere" / "mine.safetensors"
    _tiny_run(window.trainer, tmp_path, str(out))
    with qtbot.waitSignal(window.trainer.model_trained, timeout=60_000):
        window.trainer.start()
    panel = window.upscale.panel
    qtbot.waitUntil(lambda: panel.current().path == str(out), timeout=30_000)
    assert panel.current() == ModelChoice("A2F", "SD", 2, str(out))
    assert f"Weights: file {out}" in panel.info.text()
    qtbot.waitUntil(lambda: not window.trainer.running, timeout=10_000)


def test_info_shows_origin_and_published_figures(qtbot):
    panel = ModelPanel()
    qtbot.addWidget(panel)
    panel.selector.set_current(bicubic_choice(4))
    assert "Set5 28.42 dB / 0.8104, Set14 26.00 dB / 0.7027" in panel.info.text()

    folder = user_dir()
    folder.mkdir(parents=True)
    light = build_untrained("RNAN-light", 2).model
    save_checkpoint(
        folder / "rnan.safetensors", light, family="RNAN", variant="light", scale=2, metadata={}
    )
    panel.refresh(select=ModelChoice("RNAN", "light", 2))
    info = panel.info.text()
    assert panel.current() == ModelChoice("RNAN", "light", 2)
    assert "Weights: imported, rnan.safetensors" in info  # no origin recorded: user dir = imported
    assert "Paper's score: none" in info


def test_train_settings_column_is_never_cut_off(window, qtbot):
    tab = window.trainer
    window.tabs.setCurrentWidget(tab)
    for width in (1200, 900):
        window.resize(width, 800)
        qtbot.wait(50)
        scroll = tab.settings_scroll
        panel = scroll.widget()
        assert panel.width() <= scroll.viewport().width()
        assert panel.width() >= panel.minimumSizeHint().width()
        for field in panel.findChildren(QWidget):
            if isinstance(field, FIELDS) and field.isVisible():
                right = field.mapTo(panel, field.rect().topRight()).x()
                assert right < scroll.viewport().width(), field


def test_a_fresh_window_picks_the_bundled_a2f_and_says_which_variants_are_ours(
    bundled_weights, window
):
    panel = window.upscale.panel
    assert panel.current() == ModelChoice("A2F", "SD", 4)  # the default, bundled
    info = panel.info.text()
    assert "Weights: bundled, A2F-SD-x4.safetensors" in info
    assert "Variant: the paper's configuration" in info
    assert "(on the photos its training held out)" in info
    # its own Set5 score, as the picker's bar shows it, beside the paper's for its configuration
    own = BUNDLED_SET5["A2F", "SD", 4]
    assert f"Quality: Set5 PSNR {own[0]:.2f} dB, SSIM {own[1]:.4f} (measured by SR Studio" in info
    assert "Paper's score: Set5 32.06 dB" in info
    families = {c.family for c in panel.selector.choices}
    assert families == {"Bicubic", "RNAN", "CRAN", "A2F", "HPINet"}
    panel.selector.set_current(ModelChoice("RNAN", "tiny", 3))
    info = panel.info.text()
    assert "Weights: bundled, RNAN-tiny-x3.safetensors" in info
    assert "Variant: ours, lighter than the paper's: C=32, G=2, B=4" in info
    assert "Paper's score: none (the paper measured only its own, larger configuration)" in info
