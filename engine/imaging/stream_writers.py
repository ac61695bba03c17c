"""Writing an image that arrives as bands of rows (engine.inference's streamed upscale), so the
output never has to be held as float32, nor, for PNG and TIFF, at all.

PNG and TIFF go band by band to the file through engine.imaging.encoders: memory does not grow with
the output. JPEG and WebP need the whole image for Pillow's encoder: it is built band by band in
one Pillow image, the only full-size copy. So is an 8-bit or a gray 16-bit TIFF with EXIF, which
only Pillow's TIFF writer keeps. Everything else is as engine.imaging.io.write_image does it: the
same channels, bit depth and metadata (left out with a warning where the format cannot hold it),
and an atomic write, so a failure or a cancel between bands leaves no file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import torch
from PIL import Image

from engine.errors import ImageError
from engine.imaging.io import (
    ImageData,
    OutputLayout,
    _fitting,
    _Metadata,
    atomic_file,
    format_for_path,
    normalize_format,
    save_pillow,
    write_retrying,
)

Band = tuple[torch.Tensor, torch.Tensor | None]  # rgb (3, rows, W), alpha (1, rows, W) or None


def write_bands(
    path: str | os.PathLike[str],
    image: ImageData,
    bands: Iterable[Band],
    *,
    format: str | None = None,
    quality: int = 95,
    compress_level: int = 6,
    lossless: bool = False,
) -> list[str]:
    """Write the bands, top to bottom, of an image whose size, bit depth, grayscale-ness, alpha
    and metadata are those of `image` (its pixels are not read); arguments and return value as
    write_image. The bands are consumed once: a Cancelled raised while making one leaves no file."""
    path = Path(path)
    fmt = normalize_format(format) if format else format_for_path(path)
    if not 1 <= quality <= 100:
        raise ImageError(f"quality must be between 1 and 100, got {quality}")
    layout = OutputLayout.of(image, fmt)
    meta = _Metadata(image.icc_profile, image.exif, image.dpi)
    if fmt == "png" or (fmt == "tiff" and not (image.exif and layout.by_pillow)):
        meta, warnings = _fitting(meta, fmt)  # these encoders store any metadata that fits
        with atomic_file(path) as f:
            stream = layout.stream(f, meta, compress_level)  # type: ignore[arg-type]
            for rgb, alpha in bands:
                stream.write(layout.quantize(rgb, alpha))
            stream.close()
        return warnings
    pil = _assemble(layout, bands)  # before the file is opened: a cancel leaves nothing

    def encode(f: object, m: _Metadata) -> None:
        save_pillow(f, pil, layout, m, quality, compress_level, lossless)

    return write_retrying(path, fmt, meta, encode)


def _assemble(layout: OutputLayout, bands: Iterable[Band]) -> Image.Image:
    pil: Image.Image | None = None
    row = 0
    for rgb, alpha in bands:
        part = layout.pillow_image(layout.quantize(rgb, alpha))
        if pil is None:
            pil = Image.new(part.mode, (layout.width, layout.height))
        pil.paste(part, (0, row))
        row += part.height
    if pil is None or row != layout.height:
        raise ImageError(f"got {row} rows of an image {layout.height} rows high")
    return pil
