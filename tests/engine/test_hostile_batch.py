"""A folder of crafted files through the commands, as an attacker (or an unlucky user) would run
them: no code runs, no traceback, the promised exit status and one-line messages, the inputs'
bytes unchanged, the good files still done, and reruns that settle."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import atomic
from engine.cli import main
from tests.engine.hostile import (
    POSTSCRIPT,
    digest,
    encoded,
    noise,
    png_chunk,
    png_with_size,
)

ROOT = Path(__file__).resolve().parents[2]
BICUBIC = ["--model", "bicubic", "--scale", "2", "--tile", "0", "--device", "cpu"]


def _save(path: Path, h: int = 6, w: int = 8, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(noise((h, w, 3), seed)).save(path)


def _upscale(capsys, *args: str) -> tuple[int, str]:
    code = main(["upscale", *args, *BICUBIC])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_a_folder_of_crafted_files(trap, tmp_path: Path, capsys) -> None:
    src = tmp_path / "downloads"
    _save(src / "good.png")
    (src / "holiday.jpg").write_bytes(POSTSCRIPT)
    (src / "scan.tif").write_bytes(b"%!PS-Adobe-3.0\n" + POSTSCRIPT)
    (src / "bomb.png").write_bytes(png_with_size(50_000, 50_000))
    (src / "archive.png").write_bytes(b"PK\x03\x04" + bytes(40))
    (src / "empty.gif").write_bytes(b"")
    before = digest(src)
    code, err = _upscale(capsys, str(src), "-o", str(tmp_path / "out"))
    assert code == 1
    failed = err.split("failed:")[1].strip().splitlines()
    assert len(failed) == 5 and all(line.count(":") >= 1 for line in failed)
    assert "PostScript" in err and "decompression bomb" in err and "zip archive" in err
    assert (tmp_path / "out" / "good_Bicubic_x2.png").is_file()
    assert not trap.sprung
    assert digest(src) == before


def test_eval_with_a_crafted_hr_folder_exits_2_with_one_line(trap, tmp_path: Path, capsys):
    hr = tmp_path / "hr"
    _save(hr / "a.png", 32, 32)
    (hr / "b.png").write_bytes(POSTSCRIPT)
    code = main(["eval", "--model", "bicubic", "--scale", "2", "--hr", str(hr)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "PostScript" in _error_line(err)
    assert not trap.sprung


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: png_with_size(20_000, 20_000), "decompression bomb"),
        (lambda: encoded(noise((9, 9, 3)), "PNG"), "too small to measure"),
        (lambda: encoded(noise((1, 1, 3)), "PNG"), "too small to measure"),
    ],
)
def test_eval_refusals_are_one_line_not_tracebacks(tmp_path: Path, capsys, make, message):
    hr = tmp_path / "hr"
    hr.mkdir()
    (hr / "x.png").write_bytes(make())
    code = main(["eval", "--model", "bicubic", "--scale", "2", "--hr", str(hr)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert message in _error_line(err)


def test_a_missing_input_is_a_usage_error(tmp_path: Path, capsys) -> None:
    _save(tmp_path / "a.png")
    code, err = _upscale(capsys, str(tmp_path / "a.png"), "nothere.jpg", "-o", str(tmp_path / "o"))
    assert code == 2
    assert _error_line(err) == "error: nothere.jpg: no such file or folder"
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("layout", ["dotdot", "symlink", "same-folder", "same-recursive"])
def test_reruns_into_the_input_tree_settle(tmp_path: Path, capsys, layout: str) -> None:
    src = tmp_path / "photos"
    _save(src / "a.png")
    _save(src / "sub" / "b.png", seed=1)
    recursive = ["--recursive"] if layout != "same-folder" else []
    if layout == "dotdot":
        out = src / "sub" / ".." / "results"
    elif layout == "symlink":
        (src / "results").mkdir()
        out = tmp_path / "link"
        out.symlink_to(src / "results")
    else:
        out = src
    counts = []
    for _ in range(3):
        code, err = _upscale(capsys, str(src), "-o", str(out), *recursive)
        assert code == 0, err
        counts.append(err.count("done "))
    expected = 1 if layout == "same-folder" else 2
    assert counts == [expected] * 3
    names = sorted(p.name for p in src.rglob("*.png"))
    assert not any("x2_Bicubic" in n for n in names), names


def test_a_killed_write_leaves_a_temporary_that_the_next_run_removes(tmp_path: Path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal\n"
            "from engine.atomic import atomic_open\n"
            f"writing = atomic_open({str(out / 'a_Bicubic_x2.png')!r})\n"
            "f = writing.__enter__()\n"
            "f.write(b'half an image'); f.flush()\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n",
        ],
        cwd=ROOT,
    )
    assert killed.returncode == -signal.SIGKILL
    (leftover,) = out.iterdir()
    assert atomic.is_stale_temporary(leftover)
    live = atomic.temporary_name(out / "b.png")  # this process's own: still being written
    live.write_bytes(b"busy")
    old_style = out / ".c.png.0123abcd.tmp"
    old_style.write_bytes(b"x")
    recent_old_style = out / ".d.png.4567cdef.tmp"
    recent_old_style.write_bytes(b"x")
    day_ago = time.time() - atomic.STALE_AFTER_S - 60
    os.utime(old_style, (day_ago, day_ago))
    users_own = out / ".notes.txt"
    users_own.write_text("mine")
    _save(tmp_path / "in" / "a.png")
    code, err = _upscale(capsys, str(tmp_path / "in"), "-o", str(out))
    assert code == 0
    left = sorted(p.name for p in out.iterdir())
    assert left == sorted([live.name, recent_old_style.name, ".notes.txt", "a_Bicubic_x2.png"])


def test_sigterm_stops_like_ctrl_c_with_a_report(tmp_path: Path) -> None:
    src = tmp_path / "in"
    for i in range(12):
        _save(src / f"p{i:02d}.png", 700, 700, seed=i)
    out, report = tmp_path / "out", tmp_path / "report"
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "upscale", str(src), "-o", str(out), *BICUBIC]
        + ["--report", str(report)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("done"):
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.stderr.read()
    code = proc.wait(timeout=120)
    err = "".join(lines) + rest
    assert code == 130, err
    assert "Traceback" not in err
    data = json.loads(report.with_suffix(".json").read_text())
    assert data["counts"]["cancelled"] >= 1 and data["counts"]["done"] >= 1
    for path in out.iterdir():
        assert not path.name.startswith("."), path  # no temporary file left
        with Image.open(path) as im:
            im.load()  # every output is whole


def test_report_and_output_paths_are_checked_before_any_work(tmp_path: Path, capsys) -> None:
    _save(tmp_path / "in" / "a.png")
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    code, err = _upscale(
        capsys, str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--report", str(blocker / "r")
    )
    assert code == 2 and "report" in _error_line(err)
    assert not (tmp_path / "out").exists()
    code, err = _upscale(capsys, str(tmp_path / "in"), "-o", str(blocker / "out"))
    assert code == 2
    _error_line(err)


def test_metadata_the_output_cannot_hold_is_dropped_with_a_warning(tmp_path: Path, capsys):
    arr = noise((6, 8, 3))
    exif = b"II*\x00\x08\x00\x00\x00\x00\x00" + bytes(70_000)  # too long for a JPEG segment
    png = encoded(arr, "PNG")
    iend = png.rindex(b"IEND") - 4
    ppm = struct.pack(">IIB", 4_000_000_000, 4_000_000_000, 1)  # about 100 million DPI
    crafted = png[:iend] + png_chunk(b"eXIf", exif) + png_chunk(b"pHYs", ppm) + png[iend:]
    src = tmp_path / "in" / "meta.png"
    src.parent.mkdir()
    src.write_bytes(crafted)
    report = tmp_path / "r"
    code, err = _upscale(
        capsys, str(src), "-o", str(tmp_path / "o"), "--format", "jpg", "--report", str(report)
    )
    assert code == 0, err
    assert "warning: EXIF left out" in err and "warning: resolution left out" in err
    (record,) = json.loads(report.with_suffix(".json").read_text())["files"]
    assert record["status"] == "done" and len(record["warnings"]) == 2
    with Image.open(tmp_path / "o" / "meta_Bicubic_x2.jpg") as im:
        assert im.size == (16, 12)


def test_names_that_look_like_options(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _save(tmp_path / "-o.png")
    _save(tmp_path / "--help.png", seed=1)
    code = main(["upscale", "-o", "out", *BICUBIC, "--", "-o.png", "--help.png"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "--help_Bicubic_x2.png",
        "-o_Bicubic_x2.png",
    ]


def _remove_tree(top: Path) -> None:
    """rm -r without recursion: pytest's own clean-up (shutil.rmtree) recurses once per level."""
    folders = []
    stack = [top]
    while stack:
        folder = stack.pop()
        folders.append(folder)
        for entry in os.scandir(folder):
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            else:
                os.unlink(entry.path)
    for folder in reversed(folders):
        folder.rmdir()


