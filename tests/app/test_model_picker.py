"""The model picker in plain words (issue 14, item 1): one list of what is installed or one
download away, each row with what it is good for, a quality bar whose exact Set5 figures are in
the tooltip, an estimated time for the image and where it comes from; choosing a release offers
to download it. And the offer of the authors' weights at the top of the Upscale tab."""

from __future__ import annotations

import threading

from PySide6.QtCore import Qt

from app import jobs
from app.jobs import ModelChoice, bicubic_choice
from app.main_window import MainWindow
from app.settings import AppSettings, load_settings
from engine import (
    RELEASES,
    Release,
    build_untrained,
    format_size,
    get_family,
    recommended_releases,
    save_checkpoint,
    user_dir,
)
from tests.app.conftest import fake_install, write_png


def _release(name: str) -> Release:
    return next(r for r in RELEASES if r.name == name)


def _rows(picker) -> dict[str, object]:
    return {e.key: e for e in picker.entries()}


def test_the_list_shows_installed_and_downloadable_networks_in_plain_words(bundled_weights, window):
    picker = window.upscale.panel.selector
    assert picker.current() == ModelChoice("A2F", "SD", 4)
    rows = _rows(picker)
    bundled = rows["A2F-SD x4"]
    release = rows["release:A2F-SD-x4"]
    bicubic = rows["Bicubic x4"]
    # every bundled network, bicubic, and every x4 release not installed
    assert {"RNAN-tiny x4", "CRAN-tiny x4", "HPINet-T x4"} <= set(rows)
    assert {k for k in rows if k.startswith("release:")} == {
        f"release:{r.name}" for r in RELEASES if r.scale == 4
    }
    assert all(e.choice.scale == 4 for e in picker.entries())
    # origin
    assert bundled.origin_text == "bundled"
    assert release.origin_text == f"download ({format_size(_release('A2F-SD-x4').size)})"
    assert release.origin_text == "download (1.2 MB)"
    assert bicubic.origin_text == "built in"
    # what it is good for: the variant's own line, shown and in the tooltip
    assert bundled.summary == get_family("A2F").summary_of("SD") != ""
    assert rows["HPINet-T x4"].summary == get_family("HPINet").summary_of("T") != bundled.summary
    assert rows["release:HPINet-M-x4"].summary == get_family("HPINet").summary_of("M")
    assert rows["release:HPINet-M-x4"].summary != rows["HPINet-T x4"].summary
    assert bundled.summary in bundled.tooltip()
    # quality: the bar follows the figures, which the tooltip gives exactly
    assert "Set5 PSNR 31.34 dB, SSIM 0.8826" in bundled.tooltip()  # measured on the bundled file
    assert "measured by SR Studio" in bundled.tooltip()
    assert "Set5 PSNR 32.06 dB, SSIM 0.8928" in release.tooltip()  # the paper's figure
    assert "Set5 PSNR 28.42 dB" in bicubic.tooltip()
    assert release.fraction > bundled.fraction > bicubic.fraction == 0.0
    # the precise terms are in the tooltip
    assert "Network A2F, variant SD, x4" in bundled.tooltip()
    assert "Parameters: 319,672" in bundled.tooltip()
    # the current model's row is the one highlighted; the rows paint
    assert picker.selected_entry().key == "A2F-SD x4"
    assert not picker.list.grab().isNull()


def test_imported_and_trained_weights_say_so_and_are_not_rated(window, qtbot):
    folder = user_dir()
    folder.mkdir(parents=True)
    net = build_untrained("RNAN-light", 2).model
    save_checkpoint(folder / "mine.safetensors", net, family="RNAN", variant="light", scale=2)
    trained = folder / "trained" / "run.safetensors"
    trained.parent.mkdir()
    save_checkpoint(
        trained,
        build_untrained("A2F-SD", 2).model,
        family="A2F",
        variant="SD",
        scale=2,
        metadata={"origin": "trained", "psnr": 30.0},
    )
    panel = window.upscale.panel
    assert panel.refresh(select=ModelChoice("RNAN", "light", 2))
    rows = _rows(panel.selector)
    imported = rows["RNAN-light x2"]
    mine = rows[ModelChoice("A2F", "SD", 2, str(trained)).label]
    assert imported.origin_text == "imported" and mine.origin_text == "trained by you"
    assert imported.fraction is None and mine.fraction is None
    assert "not measured on Set5" in imported.tooltip()
    assert mine.title == "A2F-SD (run.safetensors)"


