"""What the model picker rates weights by (engine.quality): one Set5 figure per set of weights that
compares across origins, and each network's plain-words summary."""

from __future__ import annotations

import pytest

from engine import FAMILIES, expected_set5, quality_fraction, recommended_releases
from engine.quality import BUNDLED_SET5, MEASURED, PAPER
from tests.engine.test_bundled_weights import SET5


def test_the_bundled_figures_are_the_pinned_measurements():
    pinned = {(m.split("-")[0], m.split("-")[1], s): v for (m, s), v in SET5.items()}
    assert pinned == BUNDLED_SET5


def test_each_origin_is_rated_by_what_compares_with_set5():
    bundled = expected_set5("A2F", "SD", 4, "bundled", {"psnr": 27.36})
    assert (bundled.psnr, bundled.ssim, bundled.basis) == (31.3409, 0.8826, MEASURED)
    for origin in ("download", "downloaded"):
        release = expected_set5("A2F", "SD", 4, origin, {"release": "A2F-SD-x4"})
        assert (release.psnr, release.ssim, release.basis) == (32.06, 0.8928, PAPER)
    # an imported copy of a release is the release
    assert expected_set5("HPINet", "M", 2, "imported", {"release": "HPINet-M-x2"}).psnr == 38.12
    # a file trained or imported here: its own validation PSNR does not compare with Set5
    assert expected_set5("A2F", "SD", 4, "trained", {"psnr": 31.0}) is None
    assert expected_set5("RNAN", "light", 2, "imported", {}) is None
    assert expected_set5("Bicubic", "MATLAB", 3, "builtin").psnr == 30.39


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_the_bar_runs_from_bicubic_to_the_best_paper_figure(scale):
    bicubic = expected_set5("Bicubic", "MATLAB", scale, "builtin").psnr
    best = {2: 38.31, 3: 34.80, 4: 32.72}[scale]  # CRAN (and HPINet-L at x4)
    assert quality_fraction(bicubic, scale) == 0.0
    assert quality_fraction(best, scale) == 1.0
    assert quality_fraction(best + 1, scale) == 1.0 and quality_fraction(bicubic - 1, scale) == 0
    bundled = quality_fraction(BUNDLED_SET5[("A2F", "SD", scale)][0], scale)
    release = quality_fraction(expected_set5("A2F", "SD", scale, "download").psnr, scale)
    assert 0.0 < bundled < release < 1.0


def test_every_network_says_what_it_is_good_for_in_one_short_line():
    summaries = [f.summary for f in FAMILIES]
    assert len(set(summaries)) == len(summaries)
    every = {f"{f.name}-{v}": f.summary_of(v) for f in FAMILIES for v in f.variants}
    assert all(0 < len(s) <= 40 for s in every.values()), every  # fits a row of the picker
    assert set(every) == {f"{f.name}-{v}" for f in FAMILIES for v in f.variants}
    # variants the throughput table puts under a tenth of A2F-SD's speed say so
    for name in ("RNAN-paper", "CRAN-paper", "HPINet-S", "HPINet-M", "HPINet-L"):
        assert every[name].endswith("very slow without a GPU"), name
    assert not any("very slow" in every[n] for n in ("A2F-SD", "RNAN-tiny", "CRAN-tiny"))
    assert sum(s.startswith("Fastest") for s in every.values()) == 2  # A2F-S and A2F-SD


def test_the_offered_releases_are_the_fastest_and_the_sharpest_at_every_scale():
    names = {r.name for r in recommended_releases()}
    assert names == {f"{n}-x{s}" for n in ("A2F-SD", "HPINet-M") for s in (2, 3, 4)}
