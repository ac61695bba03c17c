"""How long an upscale will take on this machine, before it starts: the network is timed once on
two small inputs (per model, device and precision, kept for the session) and the cost per LR
pixel is scaled to the image. No Qt.

    seconds = estimate_seconds(upscaler, height, width)   # the first call calibrates

The estimate counts the network's runs as the Upscaler plans them (tiles with their context, a
second round for shared pooling, x8 for the self-ensemble) and not the model's loading (done
before an Upscaler exists), the reading or the writing of the image. The network is timed on
PyTorch whatever the upscaler's backend: timing OpenVINO would first convert every model a
picker lists (seconds each); where OpenVINO is faster the estimate is an upper bound."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable

import torch

from engine.errors import Cancelled, StopFn, never_stop
from engine.inference.upscaler import Upscaler

LONG_RUN_SECONDS = 10.0  # a run estimated to take longer is announced before it starts
CALIBRATION_SIDES = (32, 64)  # LR sides timed: the cost per pixel is the slope between them
REPEATS = 2  # each side is timed this many times, the fastest kept: a busy machine's hiccups

_costs: dict[tuple, tuple[float, float]] = {}  # key -> (seconds per run, seconds per LR pixel)
_lock = threading.Lock()


def _key(upscaler: Upscaler) -> tuple:
    d = upscaler.descriptor
    return (d.family, d.variant, d.scale, d.source, d.params, str(upscaler.device), upscaler.dtype)


def calibrate(
    upscaler: Upscaler,
    *,
    clock: Callable[[], float] = time.perf_counter,
    should_stop: StopFn = never_stop,
) -> tuple[float, float]:
    """(fixed seconds per network run, seconds per LR pixel) of one plain pass of upscaler's
    network on its device, measured once per session (cached) on two small seeded inputs after a
    warm-up run, each timed REPEATS times (the fastest kept: another program's burst of work
    only slows some runs). Callable from a worker thread; should_stop() is asked before each run
    (Cancelled), so a window can close without waiting for a slow network's calibration."""
    key = _key(upscaler)
    with _lock:
        if key in _costs:
            return _costs[key]
    options = dataclasses.replace(
        upscaler.options, tile=0, ensemble=False, outscale=None, backend="torch"
    )
    plain = Upscaler(upscaler.descriptor, options)
    generator = torch.Generator().manual_seed(0)
    small, large = CALIBRATION_SIDES
    inputs = {s: torch.rand(1, 3, s, s, generator=generator) for s in (small, large)}
    if should_stop():
        raise Cancelled()
    plain.upscale_tensor(inputs[small])  # warm-up: first-call allocations, kernel selection
    times = {side: float("inf") for side in inputs}
    for _ in range(REPEATS):
        for side, x in inputs.items():
            if should_stop():
                raise Cancelled()
            start = clock()
            plain.upscale_tensor(x)
            times[side] = min(times[side], max(0.0, clock() - start))
    per_pixel = max(0.0, (times[large] - times[small]) / (large * large - small * small))
    if per_pixel == 0.0:  # timer too coarse or noise: the large input's mean is an upper bound
        per_pixel = times[large] / (large * large)
    fixed = max(0.0, times[small] - per_pixel * small * small)
    with _lock:
        _costs[key] = (fixed, per_pixel)
    return fixed, per_pixel


def estimate_seconds(
    upscaler: Upscaler,
    height: int,
    width: int,
    *,
    clock: Callable[[], float] = time.perf_counter,
    should_stop: StopFn = never_stop,
) -> float:
    """Seconds the upscaler should take for an LR image of height x width (calibrating first if
    this model has not been timed on this device in this session): the network's runs as the
    Upscaler plans them, the tiles' context and a second round for shared pooling included."""
    fixed, per_pixel = calibrate(upscaler, clock=clock, should_stop=should_stop)
    plan = upscaler.plan(height, width)
    return plan.rounds * plan.passes * (plan.tiles * fixed + per_pixel * plan.pixels)


def forget_calibrations() -> None:
    """Drop the timings (tests; a device whose speed changed)."""
    with _lock:
        _costs.clear()
