"""Weights trained behind the clean-up network (issue 31's second design): `srstudio train
--behind-cleanup` trains an upscaler on what the clean-up makes of each damaged LR patch, and the
clean-up stage then runs those weights in place of the file they were trained from."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.checkpoints import build_untrained, load_model, save_checkpoint
from engine.cli import main
from engine.errors import SRStudioError
from engine.imaging.io import read_image
from engine.inference.cascade import with_cleanup
from engine.inference.upscaler import UpscaleOptions, Upscaler
from engine.library import behind_cleanup, installed_weights, user_dir
from engine.training.config import TrainConfig
from engine.training.real_degradation import RealDegradation, degrade_real
from engine.weights_file import inspect_weights_file


def _photo(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    return np.array(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC))


def _files(folder: Path) -> tuple[Path, Path, Path]:
    """HR photos, an A2F-SD x2 upscaler and a Cleanup-S (perturbed: not the identity)."""
    hr = folder / "hr"
    hr.mkdir()
    for i in range(3):
        Image.fromarray(_photo(128, 128, seed=i)).save(hr / f"{i}.png")
    torch.manual_seed(0)
    up = build_untrained("A2F-SD", 2).model
    up_path = save_checkpoint(folder / "up.safetensors", up, family="A2F", variant="SD", scale=2)
    clean = build_untrained("Cleanup-S", 1).model
    with torch.no_grad():
        for p in clean.parameters():
            p.add_(0.01 * torch.randn_like(p))
    clean_path = save_checkpoint(
        folder / "clean.safetensors", clean, family="Cleanup", variant="S", scale=1
    )
    return hr, up_path, clean_path


def _train_behind(folder: Path, capsys, monkeypatch) -> tuple[Path, Path, Path]:
    hr, up_path, clean_path = _files(folder)
    monkeypatch.setenv("SRSTUDIO_DATA_DIR", str(folder / "data"))
    installed = user_dir() / "clean.safetensors"
    installed.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(clean_path, installed)
    out = user_dir() / "up-photo.safetensors"
    argv = ["train", "--base", str(up_path), "--hr", str(hr), "--iterations", "3", "--batch", "2"]
    argv += ["--patch", "16", "--degradation", "real", "--behind-cleanup", "--output", str(out)]
    argv += ["--learning-rate", "1e-3", "--ema", "0", "--device", "cpu", "--seed", "1"]
    assert main(argv) == 0, capsys.readouterr().err
    return up_path, installed, out


def test_the_lr_is_made_as_the_cleanup_was_trained_for() -> None:
    with pytest.raises(SRStudioError, match="real degradation"):
        TrainConfig(model="A2F-SD", scale=2, hr_dirs=("x",), behind="c.safetensors")
    config = TrainConfig(
        model="A2F-SD", scale=2, hr_dirs=("x",), degradation="real", behind="c.safetensors"
    )
    real = config.real_degradation()
    assert real.blur_probability == 0 and real.resize_methods == ("bicubic",)
    with pytest.raises(SRStudioError, match="resize methods"):
        RealDegradation(resize_methods=("nearest",))
    hr = _photo(64, 64, seed=4)
    plain = RealDegradation(noise_probability=0.0, jpeg=(100, 100), blur_probability=0.0)
    only_bicubic = RealDegradation(
        noise_probability=0.0, jpeg=(100, 100), blur_probability=0.0, resize_methods=("bicubic",)
    )
    drawn = [
        degrade_real(hr, 2, np.random.default_rng(seed), plain).astype(int)
        - degrade_real(hr, 2, np.random.default_rng(seed), only_bicubic).astype(int)
        for seed in range(6)
    ]
    assert any(np.abs(d).max() > 2 for d in drawn)  # other methods were drawn by the default


def test_training_behind_the_cleanup_records_it_and_is_used_behind_it(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    up_path, installed, out = _train_behind(tmp_path, capsys, monkeypatch)
    meta = inspect_weights_file(out)
    behind = meta["data"]["behind"]
    assert behind["name"] == "Cleanup-S x1" and len(behind["sha256"]) == 64
    assert meta["data"]["real"]["blur_probability"] == 0.0
    assert meta["base_weights"]["sha256"] and meta["base_weights"]["name"] == "A2F-SD x2"
    # not an upscaler of its own: the picker never lists it
    assert all(e.path.resolve() != out.resolve() for e in installed_weights())
    found = behind_cleanup(up_path, installed)
    assert found is not None and found.path.resolve() == out.resolve()

    png = tmp_path / "in.png"
    Image.fromarray(_photo(24, 32, seed=9)).save(png)
    img = read_image(png)
    up = Upscaler(load_model(up_path), UpscaleOptions(tile=0, device="cpu", cleanup="on"))
    cleanup, trained = load_model(installed), load_model(out)
    expected = Upscaler(
        with_cleanup(trained, cleanup), UpscaleOptions(tile=0, device="cpu", cleanup="off")
    ).upscale_image(img)
    beside = Upscaler(
        with_cleanup(load_model(up_path), cleanup),
        UpscaleOptions(tile=0, device="cpu", cleanup="off"),
    ).upscale_image(img)
    got = up.upscale_image(img)
    assert torch.equal(got.rgb, expected.rgb)
    assert not torch.equal(got.rgb, beside.rgb)  # the trained file ran, not the one it came from


def test_a_changed_base_or_cleanup_matches_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    up_path, installed, _ = _train_behind(tmp_path, capsys, monkeypatch)
    assert behind_cleanup(up_path, installed) is not None
    original = up_path.read_bytes()
    for path, family, variant, scale in ((up_path, "A2F", "SD", 2), (installed, "Cleanup", "S", 1)):
        other = load_model(path).model
        with torch.no_grad():
            next(other.parameters()).add_(1.0)
        save_checkpoint(path, other, family=family, variant=variant, scale=scale)
        assert behind_cleanup(up_path, installed) is None
        up_path.write_bytes(original)


def test_only_a_cleanup_network_goes_in_front(tmp_path: Path, capsys, monkeypatch) -> None:
    hr, up_path, _ = _files(tmp_path)
    config = TrainConfig(
        base=str(up_path), hr_dirs=(str(hr),), degradation="real", behind=str(up_path),
        iterations=1, batch_size=1, patch_size=16, output=str(tmp_path / "o.safetensors"),
        device="cpu",
    )  # fmt: skip
    from engine.training.loop import train

    with pytest.raises(SRStudioError, match="not a clean-up network"):
        train(config)
