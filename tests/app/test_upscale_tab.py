from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication
from torch.nn.modules.module import register_module_forward_pre_hook

from app.jobs import ModelChoice, bicubic_choice
from app.panels.side_boxes import PSNR_COLUMN, SSIM_COLUMN
from app.qimage import array_to_qimage
from engine.checkpoints import build_untrained, save_checkpoint
from engine.cli import main as cli_main
from tests.app.conftest import write_png
from tests.conftest import require_shared


def drop(window, paths: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    action, button = Qt.DropAction.CopyAction, Qt.MouseButton.LeftButton
    modifiers = Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(QPoint(50, 50), action, mime, button, modifiers)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    event = QDropEvent(QPointF(50, 50), action, mime, button, modifiers)
    QApplication.sendEvent(window, event)


def wait_idle(qtbot, tab, results: int, timeout: int = 20_000) -> None:
    qtbot.waitUntil(
        lambda: len(tab.results) == results and not tab.busy and not tab.side_tasks, timeout=timeout
    )


def untrained_weights(tmp_path: Path, scale: int) -> Path:
    desc = build_untrained("A2F-SD", scale)
    return save_checkpoint(
        tmp_path / f"a2f_sd_x{scale}.safetensors",
        desc.model,
        family="A2F",
        variant="SD",
        scale=scale,
    )


def select(tab, choice: ModelChoice) -> None:
    assert tab.panel.selector.set_current(choice)
    assert tab.panel.current() == choice


def test_dropping_a_file_gives_an_output_pane(qtbot, window, tmp_path):
    tab = window.upscale
    select(tab, bicubic_choice(2))
    drop(window, [write_png(tmp_path / "in.png", 20, 24)])
    wait_idle(qtbot, tab, 1)
    assert tab.canvas.keys() == ["input", "Bicubic x2"]
    assert tab.canvas.contents["Bicubic x2"].shape == (40, 48)
    assert tab.canvas.contents["input"].image_scale == 2.0
    assert [p.content.key for p in tab.canvas.active_panes()] == ["input", "Bicubic x2"]
    assert tab.table.rowCount() == 1
    assert window.settings.recent_files == [str(tmp_path / "in.png")]


def test_dropping_a_folder_queues_it_for_the_batch_tab(qtbot, window, tmp_path):
    write_png(tmp_path / "folder" / "a.png", 8, 8)
    write_png(tmp_path / "folder" / "b.png", 8, 8)
    drop(window, [tmp_path / "folder"])
    assert window.tabs.currentWidget() is window.batch
    assert window.batch.table.rowCount() == 2
    assert not window.upscale.results


def test_a_bad_file_shows_a_message_and_nothing_breaks(qtbot, window, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    drop(window, [bad])
    qtbot.waitUntil(lambda: "broken.png" in window.message_bar.text(), timeout=5000)
    assert window.upscale.input is None and not window.upscale.results
    # The window still works afterwards.
    select(window.upscale, bicubic_choice(3))
    window.upscale.open_path(write_png(tmp_path / "ok.png", 12, 12))
    wait_idle(qtbot, window.upscale, 1)


def test_a_postscript_photo_runs_nothing_in_the_app(qtbot, window, tmp_path, monkeypatch):
    from PIL import EpsImagePlugin

    from tests.engine.hostile import POSTSCRIPT, Trap

    trap = Trap(tmp_path / "bin")
    monkeypatch.setenv("PATH", trap.path)
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", None)
    crafted = tmp_path / "holiday.jpg"
    crafted.write_bytes(POSTSCRIPT)
    drop(window, [crafted])
    qtbot.waitUntil(lambda: "holiday.jpg" in window.message_bar.text(), timeout=5000)
    assert "PostScript" in window.message_bar.text()
    assert window.upscale.input is None and not trap.sprung


def test_wrong_checkpoint_is_reported_in_the_window(qtbot, window, tmp_path):
    wrong = tmp_path / "notes.pt"
    wrong.write_bytes(b"these are not weights")
    before = list(window.upscale.panel.selector.choices)
    window.upscale.panel.selector.load_weights(str(wrong))
    qtbot.waitUntil(lambda: "Cannot use these weights" in window.message_bar.text(), timeout=5000)
    assert "notes.pt" in window.message_bar.text()
    assert window.upscale.panel.selector.choices == before


def test_comparing_two_models_gives_two_panes_a_table_and_exports(qtbot, window, tmp_path):
    tab = window.upscale
    weights = untrained_weights(tmp_path, 2)
    tab.panel.selector.load_weights(str(weights))
    network = ModelChoice("A2F", "SD", 2, str(weights))
    qtbot.waitUntil(lambda: tab.panel.current() == network, timeout=10_000)
    window.settings.auto_run = False
    tab.open_path(write_png(tmp_path / "in.png", 24, 20))
    qtbot.waitUntil(lambda: tab.input is not None, timeout=5000)
    tab.load_reference(write_png(tmp_path / "hr.png", 48, 40, seed=1))
    qtbot.waitUntil(lambda: tab.reference is not None, timeout=5000)
    tab.compare([bicubic_choice(2), network])
    wait_idle(qtbot, tab, 2)
    outputs = [k for k, c in tab.canvas.contents.items() if c.kind == "output"]
    assert outputs == [bicubic_choice(2).label, network.label]
    assert [p.content.key for p in tab.canvas.active_panes()] == ["input", *outputs, "reference"]
    assert tab.table.rowCount() == 2
    assert [tab.table.item(r, 0).text() for r in range(2)] == ["Bicubic x2", "A2F-SD x2"]
    psnrs = [tab.table.item(r, PSNR_COLUMN).data(Qt.ItemDataRole.UserRole) for r in range(2)]
    assert all(isinstance(p, float) for p in psnrs) and psnrs[0] != psnrs[1]

    tab.export_csv(tmp_path / "table.csv")
    lines = (tmp_path / "table.csv").read_text().splitlines()
    assert lines[0].startswith("model,seconds,device,psnr_db,ssim")
    assert [line.split(",")[0] for line in lines[1:]] == ["Bicubic x2", "A2F-SD x2"]
    assert float(lines[1].split(",")[3]) == pytest.approx(psnrs[0], abs=1e-4)
    tab.export_png(tmp_path / "side.png")
    with Image.open(tmp_path / "side.png") as im:
        assert im.width > 4 * 40 and im.height > 48  # four panes at output size, in a row

    tab.canvas.select(network.label)
    saved = tmp_path / "out" / "a2f.png"
    saved.parent.mkdir()
    task = tab.save_result(tab.selected_result(), saved)
    qtbot.waitUntil(lambda: not task.running, timeout=5000)
    with Image.open(saved) as im:
        assert np.array_equal(np.array(im), tab.results[network.label].pixels)


def _eval_json(capsys, args: list[str]) -> dict:
    capsys.readouterr()
    assert cli_main(["eval", *args, "--json", "--device", "cpu", "--tile", "0"]) == 0
    return json.loads(capsys.readouterr().out)


def _shown_metrics(tab, key: str) -> tuple[float, float, list[str]]:
    result = tab.results[key]
    return result.metrics.psnr, result.metrics.ssim, tab.canvas.contents[key].info


def _assert_same(tab, key: str, found: dict) -> None:
    psnr, ssim, info = _shown_metrics(tab, key)
    assert psnr == pytest.approx(found["psnr"], abs=1e-9)
    assert ssim == pytest.approx(found["ssim"], abs=1e-12)
    assert f"PSNR {found['psnr']:.3f} dB" in info and f"SSIM {found['ssim']:.4f}" in info
    row = list(tab.results).index(key)
    assert tab.table.item(row, PSNR_COLUMN).text() == f"{found['psnr']:.3f}"
    assert tab.table.item(row, SSIM_COLUMN).text() == f"{found['ssim']:.4f}"


def test_metrics_equal_srstudio_eval_with_a_reference(qtbot, window, tmp_path, capsys):
    shared = require_shared()
    set5 = shared / "benchmarks" / "Set5" / "x2"
    weights = shared / "official-weights" / "a2f" / "AAF_SD_x2.pt"
    # A 64x64 LR crop of the butterfly (and its HR) keeps the network run short.
    for kind, size in (("LR", 64), ("HR", 128)):
        with Image.open(set5 / kind / "img_005.png") as im:
            (tmp_path / kind).mkdir()
            im.crop((0, 0, size, size)).save(tmp_path / kind / "butterfly.png")
    expected = _eval_json(
        capsys,
        ["--weights", str(weights), "--hr", str(tmp_path / "HR"), "--lr", str(tmp_path / "LR")],
    )
    tab = window.upscale
    window.settings.auto_run = False
    tab.panel.tile_mode.setCurrentIndex(tab.panel.tile_mode.findData("whole"))
    tab.panel.device.setCurrentIndex(tab.panel.device.findData("cpu"))
    tab.panel.selector.load_weights(str(weights))
    choice = ModelChoice("A2F", "SD", 2, str(weights))
    qtbot.waitUntil(lambda: tab.panel.current() == choice, timeout=10_000)
    tab.open_path(tmp_path / "LR" / "butterfly.png")
    tab.load_reference(tmp_path / "HR" / "butterfly.png")
    qtbot.waitUntil(lambda: tab.input is not None and tab.reference is not None, timeout=5000)
    tab.run()
    wait_idle(qtbot, tab, 1, timeout=60_000)
    _assert_same(tab, choice.label, expected)
    assert expected["psnr"] > 30  # the real network, not a blank output


def test_simulated_metrics_equal_srstudio_eval_without_lr(qtbot, window, tmp_path, capsys):
    hr = write_png(tmp_path / "HR" / "hr.png", 42, 37, seed=5)  # cropped to 42x36 for x3
    expected = _eval_json(capsys, ["--model", "bicubic", "--scale", "3", "--hr", str(hr.parent)])
    tab = window.upscale
    select(tab, bicubic_choice(3))
    tab.simulate_check.setChecked(True)
    tab.open_path(hr)
    wait_idle(qtbot, tab, 1)
    assert tab.input_pixels.shape == (14, 12, 3) and tab.reference.shape == (42, 36, 3)
    _assert_same(tab, "Bicubic x3", expected)
    tab.simulate_check.setChecked(False)
    assert not tab.results and tab.reference is None


def test_heatmap_view_replaces_outputs_by_their_difference(qtbot, window, tmp_path):
    tab = window.upscale
    select(tab, bicubic_choice(2))
    tab.simulate_check.setChecked(True)
    tab.open_path(write_png(tmp_path / "hr.png", 32, 32))
    wait_idle(qtbot, tab, 1)
    tab.actions["heatmap"].setChecked(True)
    content = tab.canvas.contents["Bicubic x2"]
    assert content.kind == "heatmap" and content.shape == (32, 32)
    assert content.pyramid.whole().any()  # bicubic is not exact: some differences show
    tab.actions["heatmap"].setChecked(False)
    assert tab.canvas.contents["Bicubic x2"].kind == "output"


def _slow_run(qtbot, window, tmp_path):
    """An untrained A2F-SD x4 on a 640x640 image with 32-pixel tiles (400 tiles: seconds)."""
    tab = window.upscale
    weights = untrained_weights(tmp_path, 4)
    tab.panel.selector.add_choice(ModelChoice("A2F", "SD", 4, str(weights)))
    select(tab, ModelChoice("A2F", "SD", 4, str(weights)))
    tab.panel.tile_mode.setCurrentIndex(tab.panel.tile_mode.findData("manual"))
    tab.panel.tile_size.setValue(32)
    window.settings.auto_run = False
    tab.open_path(write_png(tmp_path / "big.png", 640, 640))
    qtbot.waitUntil(lambda: tab.input is not None, timeout=5000)
    return tab


@contextlib.contextmanager
def _network_calls(kind: type) -> Iterator[list[int]]:
    """The thread of each forward pass of a `kind` network, in order, while the block runs."""
    calls: list[int] = []

    def hook(module, args):
        if isinstance(module, kind):
            calls.append(threading.get_ident())

    handle = register_module_forward_pre_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()


def test_cancel_stops_a_run_after_the_tile_in_hand(qtbot, window, tmp_path):
    """Cancel is checked between tiles: at most the tile being computed when Cancel is pressed
    (and one that had just been handed to the network) is finished; no time is measured, so a
    loaded machine passes too."""
    tab = _slow_run(qtbot, window, tmp_path)
    kind = type(build_untrained("A2F-SD", 4).model)
    with _network_calls(kind) as calls:
        task = tab.run()
        qtbot.waitUntil(lambda: tab.progress.value() >= 2, timeout=60_000)
        assert tab.busy and tab.cancel_button.isEnabled()
        cancelled = []
        task.worker.cancelled.connect(lambda: cancelled.append(len(calls)))
        qtbot.mouseClick(tab.cancel_button, Qt.MouseButton.LeftButton)
        at_click = len(calls)
        qtbot.waitUntil(lambda: bool(cancelled), timeout=60_000)
    assert cancelled[0] - at_click <= 2, (at_click, cancelled[0])
    assert at_click < 400  # far from the end: the run was really stopped
    qtbot.waitUntil(lambda: not tab.busy, timeout=10_000)
    assert "Cancelled" in tab.status.text() and not tab.results
    assert tab.run_button.isEnabled()


def test_the_gui_thread_only_hands_work_on_during_a_run(qtbot, window, tmp_path, monkeypatch):
    """What keeps the event loop free, checked without timing the machine: every network pass
    runs on a worker thread, and each slot a run's signals call on the GUI thread uses little
    CPU time of that thread (time.thread_time: what a loaded machine's other work does not add
    to) and is called a bounded number of times a tile."""
    tab = _slow_run(qtbot, window, tmp_path)
    qtbot.waitUntil(lambda: not tab.panel.estimator.busy, timeout=120_000)
    gui = threading.get_ident()
    slot_cpu: dict[str, list[float]] = {"_run_progress": [], "_run_event": []}
    for name, spent in slot_cpu.items():
        slot = getattr(tab, name)

        def timed(*args, _slot=slot, _spent=spent):
            assert threading.get_ident() == gui
            start = time.thread_time()
            try:
                return _slot(*args)
            finally:
                _spent.append(time.thread_time() - start)

        monkeypatch.setattr(tab, name, timed)
    kind = type(build_untrained("A2F-SD", 4).model)
    with _network_calls(kind) as calls:
        tab.run()
        qtbot.waitUntil(lambda: len(calls) >= 40, timeout=120_000)
        tab.cancel()
        qtbot.waitUntil(lambda: not tab.busy, timeout=60_000)
    assert calls and gui not in calls  # no network pass on the GUI thread
    progress = slot_cpu["_run_progress"]
    assert progress and len(progress) <= len(calls) + 2  # one update a tile, not a flood
    longest = max(progress + slot_cpu["_run_event"])
    assert longest < 0.05, longest  # CPU seconds of the GUI thread in one slot call


def test_input_pane_nearest_or_bicubic_and_paste(qtbot, window, tmp_path):
    tab = window.upscale
    select(tab, bicubic_choice(2))
    tab.open_path(write_png(tmp_path / "in.png", 10, 14))
    wait_idle(qtbot, tab, 1)
    nearest = tab.canvas.contents["input"]
    assert nearest.image_scale == 2.0 and nearest.pixels.shape == (10, 14, 3)
    tab.actions["bicubic_input"].setChecked(True)
    qtbot.waitUntil(lambda: tab.canvas.contents["input"].image_scale == 1.0, timeout=5000)
    # The input shown with bicubic is exactly what the Bicubic model gives.
    shown = tab.canvas.contents["input"].pyramid.whole()
    assert np.array_equal(shown, tab.results["Bicubic x2"].pixels)
    tab.actions["bicubic_input"].setChecked(False)

    pixels = np.zeros((6, 5, 3), np.uint8)
    pixels[..., 1] = 200
    QApplication.clipboard().setImage(array_to_qimage(pixels))
    tab.paste()
    wait_idle(qtbot, tab, 1)
    assert np.array_equal(tab.input_pixels, pixels) and tab.source_name == "clipboard"
    assert tab.results["Bicubic x2"].pixels.shape == (12, 10, 3)


def test_a_new_image_during_a_run_replaces_it(qtbot, window, tmp_path):
    tab = _slow_run(qtbot, window, tmp_path)
    old = tab.run()
    qtbot.waitUntil(lambda: tab.progress.value() >= 1, timeout=30_000)
    select(tab, bicubic_choice(4))
    window.settings.auto_run = True
    tab.open_path(write_png(tmp_path / "small.png", 8, 8))
    qtbot.waitUntil(lambda: not old.running, timeout=5000)
    wait_idle(qtbot, tab, 1)
    assert list(tab.results) == ["Bicubic x4"]  # nothing of the stopped run shows up
    assert tab.input_pixels.shape == (8, 8, 3)
    assert tab.status.text().startswith("Done")


def test_a_model_that_fails_does_not_stop_the_others(qtbot, window, tmp_path):
    tab = window.upscale
    window.settings.auto_run = False
    tab.open_path(write_png(tmp_path / "in.png", 12, 12))
    qtbot.waitUntil(lambda: tab.input is not None, timeout=5000)
    gone = tmp_path / "gone.safetensors"  # chosen earlier, deleted since
    tab.compare([ModelChoice("A2F", "SD", 2, str(gone)), bicubic_choice(2)])
    wait_idle(qtbot, tab, 1)
    assert list(tab.results) == ["Bicubic x2"]
    assert "A2F-SD x2 (gone.safetensors)" in window.message_bar.text()
    assert "not found" in window.message_bar.text()
    summary = tab.status.text()
    assert summary.startswith("1 of 2 done in "), summary
    assert "; A2F-SD x2 (gone.safetensors) failed: " in summary and "not found" in summary


def test_the_status_bar_carries_the_run_s_progress(qtbot, window, tmp_path):
    """What the run box says (its step, tiles and time left) is in the window's status bar too,
    where it shows whatever is scrolled into view; the run's last word stays there."""
    tab = _slow_run(qtbot, window, tmp_path)
    bar = window.statusBar()
    seen: list[str] = []
    bar.messageChanged.connect(seen.append)
    tab.run()
    qtbot.waitUntil(lambda: tab.progress.value() >= 3, timeout=60_000)
    assert any("upscaling" in text and "of" in text for text in seen), seen
    assert bar.currentMessage() == tab.status.text()
    tab.cancel()
    qtbot.waitUntil(lambda: not tab.busy, timeout=60_000)
    assert bar.currentMessage().startswith("Cancelled after ")
