"""A2F's CPU forward on large tiles: ResBlocks in stripes of rows against whole, time and memory.

Run: .venv/bin/python bench/bench_a2f_forward.py [--sides 256 632 800] [--repeat 5] [--threads 2]

Random weights, A2F-SD x4 (--model), float32, inference mode. For each input side, one process
times the forward with ResBlock striping off (engine.archs.a2f.STRIPE_BYTES huge) and on (the
default), interleaved round by round, and prints the median microseconds per output pixel and the
ratio on/off. Then, per side and mode, a fresh process prints the peak RSS growth of two forwards
(with engine.inference.allocator's malloc tuning, as in srstudio) per LR input pixel: what
engine.archs' MemoryCost budgets with.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.archs import a2f  # noqa: E402
from engine.inference import allocator  # noqa: E402

OFF = 1 << 50


def _model(name: str) -> torch.nn.Module:
    variant, scale = name.split("x")
    torch.manual_seed(0)
    return a2f.build(a2f.config(variant, int(scale))).eval()


def _hwm() -> int:
    """This process's peak RSS in bytes: VmHWM, not ru_maxrss, which a child started by a large
    parent inherits across exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status (Linux only)")


def _peak_child(name: str, side: int, stripe_bytes: int) -> None:
    allocator.tune()
    a2f.STRIPE_BYTES = stripe_bytes
    model = _model(name)
    x = torch.rand(1, 3, side, side)
    with torch.inference_mode():
        model(torch.rand(1, 3, 12, 12))
        base = _hwm()
        for _ in range(2):
            model(x)
    grown = _hwm() - base
    print(grown / (side * side))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sides", type=int, nargs="+", default=[256, 632, 800])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", default="SDx4", help="variant x scale, e.g. SDx4, Mx2")
    p.add_argument("--peak-child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.peak_child:
        _peak_child(args.model, *args.peak_child)
        return
    modes = {"whole": OFF, "striped": a2f.STRIPE_BYTES}
    model = _model(args.model)
    scale = int(args.model.split("x")[1])
    inputs = {side: torch.rand(1, 3, side, side) for side in args.sides}
    times: dict[tuple[int, str], list[float]] = {}
    with torch.inference_mode():
        for round_ in range(args.repeat + 1):  # round 0 warms up
            for side, x in inputs.items():
                for mode, stripe_bytes in modes.items():
                    a2f.STRIPE_BYTES = stripe_bytes
                    t0 = time.perf_counter()
                    model(x)
                    per_pixel = (time.perf_counter() - t0) / x[0, 0].numel() / scale**2 * 1e6
                    if round_:
                        times.setdefault((side, mode), []).append(per_pixel)
    print(f"A2F-{args.model}, {args.threads} threads, median of {args.repeat}")
    print("| LR side | whole us/px | striped us/px | striped/whole | peak B/px whole | striped |")
    print("|---|---|---|---|---|---|")
    for side in args.sides:
        whole, striped = (statistics.median(times[side, m]) for m in modes)
        peaks = []
        for stripe_bytes in modes.values():
            cmd = [sys.executable, __file__, "--model", args.model, "--threads", str(args.threads)]
            cmd += ["--peak-child", str(side), str(stripe_bytes)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            peaks.append(float(out.split()[-1]))
        print(
            f"| {side} | {whole:.3f} | {striped:.3f} | {striped / whole:.2f}x | "
            f"{peaks[0]:.0f} | {peaks[1]:.0f} |"
        )
    print(f"(times per output pixel at x{scale}, peaks per LR input pixel)")


if __name__ == "__main__":
    main()
