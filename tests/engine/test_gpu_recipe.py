"""weights/train_gpu.py, the prepared GPU run of the bundled weights: its plan and its sizing
(the run itself needs a GPU and ../shared/train; see weights/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.engine.conftest import load_script

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def recipe():
    return load_script("weights/train_gpu.py")


def test_iterations_fit_the_share_of_the_time_left(recipe) -> None:
    assert recipe.iterations_for(300.0, 3, 0.05) == 1700  # 100 s x 0.85 / 0.05 s, in hundreds
    assert recipe.iterations_for(10.0, 3, 1.0) == 100  # never below 100
    assert recipe.iterations_for(-5.0, 1, 0.1) == 100


def test_the_dry_run_plans_twelve_runs_from_and_to_the_bundled_files() -> None:
    out = subprocess.run(
        [sys.executable, "weights/train_gpu.py", "--dry-run", "--minutes", "10"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    commands = [line.split() for line in out.splitlines() if line.startswith("  -m engine.cli")]
    assert len(commands) == 12
    for cmd in commands:
        base, output = cmd[cmd.index("--base") + 1], cmd[cmd.index("--output") + 1]
        assert base == output and Path(base).is_file()  # kept only where it validates better
        assert cmd[cmd.index("--device") + 1] == "cuda"
    scales = [Path(c[c.index("--base") + 1]).stem.rsplit("-x", 1)[1] for c in commands]
    assert sorted(scales) == ["2"] * 4 + ["3"] * 4 + ["4"] * 4


def test_each_run_is_sized_from_the_rate_the_last_one_measured(recipe, monkeypatch) -> None:
    calls: list[tuple[str, int]] = []

    def fake_run(cmd, **kwargs):
        iterations = int(cmd[cmd.index("--iterations") + 1])
        calls.append((Path(cmd[cmd.index("--base") + 1]).name, iterations))
        seconds = iterations * (0.5 if len(calls) == 1 else 0.25)  # the probe is slower
        history = [{"iteration": 0, "psnr": 30.0}, {"iteration": iterations, "psnr": 30.5}]
        result = {"iterations": iterations, "seconds": seconds, "best_psnr": 30.5,
                  "history": history}  # fmt: skip
        return subprocess.CompletedProcess(cmd, 0, json.dumps(result), "")

    monkeypatch.setattr(recipe.subprocess, "run", fake_run)
    family = recipe.Family("A2F-SD", "cuda", deadline=time.time() + 600)
    family.run()
    assert family.error is None
    assert calls[0] == ("A2F-SD-x2.safetensors", recipe.PROBE_ITERATIONS)
    assert [name for name, _ in calls[1:]] == [f"A2F-SD-x{s}.safetensors" for s in (2, 3, 4)]
    first, second = calls[1][1], calls[2][1]
    assert first == recipe.iterations_for(600, 3, 0.5)  # the probe's rate
    assert second > first  # then the faster rate the x2 run measured
    assert [(r["scale"], r["start"], r["best_psnr"]) for r in family.results] == [
        (2, 30.0, 30.5), (3, 30.0, 30.5), (4, 30.0, 30.5),
    ]  # fmt: skip


def test_a_failed_run_is_reported_and_stops_its_family(recipe, monkeypatch) -> None:
    def failing(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "error: CUDA is not available\n")

    monkeypatch.setattr(recipe.subprocess, "run", failing)
    family = recipe.Family("CRAN-tiny", "cuda", deadline=time.time() + 600)
    family.run()
    assert family.error == "[CRAN-tiny x2] failed: error: CUDA is not available"
