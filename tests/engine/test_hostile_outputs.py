"""Second round of hostile input (issue 30): no command writes over its own inputs, Ctrl+C at
any moment ends in one line and exit 130, an image without a stated resolution gets none."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import engine.cli
from engine.atomic import refuse_writing_over_inputs, writes_over_input
from engine.cli import main
from engine.errors import SRStudioError
from engine.imaging.io import read_image

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "weights" / "A2F-SD-x2.safetensors"


def _one_line_error(capsys, *words: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


def test_the_shared_check_sees_through_spellings_and_links(tmp_path: Path) -> None:
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.safetensors").symlink_to(weights)
    os.link(weights, tmp_path / "hard.safetensors")
    for spelling in ("sub/../w.safetensors", "link.safetensors", "hard.safetensors"):
        assert writes_over_input(tmp_path / spelling, [weights])
    assert not writes_over_input(tmp_path / "other.onnx", [weights])
    with pytest.raises(SRStudioError, match="is one of the inputs"):
        refuse_writing_over_inputs(tmp_path / "link.safetensors", [str(weights)])


def test_export_never_writes_over_the_weights_it_exports(tmp_path: Path, capsys) -> None:
    weights = tmp_path / "W.safetensors"
    shutil.copy(BUNDLED, weights)
    before = weights.read_bytes()
    argv = ["models", "export", str(weights), "-o", str(weights), "--force"]
    assert main(argv) == 2
    _one_line_error(capsys, "is one of the inputs")
    assert weights.read_bytes() == before


def test_train_never_writes_over_its_inputs(tmp_path: Path, capsys) -> None:
    hr = tmp_path / "hr"
    hr.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(hr / f"{i}.png")
    init = tmp_path / "start.safetensors"
    shutil.copy(BUNDLED, init)
    before = init.read_bytes()
    common = ["train", "--model", "A2F-SD", "--scale", "2", "--hr", str(hr), "--iterations", "1"]
    assert main([*common, "--init", str(init), "--output", str(init)]) == 2
    _one_line_error(capsys, "is one of the inputs")
    # the resume state a run writes beside its output must not replace a file it reads either
    state = tmp_path / "run.resume.pt"
    shutil.copy(BUNDLED, state)
    assert main([*common, "--init", str(state), "--output", str(tmp_path / "run.safetensors")]) == 2
    _one_line_error(capsys, "run.resume.pt", "is one of the inputs")
    assert init.read_bytes() == before and state.read_bytes() == before
    assert not (tmp_path / "run.safetensors").exists()


def test_a_tiff_without_resolution_gets_none(tmp_path: Path, capsys) -> None:
    src = tmp_path / "scan.tif"
    Image.fromarray(np.full((6, 8, 3), 90, np.uint8)).save(src)  # Pillow writes no resolution
    assert read_image(src).dpi is None  # Pillow itself reports (1, 1) for it
    out = tmp_path / "out"
    argv = ["upscale", str(src), "-o", str(out), "--model", "bicubic", "--scale", "2"]
    assert main([*argv, "--tile", "0", "--device", "cpu"]) == 0
    written = next(out.glob("*.tif*"))
    with Image.open(written) as im:
        assert 282 not in im.tag_v2 and 283 not in im.tag_v2 and 296 not in im.tag_v2
        assert im.size == (16, 12)
    # a stated resolution is still carried over, scaled for the same print size
    Image.fromarray(np.full((6, 8, 3), 90, np.uint8)).save(src, dpi=(300, 300))
    shutil.rmtree(out)
    assert main([*argv, "--tile", "0", "--device", "cpu"]) == 0
    with Image.open(next(out.glob("*.tif*"))) as im:
        assert im.info["dpi"][0] == pytest.approx(600, abs=0.01)


def test_ctrl_c_while_the_commands_are_imported(monkeypatch, capsys) -> None:
    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(engine.cli, "import_module", interrupted)
    assert main(["models"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_ctrl_c_during_start_up_in_a_real_process() -> None:
    """SIGINT while torch is being imported: exit 130 and one line, never a traceback."""
    code = "import sys; from app.launcher import main; print('ready', flush=True); "
    code += "sys.exit(main(['models']))"  # what the srstudio console script runs
    env = dict(os.environ, SRSTUDIO_JEMALLOC="0")
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGINT)  # torch's import alone takes over a second
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert err == "interrupted\n", err
