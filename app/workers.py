"""Running engine work off the GUI thread: a worker QObject moved to a QThread (Qt's worker pattern).

    handle = start_task(parent, fn)      # fn(ctx) runs on the worker thread
    handle.worker.progress.connect(...)  # (done, total) from ctx.on_progress
    handle.worker.event.connect(...)     # anything passed to ctx.emit(obj)
    handle.worker.finished.connect(...)  # fn's return value
    handle.worker.failed.connect(...)    # a message for the user
    handle.worker.cancelled.connect(...)
    handle.cancel()                      # ctx.should_stop() turns True

Exactly one of finished / failed / cancelled is emitted. Signals cross threads as queued
connections, so slots run on the GUI thread; fn must never touch widgets or build QImages.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.errors import Cancelled, SRStudioError

log = logging.getLogger(__name__)


class TaskContext:
    """What a task function gets: progress, cancellation and a way to send results early."""

    def __init__(self, worker: TaskWorker) -> None:
        self._worker = worker
        self._stop = threading.Event()
        self._resume = threading.Event()
        self._resume.set()

    def on_progress(self, done: int, total: int) -> None:
        self._worker.progress.emit(int(done), int(total))

    def should_stop(self) -> bool:
        """True once cancelled; while paused, blocks here (between tiles or files) until resumed."""
        while not self._resume.is_set() and not self._stop.is_set():
            self._resume.wait(0.05)
        return self._stop.is_set()

    def emit(self, obj: object) -> None:
        self._worker.event.emit(obj)

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


class TaskWorker(QObject):
    progress = Signal(int, int)
    event = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    done = Signal()  # after any of the three outcomes; used to stop the thread

    def __init__(self, fn: Callable[[TaskContext], Any]) -> None:
        super().__init__()
        self._fn = fn
        self.ctx = TaskContext(self)

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn(self.ctx)
        except Cancelled:
            self.cancelled.emit()
        except SRStudioError as exc:
            self.failed.emit(str(exc))
        except MemoryError:
            self.failed.emit("out of memory; try a smaller tile size or a smaller image")
        except Exception as exc:  # a bug or a library failure: report it, never crash the app
            log.error("task failed:\n%s", traceback.format_exc())
            first = (str(exc).splitlines() or [""])[0][:300]
            self.failed.emit(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)
        else:
            self.finished.emit(result)
        finally:
            self.done.emit()


class TaskHandle:
    """The running task: cancel(), pause(bool), and the thread and worker (for connecting)."""

    def __init__(self, thread: QThread, worker: TaskWorker) -> None:
        self.thread = thread
        self.worker = worker
        self._ctx = worker.ctx
        self._running = True
        worker.done.connect(self._mark_done)

    def _mark_done(self) -> None:
        self._running = False

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


_live: set[TaskHandle] = set()  # keeps handles (and their Python wrappers) alive while running


def start_task(parent: QObject | None, fn: Callable[[TaskContext], Any]) -> TaskHandle:
    """Run fn(ctx) on a new QThread. Connect to handle.worker's signals right after this call:
    the thread starts immediately, but queued signals are only delivered once the caller returns
    to the event loop."""
    thread = QThread(parent)
    worker = TaskWorker(fn)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.done.connect(thread.quit)
    worker.done.connect(worker.deleteLater)
    thread.finished.connect(thread.deleteLater)
    handle = TaskHandle(thread, worker)
    _live.add(handle)
    thread.finished.connect(lambda: _live.discard(handle))
    thread.start()
    return handle
