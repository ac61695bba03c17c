"""Tiles and self-ensemble on the released checkpoints, through `srstudio eval` (Set5/Set14 x4)."""

from __future__ import annotations

import json
from pathlib import Path

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


# Mean PSNR of tiles of 48 LR pixels (the family's own overlap) minus the whole-image pass, within
# the 0.01 dB. A2F's tiles share the image-wide channel-attention means (two passes):
# within 0.001 dB of the whole image with its overlap of 16 (at 24: -0.0008 on Set5, +0.0000 on
# Set14; +0.0125 dB on Set14 with per-tile means). HPINet's patch
# matching cannot be shared; its overlap of 40 keeps Set14 at -0.0020 dB (+0.0103 with 32), and
# leaves every Set5 image uncut (no side is longer than 48 + 2 x 40).
TILE_DELTA = [  # weights, set, delta, whether any image is cut
    (A2F, "Set5", -0.0009, True),
    (HPINET, "Set5", 0.0, False),
    (A2F, "Set14", -0.0001, True),
    (HPINET, "Set14", -0.0020, True),
]


@pytest.mark.parametrize(("weights", "dataset", "delta", "cut"), TILE_DELTA)
def test_tiles_of_48_against_the_whole_image(capsys, shared_dir, weights, dataset, delta, cut):
    whole = _eval(capsys, shared_dir, weights, dataset, "--tile", "0")
    tiled = _eval(capsys, shared_dir, weights, dataset, "--tile", "48")
    assert (tiled != whole) == cut  # cut images really are different passes
    assert tiled - whole == pytest.approx(delta, abs=0.0005)
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


@pytest.mark.parametrize("model", ["RNAN-tiny", "CRAN-tiny", "HPINet-T"])
def test_bundled_weights_tiled_stay_within_the_bound(capsys, shared_dir, model):
    """The project's own x4 weights (RNAN and CRAN have no released ones) on Set14, tiles of 48."""
    weights = Path(__file__).resolve().parents[2] / "weights" / f"{model}-x4.safetensors"
    bench = shared_dir / "benchmarks" / "Set14" / "x4"
    argv = ["eval", "--weights", str(weights), "--hr", str(bench / "HR")]
    argv += ["--lr", str(bench / "LR"), "--device", "cpu", "--json"]
    psnr = {}
    for tile in ("0", "48"):
        assert main([*argv, "--tile", tile]) == 0
        psnr[tile] = json.loads(capsys.readouterr().out)["psnr"]
    whole, tiled = psnr["0"], psnr["48"]
    assert tiled != whole
    assert abs(tiled - whole) <= 0.01
