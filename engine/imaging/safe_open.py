"""The one way SR Studio opens an image file: only the formats it supports, recognised from the
file's first bytes (never from its name), the pixel count checked before any pixel is decoded,
and a decode that can be cancelled between reads.

Why not plain `Image.open`: Pillow tries every plugin it has, whatever the file is called, and
some of them hand the file to another program (EPS to Ghostscript, which runs PostScript: a
crafted `.jpg` could write files or loop for ever). Here the format is decided from the magic
bytes, Pillow is told to try that plugin alone, and Ghostscript is switched off for the process
as a second lock. What is left is bounded by the file and its pixel count.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

from PIL import EpsImagePlugin, Image, UnidentifiedImageError

from engine.errors import Cancelled, ImageError, StopFn, never_stop

DEFAULT_MAX_PIXELS = 100_000_000  # 100 megapixels; Pillow's own default is about 89 MP
# What the user reads: the formats and their extensions (README lists the same).
SUPPORTED_FORMATS = ("PNG", "JPEG", "WebP", "TIFF", "BMP", "GIF")
READ_EXTENSIONS = (".png", ".jpg", ".jpeg", ".jfif", ".webp", ".tif", ".tiff", ".bmp", ".gif")
# Modes read_image turns into pixels; anything else is refused before decoding.
ACCEPTED_MODES = frozenset(
    ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr")
    + ("I", "I;16", "I;16B", "I;16L", "I;16N")
)
_HEAD = 64
# A JPEG's decoding time grows with its number of scans, and a crafted progressive JPEG can hold
# thousands of tiny scans that each walk the whole image (libjpeg-turbo's advice is a scan
# limit). Real files hold at most a few dozen, thumbnails and MPO pictures included.
MAX_JPEG_SCANS = 1000
_pillow_limit_lock = threading.RLock()

# Never let Pillow start Ghostscript in this process, whatever opens a file.
EpsImagePlugin.gs_binary = False
EpsImagePlugin.gs_windows_binary = False


def sniff_format(head: bytes) -> str | None:
    """The Pillow format names to allow for a file starting with `head`, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head.startswith(b"BM"):
        return "BMP"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    return None


def describe_unsupported(head: bytes) -> str:
    """What a file of an unsupported kind looks like, for the message."""
    kinds = [
        ((b"%!PS", b"\xc5\xd0\xd3\xc6"), "PostScript/EPS"),
        ((b"%PDF",), "a PDF document"),
        ((b"PK\x03\x04", b"PK\x05\x06"), "a zip archive"),
        ((b"\x1f\x8b",), "a gzip archive"),
        ((b"7z\xbc\xaf",), "a 7-zip archive"),
        ((b"Rar!",), "a RAR archive"),
        ((b"\x7fELF", b"MZ"), "a program"),
        ((b"#!",), "a script"),
        ((b"<svg", b"<?xml"), "SVG/XML"),
        ((b"<!DOCTYPE", b"<html", b"<HTML"), "a web page"),
        ((b"\x00\x00\x00\x0cjP  ", b"\xff\x4f\xff\x51"), "JPEG 2000"),
        ((b"P1", b"P2", b"P3", b"P4", b"P5", b"P6"), "a PNM image"),
        ((b"8BPS",), "a Photoshop document"),
        ((b"\x00\x00\x01\x00",), "an icon"),
        ((b"II+\x00", b"MM\x00+"), "a BigTIFF"),
    ]
    stripped = head.lstrip()
    for magics, kind in kinds:
        if any(stripped.startswith(m) for m in magics):
            return kind
    if head[4:8] == b"ftyp":
        return "a HEIF/AVIF or video file"
    return "an unknown kind of file"


def supported_text() -> str:
    return ", ".join(SUPPORTED_FORMATS[:-1]) + " and " + SUPPORTED_FORMATS[-1]


class _StoppableRaw(io.FileIO):
    """A file whose reads raise Cancelled once should_stop() turns True. Pillow decodes in
    blocks of at most 64 KiB read through here, so a cancel lands within one block."""

    def __init__(self, path: Path, should_stop: StopFn) -> None:
        super().__init__(path, "rb")
        self._should_stop = should_stop

    def readinto(self, buffer) -> int | None:  # type: ignore[no-untyped-def, override]
        if self._should_stop():
            raise Cancelled()
        return super().readinto(buffer)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ImageError(f"{path}: file not found")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image")
    if not path.is_file():
        raise ImageError(f"{path}: not a regular file")


