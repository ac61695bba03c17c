"""The `srstudio` entry point: subcommands go to the engine's CLI; no arguments opens the app
(Qt is imported only then)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        from engine import run_cli as cli_main

        return cli_main(argv)
    try:
        from app.main_window import run_app
    except ImportError as exc:
        print(
            f"error: the desktop app cannot start ({exc}). Install it with "
            "`pip install -e .[gui]`, or use a subcommand: srstudio --help",
            file=sys.stderr,
        )
        return 2
    return run_app()


if __name__ == "__main__":
    sys.exit(main())
