"""OpenVINO missing (issue 35): `--backend openvino` is a one-line error before any image is read,
in words that fit the install; `--backend auto` runs PyTorch."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

import engine.batch as batch
from engine.cli import main


def _argv(tmp_path: Path, backend: str, out: str) -> list[str]:
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    argv = ["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / out), "--model", "A2F-SD"]
    return [*argv, "--scale", "2", "--backend", backend]


def test_an_explicit_openvino_that_is_missing_fails_before_reading(
    tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setattr("engine.inference.openvino_backend.available", lambda: False)
    read: list[str] = []
    monkeypatch.setattr(batch, "read_image", lambda *a, **k: read.append("read"))
    assert main(_argv(tmp_path, "openvino", "o")) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: OpenVINO cannot run this: OpenVINO is not installed "
        "(pip install srstudio[openvino])\n"
    )
    assert not read and not (tmp_path / "o").exists()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert main(_argv(tmp_path, "openvino", "o")) == 2
    assert "OpenVINO is not part of this build\n" in capsys.readouterr().err


def test_auto_runs_pytorch_when_openvino_is_missing(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("engine.inference.openvino_backend.available", lambda: False)
    assert main(_argv(tmp_path, "auto", "o")) == 0
    assert (tmp_path / "o" / "a_A2F-SD_x2.png").is_file()
