"""engine.progress (the one ETA, format_seconds, RunOutcome, PassProgress), engine.estimate (the
calibrated time of a run) and engine.params (parameter counts by name), with fake clocks: no
timed assertion."""

from __future__ import annotations

import pytest

from engine import (
    Eta,
    PassProgress,
    RunOutcome,
    UpscaleOptions,
    Upscaler,
    bicubic,
    estimate_seconds,
    eta_seconds,
    format_seconds,
    param_count,
)
from engine import estimate as estimate_module
from engine.checkpoints import build_untrained
from engine.errors import Cancelled


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_format_seconds() -> None:
    assert format_seconds(None) == "-"
    assert format_seconds(float("nan")) == "-" and format_seconds(float("inf")) == "-"
    assert format_seconds(0) == "0:00"
    assert format_seconds(59.6) == "1:00"
    assert format_seconds(125) == "2:05"
    assert format_seconds(3600 + 62) == "1:01:02"
    assert format_seconds(-3) == "0:00"


def test_eta_is_none_before_any_progress() -> None:
    clock = FakeClock()
    eta = Eta(clock)
    assert eta.remaining() is None
    clock.advance(5)
    assert eta.update(0, 10) is None  # the first update only sets the origin
    clock.advance(5)
    assert eta.update(0, 10) is None  # no work yet: no rate


def test_eta_rate_from_the_first_update() -> None:
    clock = FakeClock()
    eta = Eta(clock)
    clock.advance(30)  # setup (loading a model): not counted in the rate
    eta.update(0, 10)
    clock.advance(4)
    assert eta.update(2, 10) == pytest.approx(16)  # 2 s a unit, 8 left
    assert eta.elapsed == pytest.approx(34)


def test_eta_from_start_counts_the_setup() -> None:
    clock = FakeClock()
    eta = Eta(clock, from_start=True)
    clock.advance(10)
    assert eta.update(5, 10) == pytest.approx(10)


def test_pause_is_excluded_from_the_rate() -> None:
    clock = FakeClock()
    eta = Eta(clock)
    eta.update(0, 100)
    clock.advance(10)
    eta.update(10, 100)
    eta.pause()
    assert eta.paused
    clock.advance(1000)  # paused: the clock runs, the work does not
    assert eta.elapsed == pytest.approx(10)
    eta.resume()
    clock.advance(10)
    assert eta.update(20, 100) == pytest.approx(80)  # 1 s a unit, as before the pause
    eta.set_paused(True)
    eta.set_paused(True)  # twice: still one pause
    clock.advance(50)
    eta.set_paused(False)
    assert eta.elapsed == pytest.approx(20)


def test_estimate_counts_down_until_the_rate_is_known() -> None:
    clock = FakeClock()
    eta = Eta(clock)
    eta.start(estimate=60)
    clock.advance(15)
    assert eta.update(0, 8) == pytest.approx(45)
    clock.advance(100)
    assert eta.remaining() == 0.0  # never negative
    clock.advance(1)
    assert eta.update(4, 8) == pytest.approx(101)  # measured now: 101 s for 4 units


def test_eta_seconds_delegates() -> None:
    assert eta_seconds(10, 0, 5) is None
    assert eta_seconds(10, 5, 10) == pytest.approx(10)


def test_run_outcomes() -> None:
    assert {o.name for o in RunOutcome} == {"DONE", "CANCELLED", "STOPPED", "FAILED"}


def test_pass_progress_counts_passes_within_tiles() -> None:
    seen: list[tuple[int, int]] = []
    progress = PassProgress(lambda d, t: seen.append((d, t)), passes=8, tiles=1)
    for _ in range(7):
        progress.on_pass()
    assert seen[-1] == (7, 8) and progress.pass_in_tile == 8
    progress.on_pass()  # the 8th pass ends the tile: the tiler says so, not the pass count
    assert seen[-1] == (7, 8)
    progress.on_tiles(1, 1)
    assert seen[-1] == (8, 8)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_pass_progress_with_unknown_tile_count() -> None:
    seen: list[tuple[int, int]] = []
    progress = PassProgress(lambda d, t: seen.append((d, t)), passes=8)
    progress.on_pass()
    assert seen[-1] == (1, 0)  # total unknown until the tiler's first report
    progress.on_tiles(1, 24)
    progress.on_pass()
    assert seen[-1] == (9, 192)


