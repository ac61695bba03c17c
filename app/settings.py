"""What the app remembers between runs, as one typed dataclass stored with QSettings (INI format,
per user).

A settings file is input like any other: it may come from a newer version, be edited by hand or
be damaged. Every stored value goes through one validating reader (read_value: its type, range
or allowed choices); a bad one falls back to its default with one log line naming the key. The
chosen network must be one the engine knows, and weights files that are gone are dropped, so the
app always starts. reset_settings() (`srstudio --reset-settings`, View > Reset settings...)
forgets them all."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QByteArray, QSettings

from app.catalog import SCALES, decode_file_choice
from app.jobs import BICUBIC
from engine import BACKENDS, CLEANUP_MODES, DEFAULT_TEMPLATE, FAMILIES, PRECISIONS

log = logging.getLogger(__name__)

ORGANIZATION = "SRStudio"
APPLICATION = "SR Studio"
MAX_RECENT = 10
TILE_SIZES = (16, 4096)  # the tile side's range, in input pixels (the model panel's spin box)
QUALITIES = (1, 100)  # JPEG / WebP quality (the Upscale and Batch tabs' spin boxes)
TABS = 3  # Upscale/Compare, Batch, Train
TRUE_WORDS = ("true", "1", "yes")
FALSE_WORDS = ("false", "0", "no")


@dataclass
class AppSettings:
    # model panel
    family: str = "A2F"  # bundled in weights/; bicubic when those are missing
    variant: str = "SD"
    scale: int = 4
    weights_path: str = ""  # a weights file chosen with "Load weights..." ("" = library/bicubic)
    loaded_weights: list[str] = field(default_factory=list)
    tile_mode: str = "auto"  # "auto", "manual" or "whole"
    tile_size: int = 256
    ensemble: bool = False
    exact_tiles: bool = False  # two passes for image-wide pooling in every tile (A2F/RNAN/CRAN)
    device: str = "auto"
    precision: str = "fp32"
    backend: str = "torch"  # what runs the network on the CPU: auto, torch or openvino
    cleanup: str = "auto"  # the clean-up network before the upscaler: auto, on or off
    # upscale tab
    input_display: str = "nearest"  # how the input pane shows the LR image: "nearest" or "bicubic"
    view_mode: str = "side"  # "side" (side by side) or "wipe"
    auto_run: bool = True  # run the selected model as soon as an image is opened
    hold_long_runs: bool = True  # ...unless it is estimated to take over ~10 s: say so
    # the authors' releases the user said "Not now" to; offered again only when one not in
    # this list is missing (a newer or better download)
    declined_downloads: list[str] = field(default_factory=list)
    save_format: str = "png"
    quality: int = 95
    last_open_dir: str = ""
    last_save_dir: str = ""
    recent_files: list[str] = field(default_factory=list)
    # batch tab
    batch_output_dir: str = ""
    batch_format: str = "keep"  # "keep" or one of png, jpeg, webp, tiff
    batch_quality: int = 95
    batch_template: str = DEFAULT_TEMPLATE
    batch_skip_existing: bool = False
    batch_recursive: bool = False
    # window
    theme: str = "light"
    current_tab: int = 0
    geometry: bytes = b""
    window_state: bytes = b""

    def __post_init__(self) -> None:
        # Not fields, never stored: saved choices this machine or build cannot use now, held
        # while their defaults stand in (save_settings writes the saved value back unless the
        # user picked another), and what to say about them once.
        self.held: dict[str, tuple[Any, Any]] = {}  # field -> (saved, used instead)
        self.notes: list[str] = []

    def hold(self, name: str, used: Any, why: str = "") -> None:
        """Use `used` for field `name` this time, keeping its saved value; `why` said once."""
        saved = self.held.get(name, (getattr(self, name), None))[0]
        self.held[name] = (saved, used)
        setattr(self, name, used)
        if why:
            self.notes.append(why)

    def note(self) -> str:
        """The notes as one line for the info bar ("" when there are none)."""
        if not self.notes:
            return ""
        text = "; ".join(self.notes)
        kept = "It stays saved for when it applies"
        if len(self.notes) > 1:
            kept = "They stay saved for when they apply"
        return f"{text[0].upper()}{text[1:]}. {kept}."

    def add_recent(self, path: str) -> None:
        if not storable(path):  # Qt's strings cannot hold a name that is not valid UTF-8
            log.info("not kept in the recent files (its name is not valid UTF-8): %r", path)
            return
        self.recent_files = [path] + [p for p in self.recent_files if p != path]
        del self.recent_files[MAX_RECENT:]


def storable(text: str) -> bool:
    """Whether QSettings can keep `text` as it is: not a file name with bytes that are not
    UTF-8 (Python holds them as lone surrogates, which a QString drops)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def display_name(path: str | Path) -> str:
    """A file's name as a label can show it: bytes that are not UTF-8 become U+FFFD and control
    characters '?', where Qt would silently drop them or break the line."""
    name = os.fsencode(Path(path).name).decode("utf-8", "replace")
    return "".join("?" if ord(c) < 32 or ord(c) == 127 else c for c in name)


# The values a field may take, beyond its type: allowed choices, or an inclusive range.
CHOICES: dict[str, tuple[Any, ...]] = {
    "scale": SCALES,
    "tile_mode": ("auto", "manual", "whole"),
    "precision": PRECISIONS,
    "backend": BACKENDS,
    "cleanup": CLEANUP_MODES,
    "input_display": ("nearest", "bicubic"),
    "view_mode": ("side", "wipe"),
    "save_format": ("png", "jpeg", "webp", "tiff"),
    "batch_format": ("keep", "png", "jpeg", "webp", "tiff"),
    "theme": ("light", "dark"),
}
RANGES: dict[str, tuple[int, int]] = {
    "tile_size": TILE_SIZES,
    "quality": QUALITIES,
    "batch_quality": QUALITIES,
    "current_tab": (0, TABS - 1),
}


