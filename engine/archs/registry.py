"""The one explicit list of network families, and lookups over it."""

from __future__ import annotations

from engine.archs import a2f, bicubic, cleanup, cran, hpinet, rnan
from engine.archs.base import Family, MemoryCost, StateDict

FAMILIES: tuple[Family, ...] = (rnan.FAMILY, cran.FAMILY, a2f.FAMILY, hpinet.FAMILY)
# 1x restoration networks that run before an upscaler (never offered as one)
RESTORERS: tuple[Family, ...] = (cleanup.FAMILY,)


def get_family(name: str) -> Family:
    for family in FAMILIES + RESTORERS:
        if family.name.lower() == name.lower():
            return family
    known = ", ".join(f.name for f in FAMILIES + RESTORERS)
    raise ValueError(f"unknown network family {name!r}; known: {known}")


def memory_cost(name: str) -> MemoryCost | None:
    """The working-memory cost of a family's forward (bicubic's too), None for an unknown name."""
    if name.lower() == "bicubic":
        return bicubic.MEMORY_COST
    try:
        return get_family(name).memory
    except ValueError:
        return None


def model_names() -> list[str]:
    return [f"{f.name}-{v}" for f in FAMILIES for v in f.variants]


def parse_model_name(name: str) -> tuple[Family, str, int | None]:
    """'A2F-SD', 'a2f-sd-x2' or 'HPINet-M x4' -> (family, variant, scale or None)."""
    parts = name.replace(" ", "-").split("-")
    scale = None
    if len(parts) > 1 and parts[-1].lower().startswith("x") and parts[-1][1:].isdigit():
        scale = int(parts.pop()[1:])
    family = get_family(parts[0])
    variant = "-".join(parts[1:])
    for v in family.variants:
        if v.lower() == variant.lower():
            return family, v, scale
    if not variant and len(family.variants) == 1:
        return family, family.variants[0], scale
    raise ValueError(
        f"unknown variant {variant!r} of {family.name}; known: {', '.join(family.variants)}"
    )


def variant_note(family: str, variant: str) -> str:
    """Whether a variant is the paper's configuration or one of ours, and how it differs."""
    try:
        own = get_family(family).own_variants
    except ValueError:
        return "unknown"
    if variant in own:
        return f"ours, lighter than the paper's: {own[variant]}"
    return "the paper's configuration"


def detect(state_dict: StateDict) -> tuple[Family, object] | None:
    """The family and config whose detector recognises this state dict, or None."""
    for family in FAMILIES + RESTORERS:
        config = family.detect(state_dict)
        if config is not None:
            return family, config
    return None
