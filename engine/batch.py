"""Batch upscaling: files, folders and globs in; one output folder; a report.

Guarantees: an input file is never written to; every output is written atomically (temporary file,
then rename), so a cancel or a crash leaves no partial file; a file that cannot be read, upscaled
or written is recorded with its reason and the batch goes on.

Progress: on_progress(done, total) counts in hundredths of a file (PROGRESS_STEPS per file to
process; skipped files are not counted), so ETA = eta_seconds(elapsed, done, total).
"""

from __future__ import annotations

import glob
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import (
    Cancelled,
    ProgressFn,
    SRStudioError,
    StopFn,
    never_stop,
    no_progress,
)
from engine.imaging.io import (
    DEFAULT_MAX_PIXELS,
    FORMAT_EXTENSIONS,
    READ_EXTENSIONS,
    atomic_file,
    normalize_format,
    read_image,
    write_image,
)
from engine.inference.upscaler import Upscaler

DEFAULT_TEMPLATE = "{stem}_{model}_x{scale}.{ext}"
TEMPLATE_FIELDS = ("stem", "ext", "model", "family", "variant", "scale", "index")
PROGRESS_STEPS = 100
STATUSES = ("done", "skipped", "failed", "cancelled")
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class BatchJob:
    """inputs: files, folders and glob patterns. Folders and globs yield files with an image
    extension (hidden files left out); a file named explicitly is always taken, so that a wrong
    one gets reported. recursive: descend into subfolders (and let '**' in globs match them);
    outputs mirror the subfolders of a folder input.

    name_template fields: {stem} input name without extension, {ext} output extension (png, jpg,
    webp, tiff; the input's own spelling when its format is kept), {model} e.g. "A2F-SD",
    {family}, {variant}, {scale} the output scale (2, or 1.5 with an outscale), {index} the
    1-based position in the batch. format: png, jpg, webp or tiff; None keeps the input's format
    where it can be written, else PNG. max_pixels: decompression-bomb limit (None: no limit)."""

    inputs: Sequence[Path | str]
    output_dir: Path | str
    recursive: bool = False
    name_template: str = DEFAULT_TEMPLATE
    format: str | None = None
    quality: int = 95
    skip_existing: bool = False
    max_pixels: int | None = DEFAULT_MAX_PIXELS


@dataclass
class FileRecord:
    input: str
    output: str | None = None
    status: str = "pending"  # then one of STATUSES
    reason: str = ""
    seconds: float = 0.0
    input_size: tuple[int, int] | None = None  # (width, height)
    input_bytes: int | None = None
    output_size: tuple[int, int] | None = None
    output_bytes: int | None = None


