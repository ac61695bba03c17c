"""Downloads of the authors' releases, one at a time for the whole app: the Models dialog, the
model picker and the first-start offer all start them here and show the same progress.

A plain state object with change signals (rendered by whichever widget shows it):

    downloads.download([release, ...])  # a TaskHandle, or None when one is already going
    downloads.changed                   # busy / current release / bytes / last outcome changed
    downloads.installed(release, path)  # each release as it is installed (sha256 verified)
    downloads.finished(outcome, text)   # RunOutcome and a message for the user
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QObject, Signal

from app import jobs
from app.workers import TaskHandle, start_task
from engine import Release, RunOutcome, format_size


class DownloadManager(QObject):
    changed = Signal()
    installed = Signal(object, object)  # Release, Path
    finished = Signal(object, str)  # RunOutcome, message

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.task: TaskHandle | None = None
        self.releases: list[Release] = []  # of the download going on (or the last one)
        self.current: Release | None = None
        self.done_bytes = 0
        self.total_bytes = 0
        self.outcome: RunOutcome | None = None  # of the last download, None while one runs
        self.message = ""

    @property
    def busy(self) -> bool:
        return self.task is not None and self.task.running

    def download(self, releases: Sequence[Release]) -> TaskHandle | None:
        if self.busy or not releases:
            return None
        self.releases = list(releases)
        self.current = self.releases[0]
        self.done_bytes, self.total_bytes = 0, sum(r.size or 0 for r in self.releases)
        self.outcome, self.message = None, ""
        chosen = tuple(self.releases)
        task = self.task = start_task(self, lambda ctx: jobs.download_releases(ctx, chosen))
        task.event.connect(self._event)
        task.progress.connect(self._progress)
        task.finished.connect(lambda paths: self._ended(RunOutcome.DONE))
        task.failed.connect(lambda text: self._ended(RunOutcome.FAILED, text))
        task.cancelled.connect(lambda: self._ended(RunOutcome.CANCELLED))
        self.changed.emit()
        return task

    def cancel(self) -> None:
        if self.busy:
            self.task.cancel()  # type: ignore[union-attr]

    def progress_text(self) -> str:
        """What is under way, in words ("A2F-SD-x4: 0.6 MB of 1.2 MB")."""
        name = self.current.name if self.current is not None else ""
        if self.done_bytes <= 0:
            return f"{name}: connecting..."
        return f"{name}: {format_size(self.done_bytes)} of {format_size(self.total_bytes)}"

    def names(self) -> str:
        return ", ".join(r.name for r in self.releases)

    def _event(self, obj: object) -> None:
        if isinstance(obj, Release):
            self.current = obj
            self.changed.emit()
        elif isinstance(obj, jobs.Installed):
            self.installed.emit(obj.release, obj.path)

    def _progress(self, done: int, total: int) -> None:
        self.done_bytes, self.total_bytes = done, max(total, self.total_bytes)
        self.changed.emit()

    def _ended(self, outcome: RunOutcome, error: str = "") -> None:
        self.task = None
        self.outcome = outcome
        if outcome is RunOutcome.DONE:
            self.message = f"Installed {self.names()} (sha256 verified)."
        elif outcome is RunOutcome.CANCELLED:
            self.message = "Download cancelled. What was received is kept: Download resumes it."
        else:
            self.message = f"Download failed: {error}"
        self.changed.emit()
        self.finished.emit(outcome, self.message)

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Cancel a download and wait for its thread (the window is closing)."""
        if self.task is not None:
            self.task.cancel()
            self.task.wait(timeout_ms)
