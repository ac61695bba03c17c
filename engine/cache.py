"""On-disk caches: a folder private to the user, and artefacts that carry a digest of themselves.

A cache is read back on a later run as if SR Studio had just made it, so whatever is in it decides
the output. Two rules keep that trust earned rather than assumed:

- **The folder is the user's own.** It is created with mode 0700; a folder that belongs to another
  user is not used (nothing is cached, one log line), and a folder of one's own that others could
  write into is made private and emptied, since anything in it may have been planted. Anyone who
  can write the cache could otherwise change every later result (a cache key computed from public
  weights is no secret).
- **An artefact is sealed.** After its files are in place, a small JSON seal is written beside them
  (atomically, last) holding the sha256 of each file and of what it was made from (`source`, e.g.
  the weights' digest). The files are read, checked against the seal and used from the very bytes
  that were checked; anything missing, extra or different is removed with one log line and the
  caller makes the artefact again. A damaged or half-written cache costs time, never a wrong result.

On Windows the folder checks are skipped (no POSIX owners or modes); the seal still applies.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
from collections.abc import Sequence
from pathlib import Path

import platformdirs

from engine.atomic import atomic_open

log = logging.getLogger(__name__)

SEAL_SUFFIX = ".sha256"
SEAL_FORMAT = "srstudio-cache-seal"
SEAL_VERSION = 1
_MAX_SEAL_BYTES = 64 * 1024
_POSIX = os.name == "posix"


# ------------------------------------------------------------------------------ private folders


def cache_root() -> Path:
    """SRSTUDIO_CACHE_DIR, else the user cache directory: each cache is a folder in it."""
    root = os.environ.get("SRSTUDIO_CACHE_DIR")
    return Path(root) if root else platformdirs.user_cache_path("srstudio", appauthor=False)


def _user_id() -> int:
    """The user the cache must belong to (a function, so that tests can play another user)."""
    return os.getuid()


def private_folder(path: Path) -> Path | None:
    """`path`, created private to the user (0700) if need be; None, with one log line, when it
    cannot be used: another user's, not a folder, or not creatable. The caller then works
    without a cache."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.stat(path)
    except OSError as exc:
        log.warning("cache folder %s cannot be used (%s); nothing is cached", path, exc)
        return None
    if not _POSIX:
        return path
    if st.st_uid != _user_id():
        log.warning(
            "cache folder %s belongs to another user (uid %d); it is not used, nothing is cached",
            path,
            st.st_uid,
        )
        return None
    return path if _made_private(path, st.st_mode) else None


def _made_private(path: Path, mode: int) -> bool:
    """Mode 0700 for a folder of the user's own; one that others could write into is emptied."""
    if stat.S_IMODE(mode) == 0o700:
        return True
    try:
        os.chmod(path, 0o700)
        if mode & 0o022:
            log.warning("cache folder %s was writable by others: made private and emptied", path)
            _remove_files(path)
    except OSError as exc:
        log.warning("cache folder %s cannot be made private (%s); nothing is cached", path, exc)
        return False
    return True


def _remove_files(folder: Path) -> None:
    """The files (and links) directly in `folder`; a link is removed, never followed."""
    for entry in os.scandir(folder):
        if not entry.is_dir(follow_symlinks=False):
            os.unlink(entry.path)


# ------------------------------------------------------------------------------ sealed artefacts


def seal_path(files: Sequence[Path]) -> Path:
    """'NAME.xml' (the first of an artefact's files) -> 'NAME.sha256'."""
    return files[0].with_suffix(SEAL_SUFFIX)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _seal(files: Sequence[Path], digests: Sequence[str], source: str) -> dict[str, object]:
    return {
        "format": SEAL_FORMAT,
        "version": SEAL_VERSION,
        "source": source,
        "files": {p.name: d for p, d in zip(files, digests, strict=True)},
    }


def write_seal(files: Sequence[Path], source: str) -> None:
    """Seal an artefact whose `files` are in place: their sha256 and `source`, written last and
    atomically, so that a seal never vouches for files still being written."""
    digests = [_sha256(p.read_bytes()) for p in files]
    with atomic_open(seal_path(files), "w") as f:
        json.dump(_seal(files, digests, source), f, indent=1)


def _read_seal(path: Path) -> object:
    with open(path, "rb") as f:
        raw = f.read(_MAX_SEAL_BYTES + 1)
    if len(raw) > _MAX_SEAL_BYTES:
        raise ValueError("the seal is too large")
    return json.loads(raw)


def _mismatch(files: Sequence[Path], source: str) -> tuple[str | None, list[bytes]]:
    """(None, the files' bytes) when the seal vouches for them, else (what is wrong, [])."""
    try:
        data = [p.read_bytes() for p in files]
        seal = _read_seal(seal_path(files))
    except FileNotFoundError as exc:
        return f"{Path(exc.filename or '?').name} is missing", []
    except (OSError, ValueError) as exc:  # unreadable, or a seal that is not JSON
        return f"unreadable: {exc}", []
    if seal != _seal(files, [_sha256(d) for d in data], source):
        return "its bytes or its source differ from its seal", []
    return None, data


def read_sealed(files: Sequence[Path], source: str, what: str) -> list[bytes] | None:
    """The bytes of an artefact's `files` if its seal vouches for them and for `source`; None
    when there is no such artefact, or when what was there did not match (then it is removed,
    with one warning naming `what`)."""
    parts = [*files, seal_path(files)]
    if not any(os.path.lexists(p) for p in parts):
        return None
    problem, data = _mismatch(files, source)
    if problem is None:
        return data
    log.warning("cached %s (%s) discarded, %s; making it again", what, files[0].name, problem)
    discard(files)
    return None


def discard(files: Sequence[Path]) -> None:
    """Remove an artefact: its seal first, so that no seal outlives what it vouched for."""
    for path in (seal_path(files), *files):
        with contextlib.suppress(OSError):
            path.unlink()
