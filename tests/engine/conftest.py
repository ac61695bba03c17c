"""Fixtures of the engine tests (no Qt here)."""

from tests.engine.hostile import trap  # noqa: F401 - the booby-trapped Ghostscript fixture
