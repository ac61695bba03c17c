"""The Qt binding keeps Python's reference counts.

PySide6 6.12.0 on CPython 3.11 returns None from every void method (setText, setValue, update,
processEvents...) and True from every signal's emit() without taking a reference. On 3.11 these
objects are counted like any other (3.12 made them immortal), so each call takes one reference
away for good: a session of a few tens of thousands of progress updates (a long training run, a
large folder) brings one to zero and the process dies with "Fatal Python error: none_dealloc" or
"bool_dealloc". pyproject.toml excludes that release on Python < 3.12; this test catches any other
that has the same fault."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel, QProgressBar

CALLS = 1000


class _Emitter(QObject):
    progress = Signal(int, int)
    event = Signal(object)


def _lost(obj: object, call) -> int:
    before = sys.getrefcount(obj)
    for _ in range(CALLS):
        call()
    return before - sys.getrefcount(obj)


def test_void_methods_and_emit_keep_reference_counts(qtbot, qapp):
    label, bar = QLabel(), QProgressBar()
    qtbot.addWidget(label)
    qtbot.addWidget(bar)
    emitter = _Emitter()
    received: list[object] = []
    emitter.progress.connect(lambda done, total: received.append(done))
    emitter.event.connect(received.append)
    calls = {
        "QLabel.setText": (None, lambda: label.setText("x")),
        "QProgressBar.setValue": (None, lambda: bar.setValue(1)),
        "QWidget.update": (None, label.update),
        "QCoreApplication.processEvents": (None, qapp.processEvents),
        "Signal(int, int).emit": (True, lambda: emitter.progress.emit(1, 2)),
        "Signal(object).emit": (True, lambda: emitter.event.emit(7)),
    }
    lost = {name: _lost(obj, call) for name, (obj, call) in calls.items()}
    # A few references may come and go with the interpreter's own caches; a dropped reference per
    # call shows as CALLS.
    assert all(abs(n) < CALLS // 10 for n in lost.values()), lost
    assert len(received) == 2 * CALLS
