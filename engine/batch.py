"""Batch upscaling: files, folders and globs in; one output folder; a report.

Guarantees: an input file is never written to; every output is written atomically (temporary file,
then rename), so a cancel or a crash leaves no partial file, and a run first removes what a killed
run left (engine.atomic); a file that cannot be read, upscaled or written is recorded with its
reason and the batch goes on. Paths are compared resolved ('..', symlinks): an output folder inside
an input tree is not scanned, and files found by scanning that are this run's own output names are
left out, so a rerun into the same folder settles instead of upscaling its outputs again. The
output folder is created and test-written before the first image is read.

Progress: on_progress(done, total) counts in hundredths of a file (PROGRESS_STEPS per file to
process; skipped files are not counted), so ETA = eta_seconds(elapsed, done, total).

Pipelining: the next file is decoded on a worker thread while the network runs on this one
(engine.read_ahead); records, events, progress and outputs come in the same order, with the same
content, as with READ_AHEAD off. Every callback is called on the thread that called run_batch.
"""

from __future__ import annotations

import glob
import itertools
import json
import logging
import os
import re
import string
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.atomic import (
    file_identity,
    overwrite_message,
    path_key,
    refuse_writing_over_inputs,
    remove_stale_temporaries,
    temporary_name,
)
from engine.errors import (
    Cancelled,
    ProgressFn,
    SRStudioError,
    StopFn,
    never_stop,
    no_progress,
)
from engine.imaging.input_quality import describe_format
from engine.imaging.io import (
    DEFAULT_MAX_PIXELS,
    FORMAT_EXTENSIONS,
    READ_EXTENSIONS,
    ImageData,
    atomic_file,
    normalize_format,
    read_image,
)
from engine.imaging.safe_open import reason
from engine.inference.cleanup_choice import short_note as cleanup_note
from engine.inference.upscaler import Upscaler
from engine.progress import eta_from_rate
from engine.read_ahead import ReadAhead
from engine.shard import Shard, assign_shards, check_distinct_outputs, pixel_weight

log = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "{stem}_{model}_x{scale}.{ext}"
TEMPLATE_FIELDS = ("stem", "ext", "model", "family", "variant", "scale", "index")
# what the early check fills a template with: the real types, a one-letter stem (widest fill)
SAMPLE_FIELDS: dict[str, object] = {
    "stem": "x", "ext": "png", "model": "Model", "family": "Family", "variant": "v",
    "scale": "2", "index": 1,
}  # fmt: skip
MAX_TEMPLATE_LENGTH = 1024
MAX_FIELD_WIDTH = 256  # a field's width or precision in a name template
MAX_NAME_BYTES = 255  # NAME_MAX of common file systems
PROGRESS_STEPS = 100
STATUSES = ("done", "skipped", "failed", "cancelled")
_GLOB_CHARS = frozenset("*?[")
READ_AHEAD = True  # decode the next file while this one is upscaled; False: all on one thread


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
    where it can be written, else PNG. max_pixels: decompression-bomb limit (None: no limit).
    shard: (K, N), K in 1..N: process only shard K of the planned files (engine.shard: the split
    is balanced by pixels and the same in every process); names, {index}, the own-output and
    collision rules still come from the whole planned list, so the shards' outputs together are
    those of one unsharded run."""

    inputs: Sequence[Path | str]
    output_dir: Path | str
    recursive: bool = False
    name_template: str = DEFAULT_TEMPLATE
    format: str | None = None
    quality: int = 95
    skip_existing: bool = False
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    shard: tuple[int, int] | None = None


@dataclass
class FileRecord:
    input: str
    output: str | None = None
    status: str = "pending"  # then one of STATUSES
    reason: str = ""
    seconds: float = 0.0  # waiting for its read (done during the previous file), upscaling, writing
    input_size: tuple[int, int] | None = None  # (width, height)
    input_bytes: int | None = None
    output_size: tuple[int, int] | None = None
    output_bytes: int | None = None
    warnings: list[str] = field(default_factory=list)  # e.g. metadata the format cannot hold
    input_quality: str = ""  # "JPEG, saved at quality 70; little or no noise" (input_quality)
    cleanup: str = ""  # whether the clean-up network ran first, and why ("" when turned off)


@dataclass
class BatchReport:
    """shard: (K, N) when the batch ran as shard K of N; merged: (N, the shards merged) for a
    report made by `srstudio report merge`; planned_files: then the files of all N shards."""

    records: list[FileRecord] = field(default_factory=list)
    seconds: float = 0.0
    model: str = ""
    shard: tuple[int, int] | None = None
    merged: tuple[int, tuple[int, ...]] | None = None
    planned_files: int | None = None

    @property
    def missing_shards(self) -> list[int]:
        if self.merged is None:
            return []
        count, present = self.merged
        return sorted(set(range(1, count + 1)) - set(present))

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
        n = len(self.records)
        return f"{n} file{'s' * (n != 1)}: {counts} in {self.seconds:.1f} s"

    def to_dict(self) -> dict[str, Any]:
        counts = {s: self.count(s) for s in STATUSES}
        files = [asdict(r) for r in self.records]
        data: dict[str, Any] = {
            "model": self.model,
            "seconds": round(self.seconds, 3),
            "counts": counts,
        }
        if self.shard is not None:
            index, count = self.shard
            data["shard"] = {"index": index, "count": count, "planned_files": self.planned_files}
        if self.merged is not None:
            count, present = self.merged
            data["shards"] = {
                "count": count,
                "merged": sorted(present),
                "missing": self.missing_shards,
                "planned_files": self.planned_files,
            }
        data["files"] = files
        return data

    def to_json(self) -> str:
        """ASCII JSON: any name (a lone surrogate for an undecodable byte included) is escaped."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=True, allow_nan=False)

    def to_text(self) -> str:
        """One line a file; names that hold control characters or undecodable bytes quoted
        (quote_name), so no name breaks a line or fails to encode."""
        lines = [f"SR Studio batch report: {quote_name(self.model)}", self.summary()]
        if self.shard is not None:
            lines.append(f"shard {self.shard[0]} of {self.shard[1]}{self._planned_text()}")
        if self.merged is not None:
            count, present = self.merged
            merged = ", ".join(map(str, sorted(present))) or "none"
            missing = ", ".join(map(str, self.missing_shards)) or "none"
            lines.append(f"shards merged: {merged} of {count}{self._planned_text()}")
            lines.append(f"shards missing: {missing}")
        lines.append("")
        for r in self.records:
            size_in = "x".join(map(str, r.input_size)) if r.input_size else "-"
            size_out = "x".join(map(str, r.output_size)) if r.output_size else "-"
            line = f"{r.status:<9} {r.seconds:7.2f} s  {size_in:>11} -> {size_out:<11} "
            line += quote_name(r.input)
            if r.output and r.status == "done":
                line += f" -> {quote_name(r.output)}"
            if r.reason:
                line += f"  ({quote_name(r.reason)})"
            lines.append(line)
            if r.cleanup.startswith("clean-up on"):  # the JSON report has it for every file
                lines.append(f"          input: {quote_name(f'{r.input_quality}; {r.cleanup}')}")
            lines.extend(f"          warning: {quote_name(w)}" for w in r.warnings)
        return "\n".join(lines) + "\n"

    def _planned_text(self) -> str:
        return "" if self.planned_files is None else f" ({self.planned_files} files in all shards)"

    def write(self, path: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write PATH.json and PATH.txt (see report_paths), each atomically; returns both paths.
        SRStudioError (one line) when they cannot be written; both texts are made first, so
        nothing is written for a report that cannot be."""
        json_path, text_path = report_paths(path)
        try:
            contents = (
                (json_path, self.to_json().encode("ascii")),
                (text_path, self.to_text().encode("utf-8", "backslashreplace")),
            )
        except ValueError as e:  # a number JSON cannot hold (inf, nan)
            raise SRStudioError(f"cannot write the report {json_path}: {e}") from None
        prepare_folder(json_path.parent, "the report")
        for target, data in contents:
            with atomic_file(target) as f:
                f.write(data)  # type: ignore[attr-defined]
        return json_path, text_path


def report_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """PATH.json and PATH.txt (any suffix of PATH replaced); inside PATH when it is a folder."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / "report"
    try:
        return path.with_suffix(".json"), path.with_suffix(".txt")
    except ValueError:  # a name like '..' where no folder is
        raise SRStudioError(f"cannot name a report after {quote_name(str(path))}") from None


def make_folders(folder: Path) -> None:
    """mkdir -p without recursion (pathlib's and os.makedirs recurse once per level)."""
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)


