from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import replace

import pytest
import torch
from torch import Tensor, nn

from engine.descriptor import ModelDescriptor
from engine.errors import Cancelled, SRStudioError
from engine.inference import tiling
from engine.inference.ensemble import ensemble_forward
from engine.inference.tiling import auto_tile_size, estimate_bytes_per_lr_pixel, upscale_tiled

CPU = torch.device("cpu")


class LocalNet(nn.Module):
    """Three zero-padded 3x3 convs and a pixel shuffle: receptive field radius 3 LR pixels."""

    def __init__(self, scale: int, *, global_op: bool = False) -> None:
        super().__init__()
        self.scale, self.global_op = scale, global_op
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.c3 = nn.Conv2d(8, 3 * scale * scale, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        f = torch.relu(self.c1(x))
        if self.global_op:  # channel attention: a whole-input average pool, as in A2F or RCAN
            f = f * torch.sigmoid(f.mean(dim=(2, 3), keepdim=True) * 4)
        f = self.c3(torch.relu(self.c2(f)))
        return nn.functional.pixel_shuffle(f, self.scale) + nn.functional.interpolate(
            x, scale_factor=self.scale, mode="nearest"
        )


def net(scale: int = 2, **kwargs: bool) -> Callable[[Tensor], Tensor]:
    return LocalNet(scale, **kwargs).eval()


def run(forward: Callable[[Tensor], Tensor], x: Tensor, **kwargs: object) -> Tensor:
    kwargs.setdefault("device", CPU)
    return upscale_tiled(forward, x, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("scale", "size", "tile"), [(2, (37, 53), 16), (3, (29, 20), 9)])
def test_tiles_equal_the_whole_image_for_a_local_network(
    scale: int, size: tuple[int, int], tile: int
) -> None:
    model, x = net(scale), torch.rand(1, 3, *size)
    with torch.no_grad():
        whole = model(x)
    tiled = run(model, x, scale=scale, tile=tile, overlap=6)  # context 6, weights 0 in outer 3
    assert tiled.shape == whole.shape and tiled.dtype == torch.float32
    assert (tiled - whole).abs().max() < 1e-6
    too_little = run(model, x, scale=scale, tile=tile, overlap=2)  # control: tile edges show
    assert (too_little - whole).abs().max() > 1e-3


def test_global_operation_stays_close_with_overlap() -> None:
    model, x = net(2, global_op=True), torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        whole = model(x)
    tiled = run(model, x, scale=2, tile=24, overlap=8)
    diff = (tiled - whole).abs()
    assert 0 < diff.max() < 0.05 and diff.mean() < 0.01


def test_a_side_within_one_tile_and_its_context_is_not_cut() -> None:
    """Cutting a side that a tile's context covers entirely would only repeat the same work."""
    shapes: list[tuple[int, int]] = []
    model = net()

    def forward(t: Tensor) -> Tensor:
        shapes.append(tuple(t.shape[-2:]))
        return model(t)

    x = torch.rand(1, 3, 72, 200)
    with torch.no_grad():
        run(forward, x[..., :72], scale=2, tile=48, overlap=16)  # 72 <= 48 + 2 * 16
        assert shapes == [(72, 72)]
        shapes.clear()
        run(forward, x, scale=2, tile=48, overlap=16)  # rows kept whole, columns cut
    assert [h for h, _ in shapes] == [72] * 5 and all(w <= 80 for _, w in shapes)


def test_progress_reports_every_tile() -> None:
    calls: list[tuple[int, int]] = []
    run(
        net(),
        torch.rand(1, 3, 37, 53),
        scale=2,
        tile=16,
        overlap=4,
        on_progress=lambda d, t: calls.append((d, t)),
    )
    assert calls == [(i, 12) for i in range(1, 13)]  # ceil(37/16) x ceil(53/16) tiles


def test_should_stop_cancels_before_the_next_tile() -> None:
    model, seen = net(), []

    def forward(t: Tensor) -> Tensor:
        seen.append(t.shape)
        return model(t)

    with pytest.raises(Cancelled):
        run(
            forward,
            torch.rand(1, 3, 40, 40),
            scale=2,
            tile=16,
            overlap=4,
            should_stop=lambda: len(seen) >= 2,
        )
    assert len(seen) == 2


def test_tile_larger_than_image_is_one_plain_pass() -> None:
    model, x, seen = net(), torch.rand(1, 3, 21, 13), []

    def forward(t: Tensor) -> Tensor:
        seen.append(tuple(t.shape))
        return model(t)

    calls: list[tuple[int, int]] = []
    y = run(forward, x, scale=2, tile=64, overlap=8, on_progress=lambda d, t: calls.append((d, t)))
    with torch.no_grad():
        assert torch.equal(y, model(x))
    assert seen == [(1, 3, 21, 13)] and calls == [(1, 1)]
    assert torch.equal(run(model, x, scale=2, tile=None, overlap=8), y)


@pytest.mark.parametrize(
    ("size", "tile", "overlap"), [((1, 1), 16, 8), ((1, 1), 1, 0), ((1, 9), 2, 1), ((7, 3), 2, 0)]
)
def test_tiny_and_odd_sizes(size: tuple[int, int], tile: int, overlap: int) -> None:
    x = torch.rand(1, 3, *size)
    nearest = nn.Upsample(scale_factor=3, mode="nearest")  # local with radius 0: always exact
    y = run(nearest, x, scale=3, tile=tile, overlap=overlap)
    assert torch.allclose(y, nearest(x), atol=1e-6)


def test_flat_image_stays_flat() -> None:
    x = torch.full((1, 3, 50, 70), 0.4)
    model = nn.Sequential(  # zero padding: tile edges would differ, its image border does
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 3, 3, padding=1),
        nn.Upsample(scale_factor=2),
    ).eval()
    with torch.no_grad():
        whole = model(x)
    tiled = run(model, x, scale=2, tile=16, overlap=8)
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    assert whole[inner].std(dim=(2, 3)).max() < 1e-6  # flat away from the image border
    assert (tiled[inner] - whole[inner]).abs().max() < 1e-6
    hard_cut = run(model, x, scale=2, tile=16, overlap=0)  # control: seams without context
    assert (hard_cut[inner] - whole[inner]).abs().max() > 1e-3


