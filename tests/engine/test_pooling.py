"""Tiles that share image-wide pooled values (engine.archs.pooling) through the tiler."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.archs import a2f, rnan
from engine.archs.pooling import ImagePooling, grid_pool, mean_pool, softmax_pool
from engine.checkpoints import build_untrained
from engine.descriptor import ModelDescriptor
from engine.inference.tiling import upscale_tiled
from engine.inference.upscaler import UpscaleOptions, Upscaler

H, W = 29, 37
# cores of an uneven 2 x 3 split, each run with up to 5 pixels of context
CORES = [(t, l, b, r) for t, b in ((0, 13), (13, H)) for l, r in ((0, 11), (11, 25), (25, W))]


def _window(core: tuple[int, int, int, int], pad: int = 5) -> tuple[int, int, int, int]:
    t, l, b, r = core
    return max(0, t - pad), max(0, l - pad), min(H, b + pad), min(W, r + pad)


def _shared(fn, *tensors: torch.Tensor) -> torch.Tensor:
    """Record fn over the tiles, share, and return what a tile then gets."""
    pooling = ImagePooling(H, W)
    for core in CORES:
        t, l, b, r = window = _window(core)
        with pooling.tile(window, core) as record:
            local = fn(*(x[:, :, t:b, l:r] for x in tensors))
        pooling.commit(record)
    pooling.share()
    with pooling.tile(_window(CORES[4]), CORES[4]):
        t, l, b, r = _window(CORES[4])
        shared = fn(*(x[:, :, t:b, l:r] for x in tensors))
    assert not torch.allclose(local, fn(*tensors), atol=1e-4)  # a tile alone differs
    return shared


@pytest.mark.parametrize(
    "fn",
    [mean_pool, lambda x: grid_pool(x, 3), lambda x: softmax_pool(x, 8 * x[:, :1])],
    ids=["mean", "grid", "softmax"],
)
def test_tiles_get_the_whole_images_pooled_values(fn):
    torch.manual_seed(0)
    x = torch.randn(2, 4, H, W)
    whole = fn(x)
    assert torch.allclose(_shared(fn, x), whole, atol=1e-6)
    # outside a tile context the functions are the plain operations
    assert torch.equal(mean_pool(x), F.adaptive_avg_pool2d(x, 1))
    assert torch.equal(grid_pool(x, 3), F.adaptive_avg_pool2d(x, 3))


def test_tiles_must_make_the_same_calls():
    pooling = ImagePooling(H, W)
    x = torch.ones(1, 1, H, W)
    for i, core in enumerate(CORES[:2]):
        with pooling.tile(_window(core), core) as record:
            mean_pool(x)
            if i:
                grid_pool(x, 3)
        if i:
            with pytest.raises(RuntimeError, match="different pooling calls"):
                pooling.commit(record)
        else:
            pooling.commit(record)


def _one_block_a2f() -> ModelDescriptor:
    """A2F with one block: its only pooling sees local features, so shared values are exact."""
    torch.manual_seed(1)
    model = a2f.build(a2f.A2FConfig(variant="custom", scale=2, n_feats=8, n_blocks=1)).eval()
    for p in model.parameters():  # make the channel attention matter
        p.data.mul_(3)
    desc = build_untrained("A2F-SD", 2)
    return ModelDescriptor(**{**desc.__dict__, "model": model, "variant": "custom"})


def _one_group_rnan() -> torch.nn.Module:
    torch.manual_seed(2)
    cfg = rnan.RNANConfig(
        variant="custom",
        scale=2,
        channels=16,
        n_groups=1,
        n_blocks=1,
        group_interval=1,
        gc_reduction=4,
    )
    model = rnan.build(cfg).eval()
    torch.nn.init.normal_(model.groups[0].gc.up.weight, std=0.5)  # GC starts as the identity
    torch.nn.init.normal_(model.groups[0].gc.key.weight, std=2.0)
    return model


@pytest.mark.parametrize("which", ["a2f", "rnan"])
def test_shared_pooling_makes_tiles_equal_the_whole_image(which):
    model = _one_block_a2f().model if which == "a2f" else _one_group_rnan()
    x = torch.rand(1, 3, 64, 80, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        whole = model(x)
    kw = dict(scale=2, tile=16, overlap=20, device=torch.device("cpu"))
    progress: list[tuple[int, int]] = []
    shared = upscale_tiled(
        model, x, shared_pooling=True, on_progress=lambda *a: progress.append(a), **kw
    )
    alone = upscale_tiled(model, x, shared_pooling=False, **kw)
    assert (alone - whole).abs().max() > 1e-3  # per-tile pooling really differs
    assert (shared - whole).abs().max() < 2e-5
    assert progress[-1][0] == progress[-1][1] and len(progress) == 2 * 20  # two passes of 4 x 5


def test_ensemble_of_tiles_with_shared_pooling_equals_the_whole_image_ensemble():
    desc = _one_block_a2f()
    assert desc.shared_pooling
    x = torch.rand(1, 3, 40, 72, generator=torch.Generator().manual_seed(4))
    whole = Upscaler(desc, UpscaleOptions(tile=0, ensemble=True)).upscale_tensor(x)
    tiled = Upscaler(desc, UpscaleOptions(tile=16, tile_overlap=12, ensemble=True))
    tiled = tiled.upscale_tensor(x)
    assert (tiled - whole).abs().max() < 2e-5
