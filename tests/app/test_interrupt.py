"""Ctrl+C in the terminal of a running app (issue 30): the window closes as the user would close
it and the event loop ends with 130, with one line and no "unexpected error" traceback."""

from __future__ import annotations

import signal

from PySide6.QtWidgets import QApplication, QWidget

from app.interrupt import EXIT_INTERRUPTED, InterruptHandler


def test_sigint_closes_the_window_and_exits_130(qapp, qtbot, capsys) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    window.show()
    previous = signal.getsignal(signal.SIGINT)
    codes: list[int] = []  # the event loop's exit code (the test's own loop must go on)
    handler = InterruptHandler(QApplication.instance(), window, exit=codes.append)
    try:
        signal.raise_signal(signal.SIGINT)
        qtbot.waitUntil(lambda: handler.fired)
        signal.raise_signal(signal.SIGINT)  # a second Ctrl+C while closing: still one line
    finally:
        handler.uninstall()
    assert codes == [EXIT_INTERRUPTED] and not window.isVisible()
    assert capsys.readouterr().err == "interrupted\n"
    assert signal.getsignal(signal.SIGINT) is previous
