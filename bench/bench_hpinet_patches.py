"""HPINet patch division + pasting: vectorised (engine.archs.hpinet) vs the nested-loop reference
(tests/engine/test_hpinet.py), alone and inside a whole HPINet-M x4 forward on a 128x128 input.

    .venv/bin/python bench/bench_hpinet_patches.py [--size 128] [--threads 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.archs import hpinet  # noqa: E402
from tests.engine.test_hpinet import loop_divide, loop_paste  # noqa: E402

Divide = Callable[[torch.Tensor, int], torch.Tensor]
Paste = Callable[[torch.Tensor, int, int], torch.Tensor]


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Best of `repeats` wall-clock runs after one warm-up run, in seconds."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def divide_and_paste(x: torch.Tensor, patch_sizes: tuple[int, ...], divide: Divide, paste: Paste):
    h, w = x.shape[-2:]
    for patch in patch_sizes:
        paste(divide(x, patch), h, w)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="LR input height and width")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    cfg = hpinet.config("M", 4)
    model = hpinet.build(cfg).eval()
    size, patches = args.size, cfg.patch_sizes
    feat = torch.randn(1, size, size, cfg.dim)  # channels last, as the model holds it
    image = torch.rand(1, 3, size, size)
    print(f"torch {torch.__version__}, {args.threads} threads, best of {args.repeats}")

    with torch.inference_mode():
        start = time.perf_counter()
        for patch in set(patches):
            hpinet._tables(size, size, patch, feat.device)
        print(
            f"index tables, built once per (H, W, P): {1e3 * (time.perf_counter() - start):.2f} ms"
        )

        print(f"\ndivide + paste of a (1, {size}, {size}, {cfg.dim}) map (NHWC), per P:")
        total = {"vectorised": 0.0, "loops": 0.0}
        for patch in sorted(set(patches)):
            n = len(hpinet.patch_starts(size, patch)) ** 2
            fast = best_time(
                lambda p=patch: divide_and_paste(
                    feat, (p,), hpinet.divide_patches, hpinet.paste_patches
                ),
                args.repeats,
            )
            slow = best_time(
                lambda p=patch: divide_and_paste(feat, (p,), loop_divide, loop_paste),
                args.repeats,
            )
            total["vectorised"] += fast * patches.count(patch)
            total["loops"] += slow * patches.count(patch)
            print(
                f"  P={patch:2d} ({n:3d} patches): vectorised {1e3 * fast:7.2f} ms, "
                f"loops {1e3 * slow:7.2f} ms, speed-up x{slow / fast:.1f}"
            )
        ratio = total["loops"] / total["vectorised"]
        print(
            f"  all {len(patches)} blocks of HPINet-M: vectorised "
            f"{1e3 * total['vectorised']:.1f} ms, loops {1e3 * total['loops']:.1f} ms, "
            f"speed-up x{ratio:.1f}"
        )

        fast = best_time(lambda: model(image), args.repeats)
        fast_out = model(image)
        original = hpinet.divide_patches, hpinet.paste_patches
        hpinet.divide_patches, hpinet.paste_patches = (
            loop_divide,
            loop_paste,
        )  # what the model calls
        try:
            slow = best_time(lambda: model(image), args.repeats)
            same = torch.equal(fast_out, model(image))
        finally:
            hpinet.divide_patches, hpinet.paste_patches = original
        print(
            f"\nHPINet-M x4 forward, 1x3x{size}x{size}: vectorised {1e3 * fast:.0f} ms, "
            f"loops {1e3 * slow:.0f} ms, speed-up x{slow / fast:.2f}; outputs identical: {same}"
        )


if __name__ == "__main__":
    main()
