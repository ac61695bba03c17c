"""The resume state beside a training's output file, and the random states it carries.

The state file holds only tensors and plain values (non-tensor structures as JSON text), so it is
read back with torch.load(weights_only=True). It is written to a temporary file and renamed.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.atomic import atomic_path
from engine.errors import CheckpointError

STATE_FORMAT = "srstudio-train-state"
STATE_VERSION = 1


def state_path(output: Path) -> Path:
    """'x.safetensors' -> 'x.resume.pt' (the library ignores .pt files without a sidecar)."""
    return output.with_name(output.stem + ".resume.pt")


def default_output(family: str, variant: str, scale: int) -> Path:
    from engine import library

    stamp = time.strftime("%Y%m%d-%H%M%S")
    return library.user_dir() / "trained" / f"{family}-{variant}-x{scale}-{stamp}.safetensors"


def capture_rng() -> dict[str, Any]:
    state = {
        "python": json.dumps(random.getstate()),
        "numpy": json.dumps(_numpy_state()),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = json.loads(state["python"])
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = json.loads(state["numpy"])
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _numpy_state() -> list[Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def save_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"format": STATE_FORMAT, "version": STATE_VERSION, **state}, tmp)


def load_state(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"nothing to resume: {path} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, corrupt or not ours: one clear message
        raise CheckpointError(f"cannot read the training state {path.name}: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path.name} is not an SR Studio training state")
    if state.get("version") != STATE_VERSION:
        raise CheckpointError(f"{path.name}: unsupported training state version")
    return state
