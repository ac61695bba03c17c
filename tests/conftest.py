from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SRSTUDIO_SHARED", ROOT.parent / "shared"))


def require_shared() -> Path:
    """../shared, or skip (fail in CI, where SRSTUDIO_REQUIRE_SHARED=1) when it is absent."""
    if not (SHARED / "specs").is_dir():
        if os.environ.get("SRSTUDIO_REQUIRE_SHARED") == "1":
            pytest.fail(
                f"../shared is required (SRSTUDIO_REQUIRE_SHARED=1) but {SHARED} is missing"
            )
        pytest.skip(f"../shared not found at {SHARED}")
    return SHARED


@pytest.fixture
def shared_dir() -> Path:
    return require_shared()


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `gpu` need CUDA; without it they skip (CI has no GPU)."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
