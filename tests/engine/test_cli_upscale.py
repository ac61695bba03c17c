from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.batch import PROGRESS_STEPS, FileRecord
from engine.cli import main
from engine.cli.upscale import BatchProgress

ROOT = Path(__file__).resolve().parents[2]
BICUBIC = ["--model", "bicubic", "--scale", "2", "--tile", "0", "--device", "cpu"]


def _save(path: Path, h: int = 6, w: int = 8, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)


def test_all_good_exit_0_with_report_and_resume(tmp_path: Path, capsys) -> None:
    _save(tmp_path / "in" / "a.png")
    _save(tmp_path / "in" / "sub" / "b.png", seed=1)
    out, report = tmp_path / "out", tmp_path / "rep" / "run.json"
    argv = ["upscale", str(tmp_path / "in"), "-o", str(out), *BICUBIC, "--recursive"]
    assert main([*argv, "--report", str(report)]) == 0
    err = capsys.readouterr().err
    assert "2 done" in err and "Traceback" not in err
    assert Image.open(out / "a_Bicubic_x2.png").size == (16, 12)
    assert Image.open(out / "sub" / "b_Bicubic_x2.png").size == (16, 12)
    data = json.loads(report.read_text())
    assert data["counts"]["done"] == 2 and report.with_suffix(".txt").is_file()
    assert main([*argv, "--skip-existing"]) == 0
    assert "2 skipped" in capsys.readouterr().err


def test_some_failed_exit_1_and_listed(tmp_path: Path, capsys) -> None:
    _save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_text("not an image")
    (tmp_path / "zero.jpg").write_bytes(b"")
    code = main(["upscale", str(tmp_path), "-o", str(tmp_path / "o"), *BICUBIC])
    err = capsys.readouterr().err
    assert code == 1
    failed = err.split("failed:")[1]
    assert "bad.png: " in failed and "not an image" in failed and "zero.jpg" in failed
    assert "good.png" not in failed


def test_options_reach_the_output(tmp_path: Path, capsys) -> None:
    _save(tmp_path / "p.png", 10, 12)
    argv = ["upscale", str(tmp_path / "p.png"), "-o", str(tmp_path / "o"), *BICUBIC]
    extra = [
        "--outscale",
        "1.5",
        "--format",
        "jpg",
        "--quality",
        "70",
        "--name",
        "{stem}-{scale}.{ext}",
    ]
    assert main([*argv, *extra]) == 0
    with Image.open(tmp_path / "o" / "p-1.5.jpg") as im:
        assert im.format == "JPEG" and im.size == (18, 15)
    assert main([*argv, "--max-pixels", "100"]) == 1
    assert "decompression bomb" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "NoSuchNet"], "unknown network family"),
        (["--model", "RNAN-paper", "--scale", "2"], "no weights installed"),
        (["--model", "bicubic", "--scale", "2", "--tile", "abc"], "--tile"),
        (["--model", "bicubic", "--scale", "2", "--quality", "0"], "--quality"),
        (["--model", "bicubic", "--scale", "2", "--name", "{oops}.png"], "unknown field"),
        (["--model", "bicubic", "--scale", "2", "--precision", "fp64"], "--precision"),
        (["--model", "A2F-SD", "--scale", "5"], "--scale"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    _save(tmp_path / "a.png")
    code = main(["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_unreadable_weights_and_missing_inputs_exit_2(tmp_path: Path, capsys) -> None:
    _save(tmp_path / "a.png")
    (tmp_path / "w.pt").write_bytes(b"")
    argv = ["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / "o")]
    assert main([*argv, "--weights", str(tmp_path / "w.pt")]) == 2
    assert "empty" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["upscale", str(tmp_path / "empty"), "-o", str(tmp_path / "o"), *BICUBIC]) == 2
    assert "no input images" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main([*argv, "-o", str(tmp_path / "file"), *BICUBIC]) == 2
    assert "not a folder" in capsys.readouterr().err


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_files_and_eta() -> None:
    stream = _Tty()
    bar = BatchProgress(stream, label="Bicubic x2")
    bar(0, 2 * PROGRESS_STEPS)
    bar(PROGRESS_STEPS, 2 * PROGRESS_STEPS)
    bar.file(FileRecord(input="a.png", output="o/a.png", status="done", seconds=0.5))
    bar(2 * PROGRESS_STEPS, 2 * PROGRESS_STEPS)
    text = stream.getvalue()
    assert "\rBicubic x2 [" in text and "1/2 files  50%" in text and "2/2 files 100%" in text
    assert "ETA 0:00" in text and "done      a.png -> o/a.png (0.5 s)" in text
    plain = io.StringIO()
    quiet = BatchProgress(plain)
    quiet(PROGRESS_STEPS, 2 * PROGRESS_STEPS)
    quiet.file(FileRecord(input="b.png", status="failed", reason="empty file (0 bytes)"))
    assert plain.getvalue() == "failed    b.png: empty file (0 bytes)\n"


def test_real_a2f_weights_from_the_command_line(tmp_path: Path, shared_dir: Path, capsys) -> None:
    _save(tmp_path / "a.png", 12, 10)
    weights = shared_dir / "official-weights/a2f/AAF_SD_x2.pt"
    argv = [
        "upscale",
        str(tmp_path / "a.png"),
        "-o",
        str(tmp_path / "o"),
        "--weights",
        str(weights),
    ]
    assert main([*argv, "--tile", "0", "--device", "cpu"]) == 0
    with Image.open(tmp_path / "o" / "a_A2F-SD_x2.png") as im:
        assert im.size == (20, 24)
    assert main([*argv, "--model", "HPINet-M"]) == 2
    assert "not HPINet-M" in capsys.readouterr().err


def test_process_exit_code(tmp_path: Path) -> None:
    _save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"")
    cmd = [sys.executable, "-m", "engine.cli", "upscale", str(tmp_path), "-o", str(tmp_path / "o")]
    done = subprocess.run([*cmd, *BICUBIC], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 1 and "bad.png" in done.stderr and "Traceback" not in done.stderr


def test_exact_tiles_and_verbose_say_which_pooling_ran(tmp_path: Path, caplog) -> None:
    _save(tmp_path / "p.png", 500, 520)
    caplog.set_level(logging.INFO, logger="engine")
    base = ["upscale", str(tmp_path / "p.png"), "-o", str(tmp_path / "o"), "--verbose"]
    base += ["--model", "A2F-SD", "--scale", "2", "--tile", "300", "--device", "cpu"]
    for extra, expected in (([], "pooling per tile (1 pass)"), (["--exact-tiles"], "2 passes")):
        caplog.clear()
        assert main([*base, *extra]) == 0
        assert expected in caplog.text
