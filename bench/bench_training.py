"""Training iterations per second of each family on this machine's CPU.

One iteration = the trainer's step: forward, L1 loss, backward, Adam and the EMA update, on a
batch of 4 LR patches 48x48 at x4 (light RNAN/CRAN, A2F-SD, HPINet-S in training mode, i.e. with
its hard Gumbel-softmax matching). The data pipeline (crop, flips, MATLAB-bicubic LR made on the
fly) is timed separately on ../shared/train when present, else on synthetic images.

    .venv/bin/python bench/bench_training.py [--threads N] [--seconds S]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.archs import registry  # noqa: E402
from engine.training import data  # noqa: E402
from engine.training.loop import _EMA  # noqa: E402

MODELS = ("RNAN-light", "CRAN-light", "A2F-SD", "HPINet-S")
SCALE, BATCH, PATCH = 4, 4, 48


def bench_model(name: str, seconds: float) -> tuple[float, int]:
    family, variant, _ = registry.parse_model_name(name)
    torch.manual_seed(0)
    model = family.build(family.config(variant, SCALE)).train()
    ema = _EMA(model, 0.999)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    lr = torch.rand(BATCH, 3, PATCH, PATCH)
    hr = torch.rand(BATCH, 3, PATCH * SCALE, PATCH * SCALE)

    def step(i: int) -> None:
        loss = torch.nn.functional.l1_loss(model(lr), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update(model, i)

    step(0)  # warm-up (allocations, oneDNN primitive caches)
    count, start = 0, time.perf_counter()
    while count < 3 or time.perf_counter() - start < seconds:
        step(count + 1)
        count += 1
    return count / (time.perf_counter() - start), count


def _images(folder: Path) -> list[str]:
    train = ROOT.parent / "shared" / "train"
    if train.is_dir():
        return [str(p) for p in sorted(train.iterdir()) if p.is_dir()]
    rng = np.random.default_rng(0)
    for i in range(16):
        img = rng.integers(0, 256, (320, 480, 3), dtype=np.uint8)
        Image.fromarray(img).save(folder / f"{i}.png")
    return [str(folder)]


def bench_data(seconds: float) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as tmp:
        dirs = _images(Path(tmp))
        entries = data.scan(dirs, None, SCALE, PATCH, lambda text: None)
        sampler = data.PatchSampler(
            entries, scale=SCALE, patch_size=PATCH, degradation="BI", noise_level=0, seed=0
        )
        for path in {e.hr for e in entries}:  # decode once: the steady state of a long run
            sampler.cache.get(path)
        count, start = 0, time.perf_counter()
        while count < 3 or time.perf_counter() - start < seconds:
            sampler.batch(count, BATCH)
            count += 1
        where = "../shared/train" if "shared" in dirs[0] else "synthetic 480x320"
        return count / (time.perf_counter() - start), f"{len(entries)} images, {where}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seconds", type=float, default=10.0, help="timing per model")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"# training speed, CPU ({platform.processor() or platform.machine()}), "
        f"{args.threads} threads, torch {torch.__version__}"
    )
    print(f"# batch {BATCH} x {PATCH}x{PATCH} LR patches, x{SCALE}, L1 + Adam + EMA\n")
    print("| model | iterations/s | s/iteration | timed iterations |")
    print("|---|---|---|---|")
    for name in MODELS:
        rate, count = bench_model(name, args.seconds)
        print(f"| {name} | {rate:.2f} | {1 / rate:.3f} | {count} |", flush=True)
    rate, what = bench_data(args.seconds / 2)
    print(f"\ndata pipeline (BI on the fly, images cached, {what}): {rate:.1f} batches/s")


if __name__ == "__main__":
    main()
