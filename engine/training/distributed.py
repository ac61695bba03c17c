"""Running one training over several processes (torchrun) with DistributedDataParallel.

`torchrun --nproc_per_node N -m engine.cli train ...` sets RANK, WORLD_SIZE and LOCAL_RANK; the
trainer then joins a process group (gloo on the CPU, nccl on CUDA), wraps the network in DDP,
gives each rank its shard of the images, and lets only rank 0 validate and write files.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn

# shared with `srstudio upscale` under torchrun; re-exported for the trainer
from engine.distributed import DistInfo, from_env, init, shutdown

__all__ = [
    "DistInfo",
    "barrier",
    "broadcast",
    "from_env",
    "init",
    "shutdown",
    "sum_and_any",
    "unwrap",
    "wrap",
]


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
