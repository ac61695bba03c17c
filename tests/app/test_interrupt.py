"""Ctrl+C in the terminal of a running app (issue 30): the window closes as the user would close
it and the event loop ends with 130, with one line and no "unexpected error" traceback."""

from __future__ import annotations

import signal

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QWidget

from app.interrupt import EXIT_INTERRUPTED, exit_cleanly_on_interrupt


def test_sigint_closes_the_window_and_exits_130(qapp, qtbot, capsys) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    window.show()
    previous = signal.getsignal(signal.SIGINT)
    handler = exit_cleanly_on_interrupt(QApplication.instance(), window)
    try:
        QTimer.singleShot(0, lambda: signal.raise_signal(signal.SIGINT))
        QTimer.singleShot(10_000, lambda: qapp.exit(1))  # a safety net, never reached
        assert qapp.exec() == EXIT_INTERRUPTED
    finally:
        handler.uninstall()
    assert handler.fired and not window.isVisible()
    assert capsys.readouterr().err == "interrupted\n"
    assert signal.getsignal(signal.SIGINT) is previous
