"""The Models dialog: downloads of the authors' releases from a loopback mirror of
shared/official-weights (progress, Cancel, offline), imports, and the model panels that follow."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import Qt

from app.jobs import ModelChoice
from engine import build_untrained, library, save_checkpoint, user_dir
from engine.downloads import MIRROR_ENV
from tests.mirror import serve_mirror, unreachable_url

SD_X2 = ModelChoice("A2F", "SD", 2)


@pytest.fixture
def mirror(shared_dir, monkeypatch):
    with serve_mirror(shared_dir / "official-weights") as m:
        monkeypatch.setenv(MIRROR_ENV, m.url)
        yield m


@pytest.fixture
def bundled(tmp_path, monkeypatch) -> Path:
    """A bundled folder holding untrained A2F-SD x2 weights (so a download has one to beat)."""
    folder = tmp_path / "bundled"
    folder.mkdir()
    save_checkpoint(
        folder / "A2F-SD-x2.safetensors",
        build_untrained("A2F-SD", 2).model,
        family="A2F",
        variant="SD",
        scale=2,
        metadata={"origin": "bundled"},
    )
    monkeypatch.setattr(library, "bundled_dir", lambda: folder)
    return folder


def _wait_done(qtbot, dialog) -> None:
    qtbot.waitUntil(lambda: not dialog.busy, timeout=30_000)
    qtbot.wait(20)  # the queued outcome signals


def test_download_through_the_dialog_installs_and_the_panels_offer_it(
    bundled, mirror, window, qtbot
):
    panel = window.upscale.panel
    assert panel.refresh(select=SD_X2)
    assert "Weights: bundled, A2F-SD-x2.safetensors" in panel.info.text()
    panel.selector.set_current(ModelChoice("Bicubic", "MATLAB", 4))

    dialog = window.show_models()
    qtbot.addWidget(dialog)
    assert dialog.isVisible() and dialog.release_rows()["A2F-SD-x2"] == "not installed"
    assert ("A2F-SD", "x2", "bundled") in dialog.installed_rows()
    assert dialog.select_release("A2F-SD-x2")
    qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    assert dialog.busy and not dialog.download_button.isEnabled()
    assert dialog.cancel_button.isEnabled()
    _wait_done(qtbot, dialog)

    assert (user_dir() / "A2F-SD-x2.pt").is_file()
    assert dialog.release_rows()["A2F-SD-x2"] == "downloaded"
    assert dialog.release_rows()["A2F-SD-x3"] == "not installed"
    rows = dialog.installed_rows()
    assert ("A2F-SD", "x2", "downloaded") in rows and ("A2F-SD", "x2", "bundled") in rows
    assert dialog.progress.value() == dialog.progress.maximum() == 1000
    assert "Installed A2F-SD-x2" in dialog.message_bar.text()
    # The model panel offers it, selected, with the downloaded file picked over the bundled one.
    assert SD_X2 in panel.selector.choices and SD_X2 in window.batch.selector.choices
    assert panel.current() == SD_X2
    info = panel.info.text()
    assert "Weights: downloaded, A2F-SD-x2.pt" in info and "Release: A2F-SD-x2" in info
    assert panel.current().load().source == str(user_dir() / "A2F-SD-x2.pt")


def test_offline_download_shows_the_error_in_the_dialog(window, qtbot, monkeypatch):
    with unreachable_url() as url:
        monkeypatch.setenv(MIRROR_ENV, url)
        dialog = window.show_models()
        qtbot.addWidget(dialog)
        dialog.select_release("HPINet-M-x2")
        assert dialog.download_selected() is not None
        _wait_done(qtbot, dialog)
    text = dialog.message_bar.text()
    assert text.startswith("Download failed: cannot download HPINet-M-x2")
    assert "could not be reached" in text and dialog.message_bar.property("level") == "error"
    assert dialog.release_rows()["HPINet-M-x2"] == "not installed"
    assert dialog.download_button.isEnabled() and not dialog.cancel_button.isEnabled()
    assert not [c for c in window.upscale.panel.selector.choices if c.family == "HPINet"]


def test_cancel_keeps_the_partial_download_to_resume(mirror, window, qtbot):
    mirror.gate = threading.Event()
    dialog = window.show_models()
    qtbot.addWidget(dialog)
    dialog.select_release("A2F-SD-x3")
    dialog.download_selected()
    qtbot.waitUntil(lambda: dialog.progress.value() > 0, timeout=10_000)
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    mirror.gate.set()
    _wait_done(qtbot, dialog)
    assert "Download cancelled" in dialog.message_bar.text()
    status = dialog.release_rows()["A2F-SD-x3"]
    assert status.startswith("not installed (") and status.endswith("% downloaded)")
    assert not (user_dir() / "A2F-SD-x3.pt").exists()


def test_import_installs_a_file_and_reports_an_unrecognised_one(
    shared_dir, window, qtbot, tmp_path
):
    dialog = window.show_models()
    qtbot.addWidget(dialog)
    junk = tmp_path / "notes.pt"
    junk.write_bytes(b"not a checkpoint at all")
    dialog.import_file(str(junk))
    _wait_done(qtbot, dialog)
    assert dialog.message_bar.text().startswith("Import failed:")
    assert dialog.message_bar.property("level") == "error"
    assert dialog.installed_rows() == []

    dialog.import_file(str(shared_dir / "official-weights" / "a2f" / "AAF_SD_x4.pt"))
    _wait_done(qtbot, dialog)
    assert "Imported A2F-SD x4" in dialog.message_bar.text()
    assert dialog.installed_rows() == [("A2F-SD", "x4", "imported")]
    assert dialog.release_rows()["A2F-SD-x4"] == "imported"  # same sha256 as the release
    panel = window.upscale.panel
    assert panel.current() == ModelChoice("A2F", "SD", 4)
    assert "Weights: imported, A2F-SD-x4-imported-" in panel.info.text()


def test_move_to_trash_takes_the_users_weights_and_leaves_the_bundled_ones(
    bundled, window, qtbot, tmp_path, monkeypatch
):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # where Qt's trash lives
    user_dir().mkdir(parents=True)
    released = user_dir() / "A2F-SD-x2.pt"  # as a download leaves it: .pt + sidecar
    torch.save(build_untrained("A2F-SD", 2).model.state_dict(), released)
    meta = {"family": "A2F", "variant": "SD", "scale": 2, "origin": "downloaded"}
    released.with_suffix(".json").write_text(json.dumps({**meta, "release": "A2F-SD-x2"}))
    panel = window.upscale.panel
    assert panel.refresh(select=SD_X2)
    assert "Weights: downloaded, A2F-SD-x2.pt" in panel.info.text()

    dialog = window.show_models()
    qtbot.addWidget(dialog)
    assert dialog.select_release("A2F-SD-x2") and not dialog.download_button.isEnabled()
    assert dialog.download_selected() is None  # installed: nothing to download
    assert dialog.select_release("A2F-SD-x3") and dialog.download_button.isEnabled()

    assert dialog.select_entry(bundled / "A2F-SD-x2.safetensors")
    assert not dialog.trash_button.isEnabled()
    assert not dialog.trash(dialog.selected_entry())
    assert (bundled / "A2F-SD-x2.safetensors").is_file()

    assert dialog.select_entry(released) and dialog.trash_button.isEnabled()
    with qtbot.waitSignal(dialog.removed):
        assert dialog.trash(dialog.selected_entry())
    assert not released.exists() and not released.with_suffix(".json").exists()
    trashed = tmp_path / "xdg" / "Trash" / "files"
    assert sorted(p.name for p in trashed.iterdir()) == ["A2F-SD-x2.json", "A2F-SD-x2.pt"]
    assert "Moved A2F-SD x2 (downloaded, A2F-SD-x2.pt) to the trash" in dialog.message_bar.text()
    assert dialog.installed_rows() == [("A2F-SD", "x2", "bundled")]
    assert dialog.release_rows()["A2F-SD-x2"] == "not installed"
    # The panel falls back to the bundled weights of the same model.
    assert panel.current() == SD_X2
    assert "Weights: bundled, A2F-SD-x2.safetensors" in panel.info.text()


def test_a_file_that_cannot_go_to_the_trash_stays_and_the_dialog_says_so(
    window, qtbot, tmp_path, monkeypatch
):
    user_dir().mkdir(parents=True)
    mine = user_dir() / "mine.safetensors"
    model = build_untrained("A2F-SD", 3).model
    save_checkpoint(mine, model, family="A2F", variant="SD", scale=3, metadata={})
    dialog = window.show_models()
    qtbot.addWidget(dialog)
    assert dialog.select_entry(mine)
    blocker = tmp_path / "a-file"  # the trash would have to be made under a file: it cannot
    blocker.write_text("")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker / "share"))
    assert not dialog.trash(dialog.selected_entry())
    assert mine.is_file() and dialog.installed_rows() == [("A2F-SD", "x3", "imported")]
    text = dialog.message_bar.text()
    assert text.startswith(f"Could not move {mine} to the trash (nothing was moved)")
    assert dialog.message_bar.property("level") == "error"


def test_an_unreadable_file_in_the_weights_folder_is_listed_not_fatal(window, qtbot):
    folder = user_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "crafted.safetensors").write_bytes(b"\xff" * 8 + b"{}")
    dialog = window.show_models()
    qtbot.addWidget(dialog)
    rows = [
        dialog.installed_list.topLevelItem(i)
        for i in range(dialog.installed_list.topLevelItemCount())
    ]
    (row,) = [r for r in rows if r.text(0) == "crafted.safetensors"]
    assert row.text(2) == "unreadable" and "crafted.safetensors" in row.toolTip(2)
    assert "1 unreadable file(s) skipped" in dialog.folder_label.text()
    assert dialog.installed_rows() == []
