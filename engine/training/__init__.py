"""Training and fine-tuning the networks on the user's own images (engine.training.train)."""

from __future__ import annotations

from engine.training.config import (
    DEGRADATIONS,
    PRECISIONS,
    SCHEDULES,
    LogEvent,
    LossEvent,
    TrainConfig,
    TrainResult,
    ValidationEvent,
)
from engine.training.loop import cpu_native_bf16, train

__all__ = [
    "DEGRADATIONS",
    "PRECISIONS",
    "SCHEDULES",
    "LogEvent",
    "LossEvent",
    "TrainConfig",
    "TrainResult",
    "ValidationEvent",
    "cpu_native_bf16",
    "train",
]
