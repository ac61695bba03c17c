"""Training and fine-tuning the networks on the user's own images (engine.training.train)."""

from __future__ import annotations

from engine.training.config import (
    DEGRADATIONS,
    SCHEDULES,
    LogEvent,
    LossEvent,
    TrainConfig,
    TrainResult,
    ValidationEvent,
)
from engine.training.loop import train

__all__ = [
    "DEGRADATIONS",
    "SCHEDULES",
    "LogEvent",
    "LossEvent",
    "TrainConfig",
    "TrainResult",
    "ValidationEvent",
    "train",
]
