"""Whether the installed Qt binding keeps Python's reference counts.

PySide6 6.12.0 on CPython 3.11 returns None from every void method (setText, setValue, update,
processEvents...) and True from every signal's emit() without taking a reference. On 3.11 these
objects are counted like any other (3.12 made them immortal), so each call takes one reference
away for good: a session of a few tens of thousands of progress updates (a long training run, a
large folder) brings one to zero and the process dies with "Fatal Python error: none_dealloc" or
"bool_dealloc". pyproject.toml excludes that release on Python < 3.12; the app checks at start
(it may have been installed some other way) and says so in the window."""

from __future__ import annotations

import sys
from collections.abc import Callable

import PySide6
from PySide6.QtCore import QObject, Signal

PROBE_CALLS = 100
_given_back: list[object] = []  # the references a faulty binding's probe took, held here

ADVICE = (
    f"PySide6 {PySide6.__version__} has a fault on Python "
    f"{sys.version_info.major}.{sys.version_info.minor} that will crash a long session: install "
    "another version (pip install 'PySide6-Essentials!=6.12.0')"
)


class _Probe(QObject):
    ping = Signal()


def references_lost(obj: object, call: Callable[[], object], calls: int = PROBE_CALLS) -> int:
    """How many references to obj `calls` calls of call() took away for good."""
    before = sys.getrefcount(obj)
    for _ in range(calls):
        call()
    return before - sys.getrefcount(obj)


def binding_loses_references() -> bool:
    """True when a void method loses a reference to None, or emit() one to True, per call."""
    probe = _Probe()
    lost_none = references_lost(None, lambda: probe.setObjectName("probe"))
    lost_true = references_lost(True, probe.ping.emit)
    _given_back.extend([None] * max(0, lost_none) + [True] * max(0, lost_true))
    return max(lost_none, lost_true) > PROBE_CALLS // 2
