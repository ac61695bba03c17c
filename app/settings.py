"""What the app remembers between runs, as one typed dataclass stored with QSettings (INI format,
per user). Unknown or malformed stored values fall back to the defaults."""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from engine import DEFAULT_TEMPLATE

ORGANIZATION = "SRStudio"
APPLICATION = "SR Studio"
MAX_RECENT = 10


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

    def add_recent(self, path: str) -> None:
        self.recent_files = [path] + [p for p in self.recent_files if p != path]
        del self.recent_files[MAX_RECENT:]


def qsettings() -> QSettings:
    return QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION
    )


def _convert(value: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if isinstance(value, str):
            return value.lower() in ("1", "true", "yes")
        return bool(value)
    if isinstance(default, int):
        return int(value)
    if isinstance(default, bytes):
        return bytes(value.data()) if isinstance(value, QByteArray) else bytes(value)
    if isinstance(default, list):
        if value in (None, ""):
            return []
        return [str(v) for v in (value if isinstance(value, list | tuple) else [value])]
    return str(value)


def load_settings(store: QSettings | None = None) -> AppSettings:
    store = store or qsettings()
    settings = AppSettings()
    for f in dataclasses.fields(settings):
        if not store.contains(f.name):
            continue
        default = getattr(settings, f.name)
        with contextlib.suppress(TypeError, ValueError):  # keep the default for a bad value
            setattr(settings, f.name, _convert(store.value(f.name), default))
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
        if isinstance(value, bytes):
            value = QByteArray(value)
        elif isinstance(value, list):
            value = list(value)
        store.setValue(f.name, value)
    store.sync()
