from __future__ import annotations

import json

import app.main_window
from app.launcher import main


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
