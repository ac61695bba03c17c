from __future__ import annotations

from functools import cache

import pytest
import torch
from torch import nn

from engine.archs import rnan

# sum(p.numel()) measured from this implementation (see the module docstring)
PARAM_COUNTS = {
    ("paper", 2): 17_135_557,
    ("paper", 3): 17_320_197,
    ("paper", 4): 17_283_269,
    ("light", 2): 2_333_047,
    ("light", 3): 2_517_687,
    ("light", 4): 2_480_759,
    ("tiny", 2): 235_185,
    ("tiny", 3): 281_425,
    ("tiny", 4): 272_177,
}
CASES = sorted(PARAM_COUNTS)


@cache
def _model(variant: str, scale: int) -> rnan.RNAN:
    torch.manual_seed(0)
    return rnan.build(rnan.config(variant, scale)).eval()


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_family_fields() -> None:
    fam = rnan.FAMILY
    assert fam.name == "RNAN"
    assert fam.variants == ("paper", "light", "tiny")
    assert fam.input_range == 1.0
    assert fam.tiling_safe is False
    assert fam.tile_overlap > 0
    assert fam.config("light", 3) == rnan.config("light", 3)


def test_paper_config_hyper_parameters() -> None:
    cfg = rnan.config("paper", 4)
    assert (cfg.channels, cfg.n_groups, cfg.n_blocks) == (64, 10, 20)
    assert (cfg.block_interval, cfg.group_interval, cfg.gc_reduction) == (1, 2, 16)


@pytest.mark.parametrize(("variant", "scale"), CASES)
def test_param_counts(variant: str, scale: int) -> None:
    assert _n_params(_model(variant, scale)) == PARAM_COUNTS[(variant, scale)]


def test_paper_count_matches_table_2() -> None:
    assert abs(_n_params(_model("paper", 4)) - 17.30e6) / 17.30e6 < 0.01


@pytest.mark.parametrize(("variant", "scale"), [("nope", 4), ("paper", 5), ("light", 1)])
def test_config_rejects_unknown(variant: str, scale: int) -> None:
    with pytest.raises(ValueError):
        rnan.config(variant, scale)


def test_module_rejects_bad_intervals() -> None:
    with pytest.raises(ValueError):
        rnan.RNAN(scale=2, n_blocks=6, block_interval=4)
    with pytest.raises(ValueError):
        rnan.RNAN(scale=2, n_groups=5, group_interval=2)


@pytest.mark.parametrize(("variant", "scale"), CASES)
def test_detect_round_trip(variant: str, scale: int) -> None:
    sd = _model(variant, scale).state_dict()
    cfg = rnan.detect(sd)
    assert cfg == rnan.config(variant, scale)
    rnan.build(cfg).load_state_dict(sd, strict=True)


def test_detect_reads_custom_hyper_parameters() -> None:
    kwargs = dict(scale=3, channels=32, n_groups=6, n_blocks=4)
    kwargs |= dict(block_interval=2, group_interval=3, gc_reduction=8)
    cfg = rnan.detect(rnan.RNAN(**kwargs).state_dict())
    assert cfg == rnan.RNANConfig(variant="custom", **kwargs)


def _light_sd() -> dict[str, torch.Tensor]:
    return dict(_model("light", 2).state_dict())


def test_detect_rejects_altered_rnan_dicts() -> None:
    missing = _light_sd()
    del missing["groups.3.gc.norm.bias"]
    extra = _light_sd()
    extra["groups.0.blocks.0.scale"] = torch.ones(1)
    reshaped = _light_sd()
    reshaped["groups.1.blocks.2.na.dw.weight"] = torch.zeros(64, 64, 3, 3)
    bad_upsampler = _light_sd()
    bad_upsampler["upsampler.0.weight"] = torch.zeros(64 * 5, 64, 3, 3)
    no_gc = {k: v for k, v in _light_sd().items() if ".gc." not in k}
    for sd in (missing, extra, reshaped, bad_upsampler, no_gc):
        assert rnan.detect(sd) is None


