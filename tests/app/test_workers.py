from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QCoreApplication, Qt, QThread, SignalInstance

from app.workers import live_tasks, start_task
from engine.errors import Cancelled, CheckpointError


def _wait_done(qtbot, handle) -> None:
    qtbot.waitUntil(lambda: not handle.running, timeout=5000)
    assert handle.wait(5000)


def test_result_progress_and_events_arrive_on_the_gui_thread(qtbot):
    gui = QThread.currentThread()
    seen = []

    def work(ctx):
        for i in range(3):
            ctx.on_progress(i + 1, 3)
            ctx.emit(f"step {i}")
        return QThread.currentThread() is not gui  # ran off the GUI thread

    handle = start_task(None, work)
    handle.worker.progress.connect(
        lambda d, t: seen.append(("progress", d, t, QThread.currentThread() is gui))
    )
    handle.worker.event.connect(
        lambda obj: seen.append(("event", obj, QThread.currentThread() is gui))
    )
    with qtbot.waitSignal(handle.worker.finished, timeout=5000) as blocker:
        pass
    assert blocker.args == [True]
    assert ("progress", 3, 3, True) in seen
    assert [s[1] for s in seen if s[0] == "event"] == ["step 0", "step 1", "step 2"]
    assert all(s[-1] for s in seen)
    _wait_done(qtbot, handle)
    assert handle not in live_tasks()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (CheckpointError("x.pt matches none of the known networks"), "x.pt matches none"),
        (ZeroDivisionError("division by zero"), "ZeroDivisionError: division by zero"),
    ],
)
def test_errors_become_failed_messages(qtbot, error, expected):
    def work(ctx):
        raise error

    handle = start_task(None, work)
    with qtbot.waitSignal(handle.worker.failed, timeout=5000) as blocker:
        pass
    assert expected in blocker.args[0]
    _wait_done(qtbot, handle)


def test_cancel_and_pause(qtbot):
    steps = []

    def work(ctx):
        for i in range(1000):
            if ctx.should_stop():
                raise Cancelled()
            steps.append(i)
            time.sleep(0.005)
        return "finished"

    handle = start_task(None, work)
    qtbot.waitUntil(lambda: len(steps) > 3, timeout=5000)
    handle.pause(True)
    qtbot.wait(100)
    paused_at = len(steps)
    qtbot.wait(200)
    assert len(steps) <= paused_at + 1  # at most the step that was running
    handle.pause(False)
    qtbot.waitUntil(lambda: len(steps) > paused_at + 3, timeout=5000)
    with qtbot.waitSignal(handle.worker.cancelled, timeout=2000):
        handle.cancel()
    assert len(steps) < 1000
    _wait_done(qtbot, handle)


def test_the_thread_object_is_deleted_on_the_gui_thread(qtbot) -> None:
    gui = QCoreApplication.instance().thread()
    handle = start_task(None, lambda ctx: 1)
    where: list[bool] = []
    handle.thread.destroyed.connect(
        lambda *_: where.append(QThread.currentThread() == gui),
        Qt.ConnectionType.DirectConnection,
    )
    qtbot.waitUntil(lambda: bool(where), timeout=10_000)
    assert where == [True]


def test_the_worker_never_calls_into_qt(qtbot, monkeypatch) -> None:
    """What fn reports is queued, and the GUI thread emits it (app/workers.py says why): no Qt
    signal is emitted on the worker thread, however much it reports."""
    gui = QCoreApplication.instance().thread()
    emitted_on: set[bool] = set()
    real_emit = SignalInstance.emit

    def recording_emit(self, *args):
        emitted_on.add(QThread.currentThread() == gui)
        return real_emit(self, *args)

    monkeypatch.setattr(SignalInstance, "emit", recording_emit)

    def work(ctx):
        for i in range(500):
            ctx.on_progress(i + 1, 500)
            ctx.emit(i)
        return "done"

    handle = start_task(None, work)
    events: list[int] = []
    progress: list[tuple[int, int]] = []
    handle.worker.event.connect(events.append)
    handle.worker.progress.connect(lambda d, t: progress.append((d, t)))
    with qtbot.waitSignal(handle.worker.done, timeout=10_000):
        pass
    assert emitted_on == {True}
    assert events == list(range(500))  # all of it, in order
    assert progress == [(i + 1, 500) for i in range(500)]
    _wait_done(qtbot, handle)
