"""Tiles and self-ensemble on the released checkpoints, through `srstudio eval` (Set5/Set14 x4)."""

from __future__ import annotations

import json

import pytest

from engine.cli import main

A2F = "a2f/AAF_SD_x4.pt"
HPINET = "hpinet/HPINet-M-x4.pth"


def _eval(capsys, shared_dir, weights: str, dataset: str, *extra: str) -> float:
    bench = shared_dir / "benchmarks" / dataset / "x4"
    argv = [
        "eval",
        "--weights",
        str(shared_dir / "official-weights" / weights),
        "--hr",
        str(bench / "HR"),
        "--lr",
        str(bench / "LR"),
        "--device",
        "cpu",
        "--json",
    ]
    assert main([*argv, *extra]) == 0
    return json.loads(capsys.readouterr().out)["psnr"]


# Mean PSNR of tiles of 48 LR pixels (the family's own overlap) minus the whole-image pass.
# Set5 stays within the 0.01 dB. On Set14 the global operations (A2F's channel attention,
# HPINet's patch matching) see different statistics per tile, and more overlap alone does not close
# the gap (most of A2F's comes from img_011, 128x192); measured and pinned.
TILE_DELTA = [
    (A2F, "Set5", -0.0020),
    (HPINET, "Set5", -0.0002),
    (A2F, "Set14", 0.0125),
    (HPINET, "Set14", 0.0103),
]


@pytest.mark.parametrize(("weights", "dataset", "delta"), TILE_DELTA)
def test_tiles_of_48_against_the_whole_image(capsys, shared_dir, weights, dataset, delta):
    whole = _eval(capsys, shared_dir, weights, dataset, "--tile", "0")
    tiled = _eval(capsys, shared_dir, weights, dataset, "--tile", "48")
    assert tiled != whole  # the tiles really are different passes
    assert tiled - whole == pytest.approx(delta, abs=0.002)
    if dataset == "Set5":
        assert abs(tiled - whole) <= 0.01


@pytest.mark.parametrize(
    ("weights", "plain", "ensembled"), [(A2F, 32.064, 32.201), (HPINET, 32.625, 32.697)]
)
def test_self_ensemble_raises_set5_psnr(capsys, shared_dir, weights, plain, ensembled):
    base = _eval(capsys, shared_dir, weights, "Set5", "--tile", "0")
    plus = _eval(capsys, shared_dir, weights, "Set5", "--tile", "0", "--ensemble")
    assert base == pytest.approx(plain, abs=0.002)
    assert plus == pytest.approx(ensembled, abs=0.002)
    assert plus > base + 0.05
