"""Ctrl+C (SIGINT) and SIGTERM in the terminal that started the app: the window closes as if
the user closed it (settings kept, running work cancelled), one line is printed and the process
exits with 130.

Python runs a signal handler only when the interpreter next gets control, which Qt's C++ event
loop may not give it for a long time; the handler's wake-up byte on a socket pair wakes the loop
(signal.set_wakeup_fd with a QSocketNotifier, the usual pattern) instead of a polling timer.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
from collections.abc import Callable

from PySide6.QtCore import QObject, QSocketNotifier
from PySide6.QtWidgets import QApplication, QWidget

EXIT_INTERRUPTED = 130


class InterruptHandler(QObject):
    def __init__(
        self, app: QApplication, window: QWidget, exit: Callable[[int], None] | None = None
    ) -> None:
        super().__init__(app)
        self.window = window
        self.exit = exit or app.exit
        self.fired = False
        self._read, self._write = socket.socketpair()
        for s in (self._read, self._write):
            s.setblocking(False)
        self._notifier = QSocketNotifier(self._read.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._drain)
        self._previous_fd = signal.set_wakeup_fd(self._write.fileno())
        self._previous = {s: signal.signal(s, self._handle) for s in _signals()}

    def _handle(self, signum: int, frame: object) -> None:
        if self.fired:
            return
        self.fired = True
        print("interrupted", file=sys.stderr)
        self.window.close()
        self.exit(EXIT_INTERRUPTED)

    def _drain(self) -> None:
        with contextlib.suppress(OSError):
            while self._read.recv(64):
                pass

    def uninstall(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        signal.set_wakeup_fd(self._previous_fd)
        self._notifier.setEnabled(False)
        self._read.close()
        self._write.close()


def _signals() -> list[signal.Signals]:
    return [signal.SIGINT] + ([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])


def exit_cleanly_on_interrupt(app: QApplication, window: QWidget) -> InterruptHandler:
    """Install the handlers (GUI thread only: signals are delivered to the main thread)."""
    return InterruptHandler(app, window)
