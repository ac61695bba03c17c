"""Where weights live: bundled with the project (weights/), and the user's data directory
(downloaded releases and imported files). A .pt/.pth file there is described by a sidecar JSON
file of the same stem; safetensors files carry their own metadata.

A file the library cannot use (a damaged header, metadata of the wrong JSON type, a sidecar that is
not an object...) is skipped and reported by broken_weights() with the reason, so that one bad
file never hides the others. Scanning reads headers and sidecars only; the tensors themselves are
checked when a file is loaded (engine.weights_file)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import platformdirs

from engine.archs import registry
from engine.errors import CheckpointError
from engine.quality import expected_set5
from engine.weights_file import check_metadata, inspect_weights_file

ORIGIN_RANK = {"downloaded": 0, "imported": 1, "bundled": 2}


@dataclass(frozen=True)
class WeightsEntry:
    family: str
    variant: str
    scale: int
    path: Path
    origin: str  # "bundled", "downloaded" or "imported"
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def name(self) -> str:
        return f"{self.family}-{self.variant}"

    @property
    def files(self) -> list[Path]:
        """The files that make up this entry: the weights and, for a .pt/.pth, its sidecar."""
        sidecar = self.path.with_suffix(".json")
        return [self.path] + ([sidecar] if self.path.suffix != ".safetensors" else [])

    @property
    def removable(self) -> bool:
        """The user's own (downloaded, imported, trained): under the user's data directory.
        What ships in weights/ stays."""
        return self.path.resolve().is_relative_to(user_dir().resolve())


def bundled_dir() -> Path:
    base = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parents[1]))
    return base / "weights"


def user_dir() -> Path:
    root = os.environ.get("SRSTUDIO_DATA_DIR")
    base = Path(root) if root else platformdirs.user_data_path("srstudio", appauthor=False)
    return base / "weights"


class BrokenWeights(NamedTuple):
    """A weights file the library skipped, and why (one line that names the file)."""

    path: Path
    reason: str


class WeightsScan(NamedTuple):
    entries: list[WeightsEntry]
    broken: list[BrokenWeights]


_REQUIRED = ("family", "variant", "scale")


def _sidecar_meta(path: Path) -> dict[str, Any] | None:
    """A .pt/.pth file's sidecar JSON, checked; None when it has none (e.g. a training's resume
    state), which makes it no entry and no error."""
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        return None
    inspect_weights_file(path)
    what = f"its sidecar {sidecar.name}"
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CheckpointError(f"{path.name}: {what} cannot be read ({exc.strerror})") from None
    except (ValueError, RecursionError):
        raise CheckpointError(f"{path.name}: {what} is not valid JSON") from None
    return check_metadata(meta, path.name, what)


def _read_meta(path: Path) -> dict[str, Any] | None:
    """The metadata of one weights file: None for a file that is no entry, CheckpointError for one
    that is broken."""
    if path.suffix != ".safetensors":
        meta = _sidecar_meta(path)
    else:
        meta = inspect_weights_file(path)
        if not meta:
            raise CheckpointError(
                f"{path.name} has no SR Studio metadata (family, variant, scale); install it "
                "with `srstudio models import`"
            )
    if meta is None:
        return None
    missing = [key for key in _REQUIRED if key not in meta]
    if missing:
        raise CheckpointError(f"{path.name}: its metadata lacks {', '.join(missing)}")
    try:
        registry.get_family(meta["family"])
    except ValueError as exc:
        raise CheckpointError(f"{path.name}: {exc}") from None
    return meta


def _scan(folder: Path, default_origin: str, *, forced: bool = False) -> WeightsScan:
    """Weights files under `folder`; their origin is the one their metadata names (downloaded,
    trained...) unless `forced` (what ships in weights/ is bundled, whoever trained it)."""
    found = WeightsScan([], [])
    if not folder.is_dir():
        return found
    for path in sorted(folder.rglob("*")):
        if path.suffix not in (".safetensors", ".pt", ".pth") or not path.is_file():
            continue
        try:
            meta = _read_meta(path)
        except CheckpointError as exc:
            found.broken.append(BrokenWeights(path, str(exc)))
            continue
        if meta is None:
            continue
        origin = default_origin if forced else meta.get("origin", default_origin)
        entry = WeightsEntry(meta["family"], meta["variant"], meta["scale"], path, origin, meta)
        found.entries.append(entry)
    return found


def _scan_all() -> WeightsScan:
    user, bundled = _scan(user_dir(), "imported"), _scan(bundled_dir(), "bundled", forced=True)
    return WeightsScan(user.entries + bundled.entries, user.broken + bundled.broken)


def scan_weights() -> WeightsScan:
    """Every installed upscaler's weights file: the usable ones (entries) and the skipped ones
    (broken). The clean-up network's files are no upscaler (cleanup_weights()), and neither are
    files trained to run behind it (behind_cleanup())."""
    found = _scan_all()
    upscalers = {f.name.lower() for f in registry.FAMILIES}
    usable = [e for e in found.entries if e.family.lower() in upscalers and not _behind(e)]
    return WeightsScan(usable, found.broken)


def _behind(entry: WeightsEntry) -> dict[str, Any] | None:
    """What `srstudio train --behind-cleanup` recorded of the clean-up network the file was
    trained behind (metadata data.behind), else None."""
    data = entry.metadata.get("data")
    behind = data.get("behind") if isinstance(data, dict) else None
    return behind if isinstance(behind, dict) else None


def file_sha256(path: Path) -> str:
    st = Path(path).stat()
    return _file_sha256(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def behind_cleanup(upscaler_file: Path, cleanup_file: Path) -> WeightsEntry | None:
    """The installed weights trained further from `upscaler_file` to run behind `cleanup_file`
    (the clean-up runs them in its place: weights/README.md, "Behind the clean-up"); files are
    matched by their sha256, so a changed base or clean-up network matches none. The user's own
    file over a bundled one."""
    try:
        wanted = (file_sha256(upscaler_file), file_sha256(cleanup_file))
    except OSError:
        return None
    found = []
    for entry in _scan_all().entries:
        behind, base = _behind(entry), entry.metadata.get("base_weights")
        if behind is None or not isinstance(base, dict):
            continue
        if (base.get("sha256"), behind.get("sha256")) == wanted:
            found.append(entry)
    return min(found, key=lambda e: ORIGIN_RANK.get(e.origin, 9), default=None)


def cleanup_weights() -> WeightsEntry | None:
    """The installed clean-up network (engine.archs.cleanup) to run before upscalers: the user's
    own file over the bundled one."""
    restorers = {f.name.lower() for f in registry.RESTORERS}
    found = [e for e in _scan_all().entries if e.family.lower() in restorers and e.scale == 1]
    return min(found, key=lambda e: ORIGIN_RANK.get(e.origin, 9), default=None)


def installed_weights() -> list[WeightsEntry]:
    return scan_weights().entries


def broken_weights() -> list[BrokenWeights]:
    """The weights files installed_weights() skipped, each with the reason."""
    return scan_weights().broken


def best_weights(family: str, variant: str, scale: int) -> WeightsEntry | None:
    """Downloaded release over imported over bundled."""
    matches = [
        e
        for e in installed_weights()
        if (e.family.lower(), e.variant.lower(), e.scale)
        == (family.lower(), variant.lower(), scale)
    ]
    return min(matches, key=lambda e: ORIGIN_RANK.get(e.origin, 9), default=None)


def _expected_quality(entry: WeightsEntry) -> float:
    """What to compare weights of one origin by: their expected Set5 PSNR (engine.quality: the
    paper's figure for the authors' releases, the project's measurement for the bundled files),
    the figure the app's model picker sorts by too; else, for a file trained here, the PSNR its
    run measured on its held-out images (those compare among such files only)."""
    figure = expected_set5(entry.family, entry.variant, entry.scale, entry.origin, entry.metadata)
    if figure is not None:
        return figure.psnr
    psnr = entry.metadata.get("psnr")
    return float(psnr) if isinstance(psnr, (int, float)) and not isinstance(psnr, bool) else 0.0


def recommended_weights(scale: int, family: str | None = None) -> WeightsEntry | None:
    """The best installed weights at `scale` (of `family` when given): the authors' downloaded
    releases first, then imported or trained files, then the bundled ones; within each, the
    highest expected quality (_expected_quality)."""
    matches = [
        e
        for e in installed_weights()
        if e.scale == scale and (family is None or e.family.lower() == family.lower())
    ]
    return min(
        matches,
        key=lambda e: (ORIGIN_RANK.get(e.origin, 9), -_expected_quality(e), e.name),
        default=None,
    )
