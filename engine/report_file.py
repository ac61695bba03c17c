"""Reading back a batch report's JSON (BatchReport.write) and merging the reports of a sharded
batch into one (`srstudio report merge`, and rank 0 of a torchrun batch). Every field is
checked: a report may come from anywhere, and anything that is not one gets a one-line
SRStudioError naming the bad field, never a traceback. Sizes are bounded before any work: the
file (MAX_REPORT_BYTES), its files and a merge's (MAX_REPORT_FILES), shard counts
(engine.shard.MAX_SHARDS); numbers must be finite and in range (seconds 0..MAX_SECONDS, counts
and sizes whole numbers 0..MAX_COUNT), so that sums stay finite and the JSON written is JSON."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.batch import STATUSES, BatchReport, FileRecord, quote_name
from engine.errors import SRStudioError
from engine.imaging.safe_open import reason
from engine.shard import Shard

MAX_REPORT_BYTES = 512 << 20  # a report of MAX_REPORT_FILES files takes about 400 MiB
MAX_REPORT_FILES = 1_000_000  # in one report, and in a merge of several
MAX_SECONDS = 1e9  # about 31 years; bounded so that adding up any merge stays finite
MAX_COUNT = 2**63 - 1  # bytes, pixels: what a file system or an image header can hold


def load_report(path: str | os.PathLike[str]) -> BatchReport:
    """A report written by BatchReport.write (its .json); SRStudioError with a one-line message
    for a file that cannot be read or is not such a report."""
    path = Path(path).expanduser()
    shown = quote_name(str(path))
    try:
        with path.open("rb") as f:
            data = f.read(MAX_REPORT_BYTES + 1)  # not f.read(): a FIFO or device never ends
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        raise SRStudioError(f"cannot read {shown}: {reason(e)}") from None
    if len(data) > MAX_REPORT_BYTES:
        raise SRStudioError(
            f"{shown}: not an SR Studio batch report (over {MAX_REPORT_BYTES:,} bytes)"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SRStudioError(f"{shown}: not an SR Studio batch report (not UTF-8 text)") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:
        first = (str(e).splitlines() or [""])[0][:200]
        raise SRStudioError(f"{shown}: not an SR Studio batch report (not JSON: {first})") from None
    try:
        return report_from_dict(data)
    except SRStudioError as e:
        raise SRStudioError(f"{shown}: not an SR Studio batch report ({e})") from None


def report_from_dict(data: object) -> BatchReport:
    """The inverse of BatchReport.to_dict."""
    top = _mapping(data, "the top level")
    files = top.get("files")
    if not isinstance(files, list):
        raise SRStudioError("no list of files")
    if len(files) > MAX_REPORT_FILES:
        raise SRStudioError(f"{len(files):,} files; at most {MAX_REPORT_FILES:,}")
    records = [_record_from_dict(item, f"files[{n}]") for n, item in enumerate(files)]
    report = BatchReport(
        records=records,
        seconds=_number(top.get("seconds", 0.0), "seconds"),
        model=_text(top.get("model", ""), "model"),
    )
    if top.get("shard") is not None:
        shard = _mapping(top["shard"], "shard")
        index, count = (
            _count(shard.get("index"), "shard.index"),
            _count(shard.get("count"), "shard.count"),
        )
        Shard(index, count)  # 1 <= index <= count <= MAX_SHARDS
        report.shard = (index, count)
        report.planned_files = _planned(shard.get("planned_files"), "shard.planned_files")
    if top.get("shards") is not None:
        shards = _mapping(top["shards"], "shards")
        count = _count(shards.get("count"), "shards.count")
        Shard(1, count)  # 1 <= count <= MAX_SHARDS
        merged = shards.get("merged")
        if not isinstance(merged, list) or len(merged) > count:
            raise SRStudioError(f"shards.merged is not a list of at most {count} shards")
        present = tuple(_count(k, "shards.merged[]") for k in merged)
        if any(k > count for k in present) or len(set(present)) < len(present):
            raise SRStudioError(f"shards.merged {present} is not a set of shards 1..{count}")
        report.merged = (count, present)
        report.planned_files = _planned(shards.get("planned_files"), "shards.planned_files")
    return report


def _record_from_dict(data: object, where: str) -> FileRecord:
    item = _mapping(data, where)
    record = FileRecord(input=_text(item.get("input"), f"{where}.input"))
    if item.get("output") is not None:
        record.output = _text(item["output"], f"{where}.output")
    record.status = _text(item.get("status"), f"{where}.status")
    if record.status not in STATUSES:
        raise SRStudioError(f"{where}.status {record.status[:40]!r} is not one of {STATUSES}")
    record.reason = _text(item.get("reason", ""), f"{where}.reason")
    record.seconds = _number(item.get("seconds", 0.0), f"{where}.seconds")
    for name in ("input_size", "output_size"):
        value = item.get(name)
        if value is not None:
            if not isinstance(value, list) or len(value) != 2:
                raise SRStudioError(f"{where}.{name} is not [width, height]")
            size = (_count(value[0], f"{where}.{name}"), _count(value[1], f"{where}.{name}"))
            setattr(record, name, size)
    for name in ("input_bytes", "output_bytes"):
        setattr(record, name, _optional_count(item.get(name), f"{where}.{name}"))
    warnings = item.get("warnings", [])
    if not isinstance(warnings, list):
        raise SRStudioError(f"{where}.warnings is not a list")
    record.warnings = [_text(w, f"{where}.warnings[]") for w in warnings]
    for name in ("input_quality", "cleanup"):
        setattr(record, name, _text(item.get(name, ""), f"{where}.{name}"))
    return record


def _mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SRStudioError(f"{where} is not an object")
    return value


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise SRStudioError(f"{where} is not a string")
    return value


def _number(value: object, where: str) -> float:
    """Seconds: a finite number 0..MAX_SECONDS (compared before any conversion: a JSON integer
    may be too large for a float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SRStudioError(f"{where} is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise SRStudioError(f"{where} is not a finite number")
    if not 0 <= value <= MAX_SECONDS:
        raise SRStudioError(f"{where} is not a number of seconds from 0 to {MAX_SECONDS:.0e}")
    return float(value)


def _count(value: object, where: str, maximum: int = MAX_COUNT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise SRStudioError(f"{where} is not a whole number from 0 to {maximum:,}")
    return value


def _optional_count(value: object, where: str) -> int | None:
    return None if value is None else _count(value, where)


def _planned(value: object, where: str) -> int | None:
    return None if value is None else _count(value, where, MAX_REPORT_FILES)


Part = tuple[str, BatchReport, int, tuple[int, ...]]  # name, report, shard count, shards held


def merge_reports(reports: Sequence[tuple[str, BatchReport]]) -> BatchReport:
    """One report from (name, report) pairs, each a shard's report or a merged one; SRStudioError
    when they are not shards of one run."""
    if not reports:
        raise SRStudioError("no reports to merge")
    files = sum(len(report.records) for _, report in reports)
    if files > MAX_REPORT_FILES:
        raise SRStudioError(f"the reports list {files:,} files; at most {MAX_REPORT_FILES:,}")
    parts: list[Part] = []
    for name, report in reports:
        if report.shard is not None:
            count, present = report.shard[1], (report.shard[0],)
        elif report.merged is not None:
            count, present = report.merged
        else:
            raise SRStudioError(
                f"{quote_name(name)} is not a shard's report (written without --shard)"
            )
        parts.append((name, report, count, present))
    _check_one_run(parts)
    first = parts[0][1]
    count = parts[0][2]
    owner = _owners(parts, count)
    parts.sort(key=lambda part: min(part[3], default=0))
    planned = next((p[1].planned_files for p in parts if p[1].planned_files is not None), None)
    if planned is not None and files > planned:
        raise SRStudioError(f"the reports list {files} files, more than the {planned} planned")
    return BatchReport(
        records=[record for _, report, _, _ in parts for record in report.records],
        seconds=sum(report.seconds for _, report, _, _ in parts),
        model=first.model,
        merged=(count, tuple(sorted(owner))),
        planned_files=planned,
    )


def _check_one_run(parts: Sequence[Part]) -> None:
    """The same shard count, model and planned files in every part."""
    first_name, first, count, _ = parts[0]
    first_name = quote_name(first_name)
    for name, report, n, _ in parts:
        name = quote_name(name)
        if n != count:
            raise SRStudioError(
                f"{first_name} is a shard of {count}, {name} of {n}: not shards of one run"
            )
        if report.model != first.model:
            raise SRStudioError(
                f"{first_name} ran {first.model!r}, {name} {report.model!r}: not one run"
            )
        if None not in (report.planned_files, first.planned_files) and (
            report.planned_files != first.planned_files
        ):
            raise SRStudioError(
                f"{first_name} planned {first.planned_files} files, {name} "
                f"{report.planned_files}: not shards of one run"
            )


def _owners(parts: Sequence[Part], count: int) -> dict[int, str]:
    """Which part holds each shard; SRStudioError when a shard or a file is in two parts."""
    owner: dict[int, str] = {}
    seen: dict[str, str] = {}
    for name, report, _, present in parts:
        for k in present:
            if k in owner:
                raise SRStudioError(
                    f"shard {k}/{count} is in both {quote_name(owner[k])} and {quote_name(name)}"
                )
            owner[k] = name
        for record in report.records:
            if record.input in seen:
                raise SRStudioError(
                    f"{quote_name(record.input)} is in both {quote_name(seen[record.input])} "
                    f"and {quote_name(name)}"
                )
            seen[record.input] = name
    return owner
