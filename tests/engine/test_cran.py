from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.archs import cran
from engine.archs.cran import CRAC, FAMILY, CRANConfig

PAPER_PARAMS_X2 = 14.94e6
# Exact counts of this build (choices in engine/archs/cran.py's docstring).
EXPECTED_PARAMS = {
    ("paper", 2): 15_663_603,
    ("paper", 3): 15_848_243,
    ("paper", 4): 15_811_315,
    ("light", 2): 1_728_843,
    ("light", 3): 1_913_483,
    ("light", 4): 1_876_555,
    ("tiny", 2): 231_795,
    ("tiny", 3): 278_035,
    ("tiny", 4): 268_787,
}
CRAC_PARAMS = ("encode", "phi", "theta", "gcn", "res", "channel", "spatial_out", "spatial_in")


@pytest.fixture(scope="module")
def paper_models() -> dict[int, nn.Module]:
    torch.manual_seed(0)
    return {s: cran.build(cran.config("paper", s)).eval() for s in FAMILY.scales}


def _model(variant: str, scale: int, paper_models: dict[int, nn.Module]) -> nn.Module:
    if variant == "paper":
        return paper_models[scale]
    return cran.build(cran.config(variant, scale)).eval()


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_family_fields() -> None:
    assert FAMILY.name == "CRAN"
    assert FAMILY.variants == ("paper", "light", "tiny")
    assert FAMILY.input_range == 1.0
    assert FAMILY.tiling_safe is False
    assert FAMILY.config is cran.config and FAMILY.build is cran.build
    assert FAMILY.detect is cran.detect


def test_config_rejects_unknown() -> None:
    with pytest.raises(ValueError):
        cran.config("huge", 2)
    with pytest.raises(ValueError):
        cran.config("paper", 5)


def test_paper_config_matches_the_paper() -> None:
    cfg = cran.config("paper", 2)
    assert (cfg.n_groups, cfg.n_blocks, cfg.n_feats, cfg.crac_groups) == (10, 20, 64, 16)


@pytest.mark.parametrize(("variant", "scale"), sorted(EXPECTED_PARAMS))
def test_parameter_count(variant: str, scale: int, paper_models: dict[int, nn.Module]) -> None:
    assert _n_params(_model(variant, scale, paper_models)) == EXPECTED_PARAMS[variant, scale]


def test_paper_count_within_5_percent_at_x2(paper_models: dict[int, nn.Module]) -> None:
    n = _n_params(paper_models[2])
    assert abs(n - PAPER_PARAMS_X2) / PAPER_PARAMS_X2 <= 0.05


def test_paper_model_structure(paper_models: dict[int, nn.Module]) -> None:
    model = paper_models[4]
    cracs = [m for m in model.modules() if isinstance(m, CRAC)]
    plain = [m for m in model.modules() if type(m) is nn.Conv2d]
    assert len(cracs) == 20  # one CRAB (two CRACs) per group
    # head + 190 blocks x 2 + 10 group convs + body conv + 2 upsampler convs + tail
    assert len(plain) == 1 + 380 + 10 + 1 + 2 + 1
    assert all(isinstance(g.blocks[-1].conv1, CRAC) for g in model.body)
    assert not any(isinstance(b.conv1, CRAC) for g in model.body for b in g.blocks[:-1])


@pytest.mark.parametrize("variant", FAMILY.variants)
@pytest.mark.parametrize("scale", FAMILY.scales)
def test_detect_round_trip(variant: str, scale: int, paper_models: dict[int, nn.Module]) -> None:
    sd = _model(variant, scale, paper_models).state_dict()
    assert cran.detect(sd) == cran.config(variant, scale)


def test_detect_custom_and_strict_load() -> None:
    cfg = CRANConfig("custom", 3, n_groups=2, n_blocks=3, n_feats=32, crac_groups=8, embed_dim=16)
    sd = cran.build(cfg).state_dict()
    assert cran.detect(sd) == cfg
    fresh = cran.build(cran.detect(sd))
    fresh.load_state_dict(sd, strict=True)
    assert all(torch.equal(v, fresh.state_dict()[k]) for k, v in sd.items())


def test_detect_rejects_foreign_dicts() -> None:
    light = cran.build(cran.config("light", 2)).state_dict()
    crab = "body.0.blocks.5.conv1"
    missing = {k: v for k, v in light.items() if k != f"{crab}.gcn.weight"}
    extra = {**light, "body.0.blocks.0.conv1.phi.weight": torch.zeros(64, 64)}
    reshaped = {**light, "body.1.blocks.5.conv2.phi.weight": torch.zeros(32, 64)}
    prefixed = {f"module.{k}": v for k, v in light.items()}
    plain = nn.Sequential(nn.Conv2d(3, 64, 3), nn.ReLU(), nn.Conv2d(64, 3, 3)).state_dict()
    rcan_like = {
        "head.0.weight": torch.zeros(64, 3, 3, 3),
        "tail.1.weight": torch.zeros(3, 64, 3, 3),
    }
    for sd in ({}, missing, extra, reshaped, prefixed, plain, rcan_like):
        assert cran.detect(sd) is None
    assert cran.detect(light) is not None  # the untouched dict still passes


