"""srstudio upscale INPUT... -o OUT: batch upscaling from the command line.

Exit status: 0 every file done (or skipped), 1 some failed (they are listed), 2 usage errors (bad
arguments, a bad --name template, an input that does not exist, unknown model, unreadable weights,
an output or report path that cannot be written: all found before the first image is read), 3
the images ran (their outcome printed as usual) but the report could not be written, 130
cancelled (Ctrl+C or SIGTERM: the first one stops after the current tile, leaving no partial file
and still writing the report; a second one interrupts at once). Names that hold control
characters or undecodable bytes are printed quoted (engine.batch.quote_name).

--shard K/N (K counts from 1) processes only shard K of the planned files, split by pixel count
the same way in every process (engine.shard); without it, a Slurm array task
(SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT set) takes its shard from those. A sharded run
refuses, before any work, a planned list where two inputs map to one output name, and its
report records the shard; `srstudio report merge` combines the shards' reports.

Under torchrun (WORLD_SIZE > 1): engine.cli.upscale_torchrun.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import TextIO

from engine import distributed
from engine.batch import (
    DEFAULT_TEMPLATE,
    PROGRESS_STEPS,
    BatchJob,
    BatchReport,
    FileRecord,
    check_name_template,
    check_report_target,
    collect_inputs,
    missing_inputs,
    quote_name,
    run_batch,
)
from engine.cli.common import StopOnSignal, add_model_options, resolve_model, upscale_options
from engine.errors import SRStudioError
from engine.imaging.io import DEFAULT_MAX_PIXELS
from engine.inference.upscaler import ALPHA_MODES, Upscaler
from engine.progress import Eta, format_seconds
from engine.shard import Shard, parse_shard, shard_from_env

log = logging.getLogger(__name__)

FORMAT_CHOICES = ("png", "jpg", "jpeg", "webp", "tiff", "tif")
REPORT_NOT_WRITTEN = 3  # exit status: the images ran, the report could not be written


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "upscale",
        help="upscale images, folders and globs into an output folder",
        description="Upscale images. INPUT may be files, folders or quoted glob patterns.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    add_model_options(p)
    p.add_argument(
        "--outscale",
        type=_positive_float,
        metavar="F",
        help="final scale (e.g. 1.5 or 6) by a bicubic resize after the network",
    )
    p.add_argument(
        "--alpha",
        choices=ALPHA_MODES,
        default="bicubic",
        help="upscale an alpha channel by bicubic (default) or by the network",
    )
    p.add_argument("--format", choices=FORMAT_CHOICES, help="output format (default: the input's)")
    p.add_argument(
        "--quality",
        type=_quality,
        default=95,
        metavar="Q",
        help="JPEG/WebP quality 1..100 (default 95)",
    )
    p.add_argument("--recursive", action="store_true", help="descend into subfolders")
    p.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave outputs that already exist (resume a batch)",
    )
    p.add_argument("--report", metavar="PATH", help="write PATH.json and PATH.txt reports")
    p.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help=f"refuse larger inputs (default {DEFAULT_MAX_PIXELS:,}; 0: no limit)",
    )
    p.add_argument(
        "--name",
        default=DEFAULT_TEMPLATE,
        metavar="TEMPLATE",
        help="output name; fields {stem} {ext} {model} {family} {variant} {scale} "
        f"{{index}} (default {DEFAULT_TEMPLATE})",
    )
    p.add_argument(
        "--shard",
        metavar="K/N",
        help="process only shard K (1..N) of the files, split by pixel count; default: from "
        "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT in a Slurm array (index 0 is shard 1)",
    )
    p.set_defaults(run=run)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _quality(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be 1..100, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    info = distributed.from_env()
    if info.enabled:
        from engine.cli.upscale_torchrun import run_torchrun  # it uses this module's parts

        return run_torchrun(args, info)
    try:
        job, upscaler = prepare(args)
    except SRStudioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    progress = BatchProgress(sys.stderr, label=upscaler.descriptor.label)
    with StopOnSignal() as stop:
        try:
            report = run_batch(
                job, upscaler, on_progress=progress, should_stop=stop, on_file=progress.file
            )
        except SRStudioError as e:
            progress.clear()
            print(f"error: {e}", file=sys.stderr)
            return 2
    progress.clear()
    return finish(args, report)


def finish(args: argparse.Namespace, report: BatchReport) -> int:
    """Print the summary and failures, write --report; the exit status of `report`."""
    print(report.summary(), file=sys.stderr)
    if report.failed:
        print("failed:", file=sys.stderr)
        for r in report.failed:
            print(f"  {quote_name(r.input)}: {quote_name(r.reason)}", file=sys.stderr)
    if report.merged is not None and report.missing_shards:
        missing = ", ".join(map(str, report.missing_shards))
        print(
            f"shards missing: {missing} of {report.merged[0]} (rerun with --skip-existing)",
            file=sys.stderr,
        )
    written = args.report is None or _write_report(report, args.report)
    if report.cancelled:
        return 130
    if not written:  # its own outcome: never counted as files that failed
        return REPORT_NOT_WRITTEN
    return 1 if report.failed or report.missing_shards else 0


def _write_report(report: BatchReport, path: str) -> bool:
    """Write --report PATH; False, with its one-line error, when it cannot be written."""
    try:
        json_path, text_path = report.write(path)
    except SRStudioError as e:
        print(f"error: the report was not written: {e}", file=sys.stderr)
        return False
    print(f"report: {json_path} and {text_path}", file=sys.stderr)
    return True


def prepare(args: argparse.Namespace, shard: Shard | None = None) -> tuple[BatchJob, Upscaler]:
    """The job and upscaler, every usage error found first; shard: given (torchrun), else from
    --shard or a Slurm array."""
    if args.max_pixels < 0:
        raise SRStudioError("--max-pixels must be >= 0 (0: no limit)")
    if args.report is not None and not args.report.strip():
        raise SRStudioError(
            f"--report needs a path (it writes PATH.json and PATH.txt), got {args.report!r}"
        )
    check_name_template(args.name)
    if shard is None:
        shard = _shard(args)
    job = BatchJob(
        inputs=list(args.inputs),
        output_dir=Path(args.output),
        recursive=args.recursive,
        name_template=args.name,
        format=args.format,
        quality=args.quality,
        skip_existing=args.skip_existing,
        max_pixels=args.max_pixels or None,
        shard=None if shard is None else (shard.index, shard.count),
    )
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise SRStudioError(f"{out} exists and is not a folder")
    missing = missing_inputs(job)
    if missing:
        raise SRStudioError(f"{missing[0]}: no such file or folder" + _more(len(missing) - 1))
    inputs = collect_inputs(job)
    if not inputs:
        raise SRStudioError("no input images found in: " + " ".join(map(str, args.inputs)))
    if args.report is not None:
        check_report_target(args.report, inputs)
    options = upscale_options(args, outscale=args.outscale, alpha=args.alpha)
    return job, Upscaler(resolve_model(args), options)


def _shard(args: argparse.Namespace) -> Shard | None:
    """--shard K/N, else a Slurm array task's shard, else None (the whole batch)."""
    if args.shard is not None:
        shard = parse_shard(args.shard)
        log.info("shard %s (from --shard)", shard)
        return shard
    shard = shard_from_env()
    if shard is not None:
        log.info(
            "shard %s from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT (index 0 is shard 1; "
            "--shard K/N overrides)",
            shard,
        )
    return shard


