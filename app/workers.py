"""Running engine work off the GUI thread: fn(ctx) runs on a QThread, and a handle on the GUI
thread turns what it reports into signals.

    handle = start_task(parent, fn)      # fn(ctx) runs on the worker thread
    handle.worker.progress.connect(...)  # (done, total) from ctx.on_progress
    handle.worker.event.connect(...)     # anything passed to ctx.emit(obj)
    handle.worker.finished.connect(...)  # fn's return value
    handle.worker.failed.connect(...)    # a message for the user
    handle.worker.cancelled.connect(...)
    handle.cancel()                      # ctx.should_stop() turns True
    handle.pause(True)                   # ctx.should_stop() blocks until resumed or cancelled

Exactly one of finished / failed / cancelled is emitted, then done. Every slot runs on the GUI
thread; fn must never touch widgets or build QImages (return numpy arrays or tensors).

The worker thread never calls into Qt. What fn reports goes into a queue, and a timer on the GUI
thread (every POLL_MS) emits all of it from there, in order. Why: a worker that emits Qt signals
itself holds the GIL while it takes Qt's connection locks, and the GUI thread takes those locks
and then waits for the GIL when it destroys an object with a Python slot, so each thread could
wait for the other for ever (one such deadlock, a worker object deleted on its own thread, was
seen in the test suite). With no Qt call on the worker thread there is no such pair of locks.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer, Signal, Slot

from engine import Cancelled, SRStudioError

log = logging.getLogger(__name__)

POLL_MS = 15  # how often the GUI thread takes what the worker reported: under a frame at 60 Hz

_PROGRESS, _EVENT, _FINISHED, _FAILED, _CANCELLED = range(5)


class TaskContext:
    """What a task function gets: progress, cancellation and a way to send results early."""

    def __init__(self, outbox: queue.SimpleQueue) -> None:
        self._outbox = outbox
        self._stop = threading.Event()
        self._resume = threading.Event()
        self._resume.set()

    def on_progress(self, done: int, total: int) -> None:
        self._outbox.put((_PROGRESS, int(done), int(total)))

    def should_stop(self) -> bool:
        """True once cancelled; while paused, blocks here (between tiles or files) until resumed."""
        while not self._resume.is_set() and not self._stop.is_set():
            self._resume.wait(0.05)
        return self._stop.is_set()

    def emit(self, obj: object) -> None:
        self._outbox.put((_EVENT, obj))

    def cancel(self) -> None:
        self._stop.set()

    def set_paused(self, paused: bool) -> None:
        if paused:
            self._resume.clear()
        else:
            self._resume.set()

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()

    @property
    def cancel_requested(self) -> bool:
        return self._stop.is_set()


def _outcome(fn: Callable[[TaskContext], Any], ctx: TaskContext) -> tuple:
    try:
        return (_FINISHED, fn(ctx))
    except Cancelled:
        return (_CANCELLED,)
    except SRStudioError as exc:
        return (_FAILED, str(exc))
    except MemoryError:
        return (_FAILED, "out of memory; try a smaller tile size or a smaller image")
    except Exception as exc:  # a bug or a library failure: report it, never crash the app
        log.error("task failed:\n%s", traceback.format_exc())
        first = (str(exc).splitlines() or [""])[0][:300]
        return (_FAILED, f"{type(exc).__name__}: {first}" if first else type(exc).__name__)


class TaskThread(QThread):
    """Runs fn(ctx) and puts its outcome into the outbox: Python only, from start to end."""

    def __init__(
        self, fn: Callable[[TaskContext], Any], ctx: TaskContext, outbox: queue.SimpleQueue
    ) -> None:
        super().__init__(QCoreApplication.instance())
        self._fn, self._ctx, self._outbox = fn, ctx, outbox

    def run(self) -> None:
        outcome: tuple = (_FAILED, "the task stopped unexpectedly")
        try:
            outcome = _outcome(self._fn, self._ctx)
        finally:
            self._outbox.put(outcome)


class TaskHandle(QObject):
    """A running task, living on the thread that started it (the GUI thread), where its signals
    are emitted. `worker` is this handle, for code written as handle.worker.progress.connect()."""

    progress = Signal(int, int)
    event = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    done = Signal()

    def __init__(self, fn: Callable[[TaskContext], Any]) -> None:
        super().__init__()
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._ctx = TaskContext(self._outbox)
        self.thread = TaskThread(fn, self._ctx, self._outbox)
        self._running = True
        self._thread_ended = False
        self._draining = False
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._drain)
        self.thread.finished.connect(self._on_thread_finished)
        self.thread.finished.connect(self.thread.deleteLater)

    @property
    def worker(self) -> TaskHandle:
        return self

    def start(self) -> None:
        self._timer.start()
        self.thread.start()

    @Slot()
    def _drain(self) -> None:
        # A slot that runs a nested event loop (a message box) must not deliver later items
        # before the earlier ones it interrupted.
        if self._draining or not self._running:
            return
        self._draining = True
        try:
            items = []
            while True:
                try:
                    items.append(self._outbox.get_nowait())
                except queue.Empty:
                    break
            for item in items:
                kind = item[0]
                if kind == _PROGRESS:
                    self.progress.emit(item[1], item[2])
                elif kind == _EVENT:
                    self.event.emit(item[1])
                else:
                    self._end(item)
        finally:
            self._draining = False

    def _end(self, outcome: tuple) -> None:
        kind = outcome[0]
        if kind == _FINISHED:
            self.finished.emit(outcome[1])
        elif kind == _FAILED:
            self.failed.emit(outcome[1])
        else:
            self.cancelled.emit()
        self._running = False
        self._timer.stop()
        if self._thread_ended:
            _live.discard(self)
        self.done.emit()

    @Slot()
    def _on_thread_finished(self) -> None:
        self._thread_ended = True
        self._drain()  # the outcome, if the timer has not taken it yet
        if not self._running:  # else the drain under way delivers it, then lets go (_end)
            _live.discard(self)

    @property
    def running(self) -> bool:
        return self._running

    def cancel(self) -> None:
        self._ctx.cancel()

    def pause(self, paused: bool) -> None:
        self._ctx.set_paused(paused)

    @property
    def paused(self) -> bool:
        return self._ctx.paused

    def wait(self, msecs: int = 10_000) -> bool:
        """Block until the thread has ended (for shutdown and tests)."""
        try:
            return self.thread.wait(msecs)
        except RuntimeError:  # the QThread was already deleted: it had finished
            return True


_live: set[TaskHandle] = set()  # kept until the thread has ended and the outcome is out


def _stop_all() -> None:
    for handle in list(_live):
        handle.cancel()
        handle.pause(False)
    for handle in list(_live):
        handle.wait(10_000)


atexit.register(_stop_all)  # a thread still running when Qt tears down would abort the process


def live_tasks() -> list[TaskHandle]:
    return [h for h in _live if h.running]


def start_task(parent: QObject | None, fn: Callable[[TaskContext], Any]) -> TaskHandle:
    """Run fn(ctx) on a new QThread; connect to the returned handle's signals. The thread starts
    at once, but the handle's signals are emitted only when the caller's event loop runs, so
    connecting right after this call never misses one. `parent` is accepted for symmetry with Qt
    but the thread belongs to the application (it must outlive any widget that started it)."""
    del parent
    app = QCoreApplication.instance()
    if app is not None and not app.property("srstudio_stop_hooked"):
        app.aboutToQuit.connect(_stop_all)
        app.setProperty("srstudio_stop_hooked", True)
    handle = TaskHandle(fn)
    _live.add(handle)
    handle.start()
    return handle
