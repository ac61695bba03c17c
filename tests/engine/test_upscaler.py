from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from engine.checkpoints import load_model
from engine.descriptor import ModelDescriptor
from engine.errors import Cancelled, SRStudioError
from engine.imaging.io import ImageData, read_image
from engine.imaging.resize import imresize
from engine.inference.upscaler import UpscaleOptions, Upscaler
from engine.metrics import psnr


class TinyNet(nn.Module):
    """Nearest x`scale` upscale + a seeded 3x3 conv: cheap, not flip-symmetric, can leave [0, 1]."""

    def __init__(self, *, scale: int) -> None:
        super().__init__()
        self.scale = scale
        torch.manual_seed(1)
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.mul_(2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nn.functional.interpolate(x, scale_factor=self.scale, mode="nearest"))


def tiny(scale: int = 2) -> ModelDescriptor:
    net = TinyNet(scale=scale)
    return ModelDescriptor(
        family="Tiny", variant="test", scale=scale, params=sum(p.numel() for p in net.parameters()),
        input_range=1.0, size_multiple=1, tiling_safe=True, tile_overlap=2, source="untrained",
        model=net,
    )  # fmt: skip


def rand(h: int, w: int, c: int = 3) -> torch.Tensor:
    return torch.rand(1, c, h, w, generator=torch.Generator().manual_seed(3))


def test_bicubic_whole_image_matches_imresize() -> None:
    x = rand(11, 14)
    up = Upscaler(load_model("bicubic", scale=2), UpscaleOptions(tile=0, device="cpu"))
    y = up.upscale_tensor(x)
    assert y.shape == (1, 3, 22, 28) and y.dtype == torch.float32 and y.device.type == "cpu"
    assert torch.allclose(y, imresize(x, 2).clamp(0, 1), atol=1e-6)


def test_tiles_match_whole_image_for_a_tiling_safe_model() -> None:
    x = rand(37, 29)
    whole = Upscaler(tiny(), UpscaleOptions(tile=0, device="cpu")).upscale_tensor(x)
    calls: list[tuple[int, int]] = []
    tiled = Upscaler(tiny(), UpscaleOptions(tile=16, device="cpu")).upscale_tensor(
        x, on_progress=lambda d, t: calls.append((d, t))
    )
    assert torch.allclose(whole, tiled, atol=1e-5)
    assert calls and calls[-1][0] == calls[-1][1] > 1  # several tiles, finished


def test_auto_tile_runs_a_small_image_whole() -> None:
    x = rand(20, 24)
    whole = Upscaler(tiny(), UpscaleOptions(tile=0)).upscale_tensor(x)
    calls: list[tuple[int, int]] = []
    auto = Upscaler(tiny()).upscale_tensor(x, on_progress=lambda d, t: calls.append((d, t)))
    assert torch.equal(auto, whole) and calls == [(1, 1)]


def test_output_is_clamped() -> None:
    y = Upscaler(tiny(), UpscaleOptions(tile=0, device="cpu")).upscale_tensor(rand(8, 8))
    raw = tiny().model(rand(8, 8))
    assert raw.min() < 0 or raw.max() > 1  # the model itself leaves [0, 1]
    assert y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize(("outscale", "size"), [(1.5, (15, 20)), (6.0, (60, 78)), (0.5, (5, 7))])
def test_outscale_resizes_network_output(outscale: float, size: tuple[int, int]) -> None:
    x = rand(10, 13)
    up = Upscaler(load_model("bicubic", scale=2), UpscaleOptions(tile=0, outscale=outscale))
    y = up.upscale_tensor(x)
    assert y.shape[-2:] == size and up.output_size(10, 13) == size
    expected = imresize(imresize(x, 2), size=size).clamp(0, 1)
    assert torch.allclose(y, expected, atol=1e-5)


def test_should_stop_cancels() -> None:
    up = Upscaler(tiny(), UpscaleOptions(tile=8, device="cpu"))
    with pytest.raises(Cancelled):
        up.upscale_tensor(rand(32, 32), should_stop=lambda: True)


def test_ensemble_averages_transforms() -> None:
    x = rand(9, 12)
    desc = tiny()
    plain = Upscaler(desc, UpscaleOptions(tile=0)).upscale_tensor(x)
    ens = Upscaler(desc, UpscaleOptions(tile=0, ensemble=True)).upscale_tensor(x)
    net = desc.model
    with torch.no_grad():
        outs = []
        for k in range(4):
            for flip in (False, True):
                t = torch.rot90(x, k, (2, 3))
                t = t.flip(3) if flip else t
                o = net(t)
                o = o.flip(3) if flip else o
                outs.append(torch.rot90(o, -k, (2, 3)))
    expected = torch.stack(outs).mean(0).clamp(0, 1)
    assert not torch.allclose(plain, ens, atol=1e-3)
    assert torch.allclose(ens, expected, atol=1e-5)


def test_bf16_close_to_fp32() -> None:
    x = rand(12, 12)
    desc = load_model("bicubic", scale=2)
    fp32 = Upscaler(desc, UpscaleOptions(tile=0)).upscale_tensor(x)
    bf16 = Upscaler(desc, UpscaleOptions(tile=0, precision="bf16")).upscale_tensor(x)
    assert bf16.dtype == torch.float32 and (fp32 - bf16).abs().max() < 0.02


@pytest.mark.parametrize(
    "kwargs",
    [{"precision": "fp8"}, {"alpha": "magic"}, {"outscale": 0.0}, {"outscale": float("nan")},
     {"tile": -1}, {"tile_overlap": -2}],
)  # fmt: skip
def test_bad_options_are_refused(kwargs: dict) -> None:
    with pytest.raises(SRStudioError):
        UpscaleOptions(**kwargs)


