"""srstudio upscale under torchrun, one process of several.

Under torchrun (WORLD_SIZE > 1) every process plans the same list and takes shard RANK+1 of
WORLD_SIZE the same way, on its own device (LOCAL_RANK picks cuda:N for auto/cuda; on the CPU the
processes of a machine share its cores); at the end rank 0 gathers the records (torch.distributed:
gloo on the CPU, nccl on CUDA) into one report, merged as `srstudio report merge` does, and alone
prints the summary; the others print only errors. --shard with torchrun is a usage error. A
process waits at most SRSTUDIO_DIST_TIMEOUT_MINUTES (default 60) for the others to join and, once
done, for the rest to finish, then gives up with an error; when the gathering fails (a process
died or timed out) rank 0 still writes what it has, naming the shards missing, and a rerun with
--skip-existing does only what is missing. Rank 0 exits as the merged run would (1 when shards
are missing, 2 when a process met a usage error); the others with their own share's status.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import time

import torch
import torch.distributed as dist

from engine import distributed
from engine.batch import BatchReport, run_batch
from engine.cli.common import StopOnSignal
from engine.cli.upscale import BatchProgress, finish, prepare
from engine.distributed import DistInfo
from engine.errors import SRStudioError
from engine.report_file import merge_reports
from engine.shard import Shard

USAGE_ERROR_GRACE_S = 2.0  # the other ranks wait this long before failing on a usage error


def run_torchrun(args: argparse.Namespace, info: DistInfo) -> int:
    """One process of a batch under torchrun: shard RANK+1 of WORLD_SIZE, records gathered to
    rank 0, which writes the one report and prints the summary."""
    if not info.is_main:
        logging.getLogger().setLevel(logging.WARNING)  # rank 0 alone tells the story
    if args.shard is not None:
        if info.is_main:
            print(
                "error: --shard cannot be used under torchrun: each process takes shard "
                "RANK+1 of WORLD_SIZE",
                file=sys.stderr,
            )
        else:  # torchrun stops every process once one fails: let rank 0 say why first
            time.sleep(USAGE_ERROR_GRACE_S)
        return 2
    try:
        device = distributed.local_device(args.device, info)
        timeout = distributed.timeout_from_env()
    except SRStudioError as e:
        if info.is_main:  # the same in every process
            print(f"error: {e}", file=sys.stderr)
        return 2
    if device.type == "cpu":
        torch.set_num_threads(distributed.cpu_threads(info))
    elif device.type == "cuda":
        args.device = str(device)
    try:
        owns_group = distributed.init(info, device, timeout=timeout)
    except RuntimeError as e:  # the others never came (DistStoreError, timeouts)
        print(
            f"error: {_who(info.rank)}cannot join the other processes: {_line(e)}", file=sys.stderr
        )
        return 2
    try:
        return _torchrun_batch(args, info)
    finally:
        if owns_group:
            distributed.shutdown()


def _torchrun_batch(args: argparse.Namespace, info: DistInfo) -> int:
    error: str | None = None
    quiet = contextlib.nullcontext() if info.is_main else contextlib.redirect_stderr(io.StringIO())
    try:
        with quiet:
            job, upscaler = prepare(args, Shard(info.rank + 1, info.world))
    except SRStudioError as e:
        error = str(e)
    errors: list[str | None] = [None] * info.world
    try:
        dist.all_gather_object(errors, error)  # all start, or none does
    except RuntimeError as e:  # a process died or timed out
        print(f"error: {_who(info.rank)}the other processes are gone: {_line(e)}", file=sys.stderr)
        return 2
    if any(errors):
        if info.is_main:
            rank, message = next((k, m) for k, m in enumerate(errors) if m)
            print(f"error: {_who(rank)}{message}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    progress = BatchProgress(sys.stderr, label=upscaler.descriptor.label)
    report: BatchReport | None = None
    with StopOnSignal() as stop:
        try:
            if info.is_main:
                report = run_batch(
                    job, upscaler, on_progress=progress, should_stop=stop, on_file=progress.file
                )
            else:
                report = run_batch(job, upscaler, should_stop=stop)
        except SRStudioError as e:
            progress.clear()
            error = str(e)
    progress.clear()
    parts: list[tuple[BatchReport | None, str | None]] | None = (
        [(None, None)] * info.world if info.is_main else None
    )
    try:
        dist.gather_object((report, error), parts, dst=0)
    except RuntimeError as e:  # a process died or timed out (DistBackendError and the like)
        print(f"error: {_who(info.rank)}gathering the reports failed: {_line(e)}", file=sys.stderr)
        if not info.is_main:
            if error is not None:
                print(f"error: {_who(info.rank)}{error}", file=sys.stderr)
            return 2
        parts = [(report, error)] + [(None, None)] * (info.world - 1)  # the others: missing
    if not info.is_main:
        if error is not None:
            return 2
        assert report is not None
        return 130 if report.cancelled else 1 if report.failed else 0
    assert parts is not None
    return _finish_torchrun(args, parts, time.perf_counter() - started)


def _finish_torchrun(
    args: argparse.Namespace,
    parts: list[tuple[BatchReport | None, str | None]],
    seconds: float,
) -> int:
    """Rank 0: one report from every process's part, merged as `srstudio report merge` does."""
    errors = [(k, message) for k, (_, message) in enumerate(parts) if message]
    for k, message in errors:
        print(f"error: {_who(k)}{message}", file=sys.stderr)
    reports = [(f"rank {k}", r) for k, (r, _) in enumerate(parts) if r is not None]
    if not reports:
        return 2
    merged = merge_reports(reports)
    merged.seconds = seconds  # the run's wall time, not the processes' times added up
    status = finish(args, merged)
    return 2 if errors and status != 130 else status


def _line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def _who(rank: int) -> str:
    return "" if rank == 0 else f"rank {rank}: "
