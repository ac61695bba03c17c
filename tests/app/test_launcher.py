from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import app.main_window
from app import launcher
from app.launcher import find_jemalloc, jemalloc_env, main
from tests.app.conftest import write_png


def test_paths_open_the_app_and_subcommands_go_to_the_cli(monkeypatch, capsys):
    opened: list[list[str]] = []
    monkeypatch.setattr(app.main_window, "run_app", lambda argv: opened.append(argv) or 0)
    assert main([]) == 0
    assert main(["photo.png", "scans/"]) == 0
    assert opened == [["srstudio"], ["srstudio", "photo.png", "scans/"]]
    assert main(["models", "--json"]) == 0
    assert "models" in json.loads(capsys.readouterr().out)
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("srstudio ")
    assert len(opened) == 2


def test_a_path_given_on_the_command_line_opens_in_the_window(qtbot, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # start_app installs its own
    image = write_png(tmp_path / "photo.png", 16, 20)
    window = app.main_window.start_app(["srstudio", str(image)])
    qtbot.addWidget(window)
    upscale = window.upscale
    qtbot.waitUntil(
        lambda: upscale.input is not None and not upscale.busy and not upscale.side_tasks
    )
    assert upscale.source_name == "photo.png"
    assert window.tabs.currentWidget() is upscale


def test_a_binding_that_loses_references_is_reported_in_the_window(qtbot, monkeypatch):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(app.main_window, "binding_loses_references", lambda: True)
    window = app.main_window.start_app(["srstudio"])
    qtbot.addWidget(window)
    assert window.statusBar().currentMessage().startswith("PySide6 ")
    assert "crash a long session" in window.statusBar().currentMessage()


def test_several_paths_given_on_the_command_line_go_to_the_batch_queue(
    qtbot, monkeypatch, tmp_path
):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    paths = [str(write_png(tmp_path / f"p{i}.png", 12, 12, seed=i)) for i in range(2)]
    window = app.main_window.start_app(["srstudio", *paths])
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.batch.table.rowCount() == 2)
    assert window.tabs.currentWidget() is window.batch


def test_run_script_passes_the_app_paths_on():
    script = (Path(__file__).resolve().parents[2] / "run").read_text()
    app_case = script.split("  app)", 1)[1].split(";;", 1)[0]
    assert '"$VENV/bin/srstudio" "$@"' in app_case


def test_jemalloc_is_preloaded_once_on_linux_where_installed():
    found = lambda: "/usr/lib/libjemalloc.so.2"  # noqa: E731
    env = jemalloc_env({"PATH": "/bin", "LD_PRELOAD": "/x/libfoo.so"}, "linux", found)
    assert env is not None and env["PATH"] == "/bin"
    assert env["LD_PRELOAD"] == "/usr/lib/libjemalloc.so.2 /x/libfoo.so"
    assert env["MALLOC_CONF"] == "dirty_decay_ms:-1,muzzy_decay_ms:-1"
    mine = jemalloc_env({"MALLOC_CONF": "narenas:2"}, "linux", found)
    assert mine is not None and mine["MALLOC_CONF"] == "narenas:2"  # the user's own settings
    assert jemalloc_env(env, "linux", found) is None  # already preloaded: no second run
    assert jemalloc_env({"SRSTUDIO_JEMALLOC": "0"}, "linux", found) is None
    assert jemalloc_env({}, "darwin", found) is None
    assert jemalloc_env({}, "win32", found) is None
    assert jemalloc_env({}, "linux", lambda: None) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a Linux preload")
def test_the_entry_point_reruns_itself_with_jemalloc():
    """./run installs libjemalloc2 (Debian/Ubuntu), so CI runs this."""
    assert find_jemalloc(), "libjemalloc2 is not installed (./run installs it with apt-get)"
    code = (
        "from app import launcher; launcher._rerun_with_jemalloc(['upscale', 'a.jpg']); "
        "print('libjemalloc' in open('/proc/self/maps').read())"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "SRSTUDIO_JEMALLOC")}
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "True"


def test_jemalloc_is_left_out_where_openvino_may_run():
    from engine.cli import SUBCOMMANDS

    assert launcher.CLI_COMMANDS == SUBCOMMANDS
    may = launcher.openvino_may_run
    assert may([], True) and may(["photo.jpg"], True)  # the app: its engine can change
    assert may(["upscale", "a.jpg", "--backend", "openvino"], True)
    assert may(["eval", "--backend=auto"], True)
    assert not may(["upscale", "a.jpg"], True)  # PyTorch, the default
    assert not may(["upscale", "a.jpg", "--backend", "torch"], True)
    assert not may([], False) and not may(["upscale", "--backend", "auto"], False)


def test_a_frozen_bundle_preloads_its_own_jemalloc_only(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert find_jemalloc() is None  # not the system's: the bundle runs on its own libraries
    (tmp_path / "libjemalloc.so.2").write_bytes(b"")
    assert find_jemalloc() == str(tmp_path / "libjemalloc.so.2")
