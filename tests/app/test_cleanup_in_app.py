"""The clean-up stage in the Upscale tab (issue 31): the input's JPEG quality and noise beside its
size as soon as they are measured, and a comparison of each model with and without the clean-up
in panes side by side."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from app.jobs import CLEANUP_SUFFIX, ModelChoice
from engine.inference import cleanup_choice
from tests.app.conftest import write_png
from tests.app.test_upscale_tab import select, wait_idle


def _picture(path: Path, sigma: float, **options: object) -> Path:
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:48, 0:56].astype(np.float64)
    base = np.stack([120 + 60 * np.sin(x / 9.0 + c) * np.cos(y / 11.0) for c in range(3)], -1)
    pixels = np.clip(base + rng.normal(0, sigma, base.shape), 0, 255).round().astype(np.uint8)
    Image.fromarray(pixels).save(path, **options)
    return path


def _noisy_jpeg(path: Path, quality: int) -> Path:
    return _picture(path, 12, quality=quality, subsampling=0)


def _input_info(tab) -> list[str]:
    return tab.canvas.contents["input"].info


def test_the_input_pane_says_quality_and_noise_once_measured(qtbot, window, tmp_path):
    tab = window.upscale
    window.settings.auto_run = False
    tab.open_path(_noisy_jpeg(tmp_path / "web.jpg", 95))
    qtbot.waitUntil(lambda: tab.doc.source_quality is not None, timeout=10_000)
    info = " | ".join(_input_info(tab))
    assert "JPEG, saved at quality 95" in info
    assert "noisy (about sigma 1" in info  # 12 added: read as 10-14

    hint = tab.panel.cleanup_hint
    assert hint.text().startswith("For this image: clean-up on: a noisy image")
    assert not hint.isHidden()
    tab.panel.cleanup.setCurrentIndex(tab.panel.cleanup.findData("off"))
    assert hint.isHidden()
    tab.panel.cleanup.setCurrentIndex(tab.panel.cleanup.findData("auto"))
    assert not hint.isHidden()

    tab.open_path(_picture(tmp_path / "clean.png", 0))
    qtbot.waitUntil(lambda: tab.source_name == "clean.png", timeout=10_000)
    assert tab.doc.source_quality is None or tab.doc.source_quality.format == "PNG"
    qtbot.waitUntil(lambda: tab.doc.source_quality is not None, timeout=10_000)
    assert any(line.startswith("PNG; ") for line in _input_info(tab))
    assert hint.text().startswith("For this image: clean-up off: a clean image"), hint.text()


def test_a_late_measurement_of_an_earlier_image_is_dropped(qtbot, window, tmp_path):
    tab = window.upscale
    window.settings.auto_run = False
    tab.open_path(_noisy_jpeg(tmp_path / "first.jpg", 60))
    qtbot.waitUntil(lambda: tab.doc.source_quality is not None, timeout=10_000)
    first_image, first_quality = tab.doc.source, tab.doc.source_quality
    tab.open_path(write_png(tmp_path / "second.png", 32, 32))
    qtbot.waitUntil(lambda: tab.source_name == "second.png", timeout=10_000)
    assert not tab.doc.set_quality(first_image, first_quality)
    assert tab.doc.source_quality is None or tab.doc.source_quality.format == "PNG"


def test_compare_puts_clean_up_off_and_on_side_by_side(
    bundled_weights, qtbot, window, tmp_path, monkeypatch
):
    tab = window.upscale
    window.settings.auto_run = False
    network = ModelChoice("A2F", "SD", 4)
    qtbot.waitUntil(lambda: network in tab.panel.selector.choices, timeout=10_000)
    select(tab, network)
    tab.open_path(_noisy_jpeg(tmp_path / "web.jpg", 60))
    qtbot.waitUntil(lambda: tab.doc.source_quality is not None, timeout=10_000)
    measured: list[object] = []  # the tab's measurement serves the run: none made again
    monkeypatch.setattr(cleanup_choice, "measure_input", measured.append)
    tab.compare([network], both_cleanups=True)
    wait_idle(qtbot, tab, 2, timeout=60_000)
    plain, cleaned = network.label, network.label + CLEANUP_SUFFIX
    assert list(tab.results) == [plain, cleaned]
    assert not tab.results[plain].cleaned and tab.results[cleaned].cleaned
    assert tab.results[cleaned].cleanup == "clean-up on"
    assert not np.array_equal(tab.results[plain].pixels, tab.results[cleaned].pixels)
    outputs = [k for k, c in tab.canvas.contents.items() if c.kind == "output"]
    assert outputs == [plain, cleaned]
    assert [tab.table.item(r, 0).text() for r in range(2)] == [
        "A2F-SD x4",
        "A2F-SD x4" + CLEANUP_SUFFIX,
    ]
    assert tab.panel.cleanup.currentData() == "auto"
    tab.run()  # auto decides on the tab's measurement
    qtbot.waitUntil(lambda: not tab.busy and not tab.side_tasks, timeout=60_000)
    assert tab.results[cleaned].cleanup.startswith("clean-up on: JPEG quality 60")
    assert measured == []