def test_estimate_scales_calibration_to_the_image() -> None:
    estimate_module.forget_calibrations()
    clock = FakeClock()
    runs: list[int] = []
    upscaler = Upscaler(bicubic(2), UpscaleOptions(tile=0, device="cpu"))
    real = Upscaler.upscale_tensor

    def timed(self, x, **kwargs):  # 1 ms fixed + 1 us per LR pixel, on the fake clock
        runs.append(x.shape[-1])
        clock.advance(0.001 + 1e-6 * x.shape[-1] * x.shape[-2])
        return real(self, x, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Upscaler, "upscale_tensor", timed)
        seconds = estimate_seconds(upscaler, 1000, 2000, clock=clock)
        assert seconds == pytest.approx(0.001 + 2.0)
        calibration_runs = len(runs)
        ensemble = Upscaler(bicubic(2), UpscaleOptions(tile=0, device="cpu", ensemble=True))
        assert estimate_seconds(ensemble, 1000, 2000, clock=clock) == pytest.approx(8 * 2.001)
        assert len(runs) == calibration_runs  # calibrated once per model and device
    estimate_module.forget_calibrations()


def test_a_hiccup_during_calibration_does_not_skew_the_estimate() -> None:
    """Each size is timed twice and the fastest kept: one run slowed by another program (+0.5 s
    here) leaves the estimate as it would be on a quiet machine."""
    estimate_module.forget_calibrations()
    clock = FakeClock()
    runs: list[int] = []
    upscaler = Upscaler(bicubic(3), UpscaleOptions(tile=0, device="cpu"))
    real = Upscaler.upscale_tensor

    def timed(self, x, **kwargs):
        runs.append(x.shape[-1])
        hiccup = 0.5 if len(runs) == 3 else 0.0  # the first timed run of the large input
        clock.advance(0.001 + 1e-6 * x.shape[-1] * x.shape[-2] + hiccup)
        return real(self, x, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Upscaler, "upscale_tensor", timed)
        assert estimate_seconds(upscaler, 1000, 2000, clock=clock) == pytest.approx(2.001)
    assert runs == [32, 32, 64, 32, 64]  # warm-up, then each size twice
    estimate_module.forget_calibrations()


def test_param_count_by_name() -> None:
    assert param_count("Bicubic", "MATLAB", 4) == 0
    count = param_count("A2F", "SD", 4)
    assert count is not None and count > 1000
    assert param_count("A2F", "SD", 2) != count  # the upsampler depends on the scale
    assert param_count("NoSuchNet", "X", 4) is None


def test_estimate_counts_the_tiles_context_and_rounds() -> None:
    """A tiled run costs its windows (cores plus context) and, with shared pooling, two rounds:
    the estimate follows Upscaler.plan, not the image's own pixels."""
    estimate_module.forget_calibrations()
    clock = FakeClock()
    real = Upscaler.upscale_tensor

    def timed(self, x, **kwargs):  # 1 ms fixed + 1 us per LR pixel, on the fake clock
        clock.advance(0.001 + 1e-6 * x.shape[-1] * x.shape[-2])
        return real(self, x, **kwargs)

    desc = build_untrained("A2F-SD", 2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Upscaler, "upscale_tensor", timed)
        tiled = Upscaler(desc, UpscaleOptions(tile=40, tile_overlap=8, exact_tiles=True))
        plan = tiled.plan(100, 100)
        assert (plan.tiles, plan.rounds) == (9, 2) and plan.pixels > 100 * 100
        seconds = estimate_seconds(tiled, 100, 100, clock=clock)
        assert seconds == pytest.approx(2 * (9 * 0.001 + 1e-6 * plan.pixels), rel=1e-6)
        with pytest.raises(Cancelled):
            estimate_module.forget_calibrations()
            estimate_seconds(tiled, 100, 100, clock=clock, should_stop=lambda: True)
    estimate_module.forget_calibrations()
