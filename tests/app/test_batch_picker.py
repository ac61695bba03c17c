"""The Batch tab chooses its model with the same plain-words picker as the Upscale tab (issue 14):
installed and downloadable networks, downloads through the window's one queue, estimated times
for the queued images (per megapixel while the queue is empty), held back while the batch runs
and stopped when the window closes."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QWidget,
)

from app import jobs
from app.jobs import ModelChoice, bicubic_choice
from app.main_window import MainWindow
from app.panels import batch_tab
from app.panels.model_picker import ModelPicker
from app.screen_fit import FRAME
from app.settings import AppSettings
from engine import RELEASES, Cancelled
from tests.app.conftest import write_png

SECONDS_PER_MP = 2.0


@pytest.fixture
def quick_estimates(monkeypatch) -> list[tuple[int, int]]:
    """Estimates without timing a network: SECONDS_PER_MP; the sizes asked for, in order."""
    asked: list[tuple[int, int]] = []

    def estimate(upscaler, h, w, **_):
        asked.append((h, w))
        return SECONDS_PER_MP * h * w / 1e6

    monkeypatch.setattr(jobs, "estimate_seconds", estimate)
    return asked


def _rows(picker: ModelPicker) -> dict[str, object]:
    return {e.key: e for e in picker.entries()}


def _all_estimated(picker: ModelPicker) -> bool:
    model = picker.model
    return bool(model.entries) and all(model.seconds.get(e.key) != "pending" for e in model.entries)


def _queue(tab, folder, sizes) -> None:
    for i, (h, w) in enumerate(sizes):
        write_png(folder / f"{i}.png", h, w, seed=i)
    tab.add_paths([str(folder)])


def test_the_batch_tab_lists_installed_and_downloadable_networks(bundled_weights, window):
    picker = window.batch.selector
    assert isinstance(picker, ModelPicker)
    assert picker.downloads is window.downloads is window.upscale.panel.selector.downloads
    rows = _rows(picker)
    assert rows["A2F-SD x4"].origin_text == "bundled"
    assert rows["Bicubic x4"].origin_text == "built in"
    assert {k for k in rows if k.startswith("release:")} == {
        f"release:{r.name}" for r in RELEASES if r.scale == 4
    }
    assert picker.current() == ModelChoice("A2F", "SD", 4)
    assert picker.selected_entry().key == "A2F-SD x4"
    assert "queued images" in picker.list.toolTip()


def test_the_row_chosen_is_what_the_batch_runs(
    bundled_weights, window, qtbot, tmp_path, monkeypatch
):
    ran: list[ModelChoice] = []
    real = batch_tab.run_batch_job

    def recorded(ctx, job, choice, options, report_path):
        ran.append(choice)
        return real(ctx, job, choice, options, report_path)

    monkeypatch.setattr(batch_tab, "run_batch_job", recorded)
    tab = window.batch
    window.tabs.setCurrentWidget(tab)
    picker = tab.selector
    index = picker.model.index(picker.model.row_of("HPINet-T x4"))
    assert index.isValid()
    picker.list.scrollTo(index)
    rect = picker.list.visualRect(index)
    qtbot.mouseClick(picker.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert picker.current() == ModelChoice("HPINet", "T", 4)
    tab.output_dir.setText(str(tmp_path / "out"))
    _queue(tab, tmp_path / "in", [(12, 10)])
    with qtbot.waitSignal(tab.batch_finished, timeout=60_000) as blocker:
        assert tab.start() is not None
    assert ran == [ModelChoice("HPINet", "T", 4)]
    assert blocker.args[0].count("done") == 1
    # a release row offers the download and changes nothing until it is installed
    assert picker.choose("release:A2F-SD-x4")
    assert picker.strip.isVisibleTo(window)
    assert picker.current() == ModelChoice("HPINet", "T", 4)


def test_a_release_downloaded_from_the_batch_tab_is_selected_there(window, qtbot, fake_downloads):
    window.tabs.setCurrentWidget(window.batch)
    picker = window.batch.selector
    assert picker.current() == bicubic_choice(4)
    assert picker.choose("release:HPINet-M-x4")
    assert picker.current() == bicubic_choice(4)
    qtbot.mouseClick(picker.strip.download_button, Qt.MouseButton.LeftButton)
    assert window.downloads.busy  # the window's one queue
    qtbot.waitUntil(lambda: not window.downloads.busy, timeout=60_000)
    qtbot.wait(20)
    assert fake_downloads == ["HPINet-M-x4"]
    assert picker.current() == ModelChoice("HPINet", "M", 4)
    assert _rows(picker)["HPINet-M x4"].origin_text == "authors' weights"
    assert not picker.strip.isVisibleTo(window)
    # the Upscale tab lists it too
    assert "HPINet-M x4" in _rows(window.upscale.panel.selector)


def test_the_picker_waits_while_the_batch_runs(window, qtbot, tmp_path):
    tab = window.batch
    window.tabs.setCurrentWidget(tab)
    assert tab.selector.set_current(bicubic_choice(2))
    tab.output_dir.setText(str(tmp_path / "out"))
    _queue(tab, tmp_path / "in", [(12, 10), (9, 7)])
    assert tab.selector.isEnabled() and not tab.times.estimator._blocked
    with qtbot.waitSignal(tab.batch_finished, timeout=20_000):
        assert tab.start() is not None
        assert not tab.selector.isEnabled() and not tab.selector.list.isEnabled()
        assert tab.times.estimator._blocked  # no estimate while the batch runs
    assert tab.selector.isEnabled() and not tab.times.estimator._blocked
    assert tab.selector.current() == bicubic_choice(2)


def test_times_are_per_megapixel_then_for_the_queued_images(
    window, qtbot, tmp_path, quick_estimates
):
    tab = window.batch
    picker, model = tab.selector, tab.selector.model
    assert not tab.times.active  # a hidden tab estimates nothing
    window.tabs.setCurrentWidget(tab)
    # every row shown and the estimator done: a request redone after a block, or a second one,
    # shows the first one's times while it re-times them
    qtbot.waitUntil(lambda: _all_estimated(picker) and tab.times.estimator.idle, timeout=60_000)
    assert model.per_megapixel
    assert model.size_words == "a 1-megapixel image (the queue is empty)"
    key = "Bicubic x4"
    assert model.seconds[key] == pytest.approx(SECONDS_PER_MP)
    assert model.time_text(model.entries[model.row_of(key)]) == "~2 s/MP"

    # "not timed again" is counted in this tab's requests, not in estimate calls: the Upscale
    # tab's own estimator (the window opens on it) times its rows through the same function, at
    # any moment (fresh-clone runs twice saw 11 calls for 10)
    requests = tab.times.estimator.requests
    folder = tmp_path / "in"
    _queue(tab, folder, [(500, 600), (300, 400)])  # 0.3 + 0.12 megapixels
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # no size: left out
    tab._expand()
    assert tab.table.rowCount() == 3
    assert not model.per_megapixel
    assert model.size_words == "the 2 queued images (0.42 megapixels)"
    assert model.seconds[key] == pytest.approx(SECONDS_PER_MP * 0.42)
    entry = model.entries[model.row_of(key)]
    assert model.time_text(entry) == "< 1 s"
    tip = model.index(model.row_of(key)).data(Qt.ItemDataRole.ToolTipRole)
    assert "for the 2 queued images (0.42 megapixels)" in tip
    assert tab.times.estimator.requests == requests  # rescaled, not timed again

    # a list rebuilt with the same rows keeps its times
    tab.refresh_models()
    assert _all_estimated(picker)
    assert model.seconds[key] == pytest.approx(SECONDS_PER_MP * 0.42)

    tab.clear()
    assert model.per_megapixel and model.seconds[key] == pytest.approx(SECONDS_PER_MP)


def test_a_long_queue_is_measured_on_a_sample(window, tmp_path, monkeypatch):
    """Headers are read on the GUI thread: past SIZE_SAMPLE files, an even sample of them is read
    and the total scaled to the queue."""
    monkeypatch.setattr(batch_tab, "SIZE_SAMPLE", 3)
    read: list[str] = []
    real = batch_tab.megapixels
    monkeypatch.setattr(batch_tab, "megapixels", lambda path: read.append(path) or real(path))
    tab = window.batch
    _queue(tab, tmp_path / "in", [(100, 100)] * 7)  # 0.01 megapixels each
    assert len(read) == 3  # files 0, 3 and 6 of 7
    assert tab.times._batch == (7, pytest.approx(0.07))


def _ended(task) -> bool:
    try:
        return task.thread.isFinished()
    except RuntimeError:  # the QThread was deleted: it had finished
        return True


def test_no_estimate_thread_is_left_after_the_window_closes(qtbot, monkeypatch):
    def never_done(upscaler, h, w, *, should_stop, **_):
        while not should_stop():
            time.sleep(0.01)
        raise Cancelled()

    monkeypatch.setattr(jobs, "estimate_seconds", never_done)
    win = MainWindow(AppSettings())
    qtbot.addWidget(win)
    win.show()
    win.tabs.setCurrentWidget(win.batch)
    batch, upscale = win.batch.times.estimator, win.upscale.panel.estimator
    qtbot.waitUntil(lambda: batch.busy and upscale.busy, timeout=20_000)
    tasks = [batch.task, upscale.task]
    win.close()
    assert all(_ended(t) for t in tasks)


INTERACTIVE = (QAbstractButton, QComboBox, QAbstractSpinBox, QLineEdit, QAbstractItemView)


@pytest.mark.parametrize(
    "screen",
    [QRect(0, 0, 1280, 720), QRect(0, 0, 1366, 768)],
    ids=lambda r: f"{r.width()}x{r.height()}",
)
def test_the_batch_side_column_is_reachable_and_unclipped(qtbot, monkeypatch, screen):
    monkeypatch.setattr(MainWindow, "available_geometry", lambda self: QRect(screen))
    win = MainWindow(AppSettings(geometry=b""))
    qtbot.addWidget(win)
    win.show()
    win.tabs.setCurrentWidget(win.batch)
    qtbot.waitExposed(win)
    assert win.batch.selector.choose("release:A2F-M-x4")  # the download strip shows too
    QApplication.processEvents()
    assert screen.contains(win.geometry().marginsAdded(FRAME)), win.geometry()
    scroll = win.batch.side_scroll
    viewport, side, bar = scroll.viewport(), scroll.widget(), scroll.verticalScrollBar()
    assert win.rect().contains(QRect(scroll.mapTo(win, QPoint(0, 0)), scroll.size()))
    assert side.width() <= viewport.width()
    controls = [
        w
        for w in side.findChildren(QWidget)
        if isinstance(w, INTERACTIVE)
        and not w.objectName().startswith("qt_")
        and not isinstance(w.parent(), QComboBox | QAbstractSpinBox)
        and w.isVisibleTo(side)
    ]
    assert len(controls) > 10
    for w in controls:
        in_side = QRect(w.mapTo(side, QPoint(0, 0)), w.size())
        bar.setValue(in_side.bottom() + 1 - viewport.height())
        rect = QRect(w.mapTo(viewport, QPoint(0, 0)), w.size())
        name = f"{type(w).__name__} {getattr(w, 'text', lambda: '')()!r}"
        assert viewport.rect().contains(rect), f"{name} at {rect} outside {viewport.rect()}"
        assert w.width() >= w.minimumSizeHint().width(), f"{name} squeezed"
    win.close()
