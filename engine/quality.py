"""How good a set of weights is expected to be, as one Set5 figure that compares across origins:
the paper's figure for the authors' released weights (which reproduce it, README), the project's
own Set5 measurement for the bundled weights, nothing for a file trained or imported here (its
training run only measured its own validation images, which do not compare with Set5). No Qt.

    figure = expected_set5(family, variant, scale, origin, metadata)
    figure.psnr, figure.ssim, figure.basis, quality_fraction(figure.psnr, scale)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.published import PUBLISHED, published_psnr

# (family, variant, scale) -> Set5 float-Y (PSNR, SSIM) of the files in weights/, measured by
# `bash weights/evaluate.sh` (pinned in tests/engine/test_bundled_weights.py; weights/README.md).
BUNDLED_SET5: dict[tuple[str, str, int], tuple[float, float]] = {
    ("A2F", "SD", 2): (37.3712, 0.9582),
    ("A2F", "SD", 3): (33.2217, 0.9165),
    ("A2F", "SD", 4): (31.3409, 0.8826),
    ("CRAN", "tiny", 2): (37.3034, 0.9577),
    ("CRAN", "tiny", 3): (33.2346, 0.9164),
    ("CRAN", "tiny", 4): (31.3275, 0.8813),
    ("HPINet", "T", 2): (37.4059, 0.9585),
    ("HPINet", "T", 3): (33.4732, 0.9194),
    ("HPINet", "T", 4): (31.3039, 0.8827),
    ("RNAN", "tiny", 2): (37.2725, 0.9576),
    ("RNAN", "tiny", 3): (33.2337, 0.9164),
    ("RNAN", "tiny", 4): (31.3026, 0.8818),
}

PAPER = "paper"  # the paper's figure (released weights reproduce it)
MEASURED = "measured"  # measured by this project on Set5 (bundled weights)


@dataclass(frozen=True)
class Set5Figure:
    psnr: float
    ssim: float | None
    basis: str  # PAPER or MEASURED


def expected_set5(
    family: str, variant: str, scale: int, origin: str, metadata: Mapping[str, Any] | None = None
) -> Set5Figure | None:
    """Set5 PSNR/SSIM to expect from these weights; None when nothing comparable is known.

    origin: "bundled", "downloaded", "imported", "trained", "download" (a release not yet
    installed) or "builtin" (bicubic)."""
    metadata = metadata or {}
    if (
        family.lower() == "bicubic"
        or origin in ("download", "downloaded")
        or metadata.get("release")
    ):
        found = published_psnr(family, variant, scale)
        return Set5Figure(found[0], found[1], PAPER) if found is not None else None
    if origin == "bundled":
        found = BUNDLED_SET5.get((family, variant, scale))
        return Set5Figure(found[0], found[1], MEASURED) if found is not None else None
    return None


def best_published_set5(scale: int) -> float | None:
    """The highest Set5 PSNR any of the papers gives at `scale`."""
    figures = [
        sets[scale]["Set5"][0] for sets in PUBLISHED.values() if "Set5" in sets.get(scale, {})
    ]
    return max(figures, default=None)


def quality_fraction(psnr: float, scale: int) -> float:
    """Where `psnr` lies between MATLAB bicubic (0) and the best paper figure (1) at `scale`,
    clamped to 0..1: a bar's length that reads the same at every scale."""
    low = published_psnr("Bicubic", "MATLAB", scale)
    high = best_published_set5(scale)
    if low is None or high is None or high <= low[0]:
        return 0.0
    return min(1.0, max(0.0, (psnr - low[0]) / (high - low[0])))
