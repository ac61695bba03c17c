"""Parameter counts of the networks, by name, without building their weights (the meta device):
one function for the CLI (`srstudio models`) and the app (the model panel). No Qt."""

from __future__ import annotations

import functools

import torch

from engine.archs import registry
from engine.checkpoints import count_params


@functools.lru_cache(maxsize=256)
def param_count(family: str, variant: str, scale: int) -> int | None:
    """Parameters of family-variant at x`scale` (0 for bicubic); None for an unknown family,
    variant or scale. Nothing is allocated: the network is built on the meta device."""
    if family.lower() == "bicubic":
        return 0
    try:
        fam = registry.get_family(family)
        with torch.device("meta"):
            return count_params(fam.build(fam.config(variant, scale)))
    except (ValueError, RuntimeError, TypeError, KeyError):
        return None