class BadSetting(ValueError):
    """A stored value that does not fit its field (the message says why)."""


class Store(Protocol):
    """What load_settings reads: a QSettings, or anything that answers the same two calls."""

    def contains(self, key: str) -> bool: ...

    def value(self, key: str) -> Any: ...


def qsettings() -> QSettings:
    return QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION
    )


def network_variants() -> dict[str, tuple[str, ...]]:
    """The networks a setting may name (the engine's registry, and bicubic): their variants."""
    return {BICUBIC: ("MATLAB",)} | {f.name: tuple(f.variants) for f in FAMILIES}


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise BadSetting("not true or false")


def _as_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise BadSetting("not a whole number")


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, QByteArray):
        return bytes(value.data())
    if isinstance(value, bytes):
        return value
    raise BadSetting("not binary data")


def _as_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    items = list(value) if isinstance(value, list | tuple) else [value]  # INI: one is a string
    if not all(isinstance(v, str) for v in items):
        raise BadSetting("not a list of text")
    return items


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise BadSetting("not text")
    return value


def _typed(value: Any, default: Any) -> Any:
    """`value` as the type of `default`; BadSetting where it is not one."""
    for kind, convert in ((bool, _as_bool), (int, _as_int), (bytes, _as_bytes), (list, _as_list)):
        if isinstance(default, kind):
            return convert(value)
    return _as_str(value)


def read_value(name: str, value: Any, default: Any) -> Any:
    """A stored value of field `name`, checked against its type, range and choices."""
    typed = _typed(value, default)
    if name in CHOICES and typed not in CHOICES[name]:
        raise BadSetting(f"not one of {', '.join(map(str, CHOICES[name]))}")
    low, high = RANGES.get(name, (None, None))
    if low is not None and not low <= typed <= high:
        raise BadSetting(f"not between {low} and {high}")
    if name == "recent_files":
        del typed[MAX_RECENT:]
    return typed


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _warn(name: str, value: Any, why: str, default: Any) -> None:
    shown = _shown(value), _shown(default)
    log.warning("setting %s=%s ignored (%s): using the default %s", name, shown[0], why, shown[1])


def _loaded_file_ok(text: str, networks: dict[str, tuple[str, ...]]) -> bool:
    choice = decode_file_choice(text)
    return choice is not None and choice.family in networks and Path(choice.path).is_file()


def _check_model(s: AppSettings, defaults: AppSettings) -> None:
    """The chosen network must be one the engine knows (a newer version's is dropped), its
    weights file still there; loaded weights files that are gone or unknown are dropped."""
    networks = network_variants()
    if s.family not in networks:
        _warn("family", s.family, "not a network this version knows", defaults.family)
    elif s.variant not in networks[s.family]:
        _warn("variant", s.variant, f"not a variant of {s.family}", defaults.variant)
    if s.variant not in networks.get(s.family, ()):
        name = f"{s.family}-{s.variant}"
        why = f"the model used last time ({_shown(name)}) is not one this version knows"
        s.hold("family", defaults.family, f"{why}: using {defaults.family}-{defaults.variant}")
        s.hold("variant", defaults.variant)
        if s.weights_path:
            s.hold("weights_path", "")
    if s.weights_path and not Path(s.weights_path).is_file():
        log.info("setting weights_path=%s: the file is gone", _shown(s.weights_path))
        gone = display_name(s.weights_path)
        s.hold("weights_path", "", f"the weights file used last time ({gone}) is not there")
    kept = [text for text in s.loaded_weights if _loaded_file_ok(text, networks)]
    if len(kept) < len(s.loaded_weights):
        dropped = len(s.loaded_weights) - len(kept)
        log.info("setting loaded_weights: %d gone or unknown weights file(s) left out", dropped)
        files = "file loaded before is" if dropped == 1 else "files loaded before are"
        s.hold("loaded_weights", kept, f"{dropped} weights {files} not there")


def load_settings(store: Store | None = None) -> AppSettings:
    """The stored settings; each missing or bad value is its default (a bad one logged)."""
    store = store if store is not None else qsettings()
    settings = AppSettings()
    for f in dataclasses.fields(settings):
        if not store.contains(f.name):
            continue
        default = getattr(settings, f.name)
        value = store.value(f.name)
        try:
            setattr(settings, f.name, read_value(f.name, value, default))
        except BadSetting as exc:
            _warn(f.name, value, str(exc), default)
    _check_model(settings, AppSettings())
    return settings


def save_settings(
    settings: AppSettings, store: QSettings | None = None, only: tuple[str, ...] = ()
) -> None:
    """Write the settings (`only` these fields when given: a choice remembered at once)."""
    store = store or qsettings()
    for f in dataclasses.fields(settings):
        if only and f.name not in only:
            continue
        value = getattr(settings, f.name)
        saved, used = settings.held.get(f.name, (None, None))
        if f.name in settings.held and value == used:  # not changed since: kept as saved
            value = saved
        if isinstance(value, bytes):
            value = QByteArray(value)
        elif isinstance(value, list):
            value = list(value)
        store.setValue(f.name, value)
    store.sync()


def reset_settings(store: QSettings | None = None) -> str:
    """Forget every stored setting (the defaults apply from now on); the settings file's path."""
    store = store or qsettings()
    store.clear()
    store.sync()
    log.info("settings reset to the defaults (%s)", store.fileName())
    return store.fileName()
