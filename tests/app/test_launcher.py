from __future__ import annotations

import json
import sys
from pathlib import Path

import app.main_window
from app.launcher import main
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
