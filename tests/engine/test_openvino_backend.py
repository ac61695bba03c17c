"""The OpenVINO backend: conversion of every family, its cache, the tiler's one window shape, the
choice of backend and its fallbacks, and the released A2F-SD x4's Set5 figure through it."""

from __future__ import annotations

import copy
import json
import logging

import pytest
import torch
from torch import nn

from engine.checkpoints import load_model
from engine.cli import main
from engine.errors import SRStudioError
from engine.inference import backends, openvino_backend, upscaler
from engine.inference.tiling import _Tiler, upscale_tiled
from engine.inference.upscaler import UpscaleOptions, Upscaler

needs_openvino = pytest.mark.skipif(
    not openvino_backend.available(), reason="openvino is not installed"
)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SRSTUDIO_CACHE_DIR", str(tmp_path / "cache"))


def _image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


class _Local(nn.Module):
    """Two 3x3 convolutions and a nearest x2: a receptive field of 2 LR pixels."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.b(torch.relu(self.a(x)))
        return nn.functional.interpolate(y, scale_factor=2, mode="nearest")


def test_fixed_windows_have_one_shape_inside_the_image_around_each_core():
    x = _image(101, 77)
    tiler = _Tiler(
        lambda t: t,
        x,
        side=32,
        overlap=6,
        scale=2,
        device=torch.device("cpu"),
        dtype=torch.float32,
        should_stop=lambda: False,
        banded=True,
        fixed=True,
    )
    cores = tiler.layout()
    windows = [tiler.window(c) for c in cores]
    assert len(cores) > 4
    assert len({(w.bottom - w.top, w.right - w.left) for w in windows}) == 1
    for core, win in zip(cores, windows, strict=True):
        assert win.top >= 0 and win.left >= 0 and win.bottom <= 101 and win.right <= 77
        assert win.top <= max(0, core.top - 6) and win.bottom >= min(101, core.bottom + 6)
        assert win.left <= max(0, core.left - 6) and win.right >= min(77, core.right + 6)


def test_fixed_windows_give_the_whole_image_output_of_a_local_network():
    net = _Local().eval()
    x = _image(70, 93, seed=1)
    shapes: set[tuple[int, ...]] = set()

    def forward(t: torch.Tensor) -> torch.Tensor:
        shapes.add(tuple(t.shape))
        return net(t)

    with torch.no_grad():
        whole = net(x)
        tiled = upscale_tiled(
            forward, x, scale=2, tile=24, overlap=6, device="cpu", fixed_windows=True
        )
    assert len(shapes) == 1  # one compiled network would serve every tile
    torch.testing.assert_close(tiled, whole, atol=2e-6, rtol=0)


def test_auto_falls_back_to_torch_without_openvino(monkeypatch, caplog):
    monkeypatch.setattr(openvino_backend, "available", lambda: False)
    desc = load_model("A2F-SD", scale=2)
    with caplog.at_level(logging.INFO, logger="engine.inference.backends"):
        up = Upscaler(desc, UpscaleOptions(device="cpu", backend="auto"))
    assert up.backend == "torch"
    assert "not installed" in caplog.text
    with pytest.raises(SRStudioError, match="not installed"):
        Upscaler(desc, UpscaleOptions(device="cpu", backend="openvino"))


def test_backend_choice_is_checked():
    desc = load_model("bicubic", scale=2)
    with pytest.raises(SRStudioError, match="engine must be one of"):
        backends.resolve_backend("tensorrt", desc, torch.device("cpu"), "fp32")
    assert backends.resolve_backend("auto", desc, torch.device("cpu"), "fp32") == "torch"
    assert backends.resolve_backend("torch", desc, torch.device("cpu"), "fp32") == "torch"


def test_bicubic_runs_under_any_engine(monkeypatch, tmp_path):
    """Bicubic has no network: the OpenVINO engine, installed or not, runs it as PyTorch does."""
    desc = load_model("bicubic", scale=2)
    for installed in (True, False):
        monkeypatch.setattr(openvino_backend, "available", lambda v=installed: v)
        assert backends.resolve_backend("openvino", desc, torch.device("cpu"), "fp32") == "torch"
        up = Upscaler(desc, UpscaleOptions(device="cpu", backend="openvino", tile=0))
        out = up.upscale_tensor(torch.rand(1, 3, 6, 5))
        assert up.backend == "torch" and out.shape == (1, 3, 12, 10)
    with pytest.raises(SRStudioError, match="OpenVINO cannot run this"):
        net = load_model("A2F-SD", scale=2)  # a network still says why it cannot
        backends.resolve_backend("openvino", net, torch.device("cuda"), "fp32")


@needs_openvino
def test_openvino_refuses_a_gpu_and_non_native_bf16(monkeypatch):
    desc = load_model("A2F-SD", scale=2)
    with pytest.raises(SRStudioError, match="CPU"):
        backends.resolve_backend("openvino", desc, torch.device("cuda"), "fp32")
    monkeypatch.setattr(openvino_backend, "native_bf16", lambda: False)
    with pytest.raises(SRStudioError, match="native bf16"):
        backends.resolve_backend("openvino", desc, torch.device("cpu"), "bf16")
    assert backends.resolve_backend("auto", desc, torch.device("cpu"), "bf16") == "torch"
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    assert backends.resolve_backend("auto", desc, torch.device("cpu"), "fp32") == "openvino"
    # OpenVINO's CPU plugin and a preloaded jemalloc crash together (app.launcher)
    monkeypatch.setenv("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
    assert backends.resolve_backend("auto", desc, torch.device("cpu"), "fp32") == "torch"
    with pytest.raises(SRStudioError, match="jemalloc"):
        backends.resolve_backend("openvino", desc, torch.device("cpu"), "fp32")


CONVERTED = [(f, s) for f in ("A2F-SD", "RNAN-tiny", "CRAN-tiny", "HPINet-T") for s in (2, 3, 4)]


@needs_openvino
@pytest.mark.slow
@pytest.mark.parametrize(("model", "scale"), CONVERTED)
def test_every_family_and_scale_matches_torch(model, scale):
    desc = load_model(model, scale=scale)
    x = _image(37, 52, seed=scale)
    ref = Upscaler(desc, UpscaleOptions(tile=0, device="cpu")).upscale_tensor(x)
    up = Upscaler(desc, UpscaleOptions(tile=0, device="cpu", backend="openvino"))
    assert up.backend == "openvino"
    out = up.upscale_tensor(x)
    assert out.shape == ref.shape
    assert float((out - ref).abs().max()) <= 1e-4


@needs_openvino
@pytest.mark.slow
def test_second_run_reads_the_cache_and_a_damaged_file_is_converted_again(tmp_path, caplog):
    desc = load_model("CRAN-tiny", scale=2)
    x = _image(29, 41)
    first = openvino_backend.OpenVinoNetwork(desc)
    y1 = first(x)
    assert first.converted == [None]  # one graph for any height and width
    path = first.ir_path(None)
    assert path.is_file() and path.with_suffix(".bin").is_file()
    second = openvino_backend.OpenVinoNetwork(desc)
    torch.testing.assert_close(second(x), y1, atol=0, rtol=0)
    assert second(_image(33, 20)).shape == (1, 3, 66, 40)  # another shape, same graph
    assert second.converted == []
    path.write_text("<not a model")
    with caplog.at_level(logging.WARNING, logger="engine.inference.openvino_backend"):
        third = openvino_backend.OpenVinoNetwork(desc)
        torch.testing.assert_close(third(x), y1, atol=0, rtol=0)
    assert third.converted == [None]
    assert "discarded" in caplog.text  # the .xml no longer matches its seal


@needs_openvino
@pytest.mark.slow
def test_tiled_photo_runs_one_compiled_shape_and_stays_close_to_torch():
    desc = load_model("A2F-SD", scale=2)
    x = _image(520, 500, seed=3)  # cores of 260x250: one pass, pooling per tile
    opts = {"tile": 260, "device": "cpu"}
    ref = Upscaler(desc, UpscaleOptions(**opts)).upscale_tensor(x)
    up = Upscaler(desc, UpscaleOptions(**opts, backend="openvino"))
    assert up.tiling(520, 500).endswith("OpenVINO")
    out = up.upscale_tensor(x)
    assert len(up.network._compiled) == 1
    # the windows at the borders reach further into the image than the torch path's, so the
    # per-tile pooling sees a little more: not bit for bit, but far below a grey level
    assert float((out - ref).abs().max()) <= 1e-3


def test_shared_pooling_runs_on_torch(monkeypatch):
    monkeypatch.setattr(backends, "_why_not_openvino", lambda *_: None)
    monkeypatch.setattr(
        openvino_backend.OpenVinoNetwork, "__init__", lambda self, desc: setattr(self, "calls", 0)
    )
    monkeypatch.setattr(
        openvino_backend.OpenVinoNetwork, "__call__", lambda self, x: pytest.fail("converted")
    )
    desc = load_model("A2F-SD", scale=2)
    up = Upscaler(desc, UpscaleOptions(tile=32, device="cpu", backend="openvino"))
    assert "shared" in up.tiling(100, 100) and "OpenVINO" not in up.tiling(100, 100)
    ref = Upscaler(desc, UpscaleOptions(tile=32, device="cpu")).upscale_tensor(_image(100, 100))
    torch.testing.assert_close(up.upscale_tensor(_image(100, 100)), ref, atol=0, rtol=0)


# Set5 x4 through `srstudio eval`, whole images: tests/engine/test_tiling_fidelity.py's figures
RELEASED = [("a2f/AAF_SD_x4.pt", 32.064), ("hpinet/HPINet-M-x4.pth", 32.625)]


@needs_openvino
@pytest.mark.slow
@pytest.mark.parametrize(("weights", "pinned"), RELEASED)
def test_eval_through_openvino_reproduces_the_released_set5_figures(
    capsys, shared_dir, weights, pinned
):
    bench = shared_dir / "benchmarks" / "Set5" / "x4"
    argv = ["eval", "--weights", str(shared_dir / "official-weights" / weights)]
    argv += ["--hr", str(bench / "HR"), "--lr", str(bench / "LR"), "--device", "cpu", "--json"]
    assert main([*argv, "--backend", "openvino"]) == 0
    psnr = json.loads(capsys.readouterr().out)["psnr"]
    assert psnr == pytest.approx(pinned, abs=0.01)


def test_cli_says_in_one_line_that_openvino_is_missing(monkeypatch, tmp_path, capsys):
    from PIL import Image

    monkeypatch.setattr(openvino_backend, "available", lambda: False)
    src = tmp_path / "in.png"
    Image.new("RGB", (20, 16), (90, 120, 30)).save(src)
    argv = ["upscale", str(src), "-o", str(tmp_path / "out"), "--model", "A2F-SD"]
    code = main([*argv, "--scale", "2", "--device", "cpu", "--backend", "openvino"])
    err = capsys.readouterr().err
    assert code != 0
    assert "OpenVINO" in err and "not installed" in err
    assert "Traceback" not in err


class _TorchAsOpenVino(openvino_backend.OpenVinoNetwork):
    """OpenVINO's network stood in for by the module itself: its hooks, its call counting."""

    def __init__(self, descriptor) -> None:
        # a copy: OpenVINO never runs the module, whose own hooks count PyTorch's passes
        self.model, self._hooks, self.shapes = copy.deepcopy(descriptor.model), {}, []

    def __call__(self, x):
        self.shapes.append(tuple(x.shape[-2:]))
        with torch.no_grad():
            y = self.model(x)
        for hook in list(self._hooks.values()):
            hook(self, (x,), y)
        return y


