from __future__ import annotations

import dataclasses
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.checkpoints import load_model, read_state_dict
from engine.evaluate import load_pairs, make_lr
from engine.training import LogEvent, LossEvent, TrainConfig, ValidationEvent, train
from engine.training.config import learning_rate
from engine.training.data import (
    MARGIN,
    ImageEntry,
    PatchSampler,
    degrade,
    hold_out,
    scan,
    validation_pairs,
)
from engine.training.state import load_state, state_path

ROOT = Path(__file__).resolve().parents[2]


def _image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth stripes plus a little noise: learnable, and never flat."""
    y, x = np.mgrid[0:h, 0:w] / 8.0
    f = rng.uniform(0.5, 1.5, size=(2, 3))
    phase = rng.uniform(0, 6, size=3)
    img = 127 + 60 * np.sin(y[..., None] * f[0] + x[..., None] * f[1] + phase)
    return (img + rng.normal(0, 6, (h, w, 3))).clip(0, 255).astype(np.uint8)


def _folder(path: Path, count: int, size: tuple[int, int] = (48, 56), seed: int = 0) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(_image(rng, *size)).save(path / f"im{i}.png")
    return path


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, Path]:
    return _folder(tmp_path / "hr", 4), _folder(tmp_path / "val", 2, seed=1)


def _config(images: tuple[Path, Path], out: Path, **kw) -> TrainConfig:
    hr, val = images
    base = dict(
        model="A2F-SD",
        scale=2,
        hr_dirs=(str(hr),),
        val_dir=str(val),
        patch_size=12,
        batch_size=4,
        iterations=12,
        lr=5e-4,
        val_every=6,
        log_every=1,
        output=str(out),
        device="cpu",
    )
    return TrainConfig(**(base | kw))


# ------------------------------------------------------------------------------ degradations


@pytest.mark.parametrize("kind", ["BI", "BD"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_patch_degradation_equals_crop_of_whole_image(kind, scale):
    rng = np.random.default_rng(scale)
    hr = _image(rng, 30 * scale, 27 * scale)
    whole = degrade(hr, scale, kind)
    if kind == "BI":  # MATLAB bicubic, as the benchmark LR files were made
        np.testing.assert_array_equal(whole, make_lr(hr, scale))
    p = 10
    for y, x in [(0, 0), (20, 17), (7, 9), (0, 15), (18, 3)]:
        y0, x0 = max(0, y - MARGIN), max(0, x - MARGIN)
        y1, x1 = min(30, y + p + MARGIN), min(27, x + p + MARGIN)
        region = degrade(hr[y0 * scale : y1 * scale, x0 * scale : x1 * scale], scale, kind)
        np.testing.assert_array_equal(
            region[y - y0 : y - y0 + p, x - x0 : x - x0 + p], whole[y : y + p, x : x + p]
        )


def test_bd_blurs_and_dn_adds_noise_of_the_given_level():
    rng = np.random.default_rng(0)
    hr = rng.integers(60, 196, (96, 96, 3), dtype=np.uint8)  # white noise: blur shows clearly
    bi, bd = degrade(hr, 3, "BI"), degrade(hr, 3, "BD")
    assert bd.shape == bi.shape == (32, 32, 3)
    assert bd.astype(float).std() < 0.7 * bi.astype(float).std()
    dn = degrade(hr, 3, "DN", noise_level=30, rng=np.random.default_rng(1))
    diff = dn.astype(float) - bi.astype(float)
    assert abs(diff.std() - 30) < 3 and abs(diff.mean()) < 3
    same = degrade(hr, 3, "DN", noise_level=30, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(dn, same)


# ------------------------------------------------------------------------------ data


def test_scan_skips_unreadable_small_and_unpaired_images_with_warnings(tmp_path):
    hr = _folder(tmp_path / "hr", 3)
    (hr / "garbage.png").write_bytes(b"not an image at all")
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(hr / "tiny.png")
    (hr / "notes.txt").write_text("not an image suffix: ignored silently")
    warnings: list[str] = []
    entries = scan([str(hr)], None, 2, 12, warnings.append)
    assert [e.hr.name for e in entries] == ["im0.png", "im1.png", "im2.png"]
    assert any("garbage.png" in w and "unreadable" in w for w in warnings)
    assert any("tiny.png" in w and "too small" in w for w in warnings)
    assert len(warnings) == 2

    lr = tmp_path / "lr"
    lr.mkdir()
    for name in ("im0.png", "im1x2.png"):  # same name, and DIV2K's "<stem>x<scale>"
        Image.fromarray(np.zeros((24, 28, 3), np.uint8)).save(lr / name)
    warnings.clear()
    paired = scan([str(hr)], [str(lr)], 2, 12, warnings.append)
    assert [(e.hr.name, e.lr.name) for e in paired] == [
        ("im0.png", "im0.png"),
        ("im1.png", "im1x2.png"),
    ]
    assert any("im2.png" in w and "no LR image" in w for w in warnings)


def test_hold_out_is_seeded_and_disjoint(tmp_path):
    entries = [ImageEntry(tmp_path / f"{i}.png", None) for i in range(10)]
    train_a, val_a = hold_out(entries, 0.3, seed=5)
    train_b, val_b = hold_out(entries, 0.3, seed=5)
    assert val_a == val_b and len(val_a) == 3 and len(train_a) == 7
    assert not set(train_a) & set(val_a)
    assert len(hold_out(entries, 4, seed=5)[1]) == 4
    assert hold_out(entries, 0.0, seed=5) == (entries, [])


def _sampler(entries, **kw) -> PatchSampler:
    args = dict(scale=2, patch_size=8, degradation="BI", noise_level=0.0, seed=3)
    return PatchSampler(entries, **(args | kw))


def test_paired_lr_folder_gives_the_patches_bicubic_would(tmp_path):
    hr = _folder(tmp_path / "hr", 3)
    lr = tmp_path / "lr"
    lr.mkdir()
    for path in sorted(hr.iterdir()):
        Image.fromarray(make_lr(np.array(Image.open(path)), 2)).save(lr / path.name)
    fly = _sampler(scan([str(hr)], None, 2, 8, print))
    paired = _sampler(scan([str(hr)], [str(lr)], 2, 8, print))
    for k in range(12):
        (a_lr, a_hr), (b_lr, b_hr) = fly.sample(k), paired.sample(k)
        np.testing.assert_array_equal(a_lr, b_lr)
        np.testing.assert_array_equal(a_hr, b_hr)
        assert a_lr.shape == (8, 8, 3) and a_hr.shape == (16, 16, 3)
    lr_batch, hr_batch = fly.batch(2, 5)
    assert lr_batch.shape == (5, 3, 8, 8) and hr_batch.shape == (5, 3, 16, 16)
    assert lr_batch.dtype == torch.float32
    assert 0 <= float(lr_batch.min()) <= float(lr_batch.max()) <= 1


def test_ranks_take_disjoint_shards_of_each_epoch(tmp_path):
    entries = [ImageEntry(tmp_path / f"{i}.png", None) for i in range(7)]
    ranks = [_sampler(entries, rank=r, world=2) for r in range(2)]
    per_rank = 4  # ceil(7 / 2), the last one wrapped around as DistributedSampler pads
    for epoch in range(2):
        seen = [
            [ranks[r]._image_index(epoch * per_rank + i) for i in range(per_rank)] for r in range(2)
        ]
        assert set(seen[0]) | set(seen[1]) == set(range(7))
        assert len(set(seen[0]) & set(seen[1])) <= 1
    assert ranks[0]._image_index(0) != _sampler(entries, seed=4)._image_index(0) or (
        ranks[0]._image_index(1) != _sampler(entries, seed=4)._image_index(1)
    )


def test_preloading_in_another_thread_leaves_the_batches_unchanged(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    folder = _folder(tmp_path / "hr", 6, size=(40, 44))
    entries = scan([folder], None, 2, 8, print)

    def sampler() -> PatchSampler:
        return PatchSampler(
            entries, scale=2, patch_size=8, degradation="BI", noise_level=0, seed=3, cache_mb=0
        )

    plain = [sampler().batch(i, 3) for i in range(5)]
    overlapped, s = [], sampler()
    with ThreadPoolExecutor(1) as pool:
        for i in range(5):
            ahead = pool.submit(s.preload, i + 1, 3)  # as the trainer does, cache of one image
            overlapped.append(s.batch(i, 3))
            ahead.result()
    for (lr_a, hr_a), (lr_b, hr_b) in zip(plain, overlapped, strict=True):
        assert torch.equal(lr_a, lr_b) and torch.equal(hr_a, hr_b)


def test_truncated_image_is_skipped_with_a_warning_and_replaced(tmp_path):
    hr = _folder(tmp_path / "hr", 2)
    data = (hr / "im0.png").read_bytes()
    (hr / "im0.png").write_bytes(data[: len(data) // 2])  # header fine, pixels cut off
    warnings: list[str] = []
    entries = scan([str(hr)], None, 2, 8, warnings.append)
    assert len(entries) == 2 and not warnings  # the header alone looks fine
    sampler = _sampler(entries, warn=warnings.append)
    for k in range(6):
        sampler.sample(k)
    assert len(warnings) == 1 and "im0.png" in warnings[0]
    assert sampler.bad == {0}


def test_validation_pairs_match_the_evaluation_protocol(images):
    hr, _ = images
    entries = scan([str(hr)], None, 2, 1, print)
    pairs = validation_pairs(
        entries, scale=2, degradation="BI", noise_level=0, seed=0, limit=3, warn=print
    )
    reference = load_pairs(hr, None, 2)[:3]
    assert [p.name for p in pairs] == [p.name for p in reference]
    for ours, theirs in zip(pairs, reference, strict=True):
        np.testing.assert_array_equal(ours.lr, theirs.lr)
        np.testing.assert_array_equal(ours.hr, theirs.hr)


# ------------------------------------------------------------------------------ schedule


def test_learning_rate_warms_up_then_follows_the_schedule(tmp_path):
    cfg = TrainConfig(model="A2F-SD", hr_dirs=("x",), iterations=100, lr=1e-3, warmup=10)
    rates = [learning_rate(cfg, i) for i in range(100)]
    assert all(a < b for a, b in zip(rates[:10], rates[1:11], strict=True))
    assert rates[10] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))
    assert rates[-1] == pytest.approx(1e-5, rel=0.1)
    step = dataclasses.replace(cfg, schedule="step", step_every=30)
    assert learning_rate(step, 39) == pytest.approx(1e-3)
    assert learning_rate(step, 40) == pytest.approx(5e-4)
    assert learning_rate(step, 99) == pytest.approx(2.5e-4)
    finetune = TrainConfig(base="w.pt", hr_dirs=("x",))
    assert finetune.effective_lr < TrainConfig(model="A2F-SD", hr_dirs=("x",)).effective_lr


def test_config_rejects_bad_settings():
    from engine.errors import SRStudioError

    with pytest.raises(SRStudioError, match="model name"):
        TrainConfig(hr_dirs=("x",))
    with pytest.raises(SRStudioError, match="degradation"):
        TrainConfig(model="A2F-SD", hr_dirs=("x",), degradation="XX")
    with pytest.raises(SRStudioError, match="EMA"):
        TrainConfig(model="A2F-SD", hr_dirs=("x",), ema=1.5)


# ------------------------------------------------------------------------------ training


def test_short_run_lowers_the_loss_validates_and_writes_a_loadable_model(images, tmp_path):
    out = tmp_path / "out" / "a2f.safetensors"
    events: list[object] = []
    progress: list[tuple[int, int]] = []
    cfg = _config(images, out, iterations=40, val_every=20, ema=0.9)
    result = train(cfg, on_event=events.append, on_progress=lambda d, t: progress.append((d, t)))
    losses = [e.loss for e in events if isinstance(e, LossEvent)]
    assert len(losses) == 40
    assert np.mean(losses[-8:]) < 0.6 * np.mean(losses[:8])
    vals = [e for e in events if isinstance(e, ValidationEvent)]
    assert [v.iteration for v in vals] == [0, 20, 40]
    assert vals[-1].psnr > vals[0].psnr + 3
    lr_img, sr_img, hr_img = vals[-1].preview
    assert sr_img.shape == hr_img.shape == (lr_img.shape[0] * 2, lr_img.shape[1] * 2, 3)
    assert sr_img.dtype == np.uint8
    assert progress[0] == (0, 40) and progress[-1] == (40, 40)
    assert any(isinstance(e, LogEvent) and "from scratch" in e.text for e in events)

    assert result.iterations == 40 and not result.stopped
    assert result.best_psnr == max(v.psnr for v in vals)
    desc = load_model(out)  # the format `srstudio eval --weights` and the app load
    assert (desc.family, desc.variant, desc.scale) == ("A2F", "SD", 2)
    meta = desc.metadata
    assert meta["origin"] == "trained" and meta["base_weights"] is None
    assert meta["data"]["hr_dirs"] == [str(images[0].resolve())]
    assert [h["iteration"] for h in meta["validation_history"]] == [0, 20, 40]
    assert meta["psnr"] == pytest.approx(result.best_psnr)
    assert meta["iterations"] == 40
    saved = load_state(state_path(out))  # torch.load(weights_only=True)
    assert saved["iteration"] == 40


def test_fine_tuning_starts_from_the_base_weights(images, tmp_path):
    first = tmp_path / "first.safetensors"
    train(_config(images, first, iterations=4, ema=0.0))
    out = tmp_path / "second.safetensors"
    events: list[object] = []
    cfg = _config(images, out, model=None, base=str(first), iterations=2, lr=1e-6, ema=0.0)
    result = train(cfg, on_event=events.append)
    vals = [e for e in events if isinstance(e, ValidationEvent)]
    start = load_model(first).metadata["psnr"]
    assert vals[0].iteration == 0 and vals[0].psnr == pytest.approx(start, abs=1e-9)
    meta = load_model(out).metadata
    assert meta["base_weights"]["path"] == str(first)
    assert len(meta["base_weights"]["sha256"]) == 64
    assert result.iterations == 2


def test_weights_trained_further_in_place_keep_their_whole_lineage(images, tmp_path):
    x2 = tmp_path / "x2.safetensors"
    train(_config(images, x2, iterations=2, ema=0.0))
    x4 = tmp_path / "x4.safetensors"
    train(_config(images, x4, scale=4, init=str(x2), iterations=2, ema=0.0))
    first_sha = load_model(x4).metadata["base_weights"]["sha256"]
    # Trained further into the same file: the first x4 run's own record survives inside.
    train(_config(images, x4, model=None, base=str(x4), scale=4, iterations=4, ema=0.0))
    base = load_model(x4).metadata["base_weights"]
    assert base["path"] == str(x4) and base["sha256"] != first_sha
    made = base["metadata"]
    assert made["iterations"] == 2 and made["training"]["init"] == str(x2)
    assert made["data"]["hr_dirs"] == [str(images[0].resolve())]
    assert made["base_weights"]["path"] == str(x2) and made["base_weights"]["sha256"] == first_sha
    assert made["base_weights"]["metadata"]["base_weights"] is None  # x2: from scratch


def test_a_run_in_place_that_never_improves_leaves_the_file_as_it_was(images, tmp_path):
    weights = tmp_path / "w.safetensors"
    train(_config(images, weights, iterations=2, ema=0.0))
    before = weights.read_bytes()
    events: list[object] = []
    # A step too small to change a float32 weight: no validation can beat the starting point.
    cfg = _config(images, weights, model=None, base=str(weights), iterations=2, lr=1e-30, ema=0.0)
    result = train(cfg, on_event=events.append)
    assert weights.read_bytes() == before
    assert result.best_psnr == pytest.approx(load_model(weights).metadata["psnr"], abs=1e-9)
    logs = [e.text for e in events if isinstance(e, LogEvent)]
    assert any("left as it was" in text for text in logs)


def test_every_scale_and_patch_size_holds_out_the_same_images(tmp_path):
    hr = _folder(tmp_path / "hr", 8)  # 48x56: LR side 24 at x2, 12 at x4
    rng = np.random.default_rng(2)
    for i in range(3):  # LR side 15 at x2, 7 at x4: too small for some of the patches below
        Image.fromarray(_image(rng, 30, 30)).save(hr / f"small{i}.png")

    def run(name: str, **kw) -> tuple[list[str], list[str]]:
        events: list[object] = []
        out = tmp_path / f"{name}.safetensors"
        cfg = _config((hr, hr), out, iterations=1, val_dir=None, val_split=3, ema=0.0, **kw)
        train(cfg, on_event=events.append)
        notes = [e.text for e in events if isinstance(e, LogEvent) and "held out" in e.text]
        return load_model(out).metadata["data"]["held_out"], notes

    x2, _ = run("x2")
    assert len(x2) == 3 and all(name.startswith("hr/") for name in x2)
    x4, x4_notes = run("x4", scale=4, init=str(tmp_path / "x2.safetensors"))
    assert x4 == x2 and not x4_notes  # started from the x2: validates on images it never saw
    assert run("p16", patch_size=16)[0] == x2
    other, notes = run("seed1", seed=1, scale=4, init=str(tmp_path / "x2.safetensors"))
    assert other != x2 and notes  # another seed holds out others: the log says so
    shipped = ROOT / "weights" / "CRAN-tiny-x4.safetensors"  # made before they were recorded
    _, notes = run("shipped", model=None, scale=4, base=str(shipped))
    assert any("do not record which images" in text for text in notes)


def test_init_copies_the_tensors_that_fit_and_leaves_the_upsampler_fresh(images, tmp_path):
    x2 = tmp_path / "x2.safetensors"
    train(_config(images, x2, iterations=3, ema=0.0))
    out = tmp_path / "x4.safetensors"
    events: list[object] = []
    cfg = _config(images, out, scale=4, init=str(x2), iterations=1, lr=1e-9, ema=0.0)
    train(cfg, on_event=events.append)
    theirs, _ = read_state_dict(x2)
    ours, _ = read_state_dict(out)
    same = [k for k in ours if k in theirs and ours[k].shape == theirs[k].shape]
    differ = [k for k in ours if k not in same]
    assert same and differ  # the x4 upsampler has other shapes than the x2 one
    assert all(torch.allclose(ours[k], theirs[k], atol=1e-6) for k in same)
    meta = load_model(out).metadata["base_weights"]
    assert meta["path"] == str(x2) and meta["tensors"] == f"{len(same)} of {len(ours)}"
    assert any(isinstance(e, LogEvent) and f"{len(same)} of" in e.text for e in events)

    from engine.errors import SRStudioError

    with pytest.raises(SRStudioError, match="not a HPINet"):
        train(_config(images, tmp_path / "h.safetensors", model="HPINet-S", init=str(x2)))
    with pytest.raises(SRStudioError, match="with --model"):
        _config(images, out, model=None, base=str(x2), init=str(x2))


def test_default_output_lands_in_the_library(images, tmp_path, monkeypatch):
    from engine import library

    monkeypatch.setenv("SRSTUDIO_DATA_DIR", str(tmp_path / "data"))
    cfg = _config(images, tmp_path / "unused", output=None, iterations=2, val_dir=None)
    result = train(dataclasses.replace(cfg, degradation="BD"))
    out = Path(result.output)
    assert out.parent == library.user_dir() / "trained" and out.name.startswith("A2F-SD-x2-")
    entries = [e for e in library.installed_weights() if e.path == out]
    assert len(entries) == 1 and entries[0].origin == "trained"
    assert (entries[0].family, entries[0].variant, entries[0].scale) == ("A2F", "SD", 2)
    assert entries[0].metadata["data"]["degradation"] == "BD"
    assert not state_path(out).with_suffix(".json").exists()  # the state is no library entry


def test_gradient_clipping_limits_the_updates(images, tmp_path):
    from engine.archs import a2f

    torch.manual_seed(0)  # the trainer seeds the fresh network the same way (seed 0)
    initial = a2f.build(a2f.config("SD", 2)).state_dict()

    def weight_change(name: str, clip: float) -> float:
        out = tmp_path / name
        cfg = _config(images, out, iterations=3, val_dir=None, ema=0.0, warmup=0, grad_clip=clip)
        train(cfg)
        final = load_state(state_path(out))["model"]
        return float(sum((final[k] - initial[k]).abs().sum() for k in initial))

    free, clipped = weight_change("free.safetensors", 0.0), weight_change("c.safetensors", 1e-12)
    # Adam normalises its steps by the gradient size, unless that falls below its epsilon (1e-8)
    assert free > 0 and clipped < 1e-3 * free


def test_stop_then_resume_equals_an_uninterrupted_run(images, tmp_path):
    full_out = tmp_path / "full.safetensors"
    train(_config(images, full_out, ema=0.9, checkpoint_every=3))
    out = tmp_path / "parts.safetensors"
    calls = {"n": 0}

    def stop_after_five() -> bool:
        calls["n"] += 1
        return calls["n"] >= 5

    first = train(_config(images, out, ema=0.9, checkpoint_every=3), should_stop=stop_after_five)
    assert first.stopped and first.iterations == 5
    events: list[object] = []
    second = train(
        _config(images, out, ema=0.9, checkpoint_every=3, resume=True), on_event=events.append
    )
    assert second.iterations == 12 and not second.stopped
    assert [e.iteration for e in events if isinstance(e, LossEvent)][0] == 6
    assert not [e for e in events if isinstance(e, LogEvent) and e.text.startswith("note:")]
    a, b = load_state(state_path(full_out)), load_state(state_path(out))
    for key in ("model", "ema"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), (key, name)
    assert a["history"] == b["history"]
    sd_a, _ = read_state_dict(full_out)
    sd_b, _ = read_state_dict(out)
    assert all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine.cli", "train", *args]


def _env() -> dict[str, str]:
    return os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def test_killed_run_resumes_to_the_weights_of_an_uninterrupted_run(images, tmp_path):
    hr, _ = images
    options = (
        "--model A2F-SD --scale 2 --patch 16 --batch 4 --iterations 40 --checkpoint-every 1 "
        "--val-every 1000 --ema 0.9 --learning-rate 5e-4 --device cpu --seed 7"
    )
    common = ["--hr", str(hr), *shlex.split(options)]
    full = tmp_path / "full.safetensors"
    done = subprocess.run(
        _cli(*common, "--output", str(full)),
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr

    out = tmp_path / "killed.safetensors"
    proc = subprocess.Popen(
        _cli(*common, "--output", str(out)),
        env=_env(),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state_file = state_path(out)
    deadline = time.monotonic() + 60
    while not state_file.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(0.1)  # a few more iterations: the checkpoint is overwritten while it runs
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL, "the run finished before it was killed"
    killed_at = load_state(state_file)["iteration"]
    assert 0 <= killed_at < 40

    resumed = subprocess.run(
        _cli(*common, "--output", str(out), "--resume"),
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming at iteration {killed_at}" in resumed.stderr
    a, b = load_state(state_path(full)), load_state(state_file)
    assert b["iteration"] == 40
    for key in ("model", "ema"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), (key, name)
    sd_a, _ = read_state_dict(full)
    sd_b, _ = read_state_dict(out)
    assert all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)


@pytest.mark.parametrize("name", ["RNAN-light", "CRAN-light", "HPINet-S"])
def test_every_family_trains(name, images, tmp_path, monkeypatch):
    calls = {"gumbel": 0}
    gumbel = torch.nn.functional.gumbel_softmax

    def counting_gumbel(*args, **kwargs):
        calls["gumbel"] += 1
        return gumbel(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "gumbel_softmax", counting_gumbel)
    out = tmp_path / "m.safetensors"
    cfg = _config(
        images,
        out,
        model=name,
        patch_size=8,
        batch_size=1,
        iterations=2,
        val_every=1000,
        val_dir=None,
    )
    result = train(cfg)
    desc = load_model(out)
    assert desc.name == name and desc.scale == 2 and result.iterations == 2
    # HPINet matches hard (Gumbel-softmax) while training; no other family uses it
    assert (calls["gumbel"] > 0) == name.startswith("HPINet")


@pytest.mark.slow
def test_fine_tuning_released_a2f_sd_x2_keeps_set5_psnr_and_loads_in_eval(
    shared_dir, tmp_path, capsys
):
    """200 iterations on ../shared/train (no validation: the file holds the last weights, not a
    kept best) stay within 0.1 dB of the released model on Set5; `srstudio eval` loads it."""
    import json

    from engine.cli import main as cli_main
    from engine.evaluate import evaluate

    base = shared_dir / "official-weights" / "a2f" / "AAF_SD_x2.pt"
    set5 = shared_dir / "benchmarks" / "Set5" / "x2"
    pairs = load_pairs(set5 / "HR", set5 / "LR", 2)

    def set5_psnr(path: Path) -> float:
        model = load_model(path).model.eval()
        return evaluate(model, pairs, 2, model=path.name).psnr

    train_dirs = tuple(str(shared_dir / "train" / d) for d in ("T91", "BSD200", "SunHays80"))
    out = tmp_path / "a2f-sd-x2-finetuned.safetensors"
    cfg = TrainConfig(
        base=str(base),
        hr_dirs=train_dirs,
        patch_size=48,
        batch_size=4,
        iterations=200,
        lr=2e-5,
        ema=0.0,
        val_every=10_000,
        output=str(out),
        device="cpu",
    )
    result = train(cfg)
    assert result.iterations == 200
    start, end = set5_psnr(base), set5_psnr(out)
    assert start > 37.8  # the released model (A2F-SD x2: 37.91 dB in the paper)
    assert abs(end - start) < 0.1, (start, end)
    meta = load_model(out).metadata
    assert meta["base_weights"]["path"] == str(base) and meta["iterations"] == 200

    args = ["--weights", str(out), "--hr", str(set5 / "HR"), "--lr", str(set5 / "LR")]
    code = cli_main(["eval", *args, *shlex.split("--device cpu --tile 0 --json")])
    assert code == 0
    reported = json.loads(capsys.readouterr().out)
    assert reported["psnr"] == pytest.approx(end, abs=1e-6)
