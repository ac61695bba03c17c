"""What is shown belongs to the current state: a new image, a batch run or the Models dialog
opened again clears what no longer applies; an ensemble run is an entry of its own."""

from __future__ import annotations

from app.jobs import bicubic_choice
from app.panels.trainer_tab import TrainerTab
from tests.app.conftest import write_png


def _open(qtbot, tab, path) -> None:
    tab.open_path(path)
    qtbot.waitUntil(lambda: tab.input is not None and tab.source_name == path.name)


def test_a_new_image_clears_the_previous_psnr_and_messages(qtbot, window, tmp_path):
    window.settings.auto_run = False
    tab = window.upscale
    assert tab.panel.selector.set_current(bicubic_choice(2))
    _open(qtbot, tab, write_png(tmp_path / "one.png", 16, 16))
    tab.panel.set_measured(bicubic_choice(2), 31.5)
    assert "31.50 dB (this image)" in tab.panel.info.text()
    tab.message.emit("one.png: something went wrong", "error")
    assert window.message_bar.text()

    _open(qtbot, tab, write_png(tmp_path / "two.png", 16, 16, seed=1))
    assert "31.50" not in tab.panel.info.text()
    assert window.message_bar.text() == ""


def test_another_tab_s_message_stays_when_an_image_opens(qtbot, window, tmp_path):
    window.settings.auto_run = False
    window.batch.message.emit("The queue is empty.", "error")
    _open(qtbot, window.upscale, write_png(tmp_path / "one.png", 16, 16))
    assert window.message_bar.text() == "The queue is empty."


def test_output_folder_message_cleared_once_a_folder_is_chosen(qtbot, window, tmp_path):
    batch = window.batch
    batch.output_dir.setText("")
    batch.add_paths([str(write_png(tmp_path / "in" / "a.png", 12, 12))])
    assert batch.start() is None
    assert window.message_bar.text() == "Choose an output folder first."
    batch.output_dir.setText(str(tmp_path / "out"))
    assert window.message_bar.text() == ""


def test_old_download_error_cleared_when_the_models_dialog_opens_again(window):
    dialog = window.show_models()
    dialog.message_bar.show_message("Download failed: connection refused", "error")
    dialog.hide()
    assert window.show_models().message_bar.text() == ""


def test_an_ensemble_result_is_its_own_entry(qtbot, window, tmp_path):
    window.settings.auto_run = False
    tab = window.upscale
    assert tab.panel.selector.set_current(bicubic_choice(2))
    _open(qtbot, tab, write_png(tmp_path / "one.png", 12, 12))
    tab.run()
    qtbot.waitUntil(lambda: len(tab.results) == 1 and not tab.busy)
    tab.panel.ensemble.setChecked(True)
    tab.run()
    qtbot.waitUntil(lambda: len(tab.results) == 2 and not tab.busy)
    assert list(tab.results) == ["Bicubic x2", "Bicubic x2 + extra quality"]
    titles = [c.title for c in tab.pane_contents()]
    assert "Bicubic x2 + extra quality" in " ".join(titles)
    assert tab.table.rowCount() == 2


def test_train_tab_status_follows_the_data_folders(qtbot, tmp_path):
    tab = TrainerTab()
    qtbot.addWidget(tab)
    assert "at least one folder" in tab.status_label.text()
    tab.add_hr_folder(str(tmp_path))
    assert tab.status_label.text() == "Ready to train: press Start."
    tab._remove_folder()
    assert "at least one folder" in tab.status_label.text()
