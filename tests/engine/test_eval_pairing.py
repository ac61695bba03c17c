"""srstudio eval --lr: LR and HR images paired by name without the extension."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.errors import SRStudioError
from engine.evaluate import load_pairs, make_lr
from engine.imaging.io import read_rgb_uint8

SCALE = 2


def _hr(seed: int) -> np.ndarray:
    """A 40x48 HR image: smooth colour plus a little seeded texture."""
    y, x = np.mgrid[0:40, 0:48] / 8.0
    base = np.stack([100 + 60 * np.sin(x), 120 + 50 * np.cos(y), 90 + 40 * np.sin(x + y)], -1)
    texture = np.random.default_rng(seed).normal(0, 6, base.shape)
    return np.clip(np.round(base + texture), 0, 255).astype(np.uint8)


def _folders(tmp_path: Path, hr: dict[str, int], lr: dict[str, int]) -> tuple[Path, Path]:
    """HR images by name -> seed; LR images by name -> the seed of the HR image shrunk for it."""
    hr_dir, lr_dir = tmp_path / "HR", tmp_path / "LR"
    hr_dir.mkdir()
    lr_dir.mkdir()
    for name, seed in hr.items():
        Image.fromarray(_hr(seed)).save(hr_dir / name)
    for name, seed in lr.items():
        Image.fromarray(make_lr(_hr(seed), SCALE)).save(lr_dir / name, quality=90)
    return hr_dir, lr_dir


def _eval(hr_dir: Path, lr_dir: Path) -> int:
    argv = ["eval", "--model", "bicubic", "--scale", str(SCALE), "--hr", str(hr_dir)]
    return main([*argv, "--lr", str(lr_dir), "--device", "cpu", "--json"])


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_jpeg_lr_images_are_scored_against_png_hr_images(tmp_path, capsys):
    hr_dir, lr_dir = _folders(
        tmp_path, {"a.png": 1, "b.png": 2, "c.png": 3}, {"a.jpg": 1, "B.JPEG": 2, "cx2.png": 3}
    )
    assert _eval(hr_dir, lr_dir) == 0
    result = json.loads(capsys.readouterr().out)
    assert [image["name"] for image in result["images"]] == ["a.png", "b.png", "c.png"]
    pairs = load_pairs(hr_dir, lr_dir, SCALE)
    assert np.array_equal(pairs[0].lr, read_rgb_uint8(lr_dir / "a.jpg"))  # the JPEG, decoded
    assert np.array_equal(pairs[1].lr, read_rgb_uint8(lr_dir / "B.JPEG"))
    assert np.array_equal(pairs[2].lr, make_lr(_hr(3), SCALE))  # the PNG, exactly
    psnr = [image["psnr"] for image in result["images"]]
    assert psnr[2] > psnr[0]  # the lossless LR image scores higher than its JPEG peers


def test_an_lr_image_without_hr_partner_is_one_line_exit_2(tmp_path, capsys):
    hr_dir, lr_dir = _folders(tmp_path, {"a.png": 1}, {"a.jpg": 1, "stray.jpg": 2})
    assert _eval(hr_dir, lr_dir) == 2
    line = _one_line_error(capsys)
    assert "stray.jpg" in line and "no HR partner" in line and str(hr_dir) in line
    assert capsys.readouterr().out == ""


def test_the_scale_suffix_is_only_the_models_scale(tmp_path, capsys):
    hr_dir, lr_dir = _folders(tmp_path, {"a.png": 1}, {"ax3.png": 1})
    assert _eval(hr_dir, lr_dir) == 2
    assert "ax3.png has no HR partner: no image named ax3 in" in _one_line_error(capsys)


def test_an_hr_image_without_lr_partner_is_refused(tmp_path, capsys):
    hr_dir, lr_dir = _folders(tmp_path, {"a.png": 1, "b.png": 2}, {"a.jpg": 1})
    assert _eval(hr_dir, lr_dir) == 2
    assert _one_line_error(capsys) == f"error: no LR image for b.png in {lr_dir}"


def test_two_lr_images_for_one_hr_image_are_refused(tmp_path):
    hr_dir, lr_dir = _folders(tmp_path, {"a.png": 1}, {"a.jpg": 1, "ax2.png": 1})
    with pytest.raises(SRStudioError, match=r"two LR images for a\.png in .*: a\.jpg, ax2\.png"):
        load_pairs(hr_dir, lr_dir, SCALE)


def test_two_hr_images_of_one_name_are_refused_when_pairing(tmp_path):
    hr_dir, lr_dir = _folders(tmp_path, {"a.png": 1, "a.tif": 1}, {"a.jpg": 1})
    with pytest.raises(SRStudioError, match="two HR images named a in"):
        load_pairs(hr_dir, lr_dir, SCALE)
    assert len(load_pairs(hr_dir, None, SCALE)) == 2  # without LR images, nothing to pair


def test_a_missing_lr_folder_is_named(tmp_path, capsys):
    hr_dir, _ = _folders(tmp_path, {"a.png": 1}, {})
    assert _eval(hr_dir, tmp_path / "nowhere") == 2
    assert _one_line_error(capsys) == f"error: LR folder not found: {tmp_path / 'nowhere'}"
