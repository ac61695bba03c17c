"""Seconds per training iteration of the papers' RNAN and CRAN, and what training them as the
papers did would cost (issue 17, item 3).

Run: .venv/bin/python bench/bench_paper_training.py [--device cpu|cuda] [--iterations 3]
     [--models RNAN-paper CRAN-paper] [--scale 2] [--batch 16] [--patch 48]
     [--total 1000000] [--threads N]

One iteration is the papers' step: a batch of 16 LR patches of 48x48 (random, seeded), forward,
L1 loss, backward, Adam. Timed after two warm-up iterations, synchronised on CUDA, the median of
--iterations. On CUDA it runs as the trainer does there: fp16 autocast with a gradient scaler,
channels_last. The floating-point operations of one iteration (forward and backward) are counted
by torch.utils.flop_counter.FlopCounterMode, so the achieved rate (TFLOP/s) is printed beside the
time. --total: the iterations of a paper's schedule. Neither paper states its total: RNAN halves
its learning rate every 200 epochs and CRAN every 2x10^5 iterations, both in the EDSR/RCAN code
they build on, whose default is 1000 epochs of 1000 batches: 10^6 iterations. Prints the hours
that total takes at the measured rate, on this device, one process.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.checkpoints import build_untrained  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(name: str, args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    torch.manual_seed(0)
    model = build_untrained(name, args.scale).model.to(device).train()
    cuda = device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda)
    g = torch.Generator().manual_seed(1)
    side = args.patch
    lr = torch.rand(args.batch, 3, side, side, generator=g).to(device)
    hr = torch.rand(args.batch, 3, side * args.scale, side * args.scale, generator=g).to(device)
    if cuda:
        lr = lr.contiguous(memory_format=torch.channels_last)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.float16, enabled=cuda):
            sr = model(lr)
        loss = F.l1_loss(sr.float(), hr)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    counter = FlopCounterMode(display=False)
    with counter:
        step()  # the first warm-up, counted
    step()  # the second: the flop counter's hooks are gone
    times = []
    for _ in range(args.iterations):
        _sync(device)
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    seconds = statistics.median(times)
    flops = counter.get_total_flops()
    params = sum(p.numel() for p in model.parameters())
    return {"seconds": seconds, "flops": flops, "params": params}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["RNAN-paper", "CRAN-paper"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--patch", type=int, default=48)
    p.add_argument("--iterations", type=int, default=3, help="timed iterations (median)")
    p.add_argument("--total", type=int, default=1_000_000, help="iterations of a paper's run")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        what = torch.cuda.get_device_name(device)
    else:
        what = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(
        f"# {what}, torch {torch.__version__}; x{args.scale}, batch {args.batch} of "
        f"{args.patch}x{args.patch} LR patches; {args.total:,} iterations for a paper's run\n"
    )
    print("| model | params | TFLOP / iteration | s / iteration | TFLOP/s | hours for the run |")
    print("|---|---|---|---|---|---|")
    for name in args.models:
        r = measure(name, args, device)
        tflop = r["flops"] / 1e12
        hours = r["seconds"] * args.total / 3600
        print(
            f"| {name} | {r['params']:,} | {tflop:.3g} | {r['seconds']:.2f} | "
            f"{tflop / r['seconds']:.2f} | {hours:,.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
