"""Atomic file writes: write next to the target under a temporary name, then rename over it.

A reader never sees a half-written file, and a failure (full disk, cancel, crash) leaves the old
file, if any, untouched and no temporary file behind. Only a kill (SIGKILL, power loss) can leave
a temporary file; its name says which program, machine and process wrote it, so that
remove_stale_temporaries can tell a dead writer's leftovers from a live writer's file.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import socket
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from engine.errors import SRStudioError

log = logging.getLogger(__name__)

_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_TEMP = re.compile(r"^\..+\.srstudio-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")
# Names written before the writer was part of the name: removed once clearly abandoned.
_OLD_TEMP = re.compile(r"^\..+\.(png|jpe?g|webp|tiff?|json|txt)\.[0-9a-f]{8}\.tmp$")
STALE_AFTER_S = 24 * 3600  # a temporary file from another machine this old is abandoned


def path_key(path: str | os.PathLike[str]) -> str:
    """A path's spelling with links and '..' resolved (for files that may not exist yet)."""
    return os.path.normcase(os.path.realpath(path))


def file_identity(path: str | os.PathLike[str]) -> tuple[int, int] | str:
    """Which file or folder a path names, whatever the spelling ('..', symlinks, hard links);
    one stat, where resolving the path would cost one per level."""
    try:
        st = os.stat(path)
    except OSError:
        return path_key(path)
    return (st.st_dev, st.st_ino) if st.st_ino else path_key(path)


def writes_over_input(
    target: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]]
) -> bool:
    """Whether writing `target` would replace one of `inputs`, however either is spelt or linked."""
    ids = {file_identity(p) for p in inputs}
    return file_identity(target) in ids or path_key(target) in {path_key(p) for p in inputs}


def refuse_writing_over_inputs(
    target: str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str]],
    what: str = "the output",
) -> None:
    """The one check every command makes before it writes: no output replaces one of its own
    inputs (an image, weights file or report it reads), whatever --force says."""
    inputs = list(inputs)
    if writes_over_input(target, inputs):
        raise SRStudioError(overwrite_message(target, what))


def overwrite_message(target: str | os.PathLike[str], what: str = "the output") -> str:
    """The one message for an output that would replace an input."""
    return f"{what} {os.fsdecode(target)!s} is one of the inputs; choose another name"


def temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.srstudio-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}.tmp")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path next to `path` for a library to write to (torch.save, save_file...);
    renamed over `path` when the block succeeds, removed when it fails."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """An open file at a temporary name, flushed to disk and renamed over `path` on success."""
    with atomic_path(path) as tmp, open(tmp, mode) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if sys.platform.startswith("win"):
        return True  # no safe liveness probe there: such files go by age alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def is_stale_temporary(path: Path, *, now: float | None = None) -> bool:
    """A temporary file of this program whose writer is gone: a process of this machine that
    no longer runs, or (any machine) untouched for STALE_AFTER_S."""
    name = path.name
    match = _TEMP.match(name)
    if match is None and _OLD_TEMP.match(name) is None:
        return False
    try:
        age = (now or time.time()) - path.lstat().st_mtime
    except OSError:
        return False
    if age > STALE_AFTER_S:
        return True
    return match is not None and match["host"] == _HOST and not _alive(int(match["pid"]))


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove this program's abandoned temporary files directly in `folder`; returns them."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        path = Path(entry.path)
        if entry.is_file(follow_symlinks=False) and is_stale_temporary(path):
            try:
                path.unlink()
            except OSError as e:
                log.warning("could not remove the abandoned temporary file %s: %s", path, e)
                continue
            log.info("removed the abandoned temporary file %s", path)
            removed.append(path)
    return removed