def test_deeply_nested_folders(tmp_path: Path, capsys) -> None:
    """Deeper than Python's recursion limit: walking and mirroring must not recurse."""
    deep = tmp_path / "in"
    deep.mkdir()
    try:
        for _ in range(1100):
            deep = deep / "d"
            deep.mkdir()
        _save(deep / "x.png")
        code, err = _upscale(capsys, str(tmp_path / "in"), "-o", str(tmp_path / "o"), "--recursive")
        assert code == 0, err[-500:]
        assert err.count("done ") == 1
    finally:
        for top in (tmp_path / "in", tmp_path / "o"):
            if top.exists():
                _remove_tree(top)


def test_symlinks_loops_aliases_and_outside_targets(tmp_path: Path, capsys) -> None:
    src = tmp_path / "in"
    _save(src / "a.png")
    (src / "loop").symlink_to(src)  # a folder that contains itself
    (src / "alias.png").symlink_to(src / "a.png")
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    (src / "secret.png").symlink_to(secret)
    before = digest(tmp_path)
    code, err = _upscale(capsys, str(src), "-o", str(tmp_path / "o"), "--recursive")
    assert code == 1
    assert err.count("done ") == 1 and "secret.png: not an image" in err
    assert secret.read_text() == "password"
    assert {k: v for k, v in digest(tmp_path).items() if not k.startswith("o/")} == before


def test_a_pile_of_tiny_images_and_an_archive(tmp_path: Path, capsys) -> None:
    src = tmp_path / "in"
    for i in range(150):
        _save(src / f"t{i:03d}.png", 1, 1, seed=i)
    (src / "zzz.png").write_bytes(b"PK\x05\x06" + bytes(18))
    code, err = _upscale(capsys, str(src), "-o", str(tmp_path / "o"))
    assert code == 1
    assert err.count("done ") == 150 and "zip archive" in err
    assert np.asarray(Image.open(tmp_path / "o" / "t000_Bicubic_x2.png")).shape == (2, 2, 3)
