"""The `srstudio` entry point: subcommands and options go to the engine's CLI; no arguments, or
image/folder paths ("Open with"), open the app (Qt is imported only then)."""

from __future__ import annotations

import sys

from engine.cli import SUBCOMMANDS


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and (argv[0].startswith("-") or argv[0] in SUBCOMMANDS):
        from engine import run_cli

        return run_cli(argv)
    try:
        from app.main_window import run_app
    except ImportError as exc:
        print(
            f"error: the desktop app cannot start ({exc}). Install it with "
            "`pip install -e .[gui]`, or use a subcommand: srstudio --help",
            file=sys.stderr,
        )
        return 2
    return run_app(["srstudio", *argv])
