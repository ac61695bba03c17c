"""One run control for the Upscale, Batch and Train tabs: Start / Pause / Stop / Cancel, a
progress bar and a status line with the time left (engine.Eta, pause-aware).

The tab owns the task; this widget shows it:

    control = RunControl("Upscale", pause=False, stop=False)
    control.start_clicked.connect(tab.run)       # and pause_toggled(bool), stop_/cancel_clicked
    control.begin("Loading the model...")        # busy bar, no count yet
    control.show_work(3, 24, "Upscaling: 3 of 24 tiles")   # -> "..., about 0:42 left"
    control.finish(RunOutcome.DONE, "Done: 1 output in 4.2 s.")

The bar never shows a count before there is work to count: before a run it is empty and
wordless, while something uncountable happens (reading, loading a model) it is a busy bar.
"""

from __future__ import annotations

from collections.abc import Callable

import qtawesome as qta
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.theme import icon
from engine import Eta, RunOutcome, format_seconds


class RunControl(QWidget):
    start_clicked = Signal()
    pause_toggled = Signal(bool)
    stop_clicked = Signal()
    cancel_clicked = Signal()
    said = Signal(str)  # each status text the run shows, for the window's status bar

    def __init__(
        self,
        start_text: str = "Start",
        *,
        pause: bool = False,
        stop: bool = False,
        cancel: bool = True,
        inline: bool = False,
        clock: Callable[[], float] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """pause / stop / cancel: which of those buttons the run has. inline: the bar beside the
        buttons (wide tabs) instead of under them (the side panel)."""
        super().__init__(parent)
        self.eta = Eta(clock) if clock is not None else Eta()
        self.start_button = QPushButton(qta.icon("fa5s.play", color="white"), start_text)
        self.start_button.setObjectName("primary")
        self.pause_button = QPushButton(icon("fa5s.pause"), "Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.setToolTip("Pause after the current step; press again to resume")
        self.stop_button = QPushButton(icon("fa5s.stop"), "Stop")
        self.stop_button.setToolTip("End the run, keeping what it has done")
        self.cancel_button = QPushButton(icon("fa5s.stop"), "Cancel")
        self.cancel_button.setToolTip("Stop the run; what is already done is kept")
        self.start_button.clicked.connect(self.start_clicked)
        self.pause_button.toggled.connect(self._pause_toggled)
        self.stop_button.clicked.connect(self.stop_clicked)
        self.cancel_button.clicked.connect(self.cancel_clicked)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)  # no "0 / 100" before any run
        self.status = QLabel("")
        self.status.setObjectName("runStatus")
        self.status.setWordWrap(True)

        self.buttons = QHBoxLayout()
        self.buttons.setContentsMargins(0, 0, 0, 0)
        for button, shown in (
            (self.start_button, True),
            (self.pause_button, pause),
            (self.stop_button, stop),
            (self.cancel_button, cancel),
        ):
            if shown:
                self.buttons.addWidget(button)
            else:
                button.setParent(self)
                button.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.buttons)
        if inline:
            self.buttons.addWidget(self.progress, 1)
        else:
            layout.addWidget(self.progress)
        layout.addWidget(self.status)
        self._running = False
        self._paused_text = "Paused."
        self.set_busy(False, can_start=False)

    # ================================================================= layout helpers

    def add_button(
        self, button: QWidget, *, after_start: bool = False, before_progress: bool = False
    ) -> None:
        """A tab's own button in the row: after Start (Compare...), before an inline bar
        (Continue) or at the end (Open...)."""
        if after_start:
            self.buttons.insertWidget(self.buttons.indexOf(self.start_button) + 1, button)
        elif before_progress and self.buttons.indexOf(self.progress) >= 0:
            self.buttons.insertWidget(self.buttons.indexOf(self.progress), button)
        else:
            self.buttons.addWidget(button)

    # ================================================================= states

    @property
    def running(self) -> bool:
        return self._running

    def set_busy(self, busy: bool, can_start: bool = True) -> None:
        self.start_button.setEnabled(can_start and not busy)
        self.pause_button.setEnabled(busy)
        self.stop_button.setEnabled(busy)
        self.cancel_button.setEnabled(busy)

    def reset(self) -> None:
        """Back to the wordless empty bar of before any run: what it showed no longer applies
        (a run that was going is being dropped)."""
        self._running = False
        self._reset_pause()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)

    def begin(self, text: str = "Starting...", *, estimate: float | None = None) -> None:
        """A run starts: busy bar and `text` until there is work to count."""
        self._running = True
        self.eta.start(estimate)
        self._reset_pause()
        self.show_step(text)

    def set_estimate(self, seconds: float | None) -> None:
        """The time the run should take, shown until its own rate is known."""
        self.eta.set_estimate(seconds)

    def show_step(self, text: str) -> None:
        """Something that cannot be counted (reading, loading a model): a busy bar."""
        self.progress.setTextVisible(False)
        self.progress.setRange(0, 0)
        self._say(self._with_eta(text, self.eta.remaining()))

    def show_work(
        self, done: int, total: int, text: str, *, shown: tuple[int, int] | None = None
    ) -> None:
        """`done` of `total` units of work; `text` says what they are ("Upscaling: 3 of 24
        tiles"); the time left is added. `shown`: another (done, total) for the ETA (all the
        models of a comparison, say) when the bar shows only part of the run."""
        if total <= 0:
            self.show_step(text)
            return
        self.progress.setRange(0, total)
        self.progress.setValue(min(done, total))
        self.progress.setFormat("%p%")
        self.progress.setTextVisible(True)
        if self.eta.paused:
            return
        left = self.eta.update(*(shown or (done, total)))
        self._say(self._with_eta(text, left))

    def set_status(self, text: str) -> None:
        self._say(text)

    def set_paused(self, paused: bool, text: str = "Paused.") -> None:
        """Pause (the ETA's clock stops) or resume; the Pause button follows."""
        self.eta.set_paused(paused)
        self.pause_button.blockSignals(True)
        self.pause_button.setChecked(paused)
        self.pause_button.blockSignals(False)
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_button.setIcon(icon("fa5s.play" if paused else "fa5s.pause"))
        if paused:
            self._say(text)

    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.said.emit(text)

    def finish(self, outcome: RunOutcome, text: str) -> None:
        """The run ended: a full bar when it was all done, else an empty one (a bar left at 40 %
        reads as work still going on; the text says where it stopped)."""
        self._running = False
        self._reset_pause()
        if self.progress.maximum() == 0:  # a busy bar
            self.progress.setRange(0, 1)
        done = outcome is RunOutcome.DONE
        self.progress.setValue(self.progress.maximum() if done else 0)
        self._say(text)

    @property
    def elapsed(self) -> float:
        return self.eta.elapsed

    # ================================================================= helpers

    def _with_eta(self, text: str, left: float | None) -> str:
        if left is None:
            return text
        return f"{text}, about {format_seconds(left)} left"

    def _pause_toggled(self, paused: bool) -> None:
        self.pause_toggled.emit(paused)

    def _reset_pause(self) -> None:
        self.eta.resume()
        self.pause_button.blockSignals(True)
        self.pause_button.setChecked(False)
        self.pause_button.blockSignals(False)
        self.pause_button.setText("Pause")
        self.pause_button.setIcon(icon("fa5s.pause"))
