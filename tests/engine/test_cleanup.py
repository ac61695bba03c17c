"""The clean-up stage (issue 31): the 1x network, its place in the registry and the library, the
cascade in one tiled pass, and `--clean-up auto` leaving clean input untouched."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.archs import registry
from engine.archs.cleanup import build, config, detect
from engine.checkpoints import load_model
from engine.cli import main
from engine.evaluate import score
from engine.imaging.io import read_image
from engine.inference.cascade import Cascade, with_cleanup
from engine.inference.cleanup_choice import CleanupReason
from engine.inference.upscaler import UpscaleOptions, Upscaler
from engine.library import cleanup_weights, installed_weights

ROOT = Path(__file__).resolve().parents[2]
BUNDLED_CLEANUP = ROOT / "weights" / "Cleanup-S-x1.safetensors"


def _jpeg(arr: np.ndarray, quality: int, path: Path) -> Path:
    Image.fromarray(arr).save(path, "JPEG", quality=quality)
    return path


def _picture(h: int = 40, w: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 4, w // 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC))


def test_an_untrained_cleanup_returns_its_input_and_is_recognised() -> None:
    net = build(config("S", 1)).eval()
    x = torch.rand(1, 3, 23, 17)
    with torch.no_grad():
        assert torch.allclose(net(x), x, atol=1e-5)
    assert detect(net.state_dict()) == config("S", 1)
    family, _ = registry.detect(net.state_dict())
    assert family.name == "Cleanup"
    assert "Cleanup" not in [f.name for f in registry.FAMILIES]  # never offered as an upscaler


def test_the_bundled_cleanup_is_installed_but_no_upscaler() -> None:
    entry = cleanup_weights()
    assert entry is not None and entry.path.resolve() == BUNDLED_CLEANUP.resolve()
    assert all(e.family != "Cleanup" for e in installed_weights())
    desc = load_model(BUNDLED_CLEANUP)
    assert (desc.family, desc.variant, desc.scale) == ("Cleanup", "S", 1)


def test_the_cascade_is_the_cleanup_then_the_upscaler() -> None:
    cleanup, upscaler = load_model(BUNDLED_CLEANUP), load_model("A2F-SD", scale=2)
    cascade = with_cleanup(upscaler, cleanup)
    assert isinstance(cascade.model, Cascade)
    assert cascade.tile_overlap == upscaler.tile_overlap + cleanup.tile_overlap
    x = torch.from_numpy(_picture().copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        expected = upscaler.model(cleanup.model(x).clamp(0, 1))
        assert torch.equal(cascade.model(x), expected)
    with pytest.raises(ValueError, match="not a 1x"):
        with_cleanup(cleanup, upscaler)


def test_auto_leaves_a_clean_png_exactly_as_off(tmp_path: Path) -> None:
    png = tmp_path / "clean.png"
    Image.fromarray(_picture(seed=1)).save(png)
    desc = load_model("A2F-SD", scale=2)
    img = read_image(png)
    off = Upscaler(desc, UpscaleOptions(tile=0, device="cpu", cleanup="off"))
    auto = Upscaler(desc, UpscaleOptions(tile=0, device="cpu", cleanup="auto"))
    decision = auto.cleanup_decision(img)
    assert not decision.on and decision.reason is CleanupReason.CLEAN
    assert torch.equal(off.upscale_image(img).rgb, auto.upscale_image(img).rgb)


def test_auto_cleans_a_compressed_jpeg(tmp_path: Path, caplog) -> None:
    img = read_image(_jpeg(_picture(seed=2), 50, tmp_path / "web.jpg"))
    desc = load_model("A2F-SD", scale=2)
    auto = Upscaler(desc, UpscaleOptions(tile=0, device="cpu", cleanup="auto"))
    off = Upscaler(desc, UpscaleOptions(tile=0, device="cpu", cleanup="off"))
    with caplog.at_level(logging.INFO):
        decision = auto.cleanup_decision(img)
    assert decision.on and decision.reason is CleanupReason.COMPRESSED
    assert "quality 50" in decision.describe() and "clean-up on" in caplog.text
    assert not torch.equal(off.upscale_image(img).rgb, auto.upscale_image(img).rgb)
    assert auto.for_image(img) is auto.cleaned


def test_no_cleanup_installed_is_said_not_failed(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setattr("engine.library.cleanup_weights", lambda: None)
    img = read_image(_jpeg(_picture(seed=3), 40, tmp_path / "a.jpg"))
    with caplog.at_level(logging.WARNING):
        up = Upscaler(load_model("A2F-SD", scale=2), UpscaleOptions(tile=0, cleanup="on"))
    assert up.cleaned is None and "no clean-up network installed" in caplog.text
    assert up.cleanup_decision(img).reason is CleanupReason.NO_NETWORK
    assert up.upscale_image(img).rgb.shape == (3, 80, 96)


def test_the_tiled_cascade_matches_the_whole_image_one(shared_dir: Path) -> None:
    """Within the tiling-fidelity bound (0.01 dB) on a Set14 LR image saved at JPEG 75."""
    lr_png = shared_dir / "benchmarks" / "Set14" / "x4" / "LR" / "img_012.png"
    hr = np.asarray(Image.open(shared_dir / "benchmarks" / "Set14" / "x4" / "HR" / "img_012.png"))
    buffer = io.BytesIO()
    Image.open(lr_png).convert("RGB").save(buffer, "JPEG", quality=75)
    jpeg = np.array(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    x = torch.from_numpy(jpeg).permute(2, 0, 1)[None].float() / 255
    desc = with_cleanup(load_model("A2F-SD", scale=4), load_model(BUNDLED_CLEANUP))
    scores = {}
    for tile in (0, 48):
        up = Upscaler(desc, UpscaleOptions(tile=tile, device="cpu"))
        y = up.upscale_tensor(x)
        sr = (y[0] * 255).round().byte().permute(1, 2, 0).numpy()
        scores[tile] = score(sr, hr[: sr.shape[0], : sr.shape[1]], 4)[0]
    assert scores[0] != scores[48]  # really two different passes
    assert abs(scores[0] - scores[48]) <= 0.01


def test_cli_clean_up_choice_and_its_reason(tmp_path: Path, capsys, caplog) -> None:
    src = _jpeg(_picture(seed=4), 60, tmp_path / "photo.jpg")
    argv = ["upscale", str(src), "-o", str(tmp_path / "out"), "--model", "A2F-SD", "--scale", "2"]
    argv += ["--device", "cpu"]
    with caplog.at_level(logging.INFO, logger="engine"):
        assert main(argv) == 0
    assert "clean-up on: a compressed JPEG (JPEG, saved at quality 60" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="engine"):
        assert main([*argv, "--clean-up", "off", "-o", str(tmp_path / "off")]) == 0
    assert "clean-up" not in caplog.text and (tmp_path / "off" / "photo_A2F-SD_x2.jpg").is_file()
    capsys.readouterr()
    assert main([*argv, "--clean-up", "maybe"]) == 2
    assert "invalid choice: 'maybe'" in capsys.readouterr().err


def test_eval_says_which_cleanup_ran_and_leaves_clean_png_scores(tmp_path: Path, capsys) -> None:
    import json

    from engine.evaluate import make_lr

    hr_dir, png_dir, jpg_dir = tmp_path / "hr", tmp_path / "lr_png", tmp_path / "lr_jpg"
    for d in (hr_dir, png_dir, jpg_dir):
        d.mkdir()
    for i in range(2):
        hr = _picture(48, 56, seed=10 + i)
        Image.fromarray(hr).save(hr_dir / f"im{i}.png")
        Image.fromarray(make_lr(hr, 2)).save(png_dir / f"im{i}.png")
        _jpeg(make_lr(hr, 2), 50, jpg_dir / f"im{i}.jpg")
    base = ["eval", "--model", "A2F-SD", "--scale", "2", "--hr", str(hr_dir), "--json"]

    def run(*extra: str) -> dict:
        assert main([*base, *extra]) == 0
        return json.loads(capsys.readouterr().out)

    off, auto = run("--lr", str(png_dir), "--clean-up", "off"), run("--lr", str(png_dir))
    assert auto["cleanup"] == "auto" and auto["cleaned"] == 0
    assert auto["psnr"] == off["psnr"] and auto["ssim"] == off["ssim"]
    jpeg = run("--lr", str(jpg_dir))
    assert jpeg["cleaned"] == 2
    assert all(s["cleanup"].startswith("clean-up on: a compressed JPEG") for s in jpeg["images"])


def test_the_bundled_cleanup_was_trained_here_on_shared_train_for_photos() -> None:
    meta = load_model(BUNDLED_CLEANUP).metadata
    assert meta["origin"] == "trained" and meta["base_weights"] is None  # from scratch
    dirs = [Path(d) for d in meta["data"]["hr_dirs"]]
    assert [d.name for d in dirs] == ["T91", "BSD200", "SunHays80"]
    assert all(d.parent.name == "train" for d in dirs)
    assert meta["data"]["degradation"] == "real" and meta["data"]["real"]["kind"] == "real"
    assert BUNDLED_CLEANUP.stat().st_size < 1e6


def test_the_batch_report_says_what_each_input_is_and_what_ran(tmp_path: Path) -> None:
    import json

    (tmp_path / "in").mkdir()
    _jpeg(_picture(seed=5), 60, tmp_path / "in" / "web.jpg")
    Image.fromarray(_picture(seed=6)).save(tmp_path / "in" / "scan.png")
    report = tmp_path / "report.json"
    argv = ["upscale", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", "A2F-SD"]
    assert main([*argv, "--scale", "2", "--device", "cpu", "--report", str(report)]) == 0
    records = {Path(r["input"]).name: r for r in json.loads(report.read_text())["files"]}
    assert records["web.jpg"]["input_quality"].startswith("JPEG, saved at quality 60;")
    assert records["web.jpg"]["cleanup"] == "clean-up on: JPEG quality 60"
    assert records["scan.png"]["input_quality"].startswith("PNG;")
    assert records["scan.png"]["cleanup"] == "clean-up off: a clean image"
    text = report.with_suffix(".txt").read_text()
    assert "input: JPEG, saved at quality 60; little or no noise; clean-up on: JPEG q" in text
