"""Where weights live: bundled with the project (weights/), and the user's data directory
(downloaded releases and imported files). A .pt/.pth file there is described by a sidecar JSON
file of the same stem; safetensors files carry their own metadata."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
from safetensors import SafetensorError, safe_open

from engine.checkpoints import META_KEY

ORIGIN_RANK = {"downloaded": 0, "imported": 1, "bundled": 2}


@dataclass(frozen=True)
class WeightsEntry:
    family: str
    variant: str
    scale: int
    path: Path
    origin: str  # "bundled", "downloaded" or "imported"
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def name(self) -> str:
        return f"{self.family}-{self.variant}"

    @property
    def files(self) -> list[Path]:
        """The files that make up this entry: the weights and, for a .pt/.pth, its sidecar."""
        sidecar = self.path.with_suffix(".json")
        return [self.path] + ([sidecar] if self.path.suffix != ".safetensors" else [])

    @property
    def removable(self) -> bool:
        """The user's own (downloaded, imported, trained): under the user's data directory.
        What ships in weights/ stays."""
        return self.path.resolve().is_relative_to(user_dir().resolve())


def bundled_dir() -> Path:
    base = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parents[1]))
    return base / "weights"


def user_dir() -> Path:
    root = os.environ.get("SRSTUDIO_DATA_DIR")
    base = Path(root) if root else platformdirs.user_data_path("srstudio", appauthor=False)
    return base / "weights"


def _read_meta(path: Path) -> dict[str, Any] | None:
    try:
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as f:
                return json.loads((f.metadata() or {}).get(META_KEY, "null"))
        sidecar = path.with_suffix(".json")
        return json.loads(sidecar.read_text()) if sidecar.is_file() else None
    except (SafetensorError, OSError, ValueError):
        return None


def _scan(folder: Path, default_origin: str, *, forced: bool = False) -> list[WeightsEntry]:
    """Weights files under `folder`; their origin is the one their metadata names (downloaded,
    trained...) unless `forced` (what ships in weights/ is bundled, whoever trained it)."""
    entries = []
    if not folder.is_dir():
        return entries
    for path in sorted(folder.rglob("*")):
        if path.suffix not in (".safetensors", ".pt", ".pth"):
            continue
        meta = _read_meta(path)
        if not meta or not {"family", "variant", "scale"} <= meta.keys():
            continue
        origin = default_origin if forced else meta.get("origin", default_origin)
        entries.append(
            WeightsEntry(meta["family"], meta["variant"], int(meta["scale"]), path, origin, meta)
        )
    return entries


def installed_weights() -> list[WeightsEntry]:
    return _scan(user_dir(), "imported") + _scan(bundled_dir(), "bundled", forced=True)


def best_weights(family: str, variant: str, scale: int) -> WeightsEntry | None:
    """Downloaded release over imported over bundled."""
    matches = [
        e
        for e in installed_weights()
        if (e.family.lower(), e.variant.lower(), e.scale)
        == (family.lower(), variant.lower(), scale)
    ]
    return min(matches, key=lambda e: ORIGIN_RANK.get(e.origin, 9), default=None)
