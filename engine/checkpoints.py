"""Recognising, loading and saving weights files: which registered network a state dict is,
the model built from it, and the project's own format (a safetensors file whose header metadata
holds one JSON object under the key "srstudio": family, variant, scale, provenance, measured
figures...). Reading a file safely, whoever made it, is engine.weights_file's job.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from engine.archs import registry
from engine.archs.base import Family
from engine.archs.bicubic import Bicubic
from engine.atomic import atomic_path
from engine.descriptor import ModelDescriptor
from engine.errors import CheckpointError
from engine.library import WeightsEntry, best_weights, recommended_weights
from engine.weights_file import (  # noqa: F401 - read_state_dict and the checks are re-exported
    FORMAT_VERSION,
    META_KEY,
    SUPPORTED,
    check_metadata,
    check_state_dict,
    describe_state_dict,
    display_name,
    first_line,
    inspect_weights_file,
    load_pytorch_file,
    parse_metadata,
    read_state_dict,
    show_value,
)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _descriptor(
    family: Family, config: Any, model: nn.Module, source: str, metadata: Mapping[str, Any]
) -> ModelDescriptor:
    return ModelDescriptor(
        family=family.name,
        variant=config.variant,
        scale=config.scale,
        params=count_params(model),
        input_range=float(metadata.get("input_range", family.input_range)),
        size_multiple=1,
        tiling_safe=family.tiling_safe,
        tile_overlap=family.tile_overlap,
        shared_pooling=family.shared_pooling,
        source=source,
        metadata=dict(metadata),
        model=model.eval(),
    )


def _recognise(sd: dict[str, torch.Tensor], name: str) -> tuple[Family, Any]:
    try:
        found = registry.detect(sd)
    except Exception as exc:  # a detector meeting shapes it never expected
        raise CheckpointError(
            f"{name}: its tensors could not be matched to a network ({first_line(exc)})"
        ) from None
    if found is None:
        known = "; ".join(f"{f.name} ({', '.join(f.variants)})" for f in registry.FAMILIES)
        raise CheckpointError(
            f"{name} matches none of the known networks. Found {describe_state_dict(sd)}. "
            f"Expected a state dict of one of: {known}"
        )
    return found


def _check_agrees(meta: Mapping[str, Any], family: Family, config: Any, name: str) -> None:
    """The metadata names the network the tensors are, if it names one."""
    if meta.get("family") and meta["family"] != family.name:
        raise CheckpointError(
            f"{name}: its metadata says {show_value(meta['family'])} "
            f"but the tensors are {family.name}'s"
        )
    if "scale" in meta and meta["scale"] != config.scale:
        raise CheckpointError(
            f"{name}: its metadata says x{meta['scale']} but the tensors are a x{config.scale} "
            f"{family.name} network"
        )


def _build_loaded(family: Family, config: Any, sd: dict[str, torch.Tensor], name: str) -> nn.Module:
    try:
        model = family.build(config)
        model.load_state_dict(sd, strict=True)
    except Exception as exc:  # shapes that passed detection but do not fit
        raise CheckpointError(
            f"{name} looks like {family.name}-{config.variant} x{config.scale} but its "
            f"tensors do not fit: {first_line(exc)}"
        ) from None
    return model


def load_file_model(path: str | Path) -> ModelDescriptor:
    """Recognise and load a weights file of any registered network."""
    path = Path(path)
    sd, meta = read_state_dict(path)
    name = display_name(path)
    family, config = _recognise(sd, name)
    _check_agrees(meta, family, config, name)
    model = _build_loaded(family, config, sd, name)
    return _descriptor(family, config, model, str(path), meta)


def build_untrained(name: str, scale: int) -> ModelDescriptor:
    """A randomly initialised network (for training from scratch, tests and benchmarks)."""
    family, variant, _ = registry.parse_model_name(name)
    config = family.config(variant, scale)
    return _descriptor(family, config, family.build(config), "untrained", {})


def bicubic(scale: int) -> ModelDescriptor:
    return ModelDescriptor(
        family="Bicubic",
        variant="MATLAB",
        scale=scale,
        params=0,
        input_range=1.0,
        size_multiple=1,
        tiling_safe=True,
        tile_overlap=4,
        source="builtin",
        model=Bicubic(scale=scale).eval(),
    )


def load_model(source: str | Path, *, scale: int | None = None) -> ModelDescriptor:
    """A weights file path, "bicubic", or a model name ("A2F-SD", "HPINet-M-x4") resolved to the
    best weights installed for it (engine.library)."""
    text = str(source)
    if text.lower() == "bicubic":
        if scale is None:
            raise CheckpointError("bicubic needs a scale")
        return bicubic(scale)
    path = Path(source)
    if path.suffix.lower() in (".pt", ".pth", ".safetensors", ".ckpt", ".onnx") or path.exists():
        desc = load_file_model(path)
        if scale is not None and desc.scale != scale:
            raise CheckpointError(f"{path.name} is a x{desc.scale} model; x{scale} was asked for")
        return desc
    try:
        family, variant, name_scale = registry.parse_model_name(text)
    except ValueError as exc:
        entry = _family_choice(text, scale)
        if entry is None:
            raise CheckpointError(str(exc)) from None
        return load_file_model(entry.path)
    scale = scale or name_scale
    if scale is None:
        raise CheckpointError(f"{text}: give a scale (e.g. {text}-x4)")
    entry = best_weights(family.name, variant, scale)
    if entry is None:
        raise CheckpointError(
            f"no weights installed for {family.name}-{variant} x{scale}; "
            "see `srstudio models` for what is available"
        )
    return load_file_model(entry.path)


def _family_choice(text: str, scale: int | None) -> WeightsEntry | None:
    """A family name alone ("RNAN", "hpinet-x2"): its recommended installed weights; None when
    `text` is no family name. CheckpointError when it is one but nothing fits."""
    name, _, suffix = text.rpartition("-x")
    if not (name and suffix.isdigit()):
        name, suffix = text, ""
    try:
        family = registry.get_family(name)
    except ValueError:
        return None
    scale = scale or (int(suffix) if suffix else None)
    if scale is None:
        raise CheckpointError(f"{text}: give a scale (e.g. {family.name}-x4 or --scale 4)")
    entry = recommended_weights(scale, family.name)
    if entry is None:
        raise CheckpointError(
            f"no {family.name} weights installed for x{scale}; see `srstudio models`"
        )
    return entry


def _default_permissions(path: Path) -> None:
    """safetensors creates files readable by their owner only; give them the mode any other new
    file gets (0666 less the umask), so that bundled and shared weights stay readable."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    family: str,
    variant: str,
    scale: int,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write the project's format atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    meta = {
        "format_version": FORMAT_VERSION,
        "family": family,
        "variant": variant,
        "scale": scale,
        **(metadata or {}),
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta)})
        _default_permissions(tmp)
    return path