@pytest.mark.parametrize(("tile", "shared"), [(40, False), (16, True)])
def test_passes_are_counted_on_whichever_network_runs_the_image(monkeypatch, tile, shared):
    """OpenVINO's network for per-tile pooling, PyTorch's module where pooled values are shared:
    the app's pass count (Upscaler.counting_passes) sees either, and plan() counts the pixels of
    the windows that run (one fixed shape for OpenVINO, clipped at the border for PyTorch)."""
    monkeypatch.setattr(backends, "_why_not_openvino", lambda *_: None)
    monkeypatch.setattr(openvino_backend, "OpenVinoNetwork", _TorchAsOpenVino)
    monkeypatch.setattr(upscaler, "ONE_PASS_MIN_PIXELS", 30 * 30)  # small images, same rules
    desc = load_model("A2F-SD", scale=2)
    up = Upscaler(desc, UpscaleOptions(tile=tile, tile_overlap=8, backend="openvino"))
    assert ("shared" in up.tiling(90, 70)) is shared
    plan = up.plan(90, 70)
    passes: list[int] = []
    with up.counting_passes(lambda: passes.append(1)):
        up.upscale_tensor(_image(90, 70))
    assert len(passes) == plan.tiles * plan.rounds * plan.passes
    assert (len(up.network.shapes) == 0) is shared
    if not shared:
        assert len(set(up.network.shapes)) == 1  # one compiled shape
        assert plan.pixels == sum(h * w for h, w in up.network.shapes)
        clipped = Upscaler(desc, UpscaleOptions(tile=tile, tile_overlap=8)).plan(90, 70)
        assert clipped.tiles == plan.tiles and clipped.pixels < plan.pixels
