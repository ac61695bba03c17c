"""Two processes on the CPU (gloo) through the same entry point as one: torchrun -m engine.cli."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from engine.checkpoints import load_model
from engine.training.state import load_state, state_path

ROOT = Path(__file__).resolve().parents[2]


def _images(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def test_two_process_gloo_run_completes_and_rank0_writes_the_checkpoint(tmp_path):
    hr, val = _images(tmp_path / "hr", 5), _images(tmp_path / "val", 1)
    out = tmp_path / "ddp.safetensors"
    torchrun = "-m torch.distributed.run --standalone --nproc_per_node 2 -m engine.cli train"
    options = "--model A2F-SD --scale 2 --patch 12 --batch 2 --iterations 6 --val-every 3"
    paths = ["--hr", str(hr), "--val", str(val), "--output", str(out)]
    cmd = [sys.executable, *torchrun.split(), *options.split(), "--device", "cpu", *paths]
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("WORLD_SIZE", None)
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 processes" in done.stderr  # rank 0's start line; rank 1 prints nothing
    assert done.stderr.count("training A2F-SD x2") == 1

    desc = load_model(out)
    assert desc.metadata["world_size"] == 2 and desc.metadata["iterations"] in (0, 3, 6)
    assert [h["iteration"] for h in desc.metadata["validation_history"]] == [0, 3, 6]
    saved = load_state(state_path(out))
    assert saved["iteration"] == 6
    assert all(torch.isfinite(t).all() for t in saved["model"].values())
    assert not any("module." in k for k in saved["model"])  # DDP's wrapper is not saved
