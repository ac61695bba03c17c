"""srstudio report merge REPORT... -o MERGED: one report from the reports of a sharded batch.

Each REPORT is the JSON that `srstudio upscale --shard K/N --report PATH` wrote (PATH.json; PATH
alone is read as PATH.json), or an earlier merged report (to add shards that were rerun). They
must be shards of one run: the same N and model, no shard twice, no file twice. MERGED.json and
MERGED.txt are written in the batch's formats, every file once, in shard order, with the shards
merged and missing; seconds is the shards' times added (processing time, not wall time).

Exit status: 0 every shard merged, 1 merged but some shards are missing (listed), 2 a report
that cannot be read, is not a shard report (a number out of range or not finite, too many files
or shards: engine.report_file) or does not belong with the others, or an output that cannot be
written (one line, no traceback). Everything is checked before anything is written, and both
MERGED files are made before either is written: a refused merge writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.batch import check_report_target, report_paths
from engine.errors import SRStudioError
from engine.report_file import load_report, merge_reports


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="merge the reports of a sharded batch (upscale --shard)",
        description="Work with batch reports.",
    )
    p.set_defaults(run=lambda args: _help(p))
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    m = actions.add_parser(
        "merge",
        help="one report from the shards' reports",
        description="Merge the JSON reports of `srstudio upscale --shard K/N --report PATH` "
        "into one (text + JSON), every file once, naming the shards that are missing. "
        "Exit 0: all shards; 1: some missing; 2: bad or mismatched reports.",
    )
    m.add_argument("reports", nargs="+", metavar="REPORT", help="shard reports (PATH.json)")
    m.add_argument(
        "-o", "--output", required=True, metavar="MERGED", help="write MERGED.json and MERGED.txt"
    )
    m.set_defaults(run=run_merge)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_merge(args: argparse.Namespace) -> int:
    paths = [_report_file(text) for text in args.reports]
    merged = merge_reports([(str(path), load_report(path)) for path in paths])
    check_report_target(args.output, paths)  # never over one of the reports being merged
    json_path, text_path = merged.write(args.output)  # SRStudioError when it cannot
    print(merged.summary(), file=sys.stderr)
    assert merged.merged is not None
    count, present = merged.merged
    print(f"shards merged: {_numbers(present)} of {count}", file=sys.stderr)
    missing = merged.missing_shards
    if missing:
        print(f"shards missing: {_numbers(missing)}", file=sys.stderr)
    print(f"report: {json_path} and {text_path}", file=sys.stderr)
    return 1 if missing else 0


def _report_file(text: str) -> Path:
    """REPORT as given when it is a file, else the JSON that --report REPORT writes."""
    if not text.strip():
        raise SRStudioError("an empty REPORT path; give the PATH.json that --report PATH wrote")
    path = Path(text).expanduser()
    return path if path.is_file() else report_paths(path)[0]


def _numbers(values: Sequence[int]) -> str:
    return ", ".join(map(str, sorted(values))) or "none"
