from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from engine.errors import SRStudioError
from engine.inference import devices
from engine.inference.devices import (
    free_memory_bytes,
    list_devices,
    resolve_device,
    resolve_dtype,
)

CUDA = torch.device("cuda", 0)


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend this machine has two CUDA GPUs (nothing here touches a real one)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)
    names = ["NVIDIA H100 80GB HBM3", "NVIDIA RTX 4090"]
    monkeypatch.setattr(
        torch.cuda,
        "get_device_properties",
        lambda i: SimpleNamespace(name=names[i], total_memory=(80 - 56 * i) << 30),
    )


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)


def test_cpu_and_auto_without_accelerators(no_gpu: None) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    listed = list_devices()
    assert [d.spec for d in listed] == ["cpu"]
    assert listed[0].name.startswith("CPU (") and (listed[0].total_memory or 1) > 0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("cuda", "CUDA is not available"),
        ("cuda:0", "CUDA is not available"),
        ("mps", "MPS is not available"),
        ("tpu", "unknown device"),
        ("gpu0", "unknown device"),
    ],
)
def test_unavailable_or_unknown_devices_are_clear_errors(
    no_gpu: None, spec: str, message: str
) -> None:
    with pytest.raises(SRStudioError, match=message):
        resolve_device(spec)


def test_cuda_devices_are_listed_and_resolved(two_gpus: None) -> None:
    listed = list_devices()
    assert [d.spec for d in listed] == ["cuda:0", "cuda:1", "cpu"]
    assert listed[0].name == "NVIDIA H100 80GB HBM3" and listed[1].total_memory == 24 << 30
    assert resolve_device("auto") == CUDA
    assert resolve_device("cuda") == CUDA
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(SRStudioError, match="there is no cuda:2; this machine has cuda:0, cuda:1"):
        resolve_device("cuda:2")
    with pytest.raises(SRStudioError, match="bad device"):
        resolve_device("cuda:one")


def test_auto_prefers_mps_to_the_cpu(monkeypatch: pytest.MonkeyPatch, no_gpu: None) -> None:
    monkeypatch.setattr(devices, "_mps_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")
    assert [d.spec for d in list_devices()] == ["mps", "cpu"]


def test_cuda_free_memory_counts_what_the_cache_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda d: (3 << 30, 80 << 30))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda d: 5 << 30)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda d: 4 << 30)
    assert free_memory_bytes(CUDA) == 4 << 30


def test_cpu_free_memory_reads_meminfo_and_the_cgroup_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16000000 kB\nMemAvailable:    8000000 kB\n")
    monkeypatch.setattr(devices, "_MEMINFO", meminfo)
    monkeypatch.setattr(devices, "_CGROUP", tmp_path / "no-cgroup")
    assert free_memory_bytes(torch.device("cpu")) == 8_000_000 * 1024
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    (cgroup / "memory.max").write_text("3000000000\n")
    (cgroup / "memory.current").write_text("1000000000\n")
    monkeypatch.setattr(devices, "_CGROUP", cgroup)
    assert free_memory_bytes(torch.device("cpu")) == 2_000_000_000
    (cgroup / "memory.max").write_text("max\n")
    assert free_memory_bytes(torch.device("mps")) == 8_000_000 * 1024


def test_cpu_free_memory_without_meminfo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(devices, "_MEMINFO", tmp_path / "missing")
    monkeypatch.setattr(devices, "_CGROUP", tmp_path / "missing")
    monkeypatch.setattr(devices, "_sysconf_bytes", lambda name: None)
    assert free_memory_bytes(torch.device("cpu")) == devices.FALLBACK_FREE_BYTES
    assert free_memory_bytes("cpu") > 0  # a string device works too


def test_this_machine_reports_some_free_ram() -> None:
    free = free_memory_bytes(torch.device("cpu"))
    total = list_devices()[-1].total_memory
    assert free > 0 and (total is None or free <= total)


def test_precisions(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu, mps = torch.device("cpu"), torch.device("mps")
    for device in (cpu, CUDA, mps):
        assert resolve_dtype("fp32", device) == torch.float32
    assert resolve_dtype("bf16", cpu) == torch.bfloat16
    assert resolve_dtype("fp16", CUDA) == torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_dtype("BF16", "cuda:0") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(SRStudioError, match="does not support bf16"):
        resolve_dtype("bf16", CUDA)
    with pytest.raises(SRStudioError, match="fp16 is only supported on CUDA GPUs, not on the CPU"):
        resolve_dtype("fp16", cpu)
    with pytest.raises(SRStudioError, match="not on MPS"):
        resolve_dtype("bf16", mps)
    with pytest.raises(SRStudioError, match="unknown precision"):
        resolve_dtype("int8", cpu)


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_a_cpu_that_emulates_it_is_warned_of_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, native: bool
) -> None:
    monkeypatch.setattr(devices, "cpu_native_bf16", lambda: native)
    devices._warn_emulated_bf16.cache_clear()
    with caplog.at_level(logging.WARNING, logger="engine.inference.devices"):
        for _ in range(3):  # an Upscaler for each estimate and run: one line
            assert resolve_dtype("bf16", "cpu") == torch.bfloat16
        assert resolve_dtype("fp32", "cpu") == torch.float32
    warned = [r.getMessage() for r in caplog.records if "emulated" in r.getMessage()]
    assert warned == ([] if native else [warned[0]])
    assert native or "slower than fp32" in warned[0]
    devices._warn_emulated_bf16.cache_clear()
