"""Time for people: one pause-aware ETA, one way to write a duration, how a run ended, and the
progress of tiles times network passes as one count. No Qt.

    eta = Eta()                       # or Eta(clock=fake) in tests
    eta.start()
    eta.update(3, 24)                 # -> seconds left, None until the rate is known
    eta.pause(); eta.resume()         # the paused time does not count in the rate
    format_seconds(eta.update(...))   # "0:42", "1:02:03", "-" when unknown
"""

from __future__ import annotations

import contextlib
import enum
import math
import time
from collections.abc import Callable, Iterator

Clock = Callable[[], float]


class RunOutcome(enum.Enum):
    """How a run ended: what the front ends decide on (never the text they show)."""

    DONE = "done"  # all the work was done
    CANCELLED = "cancelled"  # stopped by the user; what was done is kept, nothing to resume
    STOPPED = "stopped"  # stopped by the user with its state saved: it can be continued
    FAILED = "failed"  # an error ended it


def format_seconds(seconds: float | None) -> str:
    """A duration as m:ss, or h:mm:ss from an hour; "-" when unknown (None, inf, nan)."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    if hours:
        return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{rest // 60}:{rest % 60:02d}"


def eta_from_rate(elapsed: float, done: float, total: float) -> float | None:
    """Seconds left for `total - done` at the rate `done` per `elapsed`; None before any work."""
    if done <= 0 or total <= 0:
        return None
    return max(0.0, elapsed / done * (total - done))


class Eta:
    """Seconds left of a run at the rate of its work so far, paused time excluded.

    The rate is measured from the first update() (by default), so that the setup before the first
    unit of work (reading data, loading a model) does not make every later unit look slower;
    `from_start=True` measures it from start() instead (a run whose first update comes late).
    Until the rate is known, update() returns the `estimate` given to start() counted down, or
    None."""

    def __init__(self, clock: Clock = time.monotonic, *, from_start: bool = False) -> None:
        self.clock = clock
        self.from_start = from_start
        self.start()

    def start(self, estimate: float | None = None) -> None:
        now = self.clock()
        self._started = now
        self._paused_total = 0.0
        self._paused_since: float | None = None
        self._origin: tuple[float, float] | None = (0.0, 0.0) if self.from_start else None
        self._estimate = estimate
        self.done, self.total = 0.0, 0.0

    def set_estimate(self, seconds: float | None) -> None:
        """The seconds the rest of the run should take from now (engine.estimate), counted down
        until the run's own rate is known."""
        self._estimate = None if seconds is None else seconds + self.elapsed

    # ------------------------------------------------------------------ pause

    def pause(self) -> None:
        if self._paused_since is None:
            self._paused_since = self.clock()

    def resume(self) -> None:
        if self._paused_since is not None:
            self._paused_total += self.clock() - self._paused_since
            self._paused_since = None

    def set_paused(self, paused: bool) -> None:
        self.pause() if paused else self.resume()

    @property
    def paused(self) -> bool:
        return self._paused_since is not None

    # ------------------------------------------------------------------ time

    @property
    def elapsed(self) -> float:
        """Seconds since start(), paused time left out."""
        now = self._paused_since if self._paused_since is not None else self.clock()
        return max(0.0, now - self._started - self._paused_total)

    def update(self, done: float, total: float) -> float | None:
        """Record the work done so far; the seconds left, or None while unknown."""
        self.done, self.total = done, total
        if self._origin is None:
            self._origin = (self.elapsed, done)
        return self.remaining()

    def remaining(self) -> float | None:
        """Seconds left after the last update(), at the rate so far (paused time excluded)."""
        if self._origin is not None and self.total > 0:
            t0, done0 = self._origin
            left = eta_from_rate(self.elapsed - t0, self.done - done0, self.total - done0)
            if left is not None:
                return left
        if self._estimate is not None:
            return max(0.0, self._estimate - self.elapsed)
        return None


class PassProgress:
    """Tiles times network passes per tile (x8 self-ensemble) as one count, so that a run of one
    tile does not sit at "0 / 1" until its end.

    on_tiles(done, total) is what the tiler reports (engine.errors.ProgressFn); on_pass() is
    called after each network pass (a forward hook). Passes are counted within the tile in
    progress only, so the count never runs ahead of the tiler's. `tiles` is the tile count when
    known before the first report (1 for a whole-image run), else None. on_progress receives
    (done, total) in passes, total 0 while unknown."""

    def __init__(
        self,
        on_progress: Callable[[int, int], None],
        passes: int,
        tiles: int | None = None,
    ) -> None:
        self.on_progress = on_progress
        self.passes = max(1, passes)
        self.tiles_done, self.tiles_total = 0, tiles or 0
        self.in_tile = 0

    def on_tiles(self, done: int, total: int) -> None:
        self.tiles_done, self.tiles_total, self.in_tile = done, total, 0
        self._emit()

    def on_pass(self, *_args: object) -> None:
        if self.in_tile < self.passes - 1:
            self.in_tile += 1
            self._emit()

    @property
    def pass_in_tile(self) -> int:
        """The pass in progress of the current tile, from 1."""
        return self.in_tile + 1

    def _emit(self) -> None:
        done = self.tiles_done * self.passes + self.in_tile
        total = self.tiles_total * self.passes
        self.on_progress(min(done, total) if total else done, total)


@contextlib.contextmanager
def counting_passes(module: object, on_pass: Callable[[], None]) -> Iterator[None]:
    """Call on_pass() after each forward pass of `module` (a torch nn.Module, through a forward
    hook) while the block runs: with PassProgress, a run shows its passes as they finish."""
    handle = module.register_forward_hook(lambda *_args: on_pass())  # type: ignore[attr-defined]
    try:
        yield
    finally:
        handle.remove()
