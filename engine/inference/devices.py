"""Compute devices and precisions: what exists, what a user's choice resolves to, free memory."""

from __future__ import annotations

import functools
import logging
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.errors import SRStudioError

log = logging.getLogger(__name__)

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"
FALLBACK_FREE_BYTES = 2 << 30  # when the system will not say how much RAM is available
_MEMINFO = Path("/proc/meminfo")
_CGROUP = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class DeviceInfo:
    spec: str  # what resolve_device accepts: "cpu", "cuda:0", "mps"
    name: str  # for people: "NVIDIA H100 80GB HBM3", "CPU (16 threads)", "Apple MPS"
    total_memory: int | None  # bytes, when known


@functools.cache
def cpu_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively, as torch sees it: AVX512-BF16 or AMX-BF16 on x86,
    the BF16 extension on Arm (oneDNN's check). Elsewhere torch emulates bf16, slower than fp32.
    (OpenVINO's own view: engine.inference.openvino_backend.native_bf16.)"""
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i386", "i686", "x86"):
        capability = getattr(torch._C._cpu, "_get_cpu_capability", None)
        caps = capability() if capability is not None else None  # cpuinfo's flags, as a dict
        if isinstance(caps, dict):
            return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))
        try:
            flags = Path("/proc/cpuinfo").read_text().split()
        except OSError:
            return False
        return "avx512_bf16" in flags or "amx_bf16" in flags
    try:  # aarch64: true when the CPU has the BF16 extension
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def list_devices() -> list[DeviceInfo]:
    """Every CUDA GPU, then Apple MPS when available, then the CPU (with "native bf16" where
    OpenVINO computes bf16 natively on it)."""
    found = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            found.append(DeviceInfo(f"cuda:{i}", props.name, int(props.total_memory)))
    if _mps_available():
        found.append(DeviceInfo("mps", "Apple MPS", _meminfo_bytes("MemTotal")))
    from engine.inference.openvino_backend import native_bf16

    threads = torch.get_num_threads()
    bf16 = ", native bf16" if native_bf16() else ""  # through OpenVINO (precision bf16)
    found.append(DeviceInfo("cpu", f"CPU ({threads} threads{bf16})", _meminfo_bytes("MemTotal")))
    return found


def resolve_device(spec: str) -> torch.device:
    """ "auto" (CUDA, else MPS, else CPU), "cpu", "cuda", "cuda:N" or "mps" -> a usable device."""
    text = str(spec).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not _mps_available():
            raise SRStudioError("Apple MPS is not available on this machine; use cpu or auto")
        return torch.device("mps")
    if text == "cuda" or text.startswith("cuda:"):
        index_text = text[5:]
        if index_text and not index_text.isdigit():
            raise SRStudioError(f"bad device {spec!r}: use {DEVICE_CHOICES}")
        if not torch.cuda.is_available():
            why = (
                "this PyTorch build has no CUDA support"
                if torch.version.cuda is None
                else "no CUDA GPU was found (or its driver is not working)"
            )
            raise SRStudioError(f"CUDA is not available: {why}; use cpu or auto")
        count = torch.cuda.device_count()
        index = int(index_text) if index_text else torch.cuda.current_device()
        if index >= count:
            known = ", ".join(f"cuda:{i}" for i in range(count))
            raise SRStudioError(f"there is no {text}; this machine has {known}")
        return torch.device("cuda", index)
    raise SRStudioError(f"unknown device {spec!r}: use {DEVICE_CHOICES}")


def free_memory_bytes(device: torch.device) -> int:
    """Memory a network could still use: free GPU memory (plus what PyTorch's cache holds unused)
    on CUDA; available system RAM, within this process's cgroup limit, on the CPU and MPS."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + max(0, cached))
    return _available_ram()


def _meminfo_bytes(field: str) -> int | None:
    try:
        for line in _MEMINFO.read_text().splitlines():
            name, _, value = line.partition(":")
            if name == field:
                return int(value.split()[0]) * 1024  # the kernel writes kB
    except (OSError, ValueError, IndexError):
        pass
    if field == "MemTotal":
        return _sysconf_bytes("SC_PHYS_PAGES")
    return None


def _sysconf_bytes(name: str) -> int | None:
    try:
        pages, size = os.sysconf(name), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * size if pages > 0 and size > 0 else None


def _cgroup_headroom() -> int | None:
    """memory.max - memory.current of a cgroup v2 limit (containers), None when unlimited."""
    try:
        limit = (_CGROUP / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((_CGROUP / "memory.current").read_text()))
    except (OSError, ValueError):
        return None


def _available_ram() -> int:
    available = _meminfo_bytes("MemAvailable") or _sysconf_bytes("SC_AVPHYS_PAGES")
    if available is None:
        total = _sysconf_bytes("SC_PHYS_PAGES")
        available = total // 2 if total else FALLBACK_FREE_BYTES
    headroom = _cgroup_headroom()
    return min(available, headroom) if headroom is not None else available


def resolve_dtype(precision: str, device: torch.device | str) -> torch.dtype:
    """ "fp32" anywhere; "fp16" on CUDA only; "bf16" on CUDA GPUs that support it and on the CPU
    (autocast); neither half precision on MPS."""
    device = torch.device(device)
    text = str(precision).strip().lower()
    if text == "fp32":
        return torch.float32
    if text not in ("fp16", "bf16"):
        raise SRStudioError(f"unknown precision {precision!r}: use fp32, fp16 or bf16")
    if device.type == "cuda":
        if text == "bf16" and not torch.cuda.is_bf16_supported():
            raise SRStudioError("this GPU does not support bf16; use fp16 or fp32")
        return torch.float16 if text == "fp16" else torch.bfloat16
    if device.type == "cpu" and text == "bf16":
        if not cpu_native_bf16():
            _warn_emulated_bf16()
        return torch.bfloat16
    where = "the CPU" if device.type == "cpu" else device.type.upper()
    hint = "use bf16 or fp32" if device.type == "cpu" else "use fp32"
    raise SRStudioError(f"{text} is only supported on CUDA GPUs, not on {where}; {hint}")


@functools.cache
def _warn_emulated_bf16() -> None:  # once a process: an Upscaler is made for every estimate
    log.warning(
        "bf16: this CPU does not compute bf16 natively, so it is emulated and runs several times "
        "slower than fp32"
    )
