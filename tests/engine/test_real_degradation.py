"""The "real" degradation of the trainer (issue 31): photos' blur, resizes, noise and JPEG,
reproducible by seed, and the clean-up network's training pairs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.errors import SRStudioError
from engine.training.config import TrainConfig
from engine.training.data import CLEANUP_SHRINK, ImageEntry, PatchSampler
from engine.training.real_degradation import RealDegradation, degrade_real, parse_range


def _photo(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(smooth).resize((w, h), Image.Resampling.BICUBIC))
    return np.clip(big.astype(int) + rng.integers(-3, 4, big.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_reproducible_by_seed_and_different_between_seeds(scale: int) -> None:
    hr = _photo()
    options = RealDegradation()
    runs = [degrade_real(hr, scale, np.random.default_rng([7, k]), options) for k in (0, 0, 1)]
    assert runs[0].shape == (hr.shape[0] // scale, hr.shape[1] // scale, 3)
    assert runs[0].dtype == np.uint8
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_jpeg_and_noise_ranges_shape_the_damage() -> None:
    """A narrow low-quality noisy range damages more than a narrow high-quality clean one."""
    hr = _photo(seed=3)
    mild = RealDegradation(jpeg=(95, 95), noise_probability=0.0, second_order_probability=0.0)
    harsh = RealDegradation(jpeg=(20, 20), noise=(15, 15), noise_probability=1.0)

    def error(options: RealDegradation) -> float:
        out = degrade_real(hr, 1, np.random.default_rng(0), options)
        return float(np.abs(out.astype(float) - hr).mean())

    assert 3 * error(mild) < error(harsh)


def test_ranges_are_checked_in_one_line() -> None:
    assert parse_range("50-90", what="--jpeg", integer=True) == (50, 90)
    assert parse_range("7.5", what="--noise", integer=False) == (7.5, 7.5)
    for bad in ("", "a-b", "1-2-3"):
        with pytest.raises(SRStudioError, match="LOW-HIGH"):
            parse_range(bad, what="--jpeg", integer=True)
    with pytest.raises(SRStudioError, match="1-100"):
        RealDegradation(jpeg=(90, 50))
    with pytest.raises(SRStudioError, match="0-100"):
        RealDegradation(noise=(-1, 5))
    with pytest.raises(SRStudioError, match="real degradation"):
        TrainConfig(model="A2F-SD", scale=2, hr_dirs=("x",), jpeg=(50, 90))


def test_cleanup_pairs_are_clean_targets_and_damaged_inputs(tmp_path) -> None:
    path = tmp_path / "p.png"
    Image.fromarray(_photo(400, 400)).save(path)
    entry = ImageEntry(path, None, 400)
    sampler = PatchSampler(
        [entry], scale=1, patch_size=32, degradation="real", noise_level=0, seed=5,
        real=RealDegradation(jpeg=(30, 30), noise_probability=0.0),
    )  # fmt: skip
    lr, hr = sampler.batch(0, 8)
    again = sampler.batch(0, 8)
    assert lr.shape == hr.shape == (8, 3, 32, 32)
    assert lr.equal(again[0]) and hr.equal(again[1])
    assert 0.003 < (lr - hr).abs().mean() < 0.1  # JPEG at 30: damaged, not another picture
    assert max(CLEANUP_SHRINK) == 4


def test_train_cli_takes_the_real_degradation(tmp_path, capsys) -> None:
    hr = tmp_path / "hr"
    hr.mkdir()
    for i in range(3):
        Image.fromarray(_photo(120, 120, seed=i)).save(hr / f"{i}.png")
    out = tmp_path / "c.safetensors"
    argv = ["train", "--model", "Cleanup-S", "--scale", "1", "--hr", str(hr), "--iterations", "2"]
    argv += ["--batch", "2", "--patch", "24", "--degradation", "real", "--jpeg", "40-60"]
    argv += ["--noise", "2-4", "--output", str(out), "--val-split", "1", "--val-every", "2"]
    assert main(argv) == 0, capsys.readouterr().err
    from engine.weights_file import inspect_weights_file

    meta = inspect_weights_file(out)
    assert meta["family"] == "Cleanup" and meta["scale"] == 1
    real = meta["data"]["real"]
    assert real["kind"] == "real" and real["jpeg"] == [40, 60] and real["noise"] == [2.0, 4.0]
    bad = ["train", "--model", "A2F-SD", "--scale", "2", "--hr", str(hr), "--jpeg", "40-60"]
    assert main(bad) == 2
    assert "--jpeg goes with --degradation real" in capsys.readouterr().err
