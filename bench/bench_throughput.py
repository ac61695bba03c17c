"""CPU throughput of every family at x4 on a 128x128 input: output megapixels per second.

Run: .venv/bin/python bench/bench_throughput.py [--threads N] [--size 128] [--repeat 3]
     [--device cuda] [--precision fp16]   # a GPU: synchronised timings, autocast for fp16/bf16
All models are timed in one run, interleaved, so the ratios between them hold on a noisy machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from engine.archs.registry import model_names
from engine.checkpoints import bicubic, build_untrained
from engine.inference.devices import resolve_device, resolve_dtype


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=model_names())
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.precision, device)
    x = torch.rand(1, 3, args.size, args.size, device=device)
    models = {name: build_untrained(name, args.scale) for name in args.models}
    models["Bicubic"] = bicubic(args.scale)
    for desc in models.values():
        desc.model.to(device)

    def run(model: torch.nn.Module) -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for desc in models.values():
            run(desc.model)  # warm-up
        for _ in range(args.repeat):
            for name, desc in models.items():
                t0 = time.perf_counter()
                run(desc.model)
                times[name].append(time.perf_counter() - t0)
    out_mp = (args.size * args.scale) ** 2 / 1e6
    ref = statistics.median(times["A2F-SD"]) if "A2F-SD" in times else None
    print(
        f"{device} {args.precision}, {args.threads} CPU threads, {args.size}x{args.size} -> "
        f"x{args.scale}, median of {args.repeat}"
    )
    print(f"{'model':<12}{'params':>12}{'seconds':>10}{'out MP/s':>10}{'vs A2F-SD':>11}")
    for name, desc in models.items():
        t = statistics.median(times[name])
        rel = f"{ref / t:10.2f}x" if ref else ""
        print(f"{name:<12}{desc.params:>12,}{t:>10.3f}{out_mp / t:>10.3f}{rel}")


if __name__ == "__main__":
    main()