@contextlib.contextmanager
def open_image(
    path: str | os.PathLike[str],
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    should_stop: StopFn = never_stop,
) -> Iterator[Image.Image]:
    """A lazily decoding Pillow image of a supported format whose size and mode were checked.

    The caller decodes inside the block (im.load(), np.asarray(im)...) under the same pixel
    limit; ImageError for anything unreadable, unsupported or too large, Cancelled on a stop."""
    path = Path(path)
    name = path.name
    _check_file(path)
    try:
        raw = _StoppableRaw(path, should_stop)
    except OSError as e:
        raise ImageError(f"{name}: cannot open: {reason(e)}") from None
    with raw, io.BufferedReader(raw) as f:
        head = f.peek(_HEAD)[:_HEAD]
        if not head:
            raise ImageError(f"{name}: empty file (0 bytes)")
        fmt = sniff_format(head)
        if fmt is None:
            raise ImageError(
                f"{name}: not an image SR Studio reads ({describe_unsupported(head)}); "
                f"supported: {supported_text()}"
            )
        if fmt == "JPEG":
            _check_jpeg_scans(f.raw, name)  # type: ignore[arg-type]
        im = _open_with(f, fmt, name, max_pixels)
        with im:
            _check_header(im, name, max_pixels)
            with pillow_limit(max_pixels):
                try:
                    yield im
                except (ImageError, Cancelled):
                    raise
                except Exception as e:  # whatever a crafted file makes a decoder raise
                    raise ImageError(f"{name}: corrupt or truncated image ({reason(e)})") from None


def _check_jpeg_scans(raw: io.FileIO, name: str) -> None:
    """Count start-of-scan markers (0xFFDA cannot occur inside entropy-coded data, where every
    0xFF is followed by 0x00 or a restart marker)."""
    size = os.fstat(raw.fileno()).st_size
    with mmap.mmap(raw.fileno(), size, access=mmap.ACCESS_READ) as data:
        scans, at = 0, data.find(b"\xff\xda")
        while at >= 0 and scans <= MAX_JPEG_SCANS:
            scans += 1
            at = data.find(b"\xff\xda", at + 2)
    if scans > MAX_JPEG_SCANS:
        raise ImageError(
            f"{name}: a JPEG of more than {MAX_JPEG_SCANS} scans (real photos have a few dozen "
            "at most); refused as a possible decoding bomb"
        )


def _open_with(f: io.BufferedReader, fmt: str, name: str, max_pixels: int | None) -> Image.Image:
    try:
        with pillow_limit(max_pixels):
            return Image.open(f, formats=[fmt])
    except Image.DecompressionBombError:
        raise ImageError(bomb_message(name, None, max_pixels)) from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not a valid {fmt} image (damaged header)") from None
    except Cancelled:
        raise
    except Exception as e:  # whatever a crafted header makes a parser raise
        raise ImageError(f"{name}: cannot read: {reason(e)}") from None


def _check_header(im: Image.Image, name: str, max_pixels: int | None) -> None:
    width, height = im.size
    if width <= 0 or height <= 0:
        raise ImageError(f"{name}: the header gives an empty image ({width}x{height})")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageError(bomb_message(name, (width, height), max_pixels))
    if im.mode not in ACCEPTED_MODES:
        raise ImageError(f"{name}: unsupported image mode {im.mode!r}")


def image_size(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> tuple[int, int]:
    """(width, height) from the header alone, by the same checks as open_image."""
    with open_image(path, max_pixels=max_pixels) as im:
        return im.size


def reason(e: BaseException) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def bomb_message(name: str, size: tuple[int, int] | None, limit: int | None) -> str:
    what = f"{size[0]}x{size[1]} = {size[0] * size[1]:,} pixels" if size else "too many pixels"
    return (
        f"{name}: image is too large ({what}, limit {limit or Image.MAX_IMAGE_PIXELS:,}); "
        "refused as a possible decompression bomb (raise the limit with --max-pixels)"
    )


@contextlib.contextmanager
def pillow_limit(max_pixels: int | None) -> Iterator[None]:
    """Silence Pillow's own bomb warning (we check ourselves) and lift its limit only when ours is
    higher. Pillow's limit is a module global, hence the lock."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        # Pillow's warnings about damaged metadata (truncated EXIF...) are not the user's concern:
        # the pixels decode or an ImageError says why not.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        pillow_max = Image.MAX_IMAGE_PIXELS
        if pillow_max is None or (max_pixels is not None and max_pixels <= pillow_max):
            yield
            return
        with _pillow_limit_lock:
            Image.MAX_IMAGE_PIXELS = None
            try:
                yield
            finally:
                Image.MAX_IMAGE_PIXELS = pillow_max
