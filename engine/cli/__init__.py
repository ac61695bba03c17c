"""The command line: srstudio upscale | eval | train | models | report."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib import import_module

from engine.errors import Cancelled, SRStudioError

SUBCOMMANDS = ("upscale", "eval", "train", "models", "report")
VERBOSE_HELP = "say what the engine chooses (tile size and pooling mode, fallbacks, clean-ups)"


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("srstudio")
    except PackageNotFoundError:
        return "0.1.0"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="srstudio", description="SR Studio: image super-resolution (no arguments: the app)"
    )
    parser.add_argument("--version", action="version", version=f"srstudio {version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = import_module(f"engine.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"engine.cli.{name}":
                raise
            continue
        module.add_parser(subparsers)
    for sub in subparsers.choices.values():  # also after the subcommand
        sub.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP
        )
    return parser


def interrupted() -> int:
    """Ctrl+C: one line and exit code 130, wherever it came."""
    print("interrupted", file=sys.stderr)
    return 130


def main(argv: list[str] | None = None) -> int:
    """Run one command; every outcome is an exit code and at most one line on stderr, Ctrl+C
    included, even while the subcommands' modules (and torch) are still being imported."""
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help/--version
            return int(exc.code or 0)
        if getattr(args, "verbose", False):
            logging.basicConfig(
                level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr
            )
        if not getattr(args, "run", None):
            parser.print_help()
            return 2
        return args.run(args)
    except Cancelled:
        print("cancelled", file=sys.stderr)
        return 130
    except SRStudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return interrupted()
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's flush quiet
        return 0


if __name__ == "__main__":
    sys.exit(main())