def prepare_folder(folder: Path, what: str) -> None:
    """Create `folder` and prove it writable with a temporary file, before any work is done."""
    try:
        make_folders(folder)
    except FileExistsError:
        raise SRStudioError(
            f"cannot write {what} to {folder}: a file of that name exists"
        ) from None
    except OSError as e:
        raise SRStudioError(f"cannot create the folder for {what}, {folder}: {reason(e)}") from None
    probe = temporary_name(folder / "write-test")
    try:
        with open(probe, "xb") as f:
            f.write(b"srstudio")
    except OSError as e:
        raise SRStudioError(f"cannot write {what} to {folder}: {reason(e)}") from None
    finally:
        if probe.exists():
            probe.unlink()


def check_report_target(path: str | os.PathLike[str], inputs: Sequence[Path]) -> None:
    """Fail now, not after the batch, when the report cannot be written or would replace an
    input file."""
    text = os.fspath(path)
    if not str(text).strip():
        raise SRStudioError("the report path is empty; give --report PATH (writes PATH.json)")
    if "\0" in str(text):
        raise SRStudioError(f"the report path {quote_name(str(text))} holds a NUL character")
    targets = report_paths(path)
    for target in targets:
        refuse_writing_over_inputs(target, inputs, "the report")
        if target.is_dir():
            raise SRStudioError(f"cannot write the report to {target}: it is a folder")
    prepare_folder(targets[0].parent, "the report")


def eta_seconds(elapsed: float, done: float, total: float) -> float | None:
    """Seconds left at the rate so far; None before anything is done (engine.progress)."""
    return eta_from_rate(elapsed, done, total)


def collect_inputs(job: BatchJob) -> list[Path]:
    return [item.path for item in _collect(job)]


def missing_inputs(job: BatchJob) -> list[str]:
    """Inputs named on their own (not glob patterns) that do not exist."""
    missing = []
    for item in job.inputs:
        text = os.path.expanduser(str(item))
        if not os.path.lexists(text) and not (_GLOB_CHARS & set(text)):
            missing.append(str(item))
    return missing


@dataclass(frozen=True)
class _Input:
    path: Path
    rel: Path  # subfolder of the output folder to write it to
    explicit: bool  # named on its own, not found by scanning a folder or glob


def _collect(job: BatchJob) -> list[_Input]:
    """Every input file, in order, without duplicates."""
    out_id = file_identity(Path(job.output_dir).expanduser())
    found: list[_Input] = []
    seen: set[tuple[int, int] | str] = set()

    def add(path: Path, rel: Path, explicit: bool) -> None:
        key = file_identity(path)
        if key not in seen:
            seen.add(key)
            found.append(_Input(path, rel, explicit))

    for item in job.inputs:
        text = os.path.expanduser(str(item))
        path = Path(text)
        if path.is_dir():
            for f in _scan(path, job.recursive, out_id):
                add(f, f.parent.relative_to(path), False)
        elif not os.path.lexists(text) and _GLOB_CHARS & set(text):
            for match in sorted(glob.glob(text, recursive=job.recursive)):
                f = Path(match)
                if f.is_file() and _is_image_name(f):
                    add(f, Path(), False)
        else:
            add(path, Path(), True)
    return found


