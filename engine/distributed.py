"""What every torchrun-aware command shares: the torchrun variables, the device of a process,
and joining the process group (gloo on the CPU, nccl on CUDA).

`torchrun --nproc_per_node N -m engine.cli CMD ...` sets RANK, WORLD_SIZE, LOCAL_RANK and
LOCAL_WORLD_SIZE in every process; without them (or with WORLD_SIZE 1) a command runs alone.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from engine.errors import SRStudioError
from engine.inference import devices

TIMEOUT_ENV = "SRSTUDIO_DIST_TIMEOUT_MINUTES"
DEFAULT_TIMEOUT_MINUTES = 60.0


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_env() -> DistInfo:
    """The torchrun variables, or a single process when they are absent."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    return DistInfo(
        rank=int(os.environ.get("RANK", "0")),
        world=world,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        local_world=int(os.environ.get("LOCAL_WORLD_SIZE", str(world))),
    )


def local_device(spec: str, info: DistInfo) -> torch.device:
    """engine.inference.devices' choice; under torchrun "auto" and "cuda" take the GPU of this
    process's LOCAL_RANK (a named cuda:N is kept)."""
    text = spec.strip().lower()
    if info.enabled and text in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", info.local_rank % torch.cuda.device_count())
    return devices.resolve_device(text)


def cpu_threads(info: DistInfo) -> int:
    """The CPU threads of one process when the processes on this machine share its cores."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, info.local_world))


def timeout_from_env() -> datetime.timedelta:
    """SRSTUDIO_DIST_TIMEOUT_MINUTES (default 60): how long a process waits for the others to
    join the group, and for every collective (e.g. a finished process waiting for the rest)."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return datetime.timedelta(minutes=DEFAULT_TIMEOUT_MINUTES)
    try:
        minutes = float(text)
    except ValueError:
        raise SRStudioError(f"{TIMEOUT_ENV} must be a number of minutes, got {text!r}") from None
    if not minutes > 0:
        raise SRStudioError(f"{TIMEOUT_ENV} must be > 0, got {text}")
    return datetime.timedelta(minutes=minutes)


def init(
    info: DistInfo, device: torch.device, *, timeout: datetime.timedelta | None = None
) -> bool:
    """Join the process group (True when this call created it and must tear it down). timeout:
    for joining and for every collective (None: torch's default)."""
    if not info.enabled or dist.is_initialized():
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)  # also where nccl's object collectives put their bytes
    extra = {} if timeout is None else {"timeout": timeout}
    dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world, **extra)
    return True


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
