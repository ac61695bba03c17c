from __future__ import annotations

import pytest
import torch

from engine.archs import hpinet
from engine.archs.base import Family

CHECKPOINTS = {("M", 2): 782_539, ("M", 3): 923_939, ("M", 4): 895_659, ("S", 4): 463_131}
# (h, w, patch): plain fits, a single patch, last patch moved back, a row covered by three patches
# ((h - 3) % (patch - 2) == 0), thin maps
PATCH_CASES = [
    (37, 53, 12),
    (24, 24, 24),
    (25, 40, 16),
    (33, 33, 12),
    (23, 37, 12),
    (45, 26, 24),
    (12, 100, 12),
    (71, 20, 20),
    (30, 41, 14),
]


def loop_divide(x: torch.Tensor, patch: int) -> torch.Tensor:
    """Reference: the obvious nested loops over patch positions, (b, h, w, c) -> (b, n, P, P, c)."""
    h, w = x.shape[1:3]
    step = patch - 2
    patches = []
    for i in range(0, h + step - patch, step):
        top = min(i, h - patch)
        for j in range(0, w + step - patch, step):
            left = min(j, w - patch)
            patches.append(x[:, top : top + patch, left : left + patch])
    return torch.stack(patches, dim=1)


def loop_paste(patches: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Reference: add every patch back in row-major order, then halve each band where two
    consecutive patches overlap, once per axis (the released code's averaging)."""
    b, _, patch, _, c = patches.shape
    step = patch - 2
    out = patches.new_zeros(b, h, w, c)
    k = 0
    for i in range(0, h + step - patch, step):
        top = min(i, h - patch)
        for j in range(0, w + step - patch, step):
            left = min(j, w - patch)
            out[:, top : top + patch, left : left + patch] += patches[:, k]
            k += 1
    for i in range(step, h + step - patch, step):
        out[:, min(i, h - patch) : i + patch - step] /= 2
    for j in range(step, w + step - patch, step):
        out[:, :, min(j, w - patch) : j + patch - step] /= 2
    return out


def _released(variant: str, scale: int, shared_dir) -> dict[str, torch.Tensor]:
    path = shared_dir / "official-weights" / "hpinet" / f"HPINet-{variant}-x{scale}.pth"
    sd = torch.load(path, map_location="cpu", weights_only=True)
    return {k.removeprefix("module."): v for k, v in sd.items()}


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_family() -> None:
    fam = hpinet.FAMILY
    assert isinstance(fam, Family)
    assert (fam.name, fam.variants, fam.input_range, fam.tiling_safe) == (
        "HPINet",
        ("S", "M", "L", "T"),
        1.0,
        False,
    )
    with pytest.raises(ValueError):
        hpinet.config("XL", 4)
    with pytest.raises(ValueError):
        hpinet.config("M", 8)


@pytest.mark.parametrize(("variant", "scale"), list(CHECKPOINTS))
def test_param_counts(variant: str, scale: int) -> None:
    model = hpinet.build(hpinet.config(variant, scale))
    assert _n_params(model) == CHECKPOINTS[(variant, scale)]


def test_param_count_large() -> None:
    assert _n_params(hpinet.build(hpinet.config("L", 4))) == 1_435_587  # paper: 1.44M


@pytest.mark.parametrize(("scale", "count"), [(2, 152_419), (3, 198_659), (4, 189_411)])
def test_our_tiny_variant_is_recognised_from_its_weights(scale: int, count: int) -> None:
    model = hpinet.build(hpinet.config("T", scale))
    assert _n_params(model) == count
    assert hpinet.detect(model.state_dict()) == hpinet.config("T", scale)


@pytest.mark.parametrize(("variant", "scale"), list(CHECKPOINTS))
def test_released_checkpoints_load_strictly(variant: str, scale: int, shared_dir) -> None:
    sd = _released(variant, scale, shared_dir)
    cfg = hpinet.detect(sd)
    assert cfg is not None
    assert (cfg.variant, cfg.scale) == (variant, scale)
    model = hpinet.build(cfg)
    model.load_state_dict(sd, strict=True)
    assert _n_params(model) == sum(v.numel() for v in sd.values()) == CHECKPOINTS[(variant, scale)]


@pytest.mark.parametrize("variant", ["S", "M", "L"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_detect_round_trip(variant: str, scale: int) -> None:
    cfg = hpinet.config(variant, scale)
    assert hpinet.detect(hpinet.build(cfg).state_dict()) == cfg


def test_detect_rejects_foreign() -> None:
    sd = hpinet.build(hpinet.config("M", 4)).state_dict()
    assert hpinet.detect({}) is None
    assert hpinet.detect({"head.weight": torch.zeros(64, 3, 3, 3)}) is None
    assert hpinet.detect({k: v for k, v in sd.items() if k != "mid_convs.3.bias"}) is None
    assert hpinet.detect({**sd, "extra.weight": torch.zeros(1)}) is None
    fc1 = sd["blocks.0.layers.0.1.fn.fc1.weight"]
    assert hpinet.detect({**sd, "blocks.0.layers.0.1.fn.fc1.weight": fc1[:90]}) is None
    # a 9-block M is no released variant
    nine = hpinet.HPINet(scale=4, dim=56, qk_dim=32, mlp_dim=100, patch_sizes=(12,) * 9)
    assert hpinet.detect(nine.state_dict()) is None


@pytest.mark.parametrize(("h", "w", "patch"), PATCH_CASES)
def test_vectorised_patches_equal_loops(h: int, w: int, patch: int) -> None:
    x = torch.randn(2, h, w, 5)
    patches = hpinet.divide_patches(x, patch)
    assert torch.equal(patches, loop_divide(x, patch))
    processed = torch.randn_like(patches)
    assert torch.equal(hpinet.paste_patches(processed, h, w), loop_paste(processed, h, w))


@pytest.mark.parametrize(("h", "w", "patch"), PATCH_CASES)
def test_paste_of_divide_is_identity_except_triple_cover(h: int, w: int, patch: int) -> None:
    x = torch.randint(1, 4096, (1, h, w, 3)) / 64.0  # dyadic: every sum below is exact
    back = hpinet.paste_patches(hpinet.divide_patches(x, patch), h, w)
    expected = x.clone()
    # the released code halves twice (not divides by 3) where three patches cover a row/column
    for size, dim in ((h, 1), (w, 2)):
        if size - patch > patch - 2 and (size - 3) % (patch - 2) == 0:
            expected.narrow(dim, size - patch, 1).mul_(0.75)
    assert torch.equal(back, expected)


def test_patch_starts() -> None:
    assert hpinet.patch_starts(12, 12) == [0]
    assert hpinet.patch_starts(37, 12) == [0, 10, 20, 25]
    assert hpinet.patch_starts(32, 12) == [0, 10, 20]
    assert hpinet.patch_starts(33, 12) == [0, 10, 20, 21]


@pytest.mark.parametrize("variant", ["S", "M", "L"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_forward_shapes(variant: str, scale: int) -> None:
    model = hpinet.build(hpinet.config(variant, scale)).eval()
    with torch.inference_mode():
        for h, w in ((1, 1), (17, 23), (30, 41)):
            out = model(torch.rand(1, 3, h, w))
            assert out.shape == (1, 3, h * scale, w * scale)
            assert torch.isfinite(out).all()


def test_forward_with_loop_patches_is_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    model = hpinet.build(hpinet.config("S", 2)).eval()
    x = torch.rand(1, 3, 30, 41)
    with torch.inference_mode():
        fast = model(x)
        monkeypatch.setattr(hpinet, "divide_patches", loop_divide)
        monkeypatch.setattr(hpinet, "paste_patches", loop_paste)
        slow = model(x)
    assert torch.equal(fast, slow)


def test_batch_items_match_within_their_own_image() -> None:
    model = hpinet.build(hpinet.config("S", 3)).eval()
    x = torch.rand(2, 3, 26, 30)
    with torch.inference_mode():
        both = model(x)
        alone = torch.cat([model(x[:1]), model(x[1:])])
    torch.testing.assert_close(both, alone, rtol=1e-4, atol=1e-5)


def test_training_forward_uses_gumbel_and_backpropagates() -> None:
    model = hpinet.build(hpinet.config("S", 2)).train()
    x = torch.rand(2, 3, 28, 28)
    out = model(x)
    assert out.shape == (2, 3, 56, 56)
    out.abs().mean().backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    # the matching LayerNorm only gets a gradient through the straight-through Gumbel-softmax
    assert grads["cross_match.0.norm.weight"].abs().sum() > 0
    assert grads["blocks.7.layers.0.0.fn.to_k.weight"].abs().sum() > 0
