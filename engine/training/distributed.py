"""Running one training over several processes (torchrun) with DistributedDataParallel.

`torchrun --nproc_per_node N -m engine.cli train ...` sets RANK, WORLD_SIZE and LOCAL_RANK; the
trainer then joins a process group (gloo on the CPU, nccl on CUDA), wraps the network in DDP,
gives each rank its shard of the images, and lets only rank 0 validate and write files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

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
    )


def init(info: DistInfo, device: torch.device) -> bool:
    """Join the process group (True when this call created it and must tear it down)."""
    if not info.enabled or dist.is_initialized():
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world)
    return True


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    if not info.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def sum_and_any(
    info: DistInfo, value: float, flag: bool, device: torch.device
) -> tuple[float, bool]:
    """The mean of `value` over ranks, and whether any rank raised `flag` (one collective)."""
    if not info.enabled:
        return value, flag
    t = torch.tensor([value, float(flag)], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t[0]) / info.world, bool(t[1] > 0)


def broadcast(info: DistInfo, obj: Any) -> Any:
    """Rank 0's `obj` on every rank (picklable plain values only)."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
