"""The trainer's speed options: channels-last tensors and bf16 autocast on the CPU (issue 17)."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.checkpoints import load_model
from engine.errors import SRStudioError
from engine.training import LogEvent, LossEvent, TrainConfig, loop, train
from engine.training.config import CHANNELS_LAST_DEFAULT
from engine.training.loop import _Numerics, cpu_native_bf16, resolve_precision
from engine.training.state import load_state, state_path
from tests.engine import test_training

images = test_training.images  # the fixture: four training and two validation images

ROOT = Path(__file__).resolve().parents[2]


def _config(images: tuple[Path, Path], out: Path, **kw) -> TrainConfig:
    """test_training's settings, 6 iterations and no validation on the way."""
    return test_training._config(images, out, **({"iterations": 6, "val_every": 1000} | kw))


# ------------------------------------------------------------------------------ settings


def test_precision_resolves_to_fp32_where_bf16_is_not_native(monkeypatch):
    assert resolve_precision("auto", native=False) == "fp32"
    assert resolve_precision("auto", native=True) == "bf16"
    assert resolve_precision("bf16", native=False) == "bf16"  # forced: emulated, but it runs
    assert resolve_precision("fp32", native=True) == "fp32"
    with pytest.raises(SRStudioError, match="precision"):
        resolve_precision("fp16")
    cpu = torch.device("cpu")
    monkeypatch.setattr(loop, "cpu_native_bf16", lambda: False)
    assert _Numerics.of(TrainConfig(model="A2F-SD", hr_dirs=("x",)), cpu).autocast is None
    monkeypatch.setattr(loop, "cpu_native_bf16", lambda: True)
    auto = _Numerics.of(TrainConfig(model="A2F-SD", hr_dirs=("x",)), cpu)
    assert auto.autocast == torch.bfloat16
    fp32 = _Numerics.of(TrainConfig(model="A2F-SD", hr_dirs=("x",), precision="fp32"), cpu)
    assert fp32.describe() == {"precision": "fp32", "channels_last": CHANNELS_LAST_DEFAULT}


@pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64") or not Path("/proc/cpuinfo").is_file(),
    reason="reads the x86 CPU flags of /proc/cpuinfo",
)
def test_native_bf16_follows_the_cpu_flags():
    flags = set(Path("/proc/cpuinfo").read_text().split())
    native = "avx512_bf16" in flags or "amx_bf16" in flags
    assert cpu_native_bf16() == native
    assert resolve_precision("auto") == ("bf16" if native else "fp32")


def test_config_keeps_the_new_settings_and_rejects_unknown_precisions():
    cfg = TrainConfig(model="A2F-SD", hr_dirs=("x",), precision="bf16", channels_last=True)
    again = TrainConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.precision == "bf16" and again.channels_last
    old = {k: v for k, v in cfg.to_dict().items() if k not in ("precision", "channels_last")}
    before = TrainConfig.from_dict(old)  # a run recorded before the options: the defaults
    assert (before.precision, before.channels_last) == ("auto", CHANNELS_LAST_DEFAULT)
    with pytest.raises(SRStudioError, match="precision"):
        TrainConfig(model="A2F-SD", hr_dirs=("x",), precision="fp16")


def test_cli_flags_reach_the_config():
    import argparse

    from engine.cli import train as cli_train

    parser = argparse.ArgumentParser()
    cli_train.add_parser(parser.add_subparsers())
    args = parser.parse_args(["train", "--model", "A2F-SD", "--hr", "x"])
    cfg = cli_train.config_from_args(args)
    assert (cfg.precision, cfg.channels_last) == ("auto", CHANNELS_LAST_DEFAULT)
    args = parser.parse_args(
        ["train", "--model", "A2F-SD", "--hr", "x", "--precision", "bf16", "--channels-last"]
    )
    cfg = cli_train.config_from_args(args)
    assert (cfg.precision, cfg.channels_last) == ("bf16", True)
    args = parser.parse_args(["train", "--model", "A2F-SD", "--hr", "x", "--no-channels-last"])
    assert not cli_train.config_from_args(args).channels_last


# ------------------------------------------------------------------------------ training


