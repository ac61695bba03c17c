"""Which engine runs the network: PyTorch (the reference) or OpenVINO (CPU only, optional)."""

from __future__ import annotations

import logging
import os
import sys

import torch

from engine.descriptor import ModelDescriptor
from engine.errors import SRStudioError
from engine.inference import openvino_backend

BACKENDS = ("auto", "torch", "openvino")

log = logging.getLogger(__name__)


def resolve_backend(
    choice: str, descriptor: ModelDescriptor, device: torch.device, precision: str
) -> str:
    """ "torch" or "openvino" for a user's choice: "openvino" where it can run this network on
    this device at this precision (else a one-line error), "auto" OpenVINO wherever it can
    (bench/bench_backends.py: faster on the CPU for every family it converts) and PyTorch
    elsewhere, saying why in the log."""
    if choice not in BACKENDS:
        raise SRStudioError(f"engine must be one of {', '.join(BACKENDS)}, not {choice!r}")
    if choice == "torch" or descriptor.family == "Bicubic":  # bicubic has no network to convert
        return "torch"
    why = _why_not_openvino(descriptor, device, precision)
    if why is None:
        return "openvino"
    if choice == "openvino":
        raise SRStudioError(f"OpenVINO cannot run this: {why}")
    log.info("engine: PyTorch (%s)", why)
    return "torch"


def openvino_missing() -> str:
    """Why OpenVINO cannot run, in words that fit the install: a frozen bundle (PyInstaller)
    has no pip, so it says what the build lacks."""
    if getattr(sys, "frozen", False):
        return "OpenVINO is not part of this build"
    return "OpenVINO is not installed (pip install srstudio[openvino])"


def _why_not_openvino(
    descriptor: ModelDescriptor, device: torch.device, precision: str
) -> str | None:
    if not openvino_backend.available():
        return openvino_missing()
    if "jemalloc" in os.environ.get("LD_PRELOAD", ""):  # see app.launcher
        return "OpenVINO crashes with jemalloc preloaded; run with SRSTUDIO_JEMALLOC=0"
    if device.type != "cpu":
        return f"it runs on the CPU here, not on {device.type.upper()}; use --device cpu"
    if not openvino_backend.converts(descriptor):
        return f"{descriptor.label} does not convert to an OpenVINO network; use the PyTorch engine"
    if precision == "bf16" and not openvino_backend.native_bf16():
        return "this CPU has no native bf16 (OpenVINO would compute fp32); use fp32"
    return None
