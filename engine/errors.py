"""Errors whose message is meant for the user: the CLI prints them, the app shows them."""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[int, int], None]  # on_progress(done, total)
StopFn = Callable[[], bool]  # should_stop() -> True to cancel


class SRStudioError(Exception):
    """A failure with a message a user can act on (never a deep traceback)."""


class CheckpointError(SRStudioError):
    """A weights file that cannot be read or recognised."""


class ImageError(SRStudioError):
    """An image that cannot be read or written."""


class Cancelled(SRStudioError):
    """Raised by long-running work when should_stop() returned True."""

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message)


def no_progress(done: int, total: int) -> None:
    """Default on_progress."""


def never_stop() -> bool:
    """Default should_stop."""
    return False