@pytest.mark.parametrize("name", ["RNAN-tiny", "CRAN-tiny", "A2F-SD", "HPINet-T"])
def test_channels_last_trains_like_contiguous(name, images, tmp_path):
    """Same batches, seeds and initial weights: the memory format changes only the rounding."""

    def losses(channels_last: bool) -> list[float]:
        events: list[object] = []
        out = tmp_path / f"{channels_last}.safetensors"
        cfg = _config(
            images,
            out,
            model=name,
            patch_size=8,
            batch_size=2,
            iterations=2,
            val_dir=None,
            channels_last=channels_last,
        )
        train(cfg, on_event=events.append)
        assert load_model(out).metadata["training"]["numerics"]["channels_last"] is channels_last
        return [e.loss for e in events if isinstance(e, LossEvent)]

    contiguous, nhwc = losses(False), losses(True)
    assert len(contiguous) == len(nhwc) == 2
    # the first loss is the same network on the same batch; the second follows one update
    np.testing.assert_allclose(nhwc, contiguous, rtol=1e-4)


def test_bf16_run_stops_and_resumes_exactly_and_records_its_numerics(images, tmp_path):
    kw = dict(precision="bf16", channels_last=True, ema=0.9, checkpoint_every=1)
    full = tmp_path / "full.safetensors"
    train(_config(images, full, **kw))
    out = tmp_path / "parts.safetensors"
    calls = {"n": 0}

    def stop_after_three() -> bool:
        calls["n"] += 1
        return calls["n"] >= 3

    first = train(_config(images, out, **kw), should_stop=stop_after_three)
    assert first.stopped and first.iterations == 3
    events: list[object] = []
    train(_config(images, out, resume=True, **kw), on_event=events.append)
    assert not [e for e in events if isinstance(e, LogEvent) and e.text.startswith("note:")]
    a, b = load_state(state_path(full)), load_state(state_path(out))
    for key in ("model", "ema"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), (key, name)
    meta = load_model(out).metadata["training"]
    assert meta["precision"] == "bf16"
    assert meta["numerics"] == {"precision": "bf16", "channels_last": True}


@pytest.mark.parametrize(
    ("change", "named"),
    [({"precision": "bf16"}, "precision"), ({"channels_last": True}, "channels_last")],
)
def test_resume_with_other_numerics_says_it_will_not_match(change, named, images, tmp_path):
    out = tmp_path / "run.safetensors"
    calls = {"n": 0}

    def stop_after_two() -> bool:
        calls["n"] += 1
        return calls["n"] >= 2

    kw = dict(precision="fp32", channels_last=False)
    train(_config(images, out, **kw), should_stop=stop_after_two)
    events: list[object] = []
    train(_config(images, out, resume=True, **(kw | change)), on_event=events.append)
    notes = [e.text for e in events if isinstance(e, LogEvent) and e.text.startswith("note:")]
    assert len(notes) == 1 and named in notes[0] and "will not match" in notes[0]


# ------------------------------------------------------------------------------ slow


@pytest.mark.slow
def test_bf16_autocast_fine_tuning_validates_within_0_05_db_of_fp32(shared_dir, tmp_path):
    """40 iterations fine-tuning the bundled A2F-SD x2 on ../shared/train (batch 4 of 24x24, a
    rate high enough to move the weights), once in fp32 and once under bf16 autocast (emulated
    here, ~10x slower): Set5 PSNR (validation, in fp32) within 0.05 dB of each other."""
    set5 = shared_dir / "benchmarks" / "Set5" / "x2"
    train_dirs = tuple(str(shared_dir / "train" / d) for d in ("T91", "BSD200", "SunHays80"))
    results = {}
    for precision in ("fp32", "bf16"):
        cfg = TrainConfig(
            base=str(ROOT / "weights" / "A2F-SD-x2.safetensors"),
            hr_dirs=train_dirs,
            val_dir=str(set5 / "HR"),
            val_lr_dir=str(set5 / "LR"),
            patch_size=24,
            batch_size=4,
            iterations=40,
            lr=1e-4,
            ema=0.0,
            val_every=40,
            seed=3,
            output=str(tmp_path / f"{precision}.safetensors"),
            device="cpu",
            precision=precision,
        )
        results[precision] = train(cfg).history
    fp32, bf16 = results["fp32"], results["bf16"]
    print(
        f"Set5 x2 PSNR: start {fp32[0]['psnr']:.4f}, fp32 {fp32[-1]['psnr']:.4f}, bf16 "
        f"{bf16[-1]['psnr']:.4f} dB"
    )
    assert [h["iteration"] for h in fp32] == [h["iteration"] for h in bf16] == [0, 40]
    assert fp32[0]["psnr"] == bf16[0]["psnr"]  # the same starting weights, validated in fp32
    assert abs(fp32[-1]["psnr"] - fp32[0]["psnr"]) > 0.005  # the run moved the weights
    assert abs(bf16[-1]["psnr"] - fp32[-1]["psnr"]) < 0.05, (fp32, bf16)
