"""A file whose name is not valid UTF-8 (issue 30): it opens, its name is shown readably, and it
is not written into the settings, which cannot hold it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from app.panels.upscale_tab import UpscaleTab
from app.settings import AppSettings, display_name, storable


def test_display_name_and_storable() -> None:
    raw = os.fsdecode(b"ph\xffoto\n.png")
    assert display_name(Path("/x") / raw) == "ph\ufffdoto?.png"
    assert not storable(raw) and storable("photo.png") and storable("фото.png")


def test_an_undecodable_name_opens_and_is_shown(qtbot, tmp_path: Path) -> None:
    path = Path(os.fsdecode(os.fsencode(tmp_path) + b"/ph\xffoto.png"))
    Image.fromarray(np.full((12, 10, 3), 90, np.uint8)).save(path)
    settings = AppSettings(auto_run=False)
    tab = UpscaleTab(settings)
    qtbot.addWidget(tab)
    tab.open_path(path)
    qtbot.waitUntil(lambda: tab.input is not None and not tab.side_tasks, timeout=20_000)
    assert "ph\ufffdoto.png: 10x12" in tab.status.text()
    assert tab.source_name == "ph\ufffdoto.png"
    assert str(path) not in settings.recent_files
