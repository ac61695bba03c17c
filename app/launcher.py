"""The `srstudio` entry point: subcommands and options go to the engine's CLI; no arguments, or
image/folder paths ("Open with"), open the app (Qt is imported only then). One option is the
app's own, so handled here and not by the (Qt-free) engine: `--reset-settings` forgets the app's
stored settings and exits (0, one line), for a settings file the app cannot start with; `--help`
lists it after the engine's options.

On Linux the process first re-runs itself with jemalloc preloaded where it is installed
(Debian/Ubuntu: libjemalloc2; ./run installs it), its freed pages kept (MALLOC_CONF). glibc's
heap, even tuned (engine.inference.allocator), fragments between the tiles of a large photo: the
12 MP photo at x4 peaked at 1.5-1.9 GiB under it and at 1.2 GiB under jemalloc, at about the
same speed (BENCHMARKS.md). A preload has to be there when the process starts, before torch is
imported, so this happens here and not in the engine. SRSTUDIO_JEMALLOC=0 turns it off. The
Linux PyInstaller bundle (one folder, nothing to unpack again) carries its own libjemalloc.so.2,
copied from the build machine (packaging/spec_common.py), and re-runs itself with that one.
Not done where OpenVINO may run: with jemalloc preloaded its CPU plugin frees memory through
glibc that jemalloc gave ("free(): invalid pointer", OpenVINO 2026.4), so the app (whose engine
can be switched at any time) and a command with --backend openvino or auto keep glibc's malloc
when it is installed.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

JEMALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"  # keep freed pages: no refaulting per tile
JEMALLOC_DIRS = (
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
)


# engine.cli.SUBCOMMANDS (a test keeps them equal): importing engine.cli would import torch first
CLI_COMMANDS = ("upscale", "eval", "train", "models", "report")


def openvino_may_run(argv: Sequence[str], installed: bool) -> bool:
    """Whether this command line may run OpenVINO: the app, or a command asking for it."""
    if not installed:
        return False
    if not argv or not (argv[0].startswith("-") or argv[0] in CLI_COMMANDS):
        return True  # the app
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--backend=") else None
        if arg == "--backend" and i + 1 < len(argv):
            value = argv[i + 1]
        if value in ("openvino", "auto"):
            return True
    return False


def find_jemalloc() -> str | None:
    """The path of an installed libjemalloc.so.2 (in a frozen bundle, the bundle's own), None
    where there is none."""
    bundle = getattr(sys, "_MEIPASS", None) if getattr(sys, "frozen", False) else None
    for folder in [bundle] if bundle else JEMALLOC_DIRS:
        if (Path(folder) / "libjemalloc.so.2").is_file():
            return str(Path(folder) / "libjemalloc.so.2")
    return None


def jemalloc_env(
    environ: Mapping[str, str], platform: str, find: Callable[[], str | None] = find_jemalloc
) -> dict[str, str] | None:
    """The environment to re-run this process in with jemalloc preloaded; None when it is
    already preloaded, turned off, not Linux or not installed."""
    preload = environ.get("LD_PRELOAD", "")
    if not platform.startswith("linux") or "jemalloc" in preload:
        return None
    if environ.get("SRSTUDIO_JEMALLOC") == "0":
        return None
    lib = find()
    if lib is None:
        return None
    env = dict(environ)
    env["LD_PRELOAD"] = f"{lib} {preload}".strip()
    env.setdefault("MALLOC_CONF", JEMALLOC_CONF)
    return env


def _rerun_with_jemalloc(argv: Sequence[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if openvino_may_run(argv, importlib.util.find_spec("openvino") is not None):
        return
    env = jemalloc_env(os.environ, sys.platform)
    if env is not None:
        sys.stdout.flush()
        # a bundle's executable is the program itself; Python's takes its own options first
        args = sys.argv[1:] if getattr(sys, "frozen", False) else sys.orig_argv[1:]
        os.execve(sys.executable, [sys.executable, *args], env)


RESET_FLAG = "--reset-settings"
APP_HELP = f"""
app options (no COMMAND: the app; PATH...: images or folders opened in it):
  {RESET_FLAG}  forget the app's settings (model, options, window, recent
                    files) and exit: the next start uses the defaults"""


def reset_app_settings(argv: Sequence[str]) -> int:
    """`srstudio --reset-settings`: clear the app's QSettings; exit status 0, one line."""
    if len(argv) > 1:
        print(f"error: {RESET_FLAG} takes no other arguments", file=sys.stderr)
        return 2
    try:
        from app.settings import reset_settings
    except ImportError:  # a command-line install, without Qt: no app, no settings
        print("SR Studio's desktop app is not installed: there are no settings to reset.")
        return 0
    print(f"SR Studio's settings are back to the defaults ({reset_settings()}).")
    return 0


def _cli_with_app_help(argv: list[str]) -> int:
    from engine import run_cli

    code = run_cli(argv)
    if argv[0] in ("-h", "--help"):
        print(APP_HELP)
    return code


def main(argv: list[str] | None = None) -> int:
    """Ctrl+C at any moment, the imports of torch and Qt included: one line, exit code 130."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _main(argv: list[str] | None = None) -> int:
    if argv is None:  # the process's own command line: it may be re-run
        _rerun_with_jemalloc()
    argv = sys.argv[1:] if argv is None else argv
    from engine.cli import SUBCOMMANDS

    if argv and argv[0] == RESET_FLAG:
        return reset_app_settings(argv)
    if argv and (argv[0].startswith("-") or argv[0] in SUBCOMMANDS):
        return _cli_with_app_help(argv)
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