def _scan(folder: Path, recursive: bool, out_id: tuple[int, int] | str) -> list[Path]:
    """Image files under `folder`: a folder's files (sorted) before its subfolders' (sorted).
    Hidden entries and symlinked folders are left out, and so is the output folder when it lies
    inside `folder` (it holds results, not inputs). A loop, not recursion: any depth works."""
    files: list[Path] = []
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError as e:
            log.warning("cannot list %s: %s", current, reason(e))
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                if recursive and file_identity(path) != out_id:
                    subfolders.append(path)
            elif _is_image_name(path) and entry.is_file():
                files.append(path)
        stack.extend(reversed(subfolders))
    return files


def _is_image_name(path: Path) -> bool:
    return not path.name.startswith(".") and path.suffix.lower() in READ_EXTENSIONS


def _scale_text(upscaler: Upscaler) -> str:
    return f"{upscaler.scale:g}"


_CONVERSIONS = (None, "r", "s", "a")
# Python's format spec: [[fill]align][sign][z][#][0][width][grouping][.precision][type]
_SPEC = re.compile(
    r"(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>[0-9]*)[_,]?(?:\.(?P<precision>[0-9]+))?[a-zA-Z%]?",
    re.DOTALL,
)


def render_name(template: str, fields: dict[str, object]) -> str:
    """Fill a name template; SRStudioError (one line) for a template that is not one (see
    _check_template) or a result that is not a plain file name inside the output folder."""
    _check_template(template)
    try:
        name = template.format_map(fields)
    except KeyError as e:
        raise SRStudioError(f"name template {template!r}: no value for {{{e.args[0]}}}") from None
    except (ValueError, TypeError, IndexError, AttributeError, OverflowError) as e:
        raise SRStudioError(f"bad name template {template!r}: {_first_line(e)}") from None
    if not _plain_file_name(name):
        raise SRStudioError(f"name template {template!r} gives {name!r}, not a file name")
    return name


def check_name_template(template: str, fields: dict[str, object] | None = None) -> None:
    """The early check, before any file is read: the template filled with values of the real
    types (SAMPLE_FIELDS, updated with `fields`) gives a plain file name of at most
    MAX_NAME_BYTES bytes, and no control character or backslash (a separator on Windows) comes
    from the template itself; real stems may hold them, where the file system allows."""
    name = render_name(template, {**SAMPLE_FIELDS, **(fields or {})})
    if any(_unprintable(c) for c in name):
        raise SRStudioError(f"name template {template!r} gives {name!r}: a control character")
    if "\\" in name:
        raise SRStudioError(f"name template {template!r} gives {name!r}, not a file name")
    size = len(os.fsencode(name))
    if size > MAX_NAME_BYTES:
        raise SRStudioError(
            f"name template {template[:60]!r} gives a name of {size} bytes; "
            f"file names hold at most {MAX_NAME_BYTES}"
        )


def _check_template(template: str) -> None:
    """Known fields only, without attribute or index access, conversions !r !s !a, and format
    specs without nested fields whose width and precision are at most MAX_FIELD_WIDTH."""
    if len(template) > MAX_TEMPLATE_LENGTH:
        raise SRStudioError(
            f"the name template has {len(template)} characters; at most {MAX_TEMPLATE_LENGTH}"
        )
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as e:
        raise SRStudioError(f"bad name template {template!r}: {e}") from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in TEMPLATE_FIELDS:
            shown = quote_name(name)
            if re.split(r"[.\[]", name, maxsplit=1)[0] in TEMPLATE_FIELDS:
                raise SRStudioError(
                    f"{{{shown}}} in name template: fields take no [index] or .attribute"
                )
            known = ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
            raise SRStudioError(f"unknown field {{{shown}}} in name template; use {known}")
        if conversion not in _CONVERSIONS:
            raise SRStudioError(f"bad name template {template!r}: conversion !{conversion}")
        _check_spec(template, spec or "")


def _check_spec(template: str, spec: str) -> None:
    match = _SPEC.fullmatch(spec)
    if match is None:
        raise SRStudioError(f"bad name template {template!r}: format {spec!r}")
    for number in (match["width"], match["precision"]):
        if number and int(number) > MAX_FIELD_WIDTH:
            raise SRStudioError(
                f"name template {template!r}: a width or precision over {MAX_FIELD_WIDTH}"
            )


