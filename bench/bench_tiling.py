"""Tiling overhead, self-ensemble cost and peak memory of automatic tiles (A2F-SD x4, CPU).

Run: .venv/bin/python bench/bench_tiling.py [--threads N] [--repeat 3]
     .venv/bin/python bench/bench_tiling.py --calibrate   # the memory table of tiling.py
     .venv/bin/python bench/bench_tiling.py --psnr [--overlaps 16 24]  # tiles vs whole, Set5/14

The first prints, for a 256x256 input: time of tiles of 48 and 128 (A2F's overlap) over the time
of one whole-image pass, and x8 self-ensemble over a plain pass; then the peak RSS of a process
that upscales a 1000x1000 image x4 with automatic tiles, against the 2 GiB limit. The released
A2F-SD x4 weights are used when ../shared has them, random ones otherwise (same cost).

--calibrate measures, per registered model and scale, the peak RSS growth of two float32 forwards
on the CPU (after a small warm-up, each in a fresh process, with the Upscaler's malloc tuning)
divided by the LR pixels, at two input sizes (--sizes, default 96 192), and prints the larger
value with a 15% margin, as each network's Family.memory (engine/archs) wants it; --families
limits it to some networks.

--psnr: the authors' A2F-SD x4 and HPINet-M x4 checkpoints (or --models NAME|FILE..., e.g. the
bundled weights/RNAN-tiny-x4.safetensors) on Set5 and Set14 x4, mean PSNR (Y, shave 4, clamp and
round) of tiles of 48 LR pixels minus that of whole-image passes, per overlap (the family's own
when --overlaps is not given), with shared and with per-tile pooling where the network pools.
The issue's bound is 0.01 dB.
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.checkpoints import build_untrained, load_file_model  # noqa: E402
from engine.descriptor import ModelDescriptor  # noqa: E402
from engine.imaging.color import tensor_to_uint8, uint8_to_tensor  # noqa: E402
from engine.inference import allocator  # noqa: E402
from engine.inference.ensemble import ensemble_forward  # noqa: E402
from engine.inference.tiling import auto_tile_size, upscale_tiled  # noqa: E402
from engine.metrics import psnr  # noqa: E402

SHARED = ROOT.parent / "shared"
A2F_WEIGHTS = SHARED / "official-weights" / "a2f" / "AAF_SD_x4.pt"
RELEASED = {"A2F-SD": A2F_WEIGHTS, "HPINet-M": SHARED / "official-weights/hpinet/HPINet-M-x4.pth"}
LIMIT = 2 << 30
CPU = torch.device("cpu")
CALIBRATION_SIZES = (96, 192)
MARGIN = 1.15


def a2f_sd_x4() -> ModelDescriptor:
    return load_file_model(A2F_WEIGHTS) if A2F_WEIGHTS.exists() else build_untrained("A2F-SD", 4)


def _median_time(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _maxrss_bytes(who: int) -> int:
    return resource.getrusage(who).ru_maxrss * 1024  # kB on Linux


def peak_child() -> None:
    """Upscale a 1000x1000 image x4 with automatic tiles; the parent reads this process's RSS."""
    desc = a2f_sd_x4()
    x = torch.rand(1, 3, 1000, 1000, generator=torch.Generator().manual_seed(0))
    tile = auto_tile_size(desc, CPU, torch.float32, image_size=(1000, 1000))
    t0 = time.perf_counter()
    y = upscale_tiled(
        desc.model,
        x,
        scale=4,
        tile=tile,
        overlap=desc.tile_overlap,
        device=CPU,
        shared_pooling=desc.shared_pooling,
    ).clamp_(0, 1)
    print(
        f"  auto tile {tile} (overlap {desc.tile_overlap}), output {tuple(y.shape)}, "
        f"{time.perf_counter() - t0:.1f} s",
        flush=True,
    )


def benchmark(threads: int, repeat: int) -> None:
    torch.set_num_threads(threads)
    desc = a2f_sd_x4()
    model, overlap = desc.model, desc.tile_overlap
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    weights = "released" if desc.source != "untrained" else "random"
    print(
        f"A2F-SD x4 ({weights} weights), CPU {threads} threads, 256x256 input, median of {repeat}"
    )
    with torch.inference_mode():
        whole = _median_time(lambda: model(x), repeat)
        print(f"  whole image            {whole:7.3f} s")
        for tile in (48, 128):
            for shared in (True, False):
                t = _median_time(
                    lambda tile=tile, shared=shared: upscale_tiled(
                        model,
                        x,
                        scale=4,
                        tile=tile,
                        overlap=overlap,
                        device=CPU,
                        shared_pooling=shared,
                    ),
                    repeat,
                )
                how = "shared pooling (2 passes)" if shared else "per-tile pooling"
                print(
                    f"  tiles of {tile:<3} (+{overlap}), {how:<25} {t:7.3f} s  "
                    f"overhead x{t / whole:.2f}"
                )
        ensemble = ensemble_forward(model)
        t = _median_time(lambda: ensemble(x), repeat)
        print(f"  x8 self-ensemble       {t:7.3f} s  cost x{t / whole:.2f}")
    print("1000x1000 -> x4, automatic tiles, CPU, in a fresh process:")
    cmd = [sys.executable, __file__, "--peak-child", "--threads", str(threads)]
    subprocess.run(cmd, check=True)
    peak = _maxrss_bytes(resource.RUSAGE_CHILDREN)
    verdict = "under" if peak < LIMIT else "OVER"
    print(f"  peak RSS {peak / 2**20:.0f} MiB: {verdict} the 2 GiB limit")


