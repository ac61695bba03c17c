"""The Qt binding keeps Python's reference counts (app/qt_binding.py says what PySide6 6.12.0 on
CPython 3.11 does instead), and the app notices a binding that does not."""

from __future__ import annotations

import ctypes

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel, QProgressBar

from app.qt_binding import ADVICE, binding_loses_references, references_lost

CALLS = 1000
ROUNDS = 3


class _Emitter(QObject):
    progress = Signal(int, int)
    event = Signal(object)


def _steady_loss(obj: object, call, tries: int = ROUNDS) -> int:
    """The smallest change over a few rounds of CALLS calls: an event an earlier test left queued
    (a worker's last signal, a deferred delete) moves one round's count, a reference lost per call
    moves every round's."""
    return min((references_lost(obj, call, CALLS) for _ in range(tries)), key=abs)


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
    qapp.processEvents()  # what earlier tests left queued is not counted against these calls
    lost = {name: _steady_loss(obj, call) for name, (obj, call) in calls.items()}
    # A few references may come and go with the interpreter's own caches; a reference lost per
    # call shows as CALLS.
    assert all(abs(n) < CALLS // 10 for n in lost.values()), lost
    assert len(received) == 2 * ROUNDS * CALLS  # each emit reached its slot, in each round
    assert not binding_loses_references()


def test_a_call_that_loses_a_reference_each_time_is_noticed():
    decref = ctypes.pythonapi.Py_DecRef
    decref.argtypes = [ctypes.py_object]
    incref = ctypes.pythonapi.Py_IncRef
    incref.argtypes = [ctypes.py_object]
    marker = object()
    holders = [marker] * 500  # references to give back, so that nothing is freed
    lost = references_lost(marker, lambda: decref(marker), 300)
    for _ in range(300):
        incref(marker)
    assert lost == 300 and len(holders) == 500
    assert "PySide6" in ADVICE and "!=6.12.0" in ADVICE
