"""Cycles are collected on the GUI thread only (app/gui_gc.py): automatic collection is off and
the GUI thread's timer collects when a generation's threshold is passed."""

from __future__ import annotations

import gc
import threading

from PySide6.QtCore import QObject

from app.gui_gc import GuiThreadCollector, collect_on_gui_thread


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_worker_thread_never_collects_and_the_gui_thread_does(qapp, qtbot):
    collector = collect_on_gui_thread(qapp)
    assert collect_on_gui_thread(qapp) is collector  # one per application
    assert not gc.isenabled()
    collected_by: list[str] = []

    def note(phase: str, info: dict) -> None:
        if phase == "start":
            collected_by.append(threading.current_thread().name)

    gc.callbacks.append(note)
    try:

        def allocate() -> None:  # far past the first generation's threshold
            for _ in range(5 * gc.get_threshold()[0]):
                _Cycle()

        worker = threading.Thread(target=allocate, name="worker")
        worker.start()
        worker.join()
        assert "worker" not in collected_by
        qtbot.waitUntil(lambda: bool(collected_by), timeout=5000)  # the timer's collection
        assert set(collected_by) == {threading.current_thread().name}
    finally:
        gc.callbacks.remove(note)


def test_stop_turns_automatic_collection_back_on(qapp):
    owner = QObject()  # not the application, whose collector the other tests use
    collector = GuiThreadCollector(owner)
    try:
        assert not gc.isenabled()
    finally:
        collector.stop()
    assert gc.isenabled()
    gc.disable()  # the package's collector (tests/app/conftest.py) is still installed
