"""Fixtures of the engine tests (no Qt here)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from tests.engine.hostile import trap  # noqa: F401 - the booby-trapped Ghostscript fixture

ROOT = Path(__file__).resolve().parents[2]


def load_script(relative: str) -> ModuleType:
    """A script of the repository that is not a package module (weights/*.py), imported by path."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module
