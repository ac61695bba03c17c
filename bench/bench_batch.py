"""Batch throughput: images per second for a folder of small PNGs, read -> upscale -> write.

    .venv/bin/python bench/bench_batch.py [--count 16] [--size 128] [--device auto] [--tile auto]
        [--threads N] [--compare]

Runs MATLAB bicubic x2 and, when its weights can be found (installed, or the authors' checkpoint
in ../shared/official-weights), A2F-SD x2. --compare times each model with read-ahead off, then
on (engine.batch.READ_AHEAD: the next file is decoded while this one is upscaled) and prints the
speed-up.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import engine.batch  # noqa: E402
from engine.batch import BatchJob, run_batch  # noqa: E402
from engine.checkpoints import load_model  # noqa: E402
from engine.descriptor import ModelDescriptor  # noqa: E402
from engine.errors import SRStudioError  # noqa: E402
from engine.inference.upscaler import UpscaleOptions, Upscaler  # noqa: E402

SHARED = Path(os.environ.get("SRSTUDIO_SHARED", ROOT.parent / "shared"))


def make_inputs(folder: Path, count: int, size: int) -> None:
    """Smooth random images (a low-resolution noise field, bilinearly enlarged)."""
    rng = np.random.default_rng(0)
    for i in range(count):
        small = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        small.resize((size, size), Image.Resampling.BILINEAR).save(folder / f"img_{i:03d}.png")


def models() -> list[ModelDescriptor]:
    found = [load_model("bicubic", scale=2)]
    for source in ("A2F-SD-x2", SHARED / "official-weights/a2f/AAF_SD_x2.pt"):
        try:
            found.append(load_model(source))
            break
        except SRStudioError as e:
            print(f"(A2F-SD x2 from {source}: {e})", file=sys.stderr)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tile", default="auto", help="auto, 0 (whole image) or N")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--compare", action="store_true", help="read-ahead off, then on")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        make_inputs(src, args.count, args.size)
        for desc in models():
            tile = None if args.tile == "auto" else int(args.tile)
            upscaler = Upscaler(desc, UpscaleOptions(device=args.device, tile=tile))
            warm = Path(tmp) / "warm"  # one image first: weights to device, kernels chosen
            run_batch(BatchJob(inputs=[src / "img_000.png"], output_dir=warm), upscaler)
            seconds = {}
            for read_ahead in (False, True) if args.compare else (engine.batch.READ_AHEAD,):
                engine.batch.READ_AHEAD = read_ahead
                out = Path(tmp) / f"out_{desc.family}_{read_ahead}"
                start = time.perf_counter()
                report = run_batch(BatchJob(inputs=[src], output_dir=out), upscaler)
                seconds[read_ahead] = time.perf_counter() - start
                done = report.count("done")
                assert done == args.count, report.to_text()
                print(
                    f"{desc.label:<14} {done} x {args.size}x{args.size} PNG -> x2 on "
                    f"{upscaler.device} ({torch.get_num_threads()} threads, tile {args.tile}, "
                    f"read-ahead {'on' if read_ahead else 'off'}): "
                    f"{done / seconds[read_ahead]:7.2f} images/s ({seconds[read_ahead]:.2f} s)"
                )
            if args.compare:
                print(f"{desc.label:<14} read-ahead speed-up {seconds[False] / seconds[True]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
