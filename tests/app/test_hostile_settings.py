"""A settings file is input: one from a newer version, edited by hand or damaged never keeps the
app from starting. Each bad value falls back to its default with one log line naming the key;
an unknown network or a weights file that is gone is dropped; `srstudio --reset-settings` and
View > Reset settings... forget them all."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from app.launcher import main
from app.main_window import MainWindow
from app.panels.model_panel import ModelPanel
from app.settings import (
    CHOICES,
    RANGES,
    AppSettings,
    load_settings,
    network_variants,
    qsettings,
    save_settings,
)

PROPERTY = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
FIELDS = [f.name for f in dataclasses.fields(AppSettings)]
DEFAULTS = AppSettings()
# what a damaged or foreign settings file may hold, for any key
HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.binary(max_size=16),
    st.lists(st.one_of(st.text(max_size=8), st.integers(), st.none()), max_size=4),
    st.sampled_from(["99999999999", "-1", "1e400", "nan", "FutureNet", "true", "", "4.5"]),
)


class DictStore(dict):
    """A settings store answering as QSettings does, with any Python value."""

    def contains(self, key: str) -> bool:
        return key in self

    def value(self, key: str) -> object:
        return self[key]


def write_ini(folder: Path, text: str) -> None:
    """A settings file as a person (or a newer version) may have written it."""
    path = Path(qsettings().fileName())
    assert path.is_relative_to(folder)  # the test's own folder (conftest: isolated_settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[General]\n" + text)


def warnings_naming(caplog, key: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "app.settings" and r.getMessage().startswith(f"setting {key}=")
    ]


def assert_valid(s: AppSettings) -> None:
    """Each field has its default's type and is one of its choices, within its range."""
    for name in FIELDS:
        value = getattr(s, name)
        assert type(value) is type(getattr(DEFAULTS, name)), (name, value)
        if name in CHOICES:
            assert value in CHOICES[name], (name, value)
        if name in RANGES:
            low, high = RANGES[name]
            assert low <= value <= high, (name, value)
    assert s.variant in network_variants()[s.family]
    assert all(isinstance(p, str) for p in s.recent_files + s.loaded_weights)


def weights_file(folder: Path) -> Path:
    path = folder / "mine.safetensors"
    path.write_bytes(b"not read: only its being there counts")
    return path


# ---------------------------------------------------------------- the whole window


WINDOW_CASES = {
    "tile_size": ("tile_size=99999999999\ntile_mode=manual\n", lambda w: w.upscale.panel.tile_size),
    "quality": ("quality=-5\nsave_format=jpeg\n", lambda w: w.upscale.output_box.quality),
    "batch_quality": ("batch_quality=1e9\n", lambda w: w.batch.quality),
    "current_tab": ("current_tab=99999999999999999999\n", None),
    "geometry": ("geometry=99999999999\n", None),
}


@pytest.mark.parametrize("key", WINDOW_CASES)
def test_a_bad_value_leaves_the_window_up_with_the_default(qtbot, isolated_settings, caplog, key):
    text, spin = WINDOW_CASES[key]
    write_ini(isolated_settings, text)
    caplog.set_level(logging.INFO)
    window = MainWindow(load_settings())
    qtbot.addWidget(window)
    window.show()
    assert window.isVisible()
    assert getattr(window.settings, key) == getattr(DEFAULTS, key)
    if spin is not None:
        assert spin(window).value() == getattr(DEFAULTS, key)
    said = warnings_naming(caplog, key)
    assert len(said) == 1 and "using the default" in said[0], said
    window.close()


def test_a_newer_versions_network_is_dropped(qtbot, isolated_settings, caplog, tmp_path):
    path = weights_file(tmp_path)
    write_ini(
        isolated_settings,
        f"family=FutureNet\nvariant=Z\nscale=3\nweights_path={path}\n"
        f"loaded_weights=FutureNet|Z|3|{path}\n",
    )
    caplog.set_level(logging.INFO)
    window = MainWindow(load_settings())
    qtbot.addWidget(window)
    window.show()
    panel = window.upscale.panel
    assert (window.settings.family, window.settings.variant) == ("A2F", "SD")
    assert window.settings.weights_path == "" and window.settings.loaded_weights == []
    assert panel.current().family != "FutureNet" and panel.current().scale == 3
    assert "FutureNet" not in panel.info.text()
    assert len(warnings_naming(caplog, "family")) == 1
    window.close()


# ---------------------------------------------------------------- the validating reader


@PROPERTY
@given(key=st.sampled_from(FIELDS), value=HOSTILE)
def test_any_value_of_any_key_reads_as_a_valid_setting(key, value):
    s = load_settings(DictStore({key: value}))
    assert_valid(s)
    changed = [n for n in FIELDS if getattr(s, n) != getattr(DEFAULTS, n)]
    assert set(changed) <= {key, "variant"}  # one bad value spoils nothing else


