"""HPINet patch division + pasting: vectorised (engine.archs.hpinet) vs the nested-loop reference
(tests/engine/test_hpinet.py), alone and inside a whole HPINet-M x4 forward.

    .venv/bin/python bench/bench_hpinet_patches.py [--size 128] [--threads 2] [--repeats 10]

The two implementations run alternately and each reports its best time, so that load from other
processes on the machine weighs on both alike.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.archs import hpinet  # noqa: E402
from tests.engine.test_hpinet import loop_divide, loop_paste  # noqa: E402


@contextmanager
def loop_patches() -> Iterator[None]:
    """Make the model call the loop reference (it looks the functions up in its module)."""
    original = hpinet.divide_patches, hpinet.paste_patches
    hpinet.divide_patches, hpinet.paste_patches = loop_divide, loop_paste
    try:
        yield
    finally:
        hpinet.divide_patches, hpinet.paste_patches = original


def best_times(fast: Callable[[], object], slow: Callable[[], object], repeats: int):
    """Best wall-clock seconds of each, run alternately after one warm-up run each."""
    times: dict[Callable[[], object], list[float]] = {fast: [], slow: []}
    for fn in times:
        fn()
    for _ in range(repeats):
        for fn, record in times.items():
            start = time.perf_counter()
            fn()
            record.append(time.perf_counter() - start)
    return min(times[fast]), min(times[slow])


def divide_and_paste(x: torch.Tensor, patch: int) -> None:
    """x: (b, h, w, c), the layout both implementations take."""
    h, w = x.shape[1:3]
    assert hpinet.paste_patches(hpinet.divide_patches(x, patch), h, w).shape == x.shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="LR input height and width")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
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
            hpinet._patch_index(size, size, patch, feat.device)
        elapsed = 1e3 * (time.perf_counter() - start)
        print(
            f"index tables for the {len(set(patches))} patch sizes (built once): {elapsed:.2f} ms"
        )

        print(f"\ndivide + paste of a (1, {size}, {size}, {cfg.dim}) map (NHWC), per P:")
        total_fast = total_slow = 0.0
        for patch in sorted(set(patches)):

            def run(p: int = patch) -> None:
                divide_and_paste(feat, p)

            def run_loops(p: int = patch) -> None:
                with loop_patches():
                    divide_and_paste(feat, p)

            fast, slow = best_times(run, run_loops, args.repeats)
            total_fast += fast * patches.count(patch)
            total_slow += slow * patches.count(patch)
            n = len(hpinet.patch_starts(size, patch)) ** 2
            print(
                f"  P={patch:2d} ({n:3d} patches): vectorised {1e3 * fast:7.2f} ms, "
                f"loops {1e3 * slow:7.2f} ms, speed-up x{slow / fast:.1f}"
            )
        print(
            f"  the {len(patches)} blocks of HPINet-M: vectorised {1e3 * total_fast:.1f} ms, "
            f"loops {1e3 * total_slow:.1f} ms, speed-up x{total_slow / total_fast:.1f}"
        )

        def forward_loops() -> torch.Tensor:
            with loop_patches():
                return model(image)

        fast, slow = best_times(lambda: model(image), forward_loops, args.repeats)
        same = torch.equal(model(image), forward_loops())
        print(
            f"\nHPINet-M x4 forward, 1x3x{size}x{size}: vectorised {1e3 * fast:.0f} ms, "
            f"loops {1e3 * slow:.0f} ms, speed-up x{slow / fast:.2f}; outputs identical: {same}"
        )


if __name__ == "__main__":
    main()
