"""The prepared GPU run: all twelve bundled files trained further on one NVIDIA GPU in about
--minutes (default 10), each file kept only where it got better.

    bash weights/train.sh --device cuda [--minutes 10] [MODEL ...]    (from the repository root)
    python weights/train_gpu.py --dry-run                               (the plan, nothing run)

The four families train at once, one process each on the one GPU (a tiny network leaves most of
a large GPU idle), each process taking its three scales one after the other, x2 first. Every run
starts from the bundled file (`--base`, a new cosine schedule) and writes back to it; the trainer
validates the starting weights first and writes only weights that validate better (10 held-out
training photographs, never Set5/Set14), so a file that does not improve stays as it was, and its
metadata records the chain. Batches are larger than the CPU's (32 patches of 48x48 instead of 8
of 32x32), with fp16 autocast (the trainer's default on CUDA) and channels_last (NHWC, the
layout cuDNN's fp16 convolutions run fastest in; on the CPU it measured no faster).

No iteration counts are guessed: each process first times a short probe run of its family at x2
(its output thrown away), and each run then gets the iterations that fit its share of the time
left at the rate the last run of that process measured (probe included in the budget). The
plan and the results (iterations, seconds, validation PSNR before and after) are printed, and
`bash weights/evaluate.sh` measures Set5/Set14 afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("A2F-SD", "RNAN-tiny", "CRAN-tiny", "HPINet-T")
SCALES = (2, 3, 4)
TRAIN = "../shared/train"
PROBE_ITERATIONS = 60
MARGIN = 0.85  # of a run's share: validation, loading and writing take the rest
SETTINGS = [
    "--patch", "48", "--batch", "32", "--learning-rate", "5e-4", "--ema", "0.998",
    "--val-split", "10", "--val-max", "4", "--seed", "0", "--channels-last",
    "--hr", f"{TRAIN}/T91", "--hr", f"{TRAIN}/BSD200", "--hr", f"{TRAIN}/SunHays80",
]  # fmt: skip
_OUTPUT = threading.Lock()  # the families' threads print whole lines, never interleaved


def say(text: str) -> None:
    with _OUTPUT:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def iterations_for(seconds_left: float, runs_left: int, seconds_per_iteration: float) -> int:
    """Iterations that fit one run's share of the time left, in hundreds, at least 100."""
    share = seconds_left / max(1, runs_left) * MARGIN
    return max(100, int(share / max(seconds_per_iteration, 1e-6)) // 100 * 100)


def command(model: str, scale: int, iterations: int, device: str, output: Path) -> list[str]:
    base = ROOT / "weights" / f"{model}-x{scale}.safetensors"
    return [
        sys.executable, "-m", "engine.cli", "train", "--base", str(base), *SETTINGS,
        "--device", device, "--iterations", str(iterations),
        "--val-every", str(max(1, iterations // 2)), "--output", str(output), "--json",
    ]  # fmt: skip


@dataclass
class Family:
    """One family's process: its runs, one after the other, and what they measured."""

    model: str
    device: str
    deadline: float
    dry_run: bool = False
    results: list[dict] = field(default_factory=list)
    error: str | None = None
    simulated: float = 0.0  # a dry run's seconds, as if its runs took iterations x the rate

    def run(self) -> None:
        try:
            rate = self.probe()
            for k, scale in enumerate(SCALES):
                left = self.deadline - time.time() - self.simulated
                iterations = iterations_for(left, len(SCALES) - k, rate)
                output = ROOT / "weights" / f"{self.model}-x{scale}.safetensors"
                result = self.train(scale, iterations, output)
                if result is None:  # a dry run
                    self.simulated += iterations * rate / MARGIN
                else:
                    rate = result["seconds"] / max(1, result["iterations"])
        except RuntimeError as exc:
            self.error = str(exc)
            print(self.error, file=sys.stderr, flush=True)

    def probe(self) -> float:
        if self.dry_run:
            return 0.1  # seconds an iteration, for the plan only
        with tempfile.TemporaryDirectory() as tmp:
            result = self.train(2, PROBE_ITERATIONS, Path(tmp) / "probe.safetensors", keep=False)
        assert result is not None
        return result["seconds"] / PROBE_ITERATIONS

    def train(self, scale: int, iterations: int, output: Path, keep: bool = True) -> dict | None:
        cmd = command(self.model, scale, iterations, self.device, output)
        plan = f"[{self.model} x{scale}] {iterations} iterations"
        if self.dry_run:
            say(plan + "\n  " + " ".join(cmd[1:]))
            return None
        say(plan)
        threads = max(1, (os.cpu_count() or 4) // len(FAMILIES))
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
            raise RuntimeError(f"[{self.model} x{scale}] failed: {tail}")
        result = json.loads(proc.stdout)
        if keep:
            psnrs = [h["psnr"] for h in result["history"] if "psnr" in h]
            result.update(model=self.model, scale=scale, start=psnrs[0] if psnrs else None)
            self.results.append(result)
        return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", default=list(FAMILIES))
    p.add_argument("--device", default="cuda")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    args = p.parse_args()
    unknown = sorted(set(args.models) - set(FAMILIES))
    if unknown:
        p.error(f"unknown model {unknown[0]}; choose from {', '.join(FAMILIES)}")
    if not args.dry_run and not (ROOT.parent / "shared" / "train").is_dir():
        p.error("the training photographs are not at ../shared/train")
    start = time.time()
    families = [
        Family(m, args.device, start + args.minutes * 60, args.dry_run) for m in args.models
    ]
    threads = [threading.Thread(target=f.run, name=f.model) for f in families]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("\n| file | iterations | seconds | validation PSNR start -> best |")
    print("|---|---|---|---|")
    for f in families:
        for r in f.results:
            start_psnr = "?" if r["start"] is None else f"{r['start']:.3f}"
            best = "?" if r["best_psnr"] is None else f"{r['best_psnr']:.3f}"
            name = f"{r['model']}-x{r['scale']}"
            print(f"| {name} | {r['iterations']} | {r['seconds']:.0f} | {start_psnr} -> {best} |")
    print(f"\n{(time.time() - start) / 60:.1f} minutes; Set5/Set14: bash weights/evaluate.sh")
    return 1 if any(f.error for f in families) else 0


if __name__ == "__main__":
    sys.exit(main())