@dataclass
class BatchReport:
    records: list[FileRecord] = field(default_factory=list)
    seconds: float = 0.0
    model: str = ""

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.records)

    @property
    def failed(self) -> list[FileRecord]:
        return [r for r in self.records if r.status == "failed"]

    @property
    def cancelled(self) -> bool:
        return any(r.status == "cancelled" for r in self.records)

    def summary(self) -> str:
        counts = ", ".join(f"{self.count(s)} {s}" for s in STATUSES)
        return f"{len(self.records)} files: {counts} in {self.seconds:.1f} s"

    def to_dict(self) -> dict[str, Any]:
        counts = {s: self.count(s) for s in STATUSES}
        files = [asdict(r) for r in self.records]
        return {
            "model": self.model,
            "seconds": round(self.seconds, 3),
            "counts": counts,
            "files": files,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        lines = [f"SR Studio batch report: {self.model}", self.summary(), ""]
        for r in self.records:
            size_in = "x".join(map(str, r.input_size)) if r.input_size else "-"
            size_out = "x".join(map(str, r.output_size)) if r.output_size else "-"
            line = f"{r.status:<9} {r.seconds:7.2f} s  {size_in:>11} -> {size_out:<11} {r.input}"
            if r.output and r.status == "done":
                line += f" -> {r.output}"
            if r.reason:
                line += f"  ({r.reason})"
            lines.append(line)
        return "\n".join(lines) + "\n"

    def write(self, path: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write PATH.json and PATH.txt (any suffix of `path` replaced); returns both paths."""
        path = Path(path)
        json_path, text_path = path.with_suffix(".json"), path.with_suffix(".txt")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SRStudioError(f"cannot write the report to {path.parent}: {e}") from None
        for target, text in ((json_path, self.to_json()), (text_path, self.to_text())):
            with atomic_file(target) as f:
                f.write(text.encode("utf-8"))  # type: ignore[attr-defined]
        return json_path, text_path


def eta_seconds(elapsed: float, done: float, total: float) -> float | None:
    """Seconds left at the rate so far; None before anything is done."""
    if done <= 0 or total <= 0:
        return None
    return max(0.0, elapsed / done * (total - done))


def collect_inputs(job: BatchJob) -> list[Path]:
    return [path for path, _ in _collect(job)]


def _collect(job: BatchJob) -> list[tuple[Path, Path]]:
    """(file, subfolder of the output folder to write it to), in order, without duplicates."""
    out_dir = Path(job.output_dir).expanduser().absolute()
    found: list[tuple[Path, Path]] = []
    seen: set[str] = set()

    def add(path: Path, rel: Path) -> None:
        key = os.path.normcase(os.path.realpath(path))
        if key not in seen:
            seen.add(key)
            found.append((path, rel))

    for item in job.inputs:
        text = os.path.expanduser(str(item))
        path = Path(text)
        if path.is_dir():
            for f in _scan(path, job.recursive, out_dir):
                add(f, f.parent.relative_to(path))
        elif not path.exists() and _GLOB_CHARS & set(text):
            for match in sorted(glob.glob(text, recursive=job.recursive)):
                f = Path(match)
                if f.is_file() and _is_image_name(f):
                    add(f, Path())
        else:
            add(path, Path())
    return found


def _scan(folder: Path, recursive: bool, out_dir: Path) -> list[Path]:
    # An output folder strictly inside an input folder holds results, not inputs.
    skip = out_dir if out_dir != folder.absolute() else None
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        if skip is not None and Path(root).absolute() == skip:
            dirs[:] = []
            continue
        files.extend(Path(root) / n for n in sorted(names) if _is_image_name(Path(n)))
    return files


def _is_image_name(path: Path) -> bool:
    return not path.name.startswith(".") and path.suffix.lower() in READ_EXTENSIONS


def _scale_text(upscaler: Upscaler) -> str:
    return f"{upscaler.scale:g}"


def render_name(template: str, fields: dict[str, object]) -> str:
    """Fill a name template; SRStudioError for unknown fields or a name leaving the folder."""
    try:
        name = template.format_map(fields)
    except KeyError as e:
        known = ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
        raise SRStudioError(
            f"unknown field {{{e.args[0]}}} in name template; use {known}"
        ) from None
    except (ValueError, IndexError, AttributeError) as e:
        raise SRStudioError(f"bad name template {template!r}: {e}") from None
    parts = Path(name).parts
    if not name.strip() or Path(name).is_absolute() or ".." in parts or name.endswith(("/", "\\")):
        raise SRStudioError(f"name template {template!r} gives {name!r}, not a file name")
    return name


def _output_format(job: BatchJob, path: Path) -> tuple[str, str]:
    """(format, extension) for an input."""
    if job.format:
        fmt = normalize_format(job.format)
        return fmt, FORMAT_EXTENSIONS[fmt]
    suffix = path.suffix.lower().lstrip(".")
    try:
        return normalize_format(suffix), suffix
    except SRStudioError:
        return "png", "png"


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _plan(job: BatchJob, upscaler: Upscaler) -> list[tuple[FileRecord, Path, Path | None, str]]:
    """One (record, input, output or None, format) per input; records that are already decided
    (skipped, or refused) get their status here."""
    desc = upscaler.descriptor
    files = _collect(job)
    out_dir = Path(job.output_dir).expanduser()
    input_keys = {os.path.normcase(os.path.realpath(f)) for f, _ in files}
    input_ids = {i for f, _ in files if (i := _file_id(f)) is not None}
    claimed: dict[str, str] = {}
    plan = []
    for index, (path, rel) in enumerate(files, start=1):
        record = FileRecord(input=str(path))
        if path.is_file():
            record.input_bytes = path.stat().st_size
        fmt, ext = _output_format(job, path)
        fields = {
            "stem": path.stem, "ext": ext, "model": desc.name, "family": desc.family,
            "variant": desc.variant, "scale": _scale_text(upscaler), "index": index,
        }  # fmt: skip
        out = out_dir / rel / render_name(job.name_template, fields)
        record.output = str(out)
        key = os.path.normcase(os.path.realpath(out))
        if key in input_keys or _file_id(out) in input_ids:
            record.status, record.reason = "failed", "the output name is an input file; refused"
        elif key in claimed:
            record.status = "failed"
            record.reason = f"the output name is already taken by {claimed[key]}"
        elif job.skip_existing and out.exists() and path.is_file():
            record.status, record.reason = "skipped", "output exists"
        claimed.setdefault(key, str(path))
        plan.append((record, path, out, fmt))
    return plan


def run_batch(
    job: BatchJob,
    upscaler: Upscaler,
    *,
    on_progress: ProgressFn = no_progress,
    should_stop: StopFn = never_stop,
    on_file: Callable[[FileRecord], None] | None = None,
) -> BatchReport:
    """Upscale every input of `job`; never raises for a single file's failure, and returns (with
    the rest marked "cancelled") when should_stop() turns True."""
    start = time.perf_counter()
    render_name(job.name_template, {f: "x" for f in TEMPLATE_FIELDS})  # fail early on a bad one
    if job.format:
        normalize_format(job.format)
    plan = _plan(job, upscaler)
    report = BatchReport(records=[r for r, *_ in plan], model=upscaler.descriptor.label)
    emit = on_file or (lambda record: None)
    for record, *_ in plan:
        if record.status != "pending":
            emit(record)
    todo = [(r, i, o, f) for r, i, o, f in plan if r.status == "pending"]
    if todo:
        try:
            Path(job.output_dir).expanduser().mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SRStudioError(f"cannot create the output folder {job.output_dir}: {e}") from None
    total = len(todo) * PROGRESS_STEPS
    on_progress(0, total)
    for k, (record, path, out, fmt) in enumerate(todo):
        if should_stop():
            _cancel_rest(todo[k:], emit)
            break
        _process(job, upscaler, record, path, out, fmt, k, total, on_progress, should_stop)
        on_progress((k + 1) * PROGRESS_STEPS, total)
        emit(record)
        if record.status == "cancelled":
            _cancel_rest(todo[k + 1 :], emit)
            break
    report.seconds = time.perf_counter() - start
    return report


def _process(
    job: BatchJob,
    upscaler: Upscaler,
    record: FileRecord,
    path: Path,
    out: Path,
    fmt: str,
    k: int,
    total: int,
    on_progress: ProgressFn,
    should_stop: StopFn,
) -> None:
    def progress(done: int, of: int) -> None:
        on_progress(k * PROGRESS_STEPS + PROGRESS_STEPS * done // max(of, 1), total)

    t0 = time.perf_counter()
    try:
        img = read_image(path, max_pixels=job.max_pixels)
        record.input_size = (img.width, img.height)
        result = upscaler.upscale_image(img, on_progress=progress, should_stop=should_stop)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_image(out, result, format=fmt, quality=job.quality)
        record.status = "done"
        record.output_size = (result.width, result.height)
        record.output_bytes = out.stat().st_size
    except Cancelled:
        record.status, record.reason = "cancelled", "cancelled while running"
    except SRStudioError as e:
        record.status, record.reason = "failed", str(e)
    except Exception as e:  # one bad file must not stop the batch (e.g. out of memory)
        first_line = (str(e).splitlines() or [""])[0][:300]
        record.status, record.reason = "failed", f"{type(e).__name__}: {first_line}"
    record.seconds = time.perf_counter() - t0


def _cancel_rest(rest: Sequence[tuple[FileRecord, Path, Path | None, str]], emit: Callable) -> None:
    for record, *_ in rest:
        record.status, record.reason = "cancelled", "not started"
        emit(record)
