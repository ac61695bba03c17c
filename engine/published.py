"""The PSNR / SSIM the papers publish for their networks on Set5 and Set14 (Y channel, BI
degradation), copied from shared/benchmarks/published.json (itself from shared/specs/papers).

Keys are the papers' model names; `published_psnr` maps this project's family-variant names onto
them. Only networks the papers report appear: the "light" and "tiny" RNAN and CRAN
variants and HPINet-T are ours.
"""

from __future__ import annotations

Figures = tuple[float, float | None]  # (PSNR dB, SSIM or None where the paper gives none)

PUBLISHED: dict[str, dict[int, dict[str, Figures]]] = {
    "Bicubic": {
        2: {"Set5": (33.66, 0.9299), "Set14": (30.24, 0.8688)},
        3: {"Set5": (30.39, 0.8682), "Set14": (27.55, 0.7742)},
        4: {"Set5": (28.42, 0.8104), "Set14": (26.00, 0.7027)},
    },
    "RNAN": {
        2: {"Set5": (38.24, 0.9614), "Set14": (33.97, 0.9211)},
        3: {"Set5": (34.73, 0.9297), "Set14": (30.59, 0.8473)},
        4: {"Set5": (32.52, 0.8986), "Set14": (28.82, 0.7872)},
    },
    "CRAN": {
        2: {"Set5": (38.31, 0.9617), "Set14": (34.22, 0.9232)},
        3: {"Set5": (34.80, 0.9304), "Set14": (30.73, 0.8498)},
        4: {"Set5": (32.72, 0.9012), "Set14": (29.01, 0.7918)},
    },
    "A2F-S": {
        2: {"Set5": (37.79, 0.9597)},
        3: {"Set5": (34.06, 0.9241)},
        4: {"Set5": (31.87, 0.8900), "Set14": (28.36, 0.7760)},
    },
    "A2F-SD": {
        2: {"Set5": (37.91, 0.9602), "Set14": (33.45, 0.9164)},
        3: {"Set5": (34.23, 0.9259), "Set14": (30.22, 0.8395)},
        4: {"Set5": (32.06, 0.8928), "Set14": (28.47, 0.7790)},
    },
    "A2F-M": {
        2: {"Set5": (38.04, 0.9607)},
        3: {"Set5": (34.50, 0.9278), "Set14": (30.39, 0.8427)},
        4: {"Set5": (32.28, 0.8955), "Set14": (28.62, 0.7828)},
    },
    "A2F-L": {
        2: {"Set5": (38.09, 0.9607)},
        3: {"Set5": (34.54, 0.9283)},
        4: {"Set5": (32.32, 0.8964)},
    },
    "HPINet-S": {4: {"Set5": (32.47, None), "Set14": (28.80, None)}},
    "HPINet-M": {
        2: {"Set5": (38.12, 0.9605), "Set14": (33.94, 0.9209)},
        3: {"Set5": (34.70, 0.9289), "Set14": (30.63, 0.8480)},
        4: {"Set5": (32.60, 0.8986), "Set14": (28.87, 0.7874)},
    },
    "HPINet-L": {4: {"Set5": (32.72, None), "Set14": (28.97, None)}},
}

# Families whose paper networks are named by family alone, and the variant that is the paper's.
_PAPER_VARIANT = {"RNAN": "paper", "CRAN": "paper"}
_FAMILIES = {"rnan": "RNAN", "cran": "CRAN", "a2f": "A2F", "hpinet": "HPINet", "bicubic": "Bicubic"}


def table_key(family: str, variant: str) -> str | None:
    """The papers' name for one of our family-variant pairs; None when no paper reports it."""
    name = _FAMILIES.get(family.strip().lower())
    if name is None:
        return None
    if name == "Bicubic":
        return name
    if name in _PAPER_VARIANT:
        return name if variant.strip().lower() == _PAPER_VARIANT[name] else None
    key = f"{name}-{variant.strip().upper()}"
    return key if key in PUBLISHED else None


def published_psnr(
    family: str, variant: str, scale: int, dataset: str = "Set5"
) -> tuple[float, float | None] | None:
    """(PSNR, SSIM) the paper gives for this network on `dataset` ("Set5" or "Set14"), or None
    where it gives nothing (light variants, unknown names, scales or sets not reported)."""
    key = table_key(family, variant)
    if key is None:
        return None
    sets = PUBLISHED[key].get(int(scale), {})
    wanted = {name.lower(): name for name in sets}.get(dataset.strip().lower())
    return sets[wanted] if wanted else None
