"""Running engine work off the GUI thread: a worker QObject moved to a QThread (Qt's worker
pattern), and a handle on the GUI thread that relays its signals.

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
"""

from __future__ import annotations

import atexit
import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

from engine import Cancelled, SRStudioError

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
            app = QCoreApplication.instance()
            if app is not None:  # deleted on the GUI thread (start_task): not here
                self.moveToThread(app.thread())


class TaskHandle(QObject):
    """A running task, living on the thread that started it (the GUI thread).

    Its signals repeat the worker's, emitted on this thread, so any slot, lambdas included, runs
    on the GUI thread. (A lambda connected straight to `runner`'s signals would run on the worker
    thread.) `worker` is this handle, for code written as handle.worker.progress.connect(...)."""

    progress = Signal(int, int)
    event = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    done = Signal()

    def __init__(self, thread: QThread, runner: TaskWorker) -> None:
        super().__init__()
        self.thread = thread
        self.runner = runner
        self._ctx = runner.ctx
        self._running = True
        # Signal-to-signal connections to an object of this thread are queued: re-emitted here.
        for name in ("progress", "event", "finished", "failed", "cancelled"):
            getattr(runner, name).connect(getattr(self, name))
        runner.done.connect(self._on_done)
        thread.finished.connect(self._on_thread_finished)

    @property
    def worker(self) -> TaskHandle:
        return self

    @Slot()
    def _on_done(self) -> None:
        self._running = False
        self.done.emit()

    @Slot()
    def _on_thread_finished(self) -> None:
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


_live: set[TaskHandle] = set()  # handles (and so their workers) are kept until the thread ends


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
    at once, but the handle's signals are delivered only when the caller's event loop runs, so
    connecting right after this call never misses one. `parent` is accepted for symmetry with Qt
    but the thread belongs to the application (it must outlive any widget that started it)."""
    del parent
    app = QCoreApplication.instance()
    if app is not None and not app.property("srstudio_stop_hooked"):
        app.aboutToQuit.connect(_stop_all)
        app.setProperty("srstudio_stop_hooked", True)
    thread = QThread(app)
    runner = TaskWorker(fn)
    runner.moveToThread(thread)
    thread.started.connect(runner.run)
    # Quit from the worker thread itself: a queued quit could wait forever for a busy or
    # stopped GUI event loop, leaving a running thread behind at exit.
    runner.done.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    # The runner is deleted on the GUI thread once the thread has ended (run() moves it back).
    # Deleted on its own thread, its destructor held the GIL there while waiting for Qt's
    # connection lock, which the GUI thread held while destroying a widget connected to the
    # handle and waiting for the GIL: a deadlock seen in the test suite.
    thread.finished.connect(runner.deleteLater)
    thread.finished.connect(thread.deleteLater)
    handle = TaskHandle(thread, runner)
    _live.add(handle)
    thread.start()
    return handle
