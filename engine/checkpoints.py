"""Reading, recognising, loading and saving weights files.

Loading never executes code from a file: safetensors, or torch.load(weights_only=True) for pickles.
The project's own format is a safetensors file whose header metadata holds one JSON object under
the key "srstudio" (family, variant, scale, provenance, measured figures...).
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from engine.archs import registry
from engine.archs.base import Family
from engine.archs.bicubic import Bicubic
from engine.atomic import atomic_path
from engine.descriptor import ModelDescriptor
from engine.errors import CheckpointError

META_KEY = "srstudio"
FORMAT_VERSION = 1
_WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model", "net", "generator")


def _describe(sd: Mapping[str, torch.Tensor], limit: int = 4) -> str:
    items = list(sd.items())[:limit]
    shown = ", ".join(f"{k} {tuple(v.shape)}" for k, v in items)
    return f"{len(sd)} tensors ({shown}{', ...' if len(sd) > limit else ''})"


def _unwrap(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(
            f"{path.name}: expected a state dict (a mapping of names to tensors), "
            f"found {type(obj).__name__}"
        )
    sd = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{path.name}: entry {key!r} is a {type(value).__name__}, not a tensor; "
                "expected a plain state dict"
            )
        sd[key.removeprefix("module.")] = value
    return sd


def read_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, srstudio metadata or {}) from a .safetensors, .pt or .pth file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path.name} is empty (0 bytes)")
    if path.suffix.lower() == ".safetensors":
        try:
            with safe_open(str(path), framework="pt") as f:
                header = f.metadata() or {}
            sd = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(
                f"{path.name} is not a readable safetensors file (truncated or corrupt?): {exc}"
            ) from None
        try:
            meta = json.loads(header.get(META_KEY, "{}"))
        except json.JSONDecodeError:
            meta = {}
        return _unwrap(sd, path), meta
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only load failed" not in str(exc).lower():
            raise CheckpointError(
                f"{path.name} is not a readable PyTorch checkpoint (truncated, corrupt or another "
                f"kind of file): {str(exc).splitlines()[0][:200]}"
            ) from None
        raise CheckpointError(
            f"refused to load {path.name}: it holds Python objects other than tensors, and "
            "unpickling them could run code. Only plain state dicts are accepted "
            f"({str(exc).splitlines()[0][:200]})"
        ) from None
    except (
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        OSError,
        ValueError,
        IndexError,
        KeyError,
        TypeError,
        AttributeError,
    ) as exc:  # what torch raises on damaged files
        raise CheckpointError(
            f"{path.name} is not a readable PyTorch checkpoint (truncated, corrupt or another "
            "kind of file): "
            f"{str(exc).splitlines()[0][:200]}"
        ) from None
    return _unwrap(obj, path), {}


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


def load_file_model(path: str | Path) -> ModelDescriptor:
    """Recognise and load a weights file of any registered network."""
    path = Path(path)
    sd, meta = read_state_dict(path)
    found = registry.detect(sd)
    if found is None:
        known = "; ".join(f"{f.name} ({', '.join(f.variants)})" for f in registry.FAMILIES)
        raise CheckpointError(
            f"{path.name} matches none of the known networks. Found {_describe(sd)}. "
            f"Expected a state dict of one of: {known}"
        )
    family, config = found
    if meta.get("family") and meta["family"] != family.name:
        raise CheckpointError(
            f"{path.name}: metadata says {meta['family']} but the tensors are {family.name}'s"
        )
    model = family.build(config)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path.name} looks like {family.name}-{config.variant} x{config.scale} but its "
            f"tensors do not fit: {str(exc).splitlines()[0][:300]}"
        ) from None
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
    from engine import library  # library imports this module

    text = str(source)
    if text.lower() == "bicubic":
        if scale is None:
            raise CheckpointError("bicubic needs a scale")
        return bicubic(scale)
    path = Path(source)
    if path.suffix.lower() in (".pt", ".pth", ".safetensors", ".ckpt") or path.exists():
        desc = load_file_model(path)
        if scale is not None and desc.scale != scale:
            raise CheckpointError(f"{path.name} is a x{desc.scale} model; x{scale} was asked for")
        return desc
    try:
        family, variant, name_scale = registry.parse_model_name(text)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    scale = scale or name_scale
    if scale is None:
        raise CheckpointError(f"{text}: give a scale (e.g. {text}-x4)")
    entry = library.best_weights(family.name, variant, scale)
    if entry is None:
        raise CheckpointError(
            f"no weights installed for {family.name}-{variant} x{scale}; "
            "see `srstudio models` for what is available"
        )
    return load_file_model(entry.path)


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
