"""Shares of one batch for job arrays: every process plans the same file list and takes its shard.

Numbering: shards are 1-based, `--shard K/N` with K in 1..N (`--shard 1/1` is the whole batch).
Slurm's array index is 0-based: SLURM_ARRAY_TASK_ID = i of SLURM_ARRAY_TASK_COUNT = N tasks is
shard K = (i - SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP + 1 (MIN 0 and STEP 1 when unset),
so `--array=0-9` and `--array=1-10` both give shards 1/10..10/10. An index that maps outside 1..N
(a comma list like `--array=0,5`) is refused rather than guessed.

The split (assign_shards) is balanced by pixel count, not by file count: each file weighs its
width x height, read from the header alone (engine.imaging.safe_open.image_size); a file whose
header cannot be read weighs UNREADABLE_WEIGHT, so it still goes to exactly one shard and fails
there with its usual message. Files are dealt out heaviest first to the least loaded shard (greedy
longest-processing-time), ties broken by path, then by position, and between equally loaded
shards by the lower number: every process computes the same split on its own, from the same list,
and every file goes to exactly one shard for any N (with more shards than files some are empty).
"""

from __future__ import annotations

import heapq
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.errors import SRStudioError
from engine.imaging.safe_open import image_size

log = logging.getLogger(__name__)

MAX_SHARDS = 10_000  # past Slurm's default MaxArraySize (1001); a merged report lists them all
UNREADABLE_WEIGHT = 1  # pixels: a file whose header cannot be read (it fails fast where it goes)
SLURM_ID, SLURM_COUNT = "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"
SLURM_MIN, SLURM_STEP = "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_STEP"
_SHARD_TEXT = re.compile(r"([0-9]+)/([0-9]+)")

Weigh = Callable[[Path], int]


@dataclass(frozen=True)
class Shard:
    """Shard `index` (1-based) of `count`."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise SRStudioError(f"shard {self.index}/{self.count}: K must be 1..N in K/N")
        if self.count > MAX_SHARDS:
            raise SRStudioError(f"{self.count} shards: at most {MAX_SHARDS:,}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """'K/N' with 1 <= K <= N; SRStudioError with a one-line message otherwise."""
    match = _SHARD_TEXT.fullmatch(text.strip())
    if not match:
        raise SRStudioError(f"--shard must be K/N (e.g. 2/8, K counts from 1), got {text!r}")
    try:
        return Shard(int(match[1]), int(match[2]))  # which checks 1 <= K <= N <= MAX_SHARDS
    except SRStudioError as e:
        raise SRStudioError(f"--{e}") from None


def shard_from_env(env: Mapping[str, str] | None = None) -> Shard | None:
    """The shard of a Slurm array task (see the module doc), or None when SLURM_ARRAY_TASK_ID and
    SLURM_ARRAY_TASK_COUNT are not both set; SRStudioError when they cannot be mapped."""
    env = os.environ if env is None else env
    if not env.get(SLURM_ID, "").strip() or not env.get(SLURM_COUNT, "").strip():
        return None
    values = {}
    for name, default in ((SLURM_ID, None), (SLURM_COUNT, None), (SLURM_MIN, 0), (SLURM_STEP, 1)):
        text = env.get(name, "").strip()
        if not text and default is not None:
            values[name] = default
            continue
        try:
            values[name] = int(text)
        except ValueError:
            raise SRStudioError(f"{name}={text!r} is not a number; use --shard K/N") from None
    task, count = values[SLURM_ID], values[SLURM_COUNT]
    first, step = values[SLURM_MIN], max(values[SLURM_STEP], 1)
    offset = task - first
    if not 1 <= count <= MAX_SHARDS or offset < 0 or offset % step or offset // step >= count:
        raise SRStudioError(
            f"{SLURM_ID}={task} (min {first}, step {step}) is not one of "
            f"{SLURM_COUNT}={count} shards; use an array like --array=0-{max(count, 1) - 1}, "
            "or --shard K/N"
        )
    return Shard(offset // step + 1, count)


def pixel_weight(path: Path, *, max_pixels: int | None = None) -> int:
    """width x height from the header; UNREADABLE_WEIGHT when it cannot be read (or is over
    max_pixels: such a file is refused wherever it goes)."""
    try:
        width, height = image_size(path, max_pixels=max_pixels)
    except Exception:  # any file may be hostile; reading it properly is its shard's business
        return UNREADABLE_WEIGHT
    return max(width * height, UNREADABLE_WEIGHT)


def assign_shards(files: Sequence[Path], count: int, *, weigh: Weigh = pixel_weight) -> list[int]:
    """The shard (1..count) of each file, in the order of `files` (see the module doc)."""
    if count < 1:
        raise SRStudioError(f"the number of shards must be >= 1, got {count}")
    weights = [int(weigh(path)) for path in files]
    order = sorted(range(len(files)), key=lambda i: (-weights[i], str(files[i]), i))
    # shards past the number of files stay empty: no heap entry needed for them
    loads = [(0, k) for k in range(1, min(count, len(files)) + 1)]
    owner = [0] * len(files)
    for i in order:
        load, k = heapq.heappop(loads)
        owner[i] = k
        heapq.heappush(loads, (load + weights[i], k))
    return owner


def shard_files(
    files: Sequence[Path], index: int, count: int, *, weigh: Weigh = pixel_weight
) -> list[Path]:
    """The files of shard `index` (1-based) of `count`, in their planned order."""
    Shard(index, count)  # checks 1 <= index <= count
    owner = assign_shards(files, count, weigh=weigh)
    return [path for path, k in zip(files, owner, strict=True) if k == index]


def check_distinct_outputs(pairs: Iterable[tuple[Path, Path]]) -> None:
    """SRStudioError naming both inputs when two (input, output) pairs of the whole planned list
    write the same output path (compared resolved: '..', symlinks, the platform's case rules)."""
    claimed: dict[str, tuple[int, Path]] = {}
    for position, (source, output) in enumerate(pairs):
        key = os.path.normcase(os.path.realpath(output))
        first, first_source = claimed.setdefault(key, (position, source))
        if first != position:
            raise SRStudioError(
                f"{first_source} and {source} would both be written to {output}; with --shard "
                "every output name must be unique: rename one, or add {index} to --name"
            )