def test_times_are_estimated_for_the_open_image_off_the_gui_thread(
    window, qtbot, tmp_path, monkeypatch
):
    threads: set[str] = set()
    real = jobs.estimate_seconds

    def recorded(upscaler, h, w, **kw):
        threads.add(threading.current_thread().name)
        return real(upscaler, h, w, **kw)

    monkeypatch.setattr(jobs, "estimate_seconds", recorded)
    tab = window.upscale
    tab.settings.auto_run = False
    picker = tab.panel.selector
    model = picker.model

    def all_estimated() -> bool:
        return all(model.seconds.get(e.key) != "pending" for e in model.entries)

    qtbot.waitUntil(all_estimated, timeout=120_000)
    assert model.per_megapixel  # no image: per megapixel
    tab.open_path(write_png(tmp_path / "photo.png", 48, 64, seed=3))
    qtbot.waitUntil(lambda: tab.input is not None, timeout=10_000)
    assert model.size_words == "this image (64x48)"
    qtbot.waitUntil(all_estimated, timeout=120_000)
    assert not model.per_megapixel
    for entry in model.entries:
        seconds = model.seconds[entry.key]
        assert isinstance(seconds, float) and seconds >= 0, entry.key
        row = model.index(model.row_of(entry.key))
        assert row.data(Qt.ItemDataRole.ToolTipRole).endswith(
            "(reading and saving the image not counted)"
        )
    # the self-ensemble takes 8 passes: the times are redone
    tab.panel.ensemble.setChecked(True)
    assert model.seconds[model.entries[0].key] == "pending"
    qtbot.waitUntil(all_estimated, timeout=120_000)
    assert "with extra quality" in model.device_words
    assert threads and threading.main_thread().name not in threads


def test_choosing_a_release_offers_it_and_downloads_it(window, qtbot, fake_downloads):
    panel = window.upscale.panel
    picker = panel.selector
    assert picker.current() == bicubic_choice(4)  # nothing installed here
    assert picker.choose("release:HPINet-M-x4")
    assert picker.current() == bicubic_choice(4)  # not chosen before it is installed
    assert picker.strip.isVisibleTo(window)
    assert "Get the authors' HPINet-M x4 weights" in picker.strip.label.text()
    assert format_size(_release("HPINet-M-x4").size) in picker.strip.label.text()
    assert fake_downloads == []
    qtbot.mouseClick(picker.strip.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.downloads.busy, timeout=60_000)
    qtbot.wait(20)
    assert fake_downloads == ["HPINet-M-x4"]
    assert panel.current() == ModelChoice("HPINet", "M", 4)
    row = picker.selected_entry()
    assert row.key == "HPINet-M x4" and row.origin_text == "authors' weights"
    assert "release:HPINet-M-x4" not in _rows(picker)
    assert not picker.strip.isVisibleTo(window)
    assert "Weights: downloaded, HPINet-M-x4.safetensors" in panel.info.text()


def test_not_now_on_a_release_keeps_the_current_model(window, qtbot, fake_downloads):
    picker = window.upscale.panel.selector
    assert picker.choose("release:A2F-M-x4")
    qtbot.mouseClick(picker.strip.dismiss_button, Qt.MouseButton.LeftButton)
    assert not picker.strip.isVisibleTo(window) and fake_downloads == []
    assert picker.selected_entry().key == picker.current().label == "Bicubic x4"


def _offer_text() -> str:
    missing = recommended_releases()
    return f"({format_size(sum(r.size for r in missing))})"


def test_the_offer_shows_on_a_fresh_profile_and_not_now_is_remembered(qtbot):
    first = MainWindow(load_settings())
    qtbot.addWidget(first)
    first.show()
    banner = first.upscale.banner
    assert banner.isVisible()
    text = banner.label.text()
    assert text.startswith("Get the authors' weights for A2F and HPINet")
    assert _offer_text() in text and "(13.9 MB)" in text
    qtbot.mouseClick(banner.later_button, Qt.MouseButton.LeftButton)
    assert not banner.isVisible()
    names = sorted(r.name for r in recommended_releases())
    assert load_settings().declined_downloads == names  # in the settings file at once
    first.close()

    again = MainWindow(load_settings())
    qtbot.addWidget(again)
    again.show()
    assert not again.upscale.banner.isVisible()
    again.close()

    # A missing release that was not declined (a newer or better one) brings it back.
    settings = load_settings()
    settings.declined_downloads = names[1:]
    later = MainWindow(settings)
    qtbot.addWidget(later)
    later.show()
    assert later.upscale.banner.isVisible()
    later.close()


def test_the_offer_is_hidden_when_the_authors_weights_are_installed(qtbot):
    for release in recommended_releases():
        fake_install(release)
    win = MainWindow(AppSettings())
    qtbot.addWidget(win)
    win.show()
    assert not win.upscale.banner.isVisible()
    assert win.upscale.offer.missing == []
    win.close()


def test_download_in_the_offer_installs_them_all_and_hides_it(window, qtbot, fake_downloads):
    banner = window.upscale.banner
    panel = window.upscale.panel
    assert banner.isVisible()
    qtbot.mouseClick(banner.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.downloads.busy, timeout=120_000)
    qtbot.wait(20)
    assert fake_downloads == [r.name for r in recommended_releases()]
    assert not banner.isVisible()
    # listed, not selected one after the other
    assert panel.current() == bicubic_choice(4)
    rows = _rows(panel.selector)
    assert rows["A2F-SD x4"].origin_text == "authors' weights"
    assert rows["HPINet-M x4"].origin_text == "authors' weights"