def test_bad_input_shape() -> None:
    up = Upscaler(tiny(), UpscaleOptions(tile=0))
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        up.upscale_tensor(torch.rand(3, 8, 8))


def _image(h: int, w: int, *, alpha: bool = False, gray: bool = False) -> ImageData:
    rgb = rand(h, w)[0]
    if gray:
        rgb = rgb[:1].expand(3, -1, -1).contiguous()
    a = torch.linspace(0, 1, h * w).reshape(1, h, w) if alpha else None
    return ImageData(rgb, a, 16, gray, b"icc", b"Exif\x00\x00MM", (72.0, 144.0), "PNG")


def test_image_alpha_bicubic_and_metadata() -> None:
    img = _image(10, 12, alpha=True)
    up = Upscaler(tiny(), UpscaleOptions(tile=0))
    out = up.upscale_image(img)
    assert out.rgb.shape == (3, 20, 24) and out.alpha is not None
    assert out.alpha.shape == (1, 20, 24)
    assert torch.allclose(out.alpha, imresize(img.alpha, 2).clamp(0, 1), atol=1e-6)  # type: ignore[arg-type]
    assert (out.bit_depth, out.icc_profile, out.exif, out.source_format) == (
        16, b"icc", b"Exif\x00\x00MM", "PNG",
    )  # fmt: skip
    assert out.dpi == (144.0, 288.0)


def test_image_alpha_by_network_and_progress_over_two_passes() -> None:
    img = _image(8, 8, alpha=True)
    desc = tiny()
    calls: list[tuple[int, int]] = []
    up = Upscaler(desc, UpscaleOptions(tile=0, alpha="network"))
    out = up.upscale_image(img, on_progress=lambda d, t: calls.append((d, t)))
    with torch.no_grad():
        expected = desc.model(img.alpha.expand(3, -1, -1)[None]).clamp(0, 1).mean(1)  # type: ignore[union-attr]
    assert torch.allclose(out.alpha, expected, atol=1e-5)  # type: ignore[arg-type]
    assert calls[-1][0] == calls[-1][1] and max(d for d, _ in calls) == calls[-1][1]
    assert any(d <= t // 2 for d, t in calls)  # the first pass reports half of the total


def test_grayscale_kept_and_dpi_follows_outscale() -> None:
    img = _image(10, 14, gray=True)
    out = Upscaler(tiny(), UpscaleOptions(tile=0, outscale=1.5)).upscale_image(img)
    assert out.grayscale and out.rgb.shape == (3, 15, 21)
    assert torch.equal(out.rgb[0], out.rgb[1]) and torch.equal(out.rgb[1], out.rgb[2])
    assert out.dpi == pytest.approx((72.0 * 21 / 14, 144.0 * 15 / 10))


def test_real_a2f_beats_bicubic_on_a_set5_crop(shared_dir) -> None:
    lr = read_image(shared_dir / "benchmarks/Set5/x2/LR/img_002.png").rgb[:, 40:72, 40:72]
    hr = read_image(shared_dir / "benchmarks/Set5/x2/HR/img_002.png").rgb[:, 80:144, 80:144]
    a2f = load_model(shared_dir / "official-weights/a2f/AAF_SD_x2.pt")
    assert (a2f.family, a2f.scale) == ("A2F", 2)
    sr = Upscaler(a2f, UpscaleOptions(tile=0, device="cpu")).upscale_tensor(lr[None])[0]
    bic = Upscaler(load_model("bicubic", scale=2)).upscale_tensor(lr[None])[0]

    def score(t: torch.Tensor) -> float:
        to8 = (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        ref = (hr.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        return psnr(to8, ref, crop_border=4)

    assert score(sr) > score(bic) + 1.0


@pytest.mark.parametrize(
    ("model", "ensemble", "exact", "rounds", "passes"),
    [
        ("bicubic", False, False, 1, 1),
        ("bicubic", True, False, 1, 8),
        ("A2F-SD", False, False, 2, 1),  # cores of 8 x 8: pooled values shared
        ("A2F-SD", True, True, 16, 1),
    ],
)
def test_plan_counts_what_the_tiler_reports(model, ensemble, exact, rounds, passes) -> None:
    """Upscaler.plan: tiles x rounds is the total the tiler reports, passes what each tile of a
    round runs (the self-ensemble is tiled per orientation when pooling is shared)."""
    from engine.checkpoints import build_untrained
    from engine.progress import counting_passes

    desc = load_model("bicubic", scale=2) if model == "bicubic" else build_untrained(model, 2)
    up = Upscaler(
        desc, UpscaleOptions(tile=8, tile_overlap=4, ensemble=ensemble, exact_tiles=exact)
    )
    plan = up.plan(20, 14)
    assert (plan.rounds, plan.passes) == (rounds, passes)
    assert plan.tiles == 3  # 20 rows cut in three; 14 columns fit one tile with its context
    reports: list[tuple[int, int]] = []
    forwards: list[int] = []
    x = torch.rand(1, 3, 20, 14, generator=torch.Generator().manual_seed(0))
    with counting_passes(up.model, lambda: forwards.append(1)):
        up.upscale_tensor(x, on_progress=lambda d, t: reports.append((d, t)))
    assert reports[-1] == (plan.tiles * plan.rounds, plan.tiles * plan.rounds)
    assert len(forwards) == plan.tiles * plan.rounds * plan.passes
    whole = Upscaler(desc, UpscaleOptions(tile=0, ensemble=ensemble)).plan(20, 14)
    assert (whole.tiles, whole.rounds) == (1, 1)