_NOT_IN_NAMES = frozenset({"/", os.sep, os.altsep or "/", "\0"})


def _plain_file_name(name: str) -> bool:
    """A name for a file directly inside a folder: not '', '.', '..', blank, and without a
    separator or NUL; and one the file system can encode."""
    if not name.strip() or name in (".", "..") or _NOT_IN_NAMES & set(name):
        return False
    try:
        os.fsencode(name)
    except UnicodeError:
        return False
    return True


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [""])[0][:200]


_C_ESCAPES = {"\a": "a", "\b": "b", "\t": "t", "\n": "n", "\v": "v", "\f": "f", "\r": "r"}


def quote_name(name: str) -> str:
    """`name` unchanged when every character prints; else quoted as GNU `ls
    --quoting-style=shell-escape` does, so that it stays on one line and encodes: 'a'$'\\n''b.png',
    an undecodable byte (os.fsdecode's surrogate escape) as $'\\377'. For file names, and for
    any text that may hold one, in the text report and on the command line."""
    if not any(map(_unprintable, name)):
        return name
    parts = []
    for hidden, group in itertools.groupby(name, key=_unprintable):
        run = "".join(group)
        if hidden:
            parts.append("$'" + "".join(map(_escape, run)) + "'")
        else:
            parts.append("'" + run.replace("'", "'\\''") + "'")
    return "".join(parts)


def _unprintable(c: str) -> bool:
    """Control characters, surrogates and the line and paragraph separators."""
    return unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp")


def _escape(c: str) -> str:
    if c in _C_ESCAPES:
        return "\\" + _C_ESCAPES[c]
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # the byte os.fsdecode could not decode
        return f"\\{code - 0xDC00:03o}"
    if 0xD800 <= code <= 0xDFFF:  # a lone surrogate (from JSON): no byte to show
        return f"\\u{code:04x}"
    return "".join(f"\\{b:03o}" for b in c.encode("utf-8"))


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


def _model_fields(upscaler: Upscaler) -> dict[str, object]:
    desc = upscaler.descriptor
    return {
        "model": desc.name, "family": desc.family, "variant": desc.variant,
        "scale": _scale_text(upscaler),
    }  # fmt: skip


def _output_paths(job: BatchJob, upscaler: Upscaler, inputs: Sequence[_Input]) -> list[Path]:
    model = _model_fields(upscaler)
    out_dir = Path(job.output_dir).expanduser()
    outputs = []
    for index, item in enumerate(inputs, start=1):
        _, ext = _output_format(job, item.path)
        fields = {"stem": item.path.stem, "ext": ext, "index": index, **model}
        try:
            name = render_name(job.name_template, fields)
        except SRStudioError as e:
            raise SRStudioError(f"{quote_name(str(item.path))}: {e}") from None
        outputs.append(out_dir / item.rel / name)
    return outputs


def _without_own_outputs(job: BatchJob, upscaler: Upscaler, inputs: list[_Input]) -> list[_Input]:
    """Leave out files found by scanning that this run would write (earlier runs' results in
    an output folder that is also an input folder); files named on their own stay."""
    outputs = _output_paths(job, upscaler, inputs)
    producer = {path_key(out): item for item, out in zip(inputs, outputs, strict=True)}
    kept = [
        item for item in inputs if item.explicit or producer.get(path_key(item.path), item) is item
    ]
    if len(kept) < len(inputs):
        log.info("left out %d files that are this run's own outputs", len(inputs) - len(kept))
    return kept


def _in_shard(job: BatchJob, inputs: Sequence[_Input]) -> list[bool]:
    if job.shard is None:
        return [True] * len(inputs)
    shard = Shard(*job.shard)

    def weigh(path: Path) -> int:
        return pixel_weight(path, max_pixels=job.max_pixels)

    owners = assign_shards([item.path for item in inputs], shard.count, weigh=weigh)
    log.info("shard %s: %d of %d files", shard, owners.count(shard.index), len(inputs))
    return [k == shard.index for k in owners]


