"""Installing weights into the user data directory: the authors' releases (downloaded, resumable,
sha256-checked) and local files (imported). Nothing is installed unless it is verified and
recognised; every file appears in place by a rename, so a reader never sees half a file."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError

from engine import library
from engine.atomic import atomic_open, atomic_path
from engine.checkpoints import load_file_model, save_checkpoint
from engine.errors import (
    Cancelled,
    CheckpointError,
    ProgressFn,
    SRStudioError,
    StopFn,
    never_stop,
    no_progress,
)
from engine.library import WeightsEntry
from engine.releases import Release, by_sha256

MIRROR_ENV = "SRSTUDIO_RELEASES_URL"
CHUNK = 64 * 1024


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    _hash_into(h, path)
    return h.hexdigest()


def _hash_into(h: Any, path: Path) -> None:
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)


def release_url(release: Release, base_url: str | None = None) -> str:
    """The authors' URL, or the same file on a mirror (base_url, else $SRSTUDIO_RELEASES_URL)."""
    base = base_url or os.environ.get(MIRROR_ENV)
    return release.mirror_url(base) if base else release.url


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    with atomic_open(path, "w") as f:
        json.dump(data, f, indent=2)


def _copy_atomic(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _unreachable(release: Release, url: str, reason: object) -> SRStudioError:
    return SRStudioError(
        f"cannot download {release.name}: {url} could not be reached ({reason}). Check the "
        f"internet connection (or set {MIRROR_ENV} to a mirror), or get the file another way "
        "and install it with `srstudio models import PATH`."
    )


def _open(release: Release, url: str, offset: int, timeout: float) -> Any:
    """The HTTP response from `offset` on, or None when the server refuses that range (416)."""
    headers = {"User-Agent": "srstudio", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            return None
        raise SRStudioError(
            f"cannot download {release.name}: {url} answered HTTP {exc.code} {exc.reason}"
        ) from None
    except (URLError, OSError, http.client.HTTPException) as exc:
        raise _unreachable(release, url, getattr(exc, "reason", exc)) from None


def _resumes_at(response: Any) -> int:
    """Where the body starts in the file: 0 for a whole-file 200, the range start for a 206."""
    if response.status != 206:
        return 0
    match = re.match(r"bytes\s+(\d+)-", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else -1


def _fetch(
    release: Release,
    url: str,
    part: Path,
    on_progress: ProgressFn,
    should_stop: StopFn,
    timeout: float,
) -> str:
    """Download into `part`, continuing what an earlier attempt left; the whole file's sha256."""
    offset = part.stat().st_size if part.is_file() else 0
    if release.size is not None and offset > release.size:
        offset = 0
    if offset and offset == release.size:  # complete already: a previous run stopped before install
        on_progress(offset, offset)
        return sha256_file(part)
    response = _open(release, url, offset, timeout)
    start = _resumes_at(response) if response is not None else -1
    if start not in (0, offset):  # range refused or answered for another offset: start over
        if response is not None:
            response.close()
        response, start = _open(release, url, 0, timeout), 0

    h = hashlib.sha256()
    if start:
        _hash_into(h, part)
    length_header = response.headers.get("Content-Length", "")
    length = int(length_header) if length_header.isdigit() else None
    total = start + length if length is not None else (release.size or 0)
    done = start
    with response, open(part, "ab" if start else "wb") as f:
        on_progress(done, total)
        while True:
            if should_stop():
                raise Cancelled(
                    f"download of {release.name} cancelled; {done:,} bytes kept to resume from"
                )
            try:
                chunk = response.read(CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                raise _interrupted(release, url, done, total, exc) from None
            if not chunk:
                break
            f.write(chunk)
            h.update(chunk)
            done += len(chunk)
            if release.size is not None and done > release.size:
                f.close()
                part.unlink(missing_ok=True)
                raise SRStudioError(
                    f"{url} sent more than the {release.size:,} bytes of {release.name}; "
                    "not installed"
                )
            on_progress(done, total)
        f.flush()
        os.fsync(f.fileno())
    if length is not None and done < total:  # http.client returns b"" when the peer hangs up
        raise _interrupted(release, url, done, total, "connection closed")
    return h.hexdigest()


def _interrupted(release: Release, url: str, done: int, total: int, reason: object) -> Exception:
    return SRStudioError(
        f"download of {release.name} from {url} was interrupted after {done:,} of {total:,} "
        f"bytes ({reason}); run it again to resume"
    )


def download_release(
    release: Release,
    *,
    dest_dir: str | Path | None = None,
    base_url: str | None = None,
    on_progress: ProgressFn = no_progress,
    should_stop: StopFn = never_stop,
    timeout: float = 30.0,
) -> Path:
    """Download, verify and install one release; the installed file's path.

    Bytes go to `<file>.part`, which a later call continues with an HTTP Range request. A file
    whose sha256 differs from the published one is deleted and nothing is installed."""
    folder = Path(dest_dir) if dest_dir is not None else library.user_dir()
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / release.filename
    sidecar = final.with_suffix(".json")
    url = release_url(release, base_url)
    if final.is_file() and sha256_file(final) == release.sha256:
        if not sidecar.is_file():
            _write_json_atomic(sidecar, _release_meta(release, url))
        on_progress(final.stat().st_size, final.stat().st_size)
        return final

    part = final.with_name(final.name + ".part")
    digest = _fetch(release, url, part, on_progress, should_stop, timeout)
    if digest != release.sha256:
        part.unlink(missing_ok=True)
        raise SRStudioError(
            f"{release.name} from {url} is corrupt: sha256 {digest}, expected {release.sha256}; "
            "not installed"
        )
    try:
        desc = load_file_model(part)
        if (desc.family, desc.variant, desc.scale) != (
            release.family,
            release.variant,
            release.scale,
        ):
            raise CheckpointError(f"it holds {desc.label}")
    except CheckpointError as exc:
        part.unlink(missing_ok=True)
        raise CheckpointError(
            f"{release.name}: the download has the published sha256 but is not recognised as "
            f"{release.name} ({exc}); not installed"
        ) from None
    _write_json_atomic(sidecar, _release_meta(release, url))
    os.replace(part, final)
    return final


def _release_meta(release: Release, url: str) -> dict[str, Any]:
    return {
        "family": release.family,
        "variant": release.variant,
        "scale": release.scale,
        "origin": "downloaded",
        "release": release.name,
        "sha256": release.sha256,
        "url": url,
        "source_url": release.url,
        "installed_at": _now(),
    }


def import_weights(path: str | Path, *, dest_dir: str | Path | None = None) -> WeightsEntry:
    """Install a local weights file that loads as one of the known networks.

    .pt/.pth files are copied with a sidecar JSON; .safetensors are re-written in the project's
    format (same tensors, metadata in the header) so that any such file gets listed."""
    src = Path(path)
    desc = load_file_model(src)  # CheckpointError, with the reason, when not recognised
    digest = sha256_file(src)
    meta: dict[str, Any] = {
        "family": desc.family,
        "variant": desc.variant,
        "scale": desc.scale,
        "origin": "imported",
        "source": str(src.resolve()),
        "source_sha256": digest,
        "installed_at": _now(),
    }
    release = by_sha256(digest)
    if release is not None:
        meta["release"] = release.name
    folder = Path(dest_dir) if dest_dir is not None else library.user_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{desc.family}-{desc.variant}-x{desc.scale}-imported-{digest[:10]}"
    if src.suffix.lower() == ".safetensors":
        dest = folder / f"{stem}.safetensors"
        save_checkpoint(
            dest,
            desc.model,
            family=desc.family,
            variant=desc.variant,
            scale=desc.scale,
            metadata={**desc.metadata, **meta},
        )
    else:
        dest = folder / (stem + (".pth" if src.suffix.lower() == ".pth" else ".pt"))
        _write_json_atomic(dest.with_suffix(".json"), meta)
        _copy_atomic(src, dest)
    return WeightsEntry(desc.family, desc.variant, desc.scale, dest, "imported", meta)