def test_blend_ramps_spread_tile_differences() -> None:
    """Tiles that disagree (a network with a global op) meet in a smooth ramp, not a step."""
    values = itertools.cycle([0.2, 0.8])  # row-major tiles: left and right neighbours differ

    def constant_per_tile(t: Tensor) -> Tensor:
        return torch.full((1, 3, t.shape[2] * 2, t.shape[3] * 2), next(values))

    overlap, scale = 8, 2
    y = run(constant_per_tile, torch.rand(1, 3, 40, 40), scale=scale, tile=10, overlap=overlap)
    spread = 0.6  # between two tiles; a hard cut would jump by all of it
    steepest = math.pi / 2 / (overlap * scale)  # raised cosine over overlap * scale HR pixels
    for dim in (2, 3):
        assert y.diff(dim=dim).abs().max() <= spread * steepest + 1e-6


def oom_when_larger_than(model: nn.Module, pixels: int, seen: list[tuple[int, int]]):
    def forward(t: Tensor) -> Tensor:
        if t.shape[2] * t.shape[3] > pixels:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        seen.append(tuple(t.shape[2:]))
        return model(t)

    return forward


def test_out_of_memory_halves_the_tile_and_matches_the_whole_image() -> None:
    model, x, seen = net(), torch.rand(1, 3, 40, 40), []
    with torch.no_grad():
        whole = model(x)
    calls: list[tuple[int, int]] = []
    y = run(
        oom_when_larger_than(model, 25 * 25, seen),
        x,
        scale=2,
        tile=None,
        overlap=6,
        on_progress=lambda d, t: calls.append((d, t)),
    )
    # 40 -> 20 (tiles up to 32x32 with context: too big) -> 10 (up to 22x22)
    assert max(h * w for h, w in seen) <= 25 * 25 and len(seen) == 16
    assert calls[-1] == (16, 16)
    assert (y - whole).abs().max() < 1e-6


