from __future__ import annotations

import json

from PIL import Image

from app.jobs import bicubic_choice
from tests.app.conftest import write_png


def _queue(window, tmp_path):
    folder = tmp_path / "in"
    write_png(folder / "a.png", 10, 12, seed=1)
    (folder / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # corrupt
    write_png(folder / "c.png", 9, 7, seed=2)
    tab = window.batch
    tab.output_dir.setText(str(tmp_path / "out"))
    assert tab.selector.set_current(bicubic_choice(2))
    tab.add_paths([str(folder)])
    return tab


def test_a_batch_with_a_corrupt_file_finishes_with_that_file_failed(
    qtbot, window, tmp_path, monkeypatch
):
    tab = _queue(window, tmp_path)
    assert tab.table.rowCount() == 3
    assert [tab.row_status(r) for r in range(3)] == ["waiting"] * 3
    with qtbot.waitSignal(tab.batch_finished, timeout=20_000) as blocker:
        assert tab.start() is not None
    report = blocker.args[0]
    assert [tab.row_status(r) for r in range(3)] == ["done", "failed", "done"]
    reason = tab.table.item(1, 4).text()
    # engine.imaging names the damage ("not a valid PNG image") or says it "cannot read" it
    assert "b.png" in reason and ("cannot read" in reason.lower() or "not a valid" in reason)
    assert (report.count("done"), report.count("failed")) == (2, 1)
    with Image.open(tmp_path / "out" / "a_Bicubic_x2.png") as im:
        assert im.size == (24, 20)
    assert not (tmp_path / "out" / "b_Bicubic_x2.png").exists()
    saved = json.loads((tmp_path / "out" / "srstudio-batch-report.json").read_text())
    assert saved["counts"]["failed"] == 1
    assert "1 failed" in tab.status.text() and "b.png" not in tab.status.text()
    assert "1 file failed" in window.message_bar.text()
    assert tab.open_report_button.isEnabled() and not tab.cancel_button.isEnabled()
    # where nothing opens a folder or a text file, the user is told where they are
    import app.panels.batch_tab as batch_tab

    opened: list[str] = []
    monkeypatch.setattr(
        batch_tab.QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile())
    )  # returns None: nothing opened it
    tab.open_report()
    assert opened and "Nothing on this computer opens text files: the report is" in (
        window.message_bar.text()
    )
    tab.open_output_folder()
    assert "opens folders: the folder is" in window.message_bar.text()


def test_skip_existing_and_cancel(qtbot, window, tmp_path):
    tab = _queue(window, tmp_path)
    (tmp_path / "out").mkdir()
    write_png(tmp_path / "out" / "a_Bicubic_x2.png", 4, 4)
    tab.skip_existing.setChecked(True)
    with qtbot.waitSignal(tab.batch_finished, timeout=20_000):
        tab.start()
    assert [tab.row_status(r) for r in range(3)] == ["skipped", "failed", "done"]
    with Image.open(tmp_path / "out" / "a_Bicubic_x2.png") as im:
        assert im.size == (4, 4)  # left alone
    # Cancelling before the worker gets going marks every file still to do as cancelled.
    tab.skip_existing.setChecked(False)
    with qtbot.waitSignal(tab.batch_finished, timeout=20_000) as blocker:
        tab.start()
        tab.cancel()
    assert blocker.args[0].cancelled
    assert "cancelled" in [tab.row_status(r) for r in range(3)]


def test_pause_holds_the_batch_and_resume_finishes_it(qtbot, window, tmp_path):
    from app.jobs import ModelChoice
    from engine.checkpoints import build_untrained, save_checkpoint

    weights = save_checkpoint(
        tmp_path / "w.safetensors",
        build_untrained("A2F-SD", 4).model,
        family="A2F",
        variant="SD",
        scale=4,
    )
    up = window.upscale.panel
    up.tile_mode.setCurrentIndex(up.tile_mode.findData("manual"))
    up.tile_size.setValue(32)
    for i in range(3):  # 4 tiles each
        write_png(tmp_path / "in" / f"{i}.png", 48, 48, seed=i)
    tab = window.batch
    tab.output_dir.setText(str(tmp_path / "out"))
    tab.selector.add_choice(ModelChoice("A2F", "SD", 4, str(weights)))
    assert tab.selector.set_current(ModelChoice("A2F", "SD", 4, str(weights)))
    tab.add_paths([str(tmp_path / "in")])
    tab.start()
    qtbot.waitUntil(lambda: tab.progress.value() > 0, timeout=20_000)
    tab.pause_button.click()
    assert tab.pause_button.text() == "Resume"
    # The tile running when Pause was pressed may still finish; after that nothing moves.
    held = tab.progress.value()
    for _ in range(20):
        qtbot.wait(500)
        if tab.progress.value() == held:
            break
        held = tab.progress.value()
    qtbot.wait(500)
    assert tab.progress.value() == held < tab.progress.maximum() and tab.busy
    assert tab.task.paused
    with qtbot.waitSignal(tab.batch_finished, timeout=60_000) as blocker:
        tab.pause_button.click()
    assert blocker.args[0].count("done") == 3
    assert [tab.row_status(r) for r in range(3)] == ["done"] * 3
    assert tab.pause_button.text() == "Pause" and not tab.pause_button.isChecked()


def test_removing_one_file_of_a_queued_folder_keeps_the_rest(qtbot, window, tmp_path):
    tab = _queue(window, tmp_path)
    tab.table.selectRow(1)
    tab.remove_selected()
    names = [tab.table.item(r, 0).text() for r in range(tab.table.rowCount())]
    assert names == ["a.png", "c.png"]
    assert "2 images queued" in tab.queue_label.text()
    tab.clear()
    assert tab.table.rowCount() == 0 and not tab.start_button.isEnabled()
