from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402

from app.panels.trainer_tab import LinePlot, TrainerTab  # noqa: E402
from engine.checkpoints import load_model  # noqa: E402
from engine.errors import SRStudioError  # noqa: E402


def _images(folder: Path, count: int, seed: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        img = rng.integers(0, 256, (40, 44, 3), dtype=np.uint8)
        Image.fromarray(img).save(folder / f"{i}.png")
    return folder


@pytest.fixture
def tab(qtbot, tmp_path):
    widget = TrainerTab()
    qtbot.addWidget(widget)
    widget.model_combo.setCurrentText("A2F-SD")
    widget.scale_combo.setCurrentIndex(widget.scale_combo.findData(2))
    widget.add_hr_folder(str(_images(tmp_path / "hr", 3, 0)))
    widget.val_edit.setText(str(_images(tmp_path / "val", 1, 1)))
    widget.patch_spin.setValue(12)
    widget.batch_spin.setValue(2)
    widget.val_every_spin.setValue(5)
    widget.output_edit.setText(str(tmp_path / "out" / "trained.safetensors"))
    yield widget
    widget.shutdown()


def test_settings_become_a_train_config(tab, tmp_path):
    tab.iterations_spin.setValue(123)
    tab.lr_edit.setText("3e-5")
    tab.degradation_combo.setCurrentIndex(tab.degradation_combo.findData("DN"))
    tab.noise_spin.setValue(15)
    cfg = tab.config()
    assert (cfg.model, cfg.scale, cfg.base) == ("A2F-SD", 2, None)
    assert cfg.iterations == 123 and cfg.lr == 3e-5 and cfg.warmup is None
    assert (cfg.degradation, cfg.noise_level) == ("DN", 15)
    assert cfg.hr_dirs == (str(tmp_path / "hr"),) and cfg.lr_dirs is None
    assert cfg.val_dir == str(tmp_path / "val") and cfg.val_split == 0
    assert tab.noise_spin.isEnabled()

    tab.start_combo.setCurrentIndex(tab.start_combo.findData("file"))
    assert tab.base_edit.isEnabled() and not tab.model_combo.isEnabled()
    with pytest.raises(SRStudioError, match="weights file"):
        tab.config()
    tab.base_edit.setText("/some/weights.pt")
    cfg = tab.config()
    assert cfg.base == "/some/weights.pt" and cfg.model is None and cfg.scale is None

    tab.lr_edit.setText("fast")
    with pytest.raises(SRStudioError, match="learning rate"):
        tab.config()


def test_start_shows_loss_and_validation_then_stop_ends_the_thread(tab, qtbot, tmp_path):
    tab.iterations_spin.setValue(100_000)  # far more than the test waits for: Stop ends it
    trained: list[str] = []
    tab.model_trained.connect(trained.append)
    qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    assert tab.running and not tab.start_button.isEnabled() and tab.stop_button.isEnabled()
    qtbot.waitUntil(lambda: len(tab.loss_plot.points) >= 2, timeout=60_000)
    qtbot.waitUntil(lambda: len(tab.psnr_plot.points) >= 2, timeout=60_000)  # at 0 and at 5
    assert all(np.isfinite(y) for _, y in tab.loss_plot.points)
    assert all(
        label.pixmap() is not None and not label.pixmap().isNull() for label in tab.preview_labels
    )
    assert "left" in tab.status_label.text()  # the time left, once the rate is known

    qtbot.mouseClick(tab.pause_button, Qt.MouseButton.LeftButton)
    assert tab.task.paused and tab.pause_button.text() == "Resume"
    paused_at = tab.progress_bar.value()
    qtbot.wait(300)
    assert tab.progress_bar.value() <= paused_at + 1  # at most the iteration in flight

    thread = tab.task.thread
    with qtbot.waitSignal(tab.task.worker.done, timeout=60_000):
        qtbot.mouseClick(tab.stop_button, Qt.MouseButton.LeftButton)
    assert thread.wait(10_000)
    assert not tab.running and tab.start_button.isEnabled() and not tab.stop_button.isEnabled()
    assert tab.last_result is not None and tab.last_result.stopped
    assert tab.continue_button.isEnabled()
    out = tmp_path / "out" / "trained.safetensors"
    assert trained == [str(out)]
    meta = load_model(out).metadata
    assert meta["validation_history"][0]["iteration"] == 0
    assert "from scratch" in tab.log_view.toPlainText()

    # Continue resumes the stopped run where it ended
    done_before = tab.last_result.iterations
    tab.iterations_spin.setValue(done_before + 3)
    with qtbot.waitSignal(tab.model_trained, timeout=60_000):
        qtbot.mouseClick(tab.continue_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not tab.running, timeout=10_000)
    assert tab.last_result.iterations == done_before + 3 and not tab.last_result.stopped
    assert f"resuming at iteration {done_before}" in tab.log_view.toPlainText()


def test_bad_settings_are_reported_without_starting(tab, qtbot):
    tab.folders.clear()
    messages: list[tuple[str, str]] = []
    tab.message.connect(lambda text, level: messages.append((text, level)))
    qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    assert not tab.running
    assert messages and messages[0][1] == "error" and "HR" in messages[0][0]


def test_line_plot_keeps_finite_points_and_paints(qtbot):
    plot = LinePlot("loss", "#2f6fde")
    qtbot.addWidget(plot)
    plot.resize(300, 160)
    plot.grab()  # paints the empty state
    for x, y in [(1, 0.5), (2, float("nan")), (3, 0.25)]:
        plot.add_point(x, y)
    assert plot.points == [(1.0, 0.5), (3.0, 0.25)]
    image = plot.grab().toImage()
    assert not image.isNull() and image.width() == 300


def test_cpu_precision_and_memory_layout_reach_the_config(tab, monkeypatch, qtbot):
    assert tab.cpu_precision_combo.currentData() == "auto"
    assert not tab.channels_last_check.isChecked()
    cfg = tab.config()
    assert (cfg.precision, cfg.channels_last) == ("auto", False)

    tab.cpu_precision_combo.setCurrentIndex(tab.cpu_precision_combo.findData("bf16"))
    tab.channels_last_check.setChecked(True)
    cfg = tab.config()
    assert (cfg.precision, cfg.channels_last) == ("bf16", True)

    # The choice applies to the CPU only: greyed out once a GPU is chosen.
    tab.device_combo.setCurrentIndex(tab.device_combo.findData("cpu"))
    assert tab.cpu_precision_combo.isEnabled()
    tab.device_combo.addItem("A GPU", "cuda:0")
    tab.device_combo.setCurrentIndex(tab.device_combo.findData("cuda:0"))
    assert not tab.cpu_precision_combo.isEnabled()


@pytest.mark.parametrize("native", [True, False])
def test_automatic_precision_says_what_it_means_on_this_cpu(qtbot, monkeypatch, native):
    monkeypatch.setattr("app.panels.trainer_tab.cpu_native_bf16", lambda: native)
    widget = TrainerTab()
    qtbot.addWidget(widget)
    text = widget.cpu_precision_combo.itemText(widget.cpu_precision_combo.findData("auto"))
    assert ("bf16" in text) is native and ("fp32" in text) is not native
    assert ("as this one does" in widget.cpu_precision_combo.toolTip()) is native
    widget.shutdown()
