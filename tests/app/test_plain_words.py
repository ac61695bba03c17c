"""Choices offered are those this machine has, in plain words."""

from __future__ import annotations

import app.panels.model_panel as model_panel
import app.panels.trainer_tab as trainer_tab
from engine import DeviceInfo

CPU = DeviceInfo("cpu", "CPU (2 threads)", None)
GPU = DeviceInfo("cuda:0", "NVIDIA H200", 141 << 30)


def _items(combo) -> list:
    return [combo.itemData(i) for i in range(combo.count())]


def test_without_cuda_precision_is_fp32_only(qtbot, monkeypatch):
    monkeypatch.setattr(model_panel, "list_devices", lambda: [CPU])
    monkeypatch.setattr(model_panel, "native_bf16", lambda: False)
    panel = model_panel.ModelPanel()
    qtbot.addWidget(panel)
    assert _items(panel.precision) == ["fp32"]
    assert panel.precision.currentText() == "Full precision (fp32)"
    assert not panel.precision.isEnabled()
    assert _items(panel.device) == ["auto", "cpu"]
    assert panel.options().precision == "fp32"


def test_with_cuda_half_precision_is_offered_but_not_on_the_cpu(qtbot, monkeypatch):
    monkeypatch.setattr(model_panel, "list_devices", lambda: [GPU, CPU])
    monkeypatch.setattr(model_panel, "native_bf16", lambda: False)
    panel = model_panel.ModelPanel()
    qtbot.addWidget(panel)
    assert _items(panel.precision) == ["fp32", "fp16", "bf16"]
    panel.precision.setCurrentIndex(1)
    assert panel.options().precision == "fp16"
    panel.device.setCurrentIndex(panel.device.findData("cpu"))
    assert panel.options().precision == "fp32"
    assert not panel.precision.isEnabled()


def test_engine_choice_greys_out_openvino_where_it_is_not_installed(qtbot, monkeypatch):
    monkeypatch.setattr(model_panel, "list_devices", lambda: [GPU, CPU])
    monkeypatch.setattr(model_panel, "openvino_available", lambda: False)
    panel = model_panel.ModelPanel()
    qtbot.addWidget(panel)
    assert [panel.engine.itemText(i) for i in range(panel.engine.count())] == [
        "Automatic",
        "PyTorch",
        "OpenVINO",
    ]
    item = panel.engine.model().item(panel.engine.findData("openvino"))
    assert not item.isEnabled()
    assert "not installed" in panel.engine.toolTip()
    panel.engine.setCurrentIndex(panel.engine.findData("auto"))
    assert panel.options().backend == "auto"
    panel.device.setCurrentIndex(panel.device.findData("cuda:0"))
    assert not panel.engine.isEnabled()  # OpenVINO runs on the CPU only


def test_cpu_with_native_bf16_offers_bf16_through_openvino(qtbot, monkeypatch):
    monkeypatch.setattr(model_panel, "list_devices", lambda: [CPU])
    monkeypatch.setattr(model_panel, "openvino_available", lambda: True)
    monkeypatch.setattr(model_panel, "native_bf16", lambda: True)
    panel = model_panel.ModelPanel()
    qtbot.addWidget(panel)
    assert _items(panel.precision) == ["fp32", "bf16"]
    panel.device.setCurrentIndex(panel.device.findData("cpu"))
    panel.engine.setCurrentIndex(panel.engine.findData("openvino"))
    assert panel.precision.isEnabled()
    panel.precision.setCurrentIndex(panel.precision.findData("bf16"))
    assert (panel.options().backend, panel.options().precision) == ("openvino", "bf16")
    panel.engine.setCurrentIndex(panel.engine.findData("torch"))  # PyTorch: fp32 on the CPU
    assert panel.options().precision == "fp32"
    assert not panel.precision.isEnabled()


def test_train_tab_without_cuda_does_not_offer_mixed_precision(qtbot, monkeypatch, tmp_path):
    monkeypatch.setattr(trainer_tab, "list_devices", lambda: [CPU])
    tab = trainer_tab.TrainerTab()
    qtbot.addWidget(tab)
    tab.add_hr_folder(str(tmp_path))
    assert not tab.amp_check.isChecked()
    assert not tab.amp_check.isEnabled()
    assert not tab.config().amp
    assert tab.device_combo.itemText(0) == "Automatic"


def test_train_tab_advanced_settings_behind_a_disclosure(qtbot):
    tab = trainer_tab.TrainerTab()
    qtbot.addWidget(tab)
    tab.show()
    assert not tab.lr_edit.isVisible() and not tab.seed_spin.isVisible()
    assert tab.iterations_spin.isVisible()
    tab.advanced_toggle.click()
    assert tab.lr_edit.isVisible() and tab.seed_spin.isVisible()


def test_both_tabs_say_automatic(window):
    assert window.upscale.panel.device.itemText(0) == "Automatic"
    assert window.upscale.panel.tile_mode.itemText(0) == "Automatic"
    if isinstance(window.trainer, trainer_tab.TrainerTab):
        assert window.trainer.device_combo.itemText(0) == "Automatic"