def test_out_of_memory_keeps_finished_tiles() -> None:
    model, x, shapes = net(), torch.rand(1, 3, 48, 48), []
    failures = iter([False, False, True])  # the third tile fails once, e.g. memory taken by others

    def forward(t: Tensor) -> Tensor:
        if next(failures, False):
            raise RuntimeError("CUDA error: out of memory")
        shapes.append(tuple(t.shape[2:]))
        return model(t)

    with torch.no_grad():
        whole = model(x)
    calls: list[tuple[int, int]] = []
    y = run(forward, x, scale=2, tile=16, overlap=6, on_progress=lambda d, t: calls.append((d, t)))
    # 2 tiles of 16, then the 7 left (the failed one too) each cut into 4 tiles of 8
    assert len(shapes) == 2 + 7 * 4 and calls[:2] == [(1, 9), (2, 9)] and calls[-1] == (30, 30)
    assert shapes[:2] == [(22, 22), (22, 28)] and all(h <= 20 and w <= 20 for h, w in shapes[2:])
    assert (y - whole).abs().max() < 1e-6


def test_out_of_memory_everywhere_gives_up_with_a_clear_error() -> None:
    with pytest.raises(SRStudioError, match="out of memory"):
        run(
            oom_when_larger_than(net(), 0, []),
            torch.rand(1, 3, 40, 40),
            scale=2,
            tile=16,
            overlap=4,
        )


def test_other_errors_are_not_taken_for_out_of_memory() -> None:
    def broken(t: Tensor) -> Tensor:
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        run(broken, torch.rand(1, 3, 8, 8), scale=2, tile=4, overlap=0)
    with pytest.raises(SRStudioError, match="returned"):
        run(lambda t: t, torch.rand(1, 3, 8, 8), scale=2, tile=4, overlap=0)


def half_aware(model: nn.Module, dtypes: list[torch.dtype], nan_if: Callable[[Tensor], bool]):
    """Runs the model under autocast for a half input, like the Upscaler's forward; returns NaN
    (an fp16 overflow, say) where nan_if says so."""

    def forward(t: Tensor) -> Tensor:
        dtypes.append(t.dtype)
        if t.dtype == torch.float32:
            return model(t)
        with torch.autocast("cpu", dtype=t.dtype):
            y = model(t).float()
        return y * float("nan") if nan_if(t) else y

    return forward


def test_half_precision_runs_in_half_and_redoes_non_finite_tiles_in_fp32() -> None:
    model, x = net(), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        whole = model(x)
    dtypes: list[torch.dtype] = []
    bf16 = run(
        half_aware(model, dtypes, lambda t: False),
        x,
        scale=2,
        tile=16,
        overlap=4,
        dtype=torch.bfloat16,
    )
    assert dtypes == [torch.bfloat16] * 4
    assert 1e-4 < (bf16 - whole).abs().max() < 0.05  # really bf16, and close
    dtypes.clear()
    first_only = iter([True])
    mixed = run(
        half_aware(model, dtypes, lambda t: next(first_only, False)),
        x,
        scale=2,
        tile=16,
        overlap=4,
        dtype=torch.bfloat16,
    )
    assert dtypes == [torch.bfloat16, torch.float32] + [torch.bfloat16] * 3
    assert torch.isfinite(mixed).all()
    top_left = (slice(None), slice(None), slice(0, 24), slice(0, 24))  # tile 0's core, not blended
    assert (mixed[top_left] - whole[top_left]).abs().max() < 1e-6  # redone in float32


def test_ensemble_composes_with_tiling() -> None:
    model, x = net(), torch.rand(1, 3, 30, 34)
    with torch.no_grad():
        whole = ensemble_forward(model)(x)
    tiled = run(ensemble_forward(model), x, scale=2, tile=12, overlap=6)
    assert (tiled - whole).abs().max() < 1e-6


