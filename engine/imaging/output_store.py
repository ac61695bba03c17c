"""A finished output kept on disk as it will be saved, not in memory (the app's results).

The streamed upscale (engine.inference.upscaler.Upscaler.quantized_bands) hands over its bands
already quantised; the store appends them to one file of raw samples in the user's cache folder,
in the layout a PNG of the output would hold (gray or RGB, alpha, 8 or 16 bits a sample), and
gives back any rows or region on demand by reading the file, so a 192-megapixel result costs the
process no memory while it is kept. Saving streams the rows through the same writers as the CLI
(engine.imaging.stream_writers.write_bands): 8-bit colour is written byte for byte as the CLI
writes it in every format. Where a format needs fewer samples than were kept, they are converted
from the kept ones (16 bits to 8 for JPEG and WebP, alpha composited over white for JPEG), which
may differ by one level from a CLI run that quantises its float output for that format directly.

The file is made private to the user (engine.cache.private_folder), is sparse until written, and
is deleted by close() or with the store; files left by a process that was killed are removed by
the next one. numpy's memmap is not used: pages of a written mapping count against the process
until the kernel writes them back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from engine.cache import cache_root, private_folder
from engine.errors import ImageError
from engine.imaging.io import ImageData, OutputLayout
from engine.imaging.stream_writers import write_bands

READ_BYTES = 32 << 20  # rows read back at a time when saving or converting


def store_dir() -> Path:
    """SRSTUDIO_CACHE_DIR/outputs, else the user cache directory's."""
    return cache_root() / "outputs"


def _remove(path: str, file: object) -> None:
    with contextlib.suppress(OSError):
        file.close()  # type: ignore[attr-defined]  # first: Windows cannot delete an open file
    with contextlib.suppress(OSError):
        os.unlink(path)


_swept: set[Path] = set()  # folders whose left-overs this process has removed


def _sweep(folder: Path) -> None:
    """Stores left by processes that ended without deleting them (killed, crashed): each file
    is named after the process that made it, and one whose process is gone is removed, once per
    folder and process."""
    if folder in _swept:
        return
    _swept.add(folder)
    for path in folder.glob("output-*-*.raw"):
        pid = path.name.split("-")[1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's, or not allowed to ask: taken as alive
        return True
    return True


class OutputStore:
    """The samples of one output image, `layout.height` rows of `layout.width` x channels."""

    def __init__(self, image: ImageData, folder: Path | None = None) -> None:
        """`image`: the output's size, bit depth, gray/alpha and metadata (its pixels are not
        read: Upscaler.output_image). Raises ImageError when the disk cannot hold it."""
        self.image = image
        self.layout = OutputLayout.of(image, "png")  # every sample the output has
        self.dtype = np.dtype(np.uint16 if self.layout.deep else np.uint8)
        self.row_bytes = self.layout.width * self.layout.channels * self.dtype.itemsize
        self.nbytes = self.row_bytes * self.layout.height
        place = private_folder(folder or store_dir()) or Path(tempfile.gettempdir())
        free = shutil.disk_usage(place).free
        if self.nbytes > free:
            raise ImageError(
                f"the output needs {self.nbytes / 2**30:.1f} GB on disk to be kept and "
                f"{place} has {free / 2**30:.1f} GB free"
            )
        _sweep(place)
        fd, name = tempfile.mkstemp(prefix=f"output-{os.getpid()}-", suffix=".raw", dir=place)
        self.path = Path(name)
        self._file = os.fdopen(fd, "r+b", buffering=0)
        self._finalizer = weakref.finalize(self, _remove, name, self._file)
        self.rows = 0  # rows appended so far
        self.band_rows: list[int] = []  # the height of each band, as appended

    @property
    def height(self) -> int:
        return self.layout.height

    @property
    def width(self) -> int:
        return self.layout.width

    @property
    def complete(self) -> bool:
        return self.rows == self.layout.height

    def append(self, band: np.ndarray) -> None:
        """The next rows, (rows, width, channels) in the store's dtype."""
        if band.shape[1:] != (self.width, self.layout.channels) or band.dtype != self.dtype:
            raise ValueError(f"a band of {band.shape} {band.dtype} does not fit the store")
        if self.rows + band.shape[0] > self.height:
            raise ValueError("more rows than the image has")
        data = np.ascontiguousarray(band)
        try:
            os.pwrite(self._file.fileno(), memoryview(data).cast("B"), self.rows * self.row_bytes)
        except OSError as exc:
            raise ImageError(f"could not keep the output in {self.path.parent}: {exc}") from exc
        self.rows += band.shape[0]
        self.band_rows.append(band.shape[0])

    def read(self, top: int, bottom: int) -> np.ndarray:
        """Rows [top, bottom) as stored, a new array."""
        top, bottom = max(0, top), min(self.rows, bottom)
        out = np.empty((max(0, bottom - top), self.width, self.layout.channels), self.dtype)
        if out.size:
            view = memoryview(out).cast("B")
            got = os.preadv(self._file.fileno(), [view], top * self.row_bytes)
            if got != out.nbytes:
                raise ImageError(f"the kept output in {self.path.parent} was cut short")
        return out

    def strips(self, rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(top, samples) of the whole image, top to bottom, `rows` at a time; by default the
        bands as they were appended (a PNG's bytes depend on where its bands end: saved in the
        same bands, the file is the CLI's), each cut to READ_BYTES."""
        most = max(1, READ_BYTES // max(1, self.row_bytes))
        heights = [rows] * -(-self.rows // rows) if rows else self.band_rows
        top = 0
        for height in heights:
            end = min(self.rows, top + height)
            while top < end:
                step = min(end, top + most)
                yield top, self.read(top, step)
                top = step

    def rgb8(self, samples: np.ndarray) -> np.ndarray:
        """Stored samples -> (rows, cols, 3) uint8 colour, as shown on screen (alpha dropped)."""
        colour = samples[..., : 1 if self.layout.gray else 3]
        if self.layout.deep:
            colour = ((colour.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        if self.layout.gray:
            colour = np.repeat(colour, 3, axis=2)
        return np.ascontiguousarray(colour)

    def bands_for(self, layout: OutputLayout) -> Iterator[np.ndarray]:
        """The kept rows as `layout` (another format's) writes them."""
        mine = self.layout
        same = (layout.deep, layout.gray, layout.alpha) == (mine.deep, mine.gray, mine.alpha)
        for _, samples in self.strips():
            if same and not layout.composite:
                yield samples
                continue
            peak = 65535.0 if mine.deep else 255.0
            planes = torch.from_numpy(samples.astype(np.float32) / peak).permute(2, 0, 1)
            colour = planes[: 1 if mine.gray else 3]
            alpha = planes[-1:] if mine.alpha else None
            if mine.gray:
                colour = colour.expand(3, -1, -1)
            yield layout.quantize(colour, alpha)

    def save(
        self, path: str | os.PathLike[str], *, format: str | None = None, quality: int = 95
    ) -> list[str]:
        """The output written to `path` as the CLI writes it (write_bands): its warnings."""
        if not self.complete:
            raise ImageError("the output is not finished")
        return write_bands(path, self.image, self.bands_for, format=format, quality=quality)

    def close(self) -> None:
        """Deletes the file; the store cannot be read afterwards."""
        self._finalizer()

    def __enter__(self) -> OutputStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