def test_detect_rejects_foreign_dicts() -> None:
    cran_like = {
        "head.0.weight": torch.zeros(64, 3, 3, 3),
        "body.0.body.0.body.0.weight": torch.zeros(64, 64, 3, 3),
        "tail.0.0.weight": torch.zeros(256, 64, 3, 3),
    }
    a2f_like = {
        "head.0.weight_g": torch.zeros(32, 1, 1, 1),
        "head.0.weight_v": torch.zeros(32, 3, 3, 3),
        "body.0.b0.0.weight_v": torch.zeros(128, 32, 3, 3),
        "skip.0.weight_v": torch.zeros(48, 3, 5, 5),
    }
    not_tensors = {"head.weight": 3, "fuse_reduce.weight": "x"}
    for sd in ({}, cran_like, a2f_like, not_tensors):
        assert rnan.detect(sd) is None  # type: ignore[arg-type]


def _forward_cases() -> list[tuple[str, int, tuple[int, int]]]:
    cases = []
    for variant, scale in CASES:
        sizes = [(1, 1), (17, 23)] + ([(30, 41)] if variant == "light" else [])
        cases += [(variant, scale, hw) for hw in sizes]
    return cases


@pytest.mark.parametrize(("variant", "scale", "hw"), _forward_cases())
def test_forward_shape(variant: str, scale: int, hw: tuple[int, int]) -> None:
    h, w = hw
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        y = _model(variant, scale)(x)
    assert y.shape == (1, 3, h * scale, w * scale)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()


def test_batch_items_are_independent() -> None:
    # The GC blocks pool per image: one image's output must not depend on its batch neighbours.
    model = _model("light", 2)
    g = torch.Generator().manual_seed(2)
    a, b = torch.rand(1, 3, 9, 11, generator=g), torch.rand(1, 3, 9, 11, generator=g)
    with torch.inference_mode():
        together = model(torch.cat([a, b]))
        alone = model(a)
    torch.testing.assert_close(together[:1], alone, rtol=1e-4, atol=1e-5)


def test_neuron_attention_formula() -> None:
    na = rnan.NeuronAttention(channels=8)
    t = torch.randn(2, 8, 5, 6)
    gate = torch.sigmoid(na.pw(torch.relu(na.dw(t))))
    assert na.dw.groups == 8 and na.dw.kernel_size == (3, 3) and na.pw.kernel_size == (1, 1)
    torch.testing.assert_close(na(t), t * gate)


def test_global_context_matches_eq_8() -> None:
    gc = rnan.GlobalContext(channels=32, reduction=16)
    nn.init.normal_(gc.up.weight)  # GCNet zero-inits it; give it weights so the branch shows
    x = torch.randn(2, 32, 4, 7)
    for i in range(2):
        xi = x[i].reshape(32, -1)  # (C, Np)
        attn = torch.softmax(gc.key.weight.view(1, 32) @ xi + gc.key.bias, dim=1)  # (1, Np)
        ctx = (xi * attn).sum(1).view(1, 32, 1, 1)
        add = gc.up(torch.relu(gc.norm(gc.down(ctx))))
        assert gc.norm.weight.shape == (2, 1, 1)
        torch.testing.assert_close(gc(x[i : i + 1]), x[i : i + 1] + add)


def test_global_context_starts_as_identity() -> None:
    gc = rnan.GlobalContext(channels=16, reduction=4)
    x = torch.randn(1, 16, 3, 3)
    torch.testing.assert_close(gc(x), x)


def test_light_train_step_reduces_loss() -> None:
    torch.manual_seed(0)
    model = rnan.build(rnan.config("light", 2)).train()
    g = torch.Generator().manual_seed(3)
    lr_img = torch.rand(2, 3, 12, 12, generator=g)
    target = nn.functional.interpolate(lr_img, scale_factor=2, mode="bilinear")
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    losses = []
    for step in range(6):
        opt.zero_grad()
        loss = nn.functional.l1_loss(model(lr_img), target)
        loss.backward()
        if step == 0:
            for name, p in model.named_parameters():
                assert p.grad is not None, name
                assert torch.isfinite(p.grad).all(), name
        opt.step()
        losses.append(loss.item())
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False)), losses
    assert losses[-1] < 0.85 * losses[0]
