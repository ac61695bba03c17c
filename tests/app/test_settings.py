from __future__ import annotations

from app.jobs import ModelChoice
from app.main_window import MainWindow
from app.settings import AppSettings, load_settings, qsettings, save_settings


def test_settings_round_trip_types(isolated_settings):
    s = AppSettings(
        scale=3, ensemble=True, recent_files=["/one.png"], geometry=b"\x00\x01", loaded_weights=[]
    )
    save_settings(s)
    assert (isolated_settings / "SRStudio" / "SR Studio.ini").is_file()
    back = load_settings()
    assert back == s
    store = qsettings()
    store.setValue("scale", "not a number")
    assert load_settings(store).scale == AppSettings().scale


def test_settings_survive_a_restart(qtbot, tmp_path):
    weights = tmp_path / "w.safetensors"
    from engine.checkpoints import build_untrained, save_checkpoint

    desc = build_untrained("A2F-SD", 3)
    save_checkpoint(weights, desc.model, family="A2F", variant="SD", scale=3)
    first = MainWindow(load_settings())
    qtbot.addWidget(first)
    up = first.upscale
    up.panel.selector.add_choice(ModelChoice("A2F", "SD", 3, str(weights)))
    assert up.panel.selector.set_current(ModelChoice("A2F", "SD", 3, str(weights)))
    up.panel.tile_mode.setCurrentIndex(up.panel.tile_mode.findData("manual"))
    up.panel.tile_size.setValue(96)
    up.panel.ensemble.setChecked(True)
    up.output_box.quality.setValue(80)
    up.actions["wipe"].setChecked(True)
    first.batch.output_dir.setText(str(tmp_path / "results"))
    first.batch.template.setText("{stem}_x{scale}.{ext}")
    first.batch.skip_existing.setChecked(True)
    first.dark_action.setChecked(True)
    first.settings.add_recent(str(tmp_path / "x.png"))
    first.tabs.setCurrentIndex(1)
    first.close()

    second = MainWindow(load_settings())
    qtbot.addWidget(second)
    up = second.upscale
    assert up.panel.current() == ModelChoice("A2F", "SD", 3, str(weights))
    assert up.panel.tile_mode.currentData() == "manual" and up.panel.tile_size.value() == 96
    assert up.panel.ensemble.isChecked() and up.output_box.quality.value() == 80
    assert up.canvas.mode == "wipe"
    assert second.batch.output_dir.text() == str(tmp_path / "results")
    assert second.batch.template.text() == "{stem}_x{scale}.{ext}"
    assert second.batch.skip_existing.isChecked()
    assert second.settings.theme == "dark" and second.dark_action.isChecked()
    assert second.settings.recent_files == [str(tmp_path / "x.png")]
    assert second.tabs.currentIndex() == 1
    assert second.recent_menu.actions()[0].text() == str(tmp_path / "x.png")
    second.dark_action.setChecked(False)  # leave the application palette light for other tests
    second.close()