@pytest.mark.parametrize("scale", FAMILY.scales)
@pytest.mark.parametrize("size", [(1, 1), (17, 23), (30, 41)])
def test_forward_shapes_light(scale: int, size: tuple[int, int]) -> None:
    model = cran.build(cran.config("light", scale)).eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 3, size[0] * scale, size[1] * scale)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("scale", FAMILY.scales)
@pytest.mark.parametrize("size", [(1, 1), (17, 23)])
def test_forward_shapes_paper(
    scale: int, size: tuple[int, int], paper_models: dict[int, nn.Module]
) -> None:
    x = torch.rand(1, 3, *size)
    with torch.no_grad():
        y = paper_models[scale](x)
    assert y.shape == (1, 3, size[0] * scale, size[1] * scale)
    assert torch.isfinite(y).all()


def _crac(c: int = 64, groups: int = 16, embed: int = 64) -> CRAC:
    return CRAC(in_channels=c, out_channels=c, kernel_size=3, groups=groups, embed_dim=embed)


def _reference_crac(m: CRAC, x: torch.Tensor, groups: int) -> torch.Tensor:
    """The paper's equations for one image (c_in, H, W), written with plain matrices."""
    c_in, k = x.shape[0], m.kernel_size
    c_out = m.weight.shape[0]
    fc = F.adaptive_avg_pool2d(x[None], k)[0].reshape(c_in, k * k) @ m.encode.weight.T  # F_C
    r = (fc.T @ m.phi.weight.T) @ (fc.T @ m.theta.weight.T).T  # Eq. (1), e x e
    fc_star = torch.sigmoid(((r @ fc.T @ m.gcn.weight.T) @ m.res.weight.T).T) * fc + fc  # Eq. (2)
    w_ci = m.channel.weight[:, :, 0]  # (c_out, c_in / g)
    gi, go = c_in // groups, c_out // groups
    f_ci = torch.cat(
        [w_ci[j * go : (j + 1) * go] @ fc_star[j * gi : (j + 1) * gi] for j in range(groups)]
    )
    f_a1 = f_ci @ m.spatial_out.weight.T  # (c_out, k*k)
    f_a2 = fc_star @ m.spatial_in.weight.T  # (c_in, k*k)
    f_a = torch.empty(c_out, c_in, k * k)
    for o in range(c_out):
        for i in range(c_in):
            f_a[o, i] = torch.sigmoid(f_a1[o] + f_a2[i])  # Eq. (4)
    w_star = m.weight * f_a.view(c_out, c_in, k, k)  # Eq. (5)
    return F.conv2d(x[None], w_star, m.bias, padding=k // 2)[0]


def test_crac_batched_equals_per_image() -> None:
    m = _crac()
    x = torch.randn(3, 64, 9, 13)
    with torch.no_grad():
        batched = m(x)
        single = torch.cat([m(x[i : i + 1]) for i in range(3)])
    assert batched.shape == (3, 64, 9, 13)
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)


def test_crac_matches_reference_equations() -> None:
    m = _crac(c=32, groups=16, embed=8)
    x = torch.randn(3, 32, 7, 5)
    with torch.no_grad():
        out = m(x)
        ref = torch.stack([_reference_crac(m, x[i], groups=16) for i in range(3)])
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_crac_kernel_depends_on_the_image() -> None:
    m = _crac()
    x = torch.randn(2, 64, 8, 8)
    x[1] = x[1] * 3 + 1
    with torch.no_grad():
        w = m.modulated_weight(x)
    assert w.shape == (2, 64, 64, 3, 3)
    assert not torch.allclose(w[0], w[1])
    # The mask is a sigmoid, so it only shrinks the kernel.
    assert (w.abs() <= m.weight.abs().unsqueeze(0) + 1e-7).all()


def test_train_step_light_has_finite_gradients() -> None:
    model = cran.build(cran.config("light", 2)).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.999))
    lr, hr = torch.rand(2, 3, 12, 12), torch.rand(2, 3, 24, 24)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loss = F.l1_loss(model(lr), hr)
    opt.zero_grad()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    crab = model.body[0].blocks[-1].conv1
    for name in CRAC_PARAMS:
        assert getattr(crab, name).weight.grad.abs().sum() > 0, name
    opt.step()
    after = model.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k, _ in model.named_parameters())
    assert torch.isfinite(F.l1_loss(model(lr), hr))