# ---------------------------------------------------------------------------------------------
# Automatic tile size


def descriptor(family: str = "A2F", variant: str = "SD", scale: int = 4, overlap: int = 16):
    return ModelDescriptor(
        family=family,
        variant=variant,
        scale=scale,
        params=0,
        input_range=1.0,
        size_multiple=1,
        tiling_safe=False,
        tile_overlap=overlap,
        source="untrained",
    )


def test_every_registered_model_has_a_calibrated_cost() -> None:
    from engine.archs.registry import FAMILIES

    for family in FAMILIES:
        for variant in family.variants:
            cost = family.memory.bytes_per_lr_pixel(variant, 4)
            assert cost is not None and cost < tiling.UNKNOWN_COST, (family.name, variant)
    cheap = estimate_bytes_per_lr_pixel(descriptor("A2F", "SD"), torch.float32)
    big = estimate_bytes_per_lr_pixel(descriptor("RNAN", "paper"), torch.float32)
    assert 1_000 < cheap < big < 100_000
    light = descriptor("RNAN", "light")  # its upsampler dominates: x4 costs more than x2
    x2 = estimate_bytes_per_lr_pixel(replace(light, scale=2), torch.float32)
    assert x2 < estimate_bytes_per_lr_pixel(light, torch.float32)
    assert estimate_bytes_per_lr_pixel(descriptor("A2F", "SD"), torch.bfloat16) < cheap
    hpi = descriptor("HPINet", "M")
    assert estimate_bytes_per_lr_pixel(hpi, torch.float32, pixels=10**6) > (
        estimate_bytes_per_lr_pixel(hpi, torch.float32, pixels=10**4)
    )
    unknown = estimate_bytes_per_lr_pixel(descriptor("SomeNet", "X"), torch.float32)
    assert unknown >= big
    assert estimate_bytes_per_lr_pixel(descriptor("A2F", "XL"), torch.float32) == unknown
    bicubic = estimate_bytes_per_lr_pixel(descriptor("Bicubic", "MATLAB"), torch.float32)
    assert 0 < bicubic < cheap


@pytest.mark.parametrize("family", ["A2F", "HPINet", "RNAN"])
def test_auto_tile_fits_the_budget(family: str) -> None:
    variant = {"A2F": "SD", "HPINet": "M", "RNAN": "paper"}[family]
    desc, gpu = descriptor(family, variant), torch.device("cuda")
    previous = 0
    for free in (1 << 30, 4 << 30, 16 << 30, 64 << 30):
        tile = auto_tile_size(desc, gpu, torch.float32, free_bytes=free)
        assert tile is not None and tile % 8 == 0 and tile >= previous
        side = tile + 2 * desc.tile_overlap
        pixels = side * side
        assert pixels * estimate_bytes_per_lr_pixel(desc, torch.float32, pixels=pixels) <= free / 2
        previous = tile
    assert previous > 256
    assert auto_tile_size(desc, gpu, torch.float32, free_bytes=1 << 20) == 32  # the minimum


def test_auto_tile_on_the_cpu_is_capped_and_none_when_the_image_fits() -> None:
    desc = descriptor()
    tile = auto_tile_size(desc, CPU, torch.float32, free_bytes=256 << 30)
    cost = estimate_bytes_per_lr_pixel(desc)
    assert tile is not None and (tile + 32) ** 2 * cost <= tiling.CPU_TILE_BUDGET
    assert (
        auto_tile_size(desc, CPU, torch.float32, free_bytes=256 << 30, image_size=(64, 80)) is None
    )
    assert auto_tile_size(desc, CPU, torch.float32, free_bytes=64 << 20, image_size=(640, 800)) == (
        auto_tile_size(desc, CPU, torch.float32, free_bytes=64 << 20)
    )
    assert auto_tile_size(desc, CPU, torch.float32) is not None  # reads this machine's RAM
