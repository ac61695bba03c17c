"""Python's cyclic garbage collector, run on the GUI thread only.

Automatic collection runs in whichever thread crosses an allocation threshold, often a worker
(one building a network to time it, say). If the cycles it frees hold Qt objects made on the GUI
thread, they are deleted from the worker, and Qt crashes: a segfault "Garbage-collecting" in
app.jobs.estimate_speeds' worker, seen in a test run. So automatic collection is turned off and a
timer on the GUI thread collects instead, each generation when its threshold would have asked for
it (the collector's own rule); `collect_now()` is the same check, for tests and shutdown."""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 250


class GuiThreadCollector(QObject):
    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self.thresholds = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.collect_now)
        self.timer.start(INTERVAL_MS)

    def collect_now(self) -> None:
        counts = gc.get_count()
        if counts[0] <= self.thresholds[0]:
            return
        generation = 0
        for g in (1, 2):
            if counts[g] > self.thresholds[g]:
                generation = g
        gc.collect(generation)

    def stop(self) -> None:
        """Automatic collection back on (tests: after the app's)."""
        self.timer.stop()
        gc.enable()


def collect_on_gui_thread(app: QObject) -> GuiThreadCollector:
    """Install the collector on the application (once)."""
    found = app.findChild(GuiThreadCollector)
    return found if found is not None else GuiThreadCollector(app)
