"""`srstudio upscale` under torchrun: two local processes (gloo, CPU) through the same entry
point as one, each taking its shard, rank 0 writing the one merged report."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
OPTIONS = ["--model", "bicubic", "--scale", "2", "--device", "cpu"]
SIZES = [(9, 7), (30, 22), (12, 40), (16, 16), (25, 9), (8, 33), (21, 14)]


def _env(**extra: str) -> dict[str, str]:
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)} | extra
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "SLURM_ARRAY_TASK_ID"):
        if name not in extra:
            env.pop(name, None)
    return env


def _images(folder: Path) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    for i, (w, h) in enumerate(SIZES):
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.png")
    return folder


def _cli(args: list[str], *, torchrun: bool, **env: str) -> subprocess.CompletedProcess[str]:
    head = [*TORCHRUN, "-m", "engine.cli"] if torchrun else [sys.executable, "-m", "engine.cli"]
    return subprocess.run(
        [*head, *args], env=_env(**env), cwd=ROOT, capture_output=True, text=True, timeout=180
    )


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_two_processes_write_what_one_does_and_one_merged_report(tmp_path):
    src = _images(tmp_path / "in")
    single, multi = tmp_path / "single", tmp_path / "multi"
    one = _cli(["upscale", str(src), "-o", str(single), *OPTIONS], torchrun=False)
    assert one.returncode == 0, one.stderr[-3000:]

    report = tmp_path / "report"
    args = ["upscale", str(src), "-o", str(multi), *OPTIONS, "--report", str(report)]
    done = _cli(args, torchrun=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert _files(multi) == _files(single) and len(_files(single)) == len(SIZES)

    assert done.stderr.count(f"{len(SIZES)} files:") == 1  # rank 0's summary line only
    assert done.stderr.count("report: ") == 1
    assert "shard 2/2" not in done.stderr  # rank 1 logs nothing

    data = json.loads(report.with_suffix(".json").read_text())
    inputs = [f["input"] for f in data["files"]]
    assert sorted(Path(i).name for i in inputs) == sorted(f"img{i}.png" for i in range(7))
    assert len(set(inputs)) == len(SIZES)
    assert data["shards"] == {"count": 2, "merged": [1, 2], "missing": [], "planned_files": 7}
    assert data["counts"]["done"] == len(SIZES) and "shard" not in data
    text = report.with_suffix(".txt").read_text()
    assert "shards merged: 1, 2 of 2" in text and "shards missing: none" in text

    # a rerun with --skip-existing does nothing more, and still reports every file once
    again = _cli([*args, "--skip-existing"], torchrun=True)
    assert again.returncode == 0, again.stderr[-3000:]
    data = json.loads(report.with_suffix(".json").read_text())
    assert data["counts"]["skipped"] == len(SIZES) and data["shards"]["missing"] == []
    assert _files(multi) == _files(single)


def test_a_lost_share_is_done_by_a_rerun_with_skip_existing(tmp_path):
    src = _images(tmp_path / "in")
    single, multi = tmp_path / "single", tmp_path / "multi"
    assert _cli(["upscale", str(src), "-o", str(single), *OPTIONS], torchrun=False).returncode == 0
    # what a run leaves when the process of shard 2 dies: only shard 1's outputs
    first = _cli(
        ["upscale", str(src), "-o", str(multi), *OPTIONS, "--shard", "1/2"], torchrun=False
    )
    assert first.returncode == 0, first.stderr[-3000:]
    left = len(SIZES) - len(_files(multi))
    assert 0 < left < len(SIZES)
    report = tmp_path / "report"
    args = ["upscale", str(src), "-o", str(multi), *OPTIONS, "--skip-existing"]
    done = _cli([*args, "--report", str(report)], torchrun=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _files(multi) == _files(single)
    data = json.loads(report.with_suffix(".json").read_text())
    assert data["counts"]["done"] == left and data["counts"]["skipped"] == len(SIZES) - left
    assert data["shards"]["missing"] == [] and len(data["files"]) == len(SIZES)


# rank 1 of a hand-made torchrun environment that dies (os._exit) after its first finished file
DYING = """
import os, sys
import engine.cli.upscale_torchrun as u
real = u.run_batch
def dying(job, upscaler, **kw):
    def on_file(record):
        if record.status == "done":
            os._exit(9)
    return real(job, upscaler, on_file=on_file, should_stop=kw["should_stop"])
u.run_batch = dying
from engine.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_process_that_dies_leaves_its_share_to_a_rerun_with_skip_existing(tmp_path):
    src = _images(tmp_path / "in")
    single, multi, report = tmp_path / "single", tmp_path / "multi", tmp_path / "report"
    assert _cli(["upscale", str(src), "-o", str(single), *OPTIONS], torchrun=False).returncode == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    group = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2"}
    group |= {"LOCAL_WORLD_SIZE": "2", "SRSTUDIO_DIST_TIMEOUT_MINUTES": "1"}
    args = ["upscale", str(src), "-o", str(multi), *OPTIONS, "--report", str(report)]
    procs = [
        subprocess.Popen(
            [sys.executable, *(["-m", "engine.cli"] if rank == 0 else ["-c", DYING]), *args],
            env=_env(**group, RANK=str(rank), LOCAL_RANK=str(rank)),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    (_, err0), _ = procs[0].communicate(timeout=180), procs[1].communicate(timeout=180)
    assert procs[1].returncode == 9
    assert procs[0].returncode == 1, err0[-3000:]  # its own share done, shard 2 missing
    assert "shards missing: 2 of 2" in err0
    data = json.loads(report.with_suffix(".json").read_text())
    assert data["shards"]["merged"] == [1] and data["shards"]["missing"] == [2]
    assert len(_files(multi)) < len(SIZES)

    done = _cli([*args, "--skip-existing"], torchrun=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _files(multi) == _files(single)
    data = json.loads(report.with_suffix(".json").read_text())
    assert data["shards"]["missing"] == [] and len(data["files"]) == len(SIZES)
    assert 0 < data["counts"]["done"] < len(SIZES)


def test_shard_under_torchrun_is_a_usage_error(tmp_path):
    src = _images(tmp_path / "in")
    torchrun_env = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2"}
    args = ["upscale", str(src), "-o", str(tmp_path / "out"), *OPTIONS, "--shard", "1/2"]
    done = _cli(args, torchrun=False, **torchrun_env)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --shard") and "torchrun" in lines[0]
    assert not (tmp_path / "out").exists()
    quiet = _cli(args, torchrun=False, **(torchrun_env | {"RANK": "1", "LOCAL_RANK": "1"}))
    assert quiet.returncode == 2 and quiet.stderr.strip() == ""
    launched = _cli(args, torchrun=True)  # torchrun itself fails when a worker does
    assert launched.returncode != 0 and launched.stderr.count("error: --shard") == 1
