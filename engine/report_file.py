"""Reading back a batch report's JSON (BatchReport.write) and merging the reports of a sharded
batch into one (`srstudio report merge`, and rank 0 of a torchrun batch). Every field is
checked: a report may come from anywhere, and anything that is not one gets a one-line
SRStudioError naming the bad field, never a traceback."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.batch import STATUSES, BatchReport, FileRecord
from engine.errors import SRStudioError
from engine.imaging.safe_open import reason
from engine.shard import Shard


def load_report(path: str | os.PathLike[str]) -> BatchReport:
    """A report written by BatchReport.write (its .json); SRStudioError with a one-line message
    for a file that cannot be read or is not such a report."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SRStudioError(f"cannot read {path}: {reason(e)}") from None
    except UnicodeDecodeError:
        raise SRStudioError(f"{path}: not an SR Studio batch report (not UTF-8 text)") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:
        first = (str(e).splitlines() or [""])[0][:200]
        raise SRStudioError(f"{path}: not an SR Studio batch report (not JSON: {first})") from None
    try:
        return report_from_dict(data)
    except SRStudioError as e:
        raise SRStudioError(f"{path}: not an SR Studio batch report ({e})") from None


def report_from_dict(data: object) -> BatchReport:
    """The inverse of BatchReport.to_dict."""
    top = _mapping(data, "the top level")
    files = top.get("files")
    if not isinstance(files, list):
        raise SRStudioError("no list of files")
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
        report.planned_files = _optional_count(shard.get("planned_files"), "shard.planned_files")
    if top.get("shards") is not None:
        shards = _mapping(top["shards"], "shards")
        count = _count(shards.get("count"), "shards.count")
        Shard(1, count)  # 1 <= count <= MAX_SHARDS
        merged = shards.get("merged")
        if not isinstance(merged, list):
            raise SRStudioError("shards.merged is not a list")
        present = tuple(_count(k, "shards.merged[]") for k in merged)
        if any(k > count for k in present) or len(set(present)) < len(present):
            raise SRStudioError(f"shards.merged {present} is not a set of shards 1..{count}")
        report.merged = (count, present)
        report.planned_files = _optional_count(shards.get("planned_files"), "shards.planned_files")
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
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SRStudioError(f"{where} is not a number")
    if value < 0:
        raise SRStudioError(f"{where} is negative")
    return float(value)


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SRStudioError(f"{where} is not a whole number >= 0")
    return value


def _optional_count(value: object, where: str) -> int | None:
    return None if value is None else _count(value, where)


def merge_reports(reports: Sequence[tuple[str, BatchReport]]) -> BatchReport:
    """One report from (name, report) pairs, each a shard's report or a merged one; SRStudioError
    when they are not shards of one run."""
    if not reports:
        raise SRStudioError("no reports to merge")
    parts = []
    for name, report in reports:
        if report.shard is not None:
            count, present = report.shard[1], (report.shard[0],)
        elif report.merged is not None:
            count, present = report.merged
        else:
            raise SRStudioError(f"{name} is not a shard's report (written without --shard)")
        parts.append((name, report, count, present))
    first_name, first, count, _ = parts[0]
    owner: dict[int, str] = {}
    seen: dict[str, str] = {}
    for name, report, n, present in parts:
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
        for k in present:
            if k in owner:
                raise SRStudioError(f"shard {k}/{count} is in both {owner[k]} and {name}")
            owner[k] = name
        for record in report.records:
            if record.input in seen:
                raise SRStudioError(f"{record.input} is in both {seen[record.input]} and {name}")
            seen[record.input] = name
    parts.sort(key=lambda part: min(part[3], default=0))
    planned = next((p[1].planned_files for p in parts if p[1].planned_files is not None), None)
    if planned is not None and len(seen) > planned:
        raise SRStudioError(f"the reports list {len(seen)} files, more than the {planned} planned")
    return BatchReport(
        records=[record for _, report, _, _ in parts for record in report.records],
        seconds=sum(report.seconds for _, report, _, _ in parts),
        model=first.model,
        merged=(count, tuple(sorted(owner))),
        planned_files=planned,
    )
