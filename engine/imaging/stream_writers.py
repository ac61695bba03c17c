"""Writing an image that arrives as bands of rows (engine.inference's streamed upscale), so the
output never has to be held as float32, nor, for PNG and TIFF, at all.

PNG and TIFF go band by band to the file through engine.imaging.encoders, JPEG a strip of rows at
a time through engine.imaging.jpeg_stream: memory does not grow with the output. WebP needs the
whole image for Pillow's encoder (so does an 8-bit or a gray 16-bit TIFF with EXIF, which only
Pillow's TIFF writer keeps): the quantised bands are spooled to
an unnamed temporary file next to the output while the network runs, and the one Pillow image,
the only full-size copy in memory, is read back from it only once the last band is made and the
tiles' memory is handed back (engine.inference.allocator.trim), so the two never add up.
Each band is encoded on a worker thread while the next is made (engine.imaging.write_behind).
Everything else is as engine.imaging.io.write_image does it: the same channels, bit depth and
metadata (left out with a warning where the format cannot hold it), and an atomic write, so a
failure or a cancel between bands leaves no file. The caller quantises (OutputLayout.quantize,
or as the tiles finish, engine.inference.upscaler.Upscaler.quantized_bands): it is handed the
layout the format needs and gives the rows top to bottom.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image

from engine.errors import ImageError
from engine.imaging.io import (
    ImageData,
    OutputLayout,
    _fitting,
    _Metadata,
    atomic_file,
    check_size,
    encode_retrying,
    format_for_path,
    jpeg_subsampling,
    normalize_format,
    save_pillow,
    write_retrying,
)
from engine.imaging.jpeg_stream import JpegStream, mcu_rows
from engine.imaging.write_behind import write_all

Rows = Callable[[OutputLayout], Iterable[np.ndarray]]  # the quantised rows for a layout


def write_bands(
    path: str | os.PathLike[str],
    image: ImageData,
    bands: Rows,
    *,
    format: str | None = None,
    quality: int = 95,
    compress_level: int = 6,
    lossless: bool = False,
) -> list[str]:
    """Write the bands, top to bottom, of an image whose size, bit depth, grayscale-ness, alpha
    and metadata are those of `image` (its pixels are not read); arguments and return value as
    write_image. `bands(layout)` gives the quantised rows (OutputLayout.quantize's arrays) and is
    consumed once: a Cancelled raised while making one leaves no file."""
    path = Path(path)
    fmt = normalize_format(format) if format else format_for_path(path)
    if not 1 <= quality <= 100:
        raise ImageError(f"quality must be between 1 and 100, got {quality}")
    check_size(path, fmt, image.width, image.height)
    layout = OutputLayout.of(image, fmt)
    meta = _Metadata(image.icc_profile, image.exif, image.dpi)
    if fmt == "jpeg":
        return _write_jpeg(path, layout, meta, bands, quality)
    if fmt == "png" or (fmt == "tiff" and not (image.exif and layout.by_pillow)):
        meta, warnings = _fitting(meta, fmt)  # these encoders store any metadata that fits
        with atomic_file(path) as f:
            stream = layout.stream(f, meta, compress_level)  # type: ignore[arg-type]
            write_all(bands(layout), stream.write)
            stream.close()
        return warnings
    # Before the file is opened: a cancel leaves nothing (the spool has no name).
    with tempfile.TemporaryFile(dir=path.parent) as spool:
        rows, dtype = _spool(layout, bands(layout), spool)
        from engine.inference import allocator  # the tiles are done: return their memory

        allocator.trim()
        pil = _assemble(layout, spool, rows, dtype)

    def encode(f: object, m: _Metadata) -> None:
        save_pillow(f, pil, layout, m, quality, compress_level, lossless)

    return write_retrying(path, fmt, meta, encode)


def _write_jpeg(
    path: Path, layout: OutputLayout, meta: _Metadata, bands: Rows, quality: int
) -> list[str]:
    """JPEG a strip at a time (engine.imaging.jpeg_stream): the metadata goes with the first
    strip, and a piece Pillow cannot store is left out there, as write_retrying does it."""
    warnings: list[str] = []
    none = _Metadata(None, None, None)

    def encode(strip: Image.Image, out: IO[bytes], first: bool) -> None:
        def save(f: object, m: _Metadata) -> None:
            save_pillow(f, strip, layout, m, quality, 6, False)

        if first:
            warnings.extend(encode_retrying(out, "jpeg", meta, save)[1])
        else:
            save(out, none)

    with atomic_file(path) as f:
        mcu = mcu_rows(layout.channels, jpeg_subsampling(quality))
        stream = JpegStream(
            f,
            width=layout.width,
            height=layout.height,
            channels=layout.channels,
            mcu=mcu,
            encode=encode,
        )
        write_all(bands(layout), stream.write)
        stream.close()
    return warnings


SPOOL_CHUNK = 32 << 20  # bytes read back from the spool at a time


def _spool(
    layout: OutputLayout, bands: Iterable[np.ndarray], spool: IO[bytes]
) -> tuple[int, np.dtype]:
    """The quantised bands written to `spool`, top to bottom: (rows, sample dtype)."""
    rows, dtype = 0, np.dtype(np.uint8)
    for band in bands:
        part = np.ascontiguousarray(band)
        spool.write(memoryview(part).cast("B"))
        rows += part.shape[0]
        dtype = part.dtype
    if rows != layout.height:
        raise ImageError(f"got {rows} rows of an image {layout.height} rows high")
    return rows, dtype


def _assemble(layout: OutputLayout, spool: IO[bytes], rows: int, dtype: np.dtype) -> Image.Image:
    """The one Pillow image, read back from the spool a chunk of rows at a time."""
    row_shape = (layout.width, layout.channels)
    step = max(1, SPOOL_CHUNK // (layout.width * layout.channels * dtype.itemsize))
    buffer = np.empty((min(step, rows), *row_shape), dtype)
    spool.seek(0)
    pil: Image.Image | None = None
    for top in range(0, rows, step):
        part = buffer[: min(step, rows - top)]
        if spool.readinto(memoryview(part).cast("B")) != part.nbytes:  # type: ignore[attr-defined]
            raise ImageError("the spooled output was cut short")
        band = layout.pillow_image(part)
        if pil is None:
            pil = Image.new(band.mode, (layout.width, layout.height))
        pil.paste(band, (0, top))
    assert pil is not None
    return pil