def measure_child(name: str, scale: int, size: int) -> None:
    """Print the peak RSS growth, per LR pixel, of forwards of `name` at `size` x `size`: two of
    them, with the malloc tuning the Upscaler applies (the heap it keeps is part of the cost)."""
    allocator.tune()
    model = build_untrained(name, scale).model
    with torch.no_grad():
        model(torch.rand(1, 3, 12, 12))
        base = _maxrss_bytes(resource.RUSAGE_SELF)
        for _ in range(2):
            model(torch.rand(1, 3, size, size))
    print((_maxrss_bytes(resource.RUSAGE_SELF) - base) / (size * size))


def calibrate(threads: int, families: list[str] | None, sizes: list[int]) -> None:
    from engine.archs.registry import FAMILIES

    print(f"# bytes per LR pixel, float32 CPU forward, sizes {sizes}, x{MARGIN}")
    for family in FAMILIES:
        if families and family.name not in families:
            continue
        for variant in family.variants:
            costs = []
            for scale in family.scales:
                per_pixel = []
                for size in sizes:
                    cmd = [
                        sys.executable,
                        __file__,
                        "--measure-child",
                        f"{family.name}-{variant}",
                        str(scale),
                        str(size),
                        "--threads",
                        str(threads),
                    ]
                    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                    per_pixel.append(float(out.split()[-1]))
                costs.append(math.ceil(max(per_pixel) * MARGIN / 100) * 100)
            by_scale = ", ".join(f"{s}: {c}" for s, c in zip(family.scales, costs, strict=True))
            print(f'    ("{family.name}", "{variant}"): {{{by_scale}}},', flush=True)


def _set(name: str) -> list[tuple[torch.Tensor, np.ndarray]]:
    root = SHARED / "benchmarks" / name / "x4"
    pairs = []
    for lr_path in sorted((root / "LR").glob("img_*.png")):
        lr = np.asarray(Image.open(lr_path).convert("RGB"))
        hr = np.asarray(Image.open(root / "HR" / lr_path.name).convert("RGB"))
        pairs.append((uint8_to_tensor(lr), hr[: lr.shape[0] * 4, : lr.shape[1] * 4]))
    return pairs


def _mean_psnr(
    model: torch.nn.Module,
    images: list[tuple[torch.Tensor, np.ndarray]],
    tile: int | None,
    overlap: int,
    shared: bool = False,
) -> float:
    values = []
    for x, hr in images:
        with torch.inference_mode():
            y = upscale_tiled(
                model, x, scale=4, tile=tile, overlap=overlap, device=CPU, shared_pooling=shared
            )
        values.append(psnr(tensor_to_uint8(y), hr, crop_border=4))
    return float(np.mean(values))


def tiling_psnr(overlaps: list[int] | None, models: list[str]) -> None:
    sets = {name: _set(name) for name in ("Set5", "Set14")}
    print("mean PSNR (Y, shave 4) of tiles of 48 minus whole image, x4; bound 0.01 dB")
    for name in models:
        desc = load_file_model(RELEASED.get(name, name))
        modes = (True, False) if desc.shared_pooling else (False,)
        for set_name, images in sets.items():
            whole = _mean_psnr(desc.model, images, None, 0)
            for overlap in overlaps or [desc.tile_overlap]:
                for shared in modes:
                    diff = _mean_psnr(desc.model, images, 48, overlap, shared) - whole
                    verdict = "ok" if abs(diff) <= 0.01 else "OVER"
                    how = "shared pooling" if shared else "per-tile pooling" if modes[0] else ""
                    print(
                        f"  {desc.name:<10}{set_name:<6} whole {whole:.4f} dB  overlap "
                        f"{overlap:>2}: {diff:+.4f} dB {verdict} {how}",
                        flush=True,
                    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--psnr", action="store_true")
    parser.add_argument("--overlaps", type=int, nargs="*")
    parser.add_argument("--families", nargs="*", help="--calibrate only these (e.g. A2F)")
    parser.add_argument("--sizes", type=int, nargs=2, default=list(CALIBRATION_SIZES))
    parser.add_argument("--models", nargs="*", default=list(RELEASED))
    parser.add_argument("--peak-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.peak_child:
        peak_child()
    elif args.measure_child:
        name, scale, size = args.measure_child
        measure_child(name, int(scale), int(size))
    elif args.psnr:
        tiling_psnr(args.overlaps, args.models)
    elif args.calibrate:
        calibrate(args.threads, args.families, args.sizes)
    else:
        benchmark(args.threads, args.repeat)


if __name__ == "__main__":
    main()