def test_hostile_values_never_stop_the_model_panel(qtbot):
    panel = ModelPanel()
    qtbot.addWidget(panel)

    @PROPERTY
    @given(values=st.dictionaries(st.sampled_from(FIELDS), HOSTILE, max_size=8))
    def check(values):
        s = load_settings(DictStore(values))
        assert_valid(s)
        panel.restore(s)
        assert panel.tile_size.value() == s.tile_size
        assert panel.tile_mode.currentData() == s.tile_mode

    check()


def test_each_bad_value_is_one_log_line_naming_its_key(caplog):
    bad = {"tile_size": "99999999999", "theme": "purple", "auto_run": "banana", "scale": 8}
    caplog.set_level(logging.INFO)
    s = load_settings(DictStore(bad | {"ensemble": "true", "quality": "80"}))
    assert (s.tile_size, s.theme, s.auto_run, s.scale) == (256, "light", True, 4)
    assert s.ensemble is True and s.quality == 80  # good values are kept
    for key in bad:
        assert len(warnings_naming(caplog, key)) == 1, key
    assert len([r for r in caplog.records if r.name == "app.settings"]) == len(bad)


def test_weights_files_that_are_gone_or_unknown_are_dropped(tmp_path):
    path = weights_file(tmp_path)
    gone = tmp_path / "gone.safetensors"
    loaded = [f"FutureNet|Z|4|{path}", f"A2F|SD|2|{gone}", f"A2F|SD|2|{path}", "garbage"]
    s = load_settings(DictStore({"weights_path": str(gone), "loaded_weights": loaded}))
    assert s.weights_path == ""
    assert s.loaded_weights == [f"A2F|SD|2|{path}"]
    kept = load_settings(DictStore({"weights_path": str(path), "family": "A2F"}))
    assert kept.weights_path == str(path)


def test_a_variant_the_family_lacks_falls_back_with_the_family():
    s = load_settings(DictStore({"family": "HPINet", "variant": "SD", "scale": "2"}))
    assert (s.family, s.variant, s.scale) == ("A2F", "SD", 2)
    s = load_settings(DictStore({"family": "HPINet", "variant": "M"}))
    assert (s.family, s.variant) == ("HPINet", "M")


PATH_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20
).filter(lambda t: t.strip() == t)


@st.composite
def valid_settings(draw) -> AppSettings:
    family = draw(st.sampled_from(sorted(network_variants())))
    changes = {name: draw(st.sampled_from(choices)) for name, choices in CHOICES.items()}
    changes |= {name: draw(st.integers(*bounds)) for name, bounds in RANGES.items()}
    return dataclasses.replace(
        DEFAULTS,
        **changes,
        family=family,
        variant=draw(st.sampled_from(network_variants()[family])),
        ensemble=draw(st.booleans()),
        last_open_dir=draw(PATH_TEXT),
        recent_files=draw(st.lists(PATH_TEXT, max_size=3)),
        geometry=draw(st.binary(max_size=8)),
    )


def test_valid_settings_survive_the_settings_file_beside_a_bad_one(tmp_path):
    store = QSettings(str(tmp_path / "round-trip.ini"), QSettings.Format.IniFormat)

    @PROPERTY
    @given(valid_settings(), st.sampled_from(sorted(RANGES)))
    def check(s, bad):
        store.clear()
        save_settings(s, store)
        store.setValue(bad, 99999999999)
        store.sync()
        back = load_settings(QSettings(store.fileName(), QSettings.Format.IniFormat))
        assert back == dataclasses.replace(s, **{bad: getattr(DEFAULTS, bad)})

    check()


# ---------------------------------------------------------------- reset


def test_reset_settings_in_the_menu_restores_the_defaults(qtbot, window, monkeypatch):
    panel = window.upscale.panel
    panel.tile_mode.setCurrentIndex(panel.tile_mode.findData("manual"))
    panel.tile_size.setValue(96)
    window.batch.template.setText("{stem}-mine.{ext}")
    window.auto_run_action.setChecked(False)
    window.settings.add_recent("/photos/a.png")
    window.store_settings()
    assert qsettings().allKeys()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    window.reset_action.trigger()
    assert panel.tile_size.value() == 96 and qsettings().allKeys()  # "No": nothing forgotten
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.reset_action.trigger()
    assert window.settings == AppSettings()
    assert qsettings().allKeys() == []
    assert panel.tile_mode.currentData() == "auto" and panel.tile_size.value() == 256
    assert window.batch.template.text() == DEFAULTS.batch_template
    assert window.auto_run_action.isChecked() and not window.recent_menu.isEnabled()
    assert panel.current().family in (DEFAULTS.family, "Bicubic")


def test_srstudio_reset_settings_forgets_them_and_says_so(capsys):
    save_settings(AppSettings(tile_size=96, theme="dark"))
    assert main(["--reset-settings"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "back to the defaults" in out
    assert qsettings().allKeys() == [] and load_settings() == AppSettings()
    assert main(["--reset-settings", "photo.png"]) == 2
    assert "takes no other arguments" in capsys.readouterr().err


def test_srstudio_help_lists_reset_settings(capsys):
    assert main(["--help"]) == 0
    assert "--reset-settings" in capsys.readouterr().out