def _more(count: int) -> str:
    return f" (and {count} more)" if count else ""


class BatchProgress:
    """A text progress bar in files with an ETA, redrawn in place on a terminal; elsewhere one
    line a finished file."""

    def __init__(self, stream: TextIO, *, label: str = "", width: int = 28) -> None:
        self.stream, self.label, self.width = stream, label, width
        self.interactive = stream.isatty()
        self.eta = Eta(from_start=True)
        self.drawn = False
        self.last = (0, 0)
        self.last_draw = 0.0

    def __call__(self, done: int, total: int) -> None:
        self.last = (done, total)
        now = time.perf_counter()
        if self.interactive and total > 0 and (now - self.last_draw > 0.1 or done >= total):
            self.last_draw = now
            self._draw(done, total)

    def _draw(self, done: int, total: int) -> None:
        filled = self.width * done // total
        eta_text = format_seconds(self.eta.update(done, total))
        files = f"{done // PROGRESS_STEPS}/{total // PROGRESS_STEPS} files"
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(
            f"\r{self.label} [{bar}] {files} {100 * done // total:3d}% ETA {eta_text}"
        )
        self.stream.flush()
        self.drawn = True

    def clear(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self.drawn = False

    def file(self, record: FileRecord) -> None:
        self.clear()
        line = f"{record.status:<9} {quote_name(record.input)}"
        if record.status == "done":
            line += f" -> {quote_name(record.output or '')} ({record.seconds:.1f} s)"
        elif record.reason:
            line += f": {quote_name(record.reason)}"
        line += "".join(f"\n  warning: {quote_name(w)}" for w in record.warnings)
        print(line, file=self.stream, flush=True)
        if self.interactive and self.last[1] > 0:
            self._draw(*self.last)