def _plan(
    job: BatchJob, upscaler: Upscaler
) -> tuple[list[tuple[FileRecord, Path, Path, str]], int]:
    """One (record, input, output, format) per input of this shard (all without one), and the
    number of planned files in all shards; records that are already decided (skipped, or
    refused) get their status here."""
    inputs = _without_own_outputs(job, upscaler, _collect(job))
    outputs = _output_paths(job, upscaler, inputs)
    if job.shard is not None:  # every shard checks the whole list, so none starts a clash
        check_distinct_outputs(zip((item.path for item in inputs), outputs, strict=True))
    mine = _in_shard(job, inputs)
    input_ids = {file_identity(item.path) for item in inputs}
    claimed: dict[str, str] = {}
    plan = []
    for item, out, keep in zip(inputs, outputs, mine, strict=True):
        path = item.path
        key = path_key(out)
        taken_by = claimed.setdefault(key, str(path))  # claims count across all shards
        if not keep:
            continue
        record = FileRecord(input=str(path), output=str(out))
        if path.is_file():
            record.input_bytes = path.stat().st_size
        fmt, _ = _output_format(job, path)
        if file_identity(out) in input_ids:  # the same file, however spelt or linked
            record.status, record.reason = "failed", overwrite_message(out)
        elif taken_by != str(path):
            record.status = "failed"
            record.reason = f"the output name is already taken by {taken_by}"
        elif job.skip_existing and out.exists() and path.is_file():
            record.status, record.reason = "skipped", "output exists"
        plan.append((record, path, out, fmt))
    return plan, len(inputs)


def _clean_output_folders(plan: Sequence[tuple[FileRecord, Path, Path, str]]) -> None:
    """What a killed earlier run left: its temporary files in the folders this run writes to."""
    for folder in sorted({out.parent for _, _, out, _ in plan}):
        if folder.is_dir():
            for path in remove_stale_temporaries(folder):
                log.warning("removed %s, left by an interrupted earlier run", path.name)


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
    check_name_template(job.name_template, _model_fields(upscaler))  # fail early on a bad one
    if job.format:
        normalize_format(job.format)
    plan, planned = _plan(job, upscaler)
    report = BatchReport(records=[r for r, *_ in plan], model=upscaler.descriptor.label)
    if job.shard is not None:
        report.shard, report.planned_files = (job.shard[0], job.shard[1]), planned
    emit = on_file or (lambda record: None)
    for record, *_ in plan:
        if record.status != "pending":
            emit(record)
    todo = [(r, i, o, f) for r, i, o, f in plan if r.status == "pending"]
    if todo:
        prepare_folder(Path(job.output_dir).expanduser(), "the outputs")
    _clean_output_folders(plan)
    total = len(todo) * PROGRESS_STEPS
    on_progress(0, total)

    def read(path: Path, stop: StopFn) -> ImageData:
        return read_image(path, max_pixels=job.max_pixels, should_stop=stop, eight_bit=True)

    paths = [path for _, path, _, _ in todo]
    with ReadAhead(paths, read, should_stop, threaded=READ_AHEAD) as images:
        for k, (record, _, out, fmt) in enumerate(todo):
            if should_stop():
                _cancel_rest(todo[k:], emit)
                break
            _process(job, upscaler, record, images, out, fmt, k, total, on_progress, should_stop)
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
    images: ReadAhead[ImageData],
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
        img = images.take(k)  # waits for it to be read; raises what reading it raised
        record.input_size = (img.width, img.height)
        decision = upscaler.cleanup_decision(img)
        record.cleanup = cleanup_note(decision)
        record.input_quality = (
            decision.quality.description
            if decision.quality is not None
            else describe_format(img.jpeg, img.source_format)
        )
        make_folders(out.parent)
        result, record.warnings = upscaler.upscale_to_file(
            img, out, format=fmt, quality=job.quality, on_progress=progress, should_stop=should_stop
        )
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


def _cancel_rest(rest: Sequence[tuple[FileRecord, Path, Path, str]], emit: Callable) -> None:
    for record, *_ in rest:
        record.status, record.reason = "cancelled", "not started"
        emit(record)
