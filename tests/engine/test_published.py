"""The papers' Set5/Set14 figures and the mapping from our model names onto them."""

from __future__ import annotations

import json

import pytest

from engine import published_psnr
from engine.published import PUBLISHED


@pytest.mark.parametrize(
    ("family", "variant", "scale", "dataset", "expected"),
    [
        ("A2F", "SD", 4, "Set5", (32.06, 0.8928)),
        ("A2F", "SD", 2, "Set14", (33.45, 0.9164)),
        ("HPINet", "M", 3, "Set5", (34.70, 0.9289)),
        ("HPINet", "S", 4, "Set14", (28.80, None)),  # the HPINet paper gives no SSIM here
        ("RNAN", "paper", 2, "Set5", (38.24, 0.9614)),
        ("CRAN", "paper", 4, "Set14", (29.01, 0.7918)),
        ("Bicubic", "MATLAB", 3, "Set5", (30.39, 0.8682)),
        ("a2f", "m", 4, "set5", (32.28, 0.8955)),  # names are matched without case
    ],
)
def test_pinned_values(family, variant, scale, dataset, expected):
    assert published_psnr(family, variant, scale, dataset) == expected


@pytest.mark.parametrize(
    ("family", "variant", "scale", "dataset"),
    [
        ("RNAN", "light", 2, "Set5"),  # our light variants are not in any paper
        ("CRAN", "light", 4, "Set5"),
        ("A2F", "XL", 4, "Set5"),  # unknown variant
        ("EDSR", "paper", 4, "Set5"),  # unknown family
        ("HPINet", "S", 2, "Set5"),  # scale the paper does not report
        ("A2F", "S", 2, "Set14"),  # set the paper does not report at this scale
        ("A2F", "SD", 4, "Urban100"),  # only Set5 and Set14 are kept
    ],
)
def test_none_where_no_paper_reports_it(family, variant, scale, dataset):
    assert published_psnr(family, variant, scale, dataset) is None


def test_default_dataset_is_set5():
    assert published_psnr("HPINet", "M", 2) == (38.12, 0.9605)


def test_table_matches_the_shared_benchmarks(shared_dir):
    source = json.loads((shared_dir / "benchmarks" / "published.json").read_text())
    for key, scales in PUBLISHED.items():
        for scale, sets in scales.items():
            expected = {
                name: tuple(values)
                for name, values in source[key][str(scale)].items()
                if name in ("Set5", "Set14")
            }
            assert sets == expected, (key, scale)
    wanted = {k for k in source if not k.startswith("_") and not k.endswith("+")}
    assert set(PUBLISHED) == wanted
