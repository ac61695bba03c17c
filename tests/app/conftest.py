"""Qt tests run offscreen, each with its own QSettings file, weights folder and trash, so they
never touch the user's settings, installed weights or trash, and with an empty bundled weights
folder (a test that wants the real weights/ restores it: `bundled_weights`)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import gc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402

from app import jobs  # noqa: E402
from app.gui_gc import collect_on_gui_thread  # noqa: E402
from engine import Release, build_untrained, library, save_checkpoint, user_dir  # noqa: E402

REAL_BUNDLED_DIR = library.bundled_dir


@pytest.fixture(autouse=True, scope="package")
def gc_on_gui_thread(qapp):
    """As the app does (app/gui_gc.py): cycles are collected on this thread, never by a worker
    thread that happens to allocate; automatic collection is back on for the engine's tests."""
    collector = collect_on_gui_thread(qapp)
    yield
    collector.stop()


@pytest.fixture(autouse=True)
def collect_after_each_test(gc_on_gui_thread):
    yield
    gc.collect()


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "qsettings"
    folder.mkdir()
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, str(folder))
    monkeypatch.setenv("SRSTUDIO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))  # Qt's trash, among others
    empty = tmp_path / "no-bundled-weights"
    empty.mkdir()
    monkeypatch.setattr(library, "bundled_dir", lambda: empty)
    return folder


@pytest.fixture
def bundled_weights(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project's real weights/ folder."""
    monkeypatch.setattr(library, "bundled_dir", REAL_BUNDLED_DIR)
    return REAL_BUNDLED_DIR()


def write_png(path: Path, height: int, width: int, seed: int = 0) -> Path:
    """A smooth colour image with some texture (so that upscalers differ), as an RGB PNG."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    base = np.stack([128 + 90 * np.sin(x / 5.0 + c) * np.cos(y / 7.0 - c) for c in range(3)], -1)
    pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def window(qtbot):
    from app.main_window import MainWindow
    from app.settings import AppSettings

    win = MainWindow(AppSettings())
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    yield win
    win.close()


def fake_install(release: Release) -> Path:
    """What a download leaves in the library, without the network: the release's network (random
    weights) with the release's metadata."""
    path = user_dir() / f"{release.name}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    model = build_untrained(f"{release.family}-{release.variant}", release.scale).model
    meta = {"origin": "downloaded", "release": release.name}
    return save_checkpoint(
        path,
        model,
        family=release.family,
        variant=release.variant,
        scale=release.scale,
        metadata=meta,
    )


@pytest.fixture
def fake_downloads(monkeypatch) -> list[str]:
    """download_release replaced by fake_install; the names it was asked for, in order."""
    asked: list[str] = []

    def download(release, *, on_progress, should_stop, **_):
        asked.append(release.name)
        on_progress(0, release.size)
        path = fake_install(release)
        on_progress(release.size, release.size)
        return path

    monkeypatch.setattr(jobs, "download_release", download)
    return asked
