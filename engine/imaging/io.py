"""Reading and writing images with Pillow, keeping what a user expects to survive an upscale.

read_image gives float32 tensors in [0, 1] plus the metadata to write back: bit depth (8 or 16),
grayscale-ness, alpha, ICC profile, EXIF (orientation already applied to the pixels) and DPI.

Pillow has no 16-bit-per-channel colour modes, so 16-bit RGB(A) and gray+alpha PNG/TIFF files are
decoded by running Pillow's own decoder twice with raw modes that pick the high and the low bytes,
and written by the small PNG/TIFF encoders of engine.imaging.encoders (which also write images
that arrive in bands: engine.imaging.stream_writers).

Writing choices: JPEG has no alpha, so transparent images are composited over white; JPEG and WebP
are 8-bit; WebP has no grayscale, so grayscale is written as RGB there, and so are 16-bit gray+alpha
TIFFs (as RGBA: Pillow cannot read those back); 16-bit TIFFs with alpha or colour are written by our
encoder, which keeps ICC and DPI but not EXIF. An ICC profile is written only where its colour
space matches the written pixels. JPEGs carry a restart marker after each row of blocks, so that
a streamed one (engine.imaging.jpeg_stream) is the same file. Every write is atomic, and an image
larger than its format holds is refused before anything is made.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import os
import struct
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from PIL import Image, ImageCms, features

from engine.atomic import atomic_open
from engine.errors import ImageError, StopFn, never_stop
from engine.imaging.encoders import PngStream, TiffStream
from engine.imaging.jpeg_stream import MAX_SIDE as JPEG_MAX_SIDE
from engine.imaging.safe_open import (  # noqa: F401 - READ_EXTENSIONS is re-exported
    DEFAULT_MAX_PIXELS,
    READ_EXTENSIONS,
    open_image,
    reason,
)

OUTPUT_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "tiff": "TIFF"}
# The largest side each format's encoder takes (libjpeg's JPEG_MAX_DIMENSION, libwebp's limit).
MAX_SIDE = {"jpeg": JPEG_MAX_SIDE, "webp": 16383}
FORMAT_EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp", "tiff": "tiff"}
_FORMAT_ALIASES = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "jfif": "jpeg", "webp": "webp"}
_FORMAT_ALIASES.update({"tif": "tiff", "tiff": "tiff"})
_ORIENTATION = 0x0112
QUANTIZE_CHUNK = 1 << 20  # samples quantized at a time (4 MiB of float32)


@dataclass
class ImageData:
    # float32 (3, H, W) in [0, 1]; grayscale sources expanded to 3 channels. read_image(...,
    # eight_bit=True) keeps an 8-bit source's samples instead: uint8 0..255, which the Upscaler
    # divides by 255 a tile at a time (a 12 MP photo in 36 MB, not 144).
    rgb: torch.Tensor
    alpha: torch.Tensor | None = None  # float32 (1, H, W) in [0, 1]
    bit_depth: int = 8  # 8 or 16
    grayscale: bool = False  # single-channel source: written back single-channel
    icc_profile: bytes | None = None
    exif: bytes | None = None  # orientation already applied to the pixels and reset to 1 here
    dpi: tuple[float, float] | None = None
    source_format: str | None = None  # Pillow's format name ("PNG", "JPEG", ...)
    # a JPEG's quality from its quantisation tables (engine.imaging.input_quality.JpegQuality)
    jpeg: Any = None

    @property
    def height(self) -> int:
        return int(self.rgb.shape[-2])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[-1])


def normalize_format(name: str) -> str:
    """'jpg', 'JPEG', '.tif', ... -> one of OUTPUT_FORMATS' keys; ImageError when not writable."""
    key = name.lower().lstrip(".")
    if key not in _FORMAT_ALIASES:
        raise ImageError(f"cannot write {name!r} images; use png, jpg, webp or tiff")
    return _FORMAT_ALIASES[key]


def format_for_path(path: str | os.PathLike[str]) -> str:
    """The output format a file name asks for, from its suffix."""
    suffix = Path(path).suffix
    if not suffix:
        raise ImageError(f"{Path(path).name}: no file extension to choose an image format from")
    return normalize_format(suffix)


# ----------------------------------------------------------------------------------- reading


def read_image(
    path: str | os.PathLike[str],
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    should_stop: StopFn = never_stop,
    eight_bit: bool = False,
) -> ImageData:
    """Decode the first frame of a supported image file (engine.imaging.safe_open). max_pixels
    (None: no limit) is checked against the header before any pixel is decoded, to refuse
    decompression bombs; should_stop() is polled between reads (Cancelled). eight_bit: an 8-bit
    source's colour stays uint8 (see ImageData.rgb), for the Upscaler only."""
    source = _Source(Path(path), max_pixels, should_stop)
    with source.open() as im:
        return _decode(im, source, eight_bit)


@dataclass(frozen=True)
class _Source:
    path: Path
    max_pixels: int | None
    should_stop: StopFn

    def open(self) -> contextlib.AbstractContextManager[Image.Image]:
        return open_image(self.path, max_pixels=self.max_pixels, should_stop=self.should_stop)


def read_rgb_uint8(
    path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """HxWx3 uint8 RGB, decoded as read_image does (EXIF orientation applied, 16-bit and
    grayscale converted, alpha left out): the pixels eval and train measure and learn from."""
    rgb = read_image(path, max_pixels=max_pixels).rgb
    return (rgb * 255.0).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def _decode(im: Image.Image, source: _Source, eight_bit: bool = False) -> ImageData:
    from engine.imaging.input_quality import jpeg_quality  # it reads files through this module

    source_format = im.format
    jpeg = jpeg_quality(im) if source_format == "JPEG" else None
    color, alpha, bit_depth, gray, icc = _pixels(im, source, _bytes_or_none(im.info, "icc_profile"))
    if _icc_space(icc) != (b"GRAY" if gray else b"RGB "):
        icc = None  # a profile for another colour space would misdescribe these pixels
    # Only now: a PNG's eXIf chunk may follow its pixel data, so it is known after decoding.
    exif_raw = _bytes_or_none(im.info, "exif")
    orientation = _orientation(im)
    if orientation in range(2, 9):
        color = _orient(color, orientation)
        alpha = None if alpha is None else _orient(alpha, orientation)
    dpi = _read_dpi(_stated_dpi(im), swap=orientation in (5, 6, 7, 8))
    exif = _reset_orientation(exif_raw) if exif_raw else None
    if gray:
        color = np.repeat(color[..., :1], 3, axis=2)
    if eight_bit and color.dtype == np.uint8:
        rgb = torch.from_numpy(np.require(color.transpose(2, 0, 1), requirements=["C", "W"]))
    else:
        rgb = torch.from_numpy(_planes(color))
    a = None if alpha is None else torch.from_numpy(np.ascontiguousarray(alpha[None, :, :]))
    return ImageData(rgb, a, bit_depth, gray, icc, exif, dpi, source_format, jpeg)


_X_RESOLUTION, _Y_RESOLUTION = 282, 283  # TIFF tags


def _bytes_or_none(info: dict, key: str) -> bytes | None:
    value = info.get(key)
    return value if isinstance(value, bytes) and value else None


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_ORIENTATION, 1)
        return int(value) if isinstance(value, int) else 1
    except Exception:  # a broken EXIF block must not make the image unreadable
        return 1


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (as ImageOps.exif_transpose does) to an HxW[xC] array."""
    swap = (1, 0) + tuple(range(2, a.ndim))
    ops = {
        2: lambda x: x[:, ::-1],
        3: lambda x: x[::-1, ::-1],
        4: lambda x: x[::-1],
        5: lambda x: x.transpose(swap),
        6: lambda x: np.rot90(x, -1),
        7: lambda x: x[::-1, ::-1].transpose(swap),
        8: lambda x: np.rot90(x, 1),
    }
    return np.ascontiguousarray(ops[orientation](a))


def _stated_dpi(im: Image.Image) -> object:
    """The resolution the file states. Pillow reports (1, 1) for a TIFF without resolution tags,
    which an upscale would then write as a claim of 2 DPI."""
    tags = getattr(im, "tag_v2", None)
    if tags is not None and not (_X_RESOLUTION in tags and _Y_RESOLUTION in tags):
        return None
    return im.info.get("dpi")


def _read_dpi(dpi: object, *, swap: bool) -> tuple[float, float] | None:
    try:
        x, y = (float(v) for v in dpi)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    if not (x > 0 and y > 0 and np.isfinite(x) and np.isfinite(y)):
        return None
    return (y, x) if swap else (x, y)


def _reset_orientation(exif: bytes) -> bytes:
    """Set the EXIF orientation tag to 1 in place (keeps maker notes and offsets intact)."""
    data = bytearray(exif)
    start = 6 if data.startswith(b"Exif\x00\x00") else 0
    order = bytes(data[start : start + 2])
    if order not in (b"II", b"MM"):
        return bytes(data)
    e = "<" if order == b"II" else ">"
    try:
        ifd = start + struct.unpack_from(e + "I", data, start + 4)[0]
        (count,) = struct.unpack_from(e + "H", data, ifd)
        for i in range(count):
            entry = ifd + 2 + 12 * i
            tag, typ = struct.unpack_from(e + "HH", data, entry)
            if tag == _ORIENTATION and typ == 3:  # SHORT, stored inline
                struct.pack_into(e + "H", data, entry + 8, 1)
    except struct.error:
        pass
    return bytes(data)


def _icc_space(icc: bytes | None) -> bytes | None:
    """The ICC header's data colour space: b'RGB ', b'GRAY', b'CMYK', ..."""
    return icc[16:20] if icc and len(icc) >= 20 else None


def _pixels(
    im: Image.Image, source: _Source, icc: bytes | None
) -> tuple[np.ndarray, np.ndarray | None, int, bool, bytes | None]:
    """-> (HxWxC float32 colour (C = 1 or 3), HxW alpha or None, bit depth, grayscale, icc)."""
    mode = im.mode
    transparency = im.info.get("transparency")
    if mode in ("RGB", "RGBA") and _is_16bit(im):
        return (*_decode_16bit_color(im, source), icc)
    if mode.startswith("I"):  # I;16, I;16B, I;16L, I;16N and I (16-bit PNGs in older Pillow)
        arr = np.asarray(im).astype(np.float64)
        alpha = None
        if isinstance(transparency, int):
            alpha = (arr != transparency).astype(np.float32)
        color = (np.clip(arr, 0, 65535) / 65535.0).astype(np.float32)[..., None]
        return color, alpha, 16, True, icc
    if mode == "F":
        raise ImageError(f"{source.path.name}: 32-bit floating-point images are not supported")
    if mode == "CMYK":
        return _cmyk_to_rgb(im, icc)
    if mode == "P" or mode == "PA":
        im = im.convert("RGBA" if mode == "PA" or transparency is not None else "RGB")
        transparency = None
    elif mode == "1":
        im = im.convert("L")
    elif mode == "La":
        im = im.convert("LA")
    elif mode in ("RGBa", "RGBX", "YCbCr", "HSV"):
        im = im.convert("RGBA" if mode == "RGBa" else "RGB")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        raise ImageError(f"{source.path.name}: unsupported image mode {mode!r}")
    arr = np.asarray(im)
    gray = im.mode in ("L", "LA")
    arr = arr[..., None] if arr.ndim == 2 else arr
    channels = 1 if gray else 3
    color = arr[..., :channels]
    if arr.shape[2] > channels:
        alpha = arr[..., channels].astype(np.float32) / 255.0
    elif transparency is not None and not isinstance(transparency, bytes):
        key = np.asarray(transparency).reshape(-1)[:channels]
        alpha = (~np.all(color == key, axis=2)).astype(np.float32)
    else:
        alpha = None
    return color, alpha, 8, gray, icc  # uint8: made float32 by _planes, a few rows at a time


def _planes(color: np.ndarray) -> np.ndarray:
    """HxWxC colour (float32, or uint8 to be divided by 255) -> CxHxW float32, converted a chunk
    of rows at a time: a large photo is held as float32 once, not two or three times over."""
    h, w, c = color.shape
    if color.dtype != np.uint8:
        return np.ascontiguousarray(color.transpose(2, 0, 1))
    out = np.empty((c, h, w), np.float32)
    step = max(1, QUANTIZE_CHUNK // max(1, c * w))
    for top in range(0, h, step):
        part = color[top : top + step].astype(np.float32)
        part /= 255.0  # float32 division, as color.astype(np.float32) / 255.0 does
        out[:, top : top + step] = part.transpose(2, 0, 1)
    return out


def _is_16bit(im: Image.Image) -> bool:
    return any(";16" in _rawmode(tile) for tile in im.tile)


def _rawmode(tile: object) -> str:
    args = tile[3]  # type: ignore[index]
    return args if isinstance(args, str) else str(args[0]) if args else ""


def _with_rawmode(tile: object, rawmode: str) -> object:
    args = tile[3]  # type: ignore[index]
    args = rawmode if isinstance(args, str) else (rawmode, *args[1:])
    if hasattr(tile, "_replace"):
        return tile._replace(args=args)
    return (tile[0], tile[1], tile[2], args)  # type: ignore[index]


def _decode_16bit_color(
    im: Image.Image, source: _Source
) -> tuple[np.ndarray, np.ndarray | None, int, bool]:
    """16-bit RGB, RGBA or gray+alpha that Pillow would cut to 8 bits: decode twice, once for the
    high bytes (Pillow's own raw mode) and once for the low ones (the opposite byte order)."""
    rawmode = _rawmode(im.tile[0])
    if rawmode.startswith("LA;16"):  # 4 bytes a pixel: read them unchanged as 8-bit RGBA
        pairs = _decode_with(source, "RGBA").astype(np.uint16)
        hi_first = rawmode.endswith("B")
        lum = (
            pairs[..., 0] * 256 + pairs[..., 1] if hi_first else pairs[..., 1] * 256 + pairs[..., 0]
        )
        a = pairs[..., 2] * 256 + pairs[..., 3] if hi_first else pairs[..., 3] * 256 + pairs[..., 2]
        return _u16(lum)[..., None], _u16(a), 16, True
    native = "L" if sys.byteorder == "little" else "B"
    order = rawmode.rsplit(";16", 1)[1] or "B"
    order = native if order == "N" else order
    low_mode = rawmode.split(";16")[0] + (";16B" if order == "L" else ";16L")
    hi = np.asarray(im).astype(np.uint16)
    full = hi * 256 + _decode_with(source, low_mode).astype(np.uint16)
    color = _u16(full[..., :3])
    alpha = _u16(full[..., 3]) if full.shape[2] == 4 else None
    transparency = im.info.get("transparency")
    if alpha is None and isinstance(transparency, tuple) and len(transparency) == 3:
        alpha = (~np.all(full[..., :3] == np.asarray(transparency), axis=2)).astype(np.float32)
    return color, alpha, 16, False


def _decode_with(source: _Source, rawmode: str) -> np.ndarray:
    with source.open() as again:
        again.tile = [_with_rawmode(t, rawmode) for t in again.tile]
        again.load()
        return np.asarray(again)


def _u16(a: np.ndarray) -> np.ndarray:
    return (a.astype(np.float32) / 65535.0).astype(np.float32)


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> tuple[np.ndarray, None, int, bool, None]:
    """CMYK -> sRGB through the embedded profile when there is a usable one, else Pillow's naive
    conversion. The CMYK profile is dropped: it does not describe the RGB result."""
    rgb = None
    if icc and _icc_space(icc) == b"CMYK":
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.createProfile("sRGB")
            rgb = ImageCms.profileToProfile(im, src, dst, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError, AttributeError):
            rgb = None
    if rgb is None:
        rgb = im.convert("RGB")
    return np.asarray(rgb).astype(np.float32) / 255.0, None, 8, False, None


# ----------------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class _Metadata:
    """What is written beside the pixels; a piece the format cannot hold is dropped."""

    icc: bytes | None
    exif: bytes | None
    dpi: tuple[float, float] | None

    def without(self, piece: str) -> _Metadata:
        return dataclasses.replace(self, **{piece: None})

    def pieces(self) -> list[str]:
        return [p for p in ("exif", "dpi", "icc") if getattr(self, p)]


_PIECE_NAMES = {"exif": "EXIF", "dpi": "the resolution (DPI)", "icc": "the ICC colour profile"}
# Per format: (largest EXIF block, largest DPI value) the encoders can store.
_JPEG_EXIF_MAX = 65533  # one APP1 segment
_DPI_MAX = {"jpeg": 65535, "png": (2**32 - 1) * 0.0254, "tiff": 2**32 / 1000, "webp": math.inf}


def _fitting(meta: _Metadata, fmt: str) -> tuple[_Metadata, list[str]]:
    """Drop, with a warning each, the pieces known to exceed what `fmt` can store."""
    warnings = []
    name = OUTPUT_FORMATS[fmt]
    if meta.exif and fmt == "jpeg" and len(meta.exif) > _JPEG_EXIF_MAX:
        warnings.append(
            f"EXIF left out: {len(meta.exif):,} bytes, more than {name} holds ({_JPEG_EXIF_MAX:,})"
        )
        meta = meta.without("exif")
    if meta.dpi and max(meta.dpi) > _DPI_MAX[fmt]:
        warnings.append(f"resolution left out: {meta.dpi[0]:g} DPI is out of range for {name}")
        meta = meta.without("dpi")
    return meta, warnings


def write_image(
    path: str | os.PathLike[str],
    img: ImageData,
    *,
    format: str | None = None,
    quality: int = 95,
    compress_level: int = 6,
    lossless: bool = False,
) -> list[str]:
    """Write atomically (temporary file in the same folder, then os.replace); returns warnings
    about metadata (EXIF, DPI, ICC) the format could not hold and that was left out: the image
    itself is always written.

    format: png, jpg/jpeg, webp or tiff/tif (None: from the suffix). quality: JPEG/WebP 1..100
    (JPEG at 90 and above keeps full chroma resolution). compress_level: PNG zlib level 0..9.
    lossless: WebP lossless. ImageError on failure; no partial file is ever left behind."""
    path = Path(path)
    fmt = normalize_format(format) if format else format_for_path(path)
    if not 1 <= quality <= 100:
        raise ImageError(f"quality must be between 1 and 100, got {quality}")
    check_size(path, fmt, img.width, img.height)
    meta = _Metadata(img.icc_profile, img.exif, img.dpi)

    def encode(f: object, meta: _Metadata) -> None:
        _encode(f, img, meta, fmt, quality=quality, level=compress_level, lossless=lossless)

    return write_retrying(path, fmt, meta, encode)


def check_size(path: Path, fmt: str, width: int, height: int) -> None:
    """ImageError, before anything is made, for an image larger than `fmt` can hold."""
    limit = MAX_SIDE.get(fmt)
    if limit and max(width, height) > limit:
        raise ImageError(
            f"cannot write {path.name}: {OUTPUT_FORMATS[fmt]} holds at most {limit:,} pixels a "
            f"side, the image is {width:,} x {height:,}; choose PNG or TIFF"
        )


def write_retrying(
    path: Path, fmt: str, meta: _Metadata, encode: Callable[[object, _Metadata], None]
) -> list[str]:
    """encode(file, metadata) into an atomic file at `path` as encode_retrying does it; returns
    a warning for each piece of metadata left out."""
    with atomic_file(path) as f:
        return encode_retrying(f, fmt, meta, encode)[1]


def encode_retrying(
    f: Any, fmt: str, meta: _Metadata, encode: Callable[[object, _Metadata], None]
) -> tuple[_Metadata, list[str]]:
    """encode(f, metadata), metadata the format cannot hold left out first, and a piece that
    makes the encoder fail left out and the encoding redone from the start of the (seekable)
    file; returns the metadata written and a warning for each piece left out."""
    meta, warnings = _fitting(meta, fmt)
    while True:
        try:
            encode(f, meta)
            return meta, warnings
        except Exception as e:
            if _is_disk_error(e) or not meta.pieces():
                raise
            piece = meta.pieces()[0]
            warnings.append(
                f"{_PIECE_NAMES[piece]} left out: {OUTPUT_FORMATS[fmt]} "
                f"could not store it ({reason(e)})"
            )
            meta = meta.without(piece)
            f.seek(0)
            f.truncate()


def _is_disk_error(e: BaseException) -> bool:
    """An error of the file system (full disk, permissions), not of the metadata."""
    return isinstance(e, OSError) and e.errno is not None


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[object]:
    """A binary file object at a temporary name next to `path`, renamed over `path` on success and
    removed on any failure (including KeyboardInterrupt)."""
    try:
        with atomic_open(path) as f:
            yield f
    except OSError as e:
        raise ImageError(f"cannot write {path}: {reason(e)}") from None


def _encode(
    f: object,
    img: ImageData,
    meta: _Metadata,
    fmt: str,
    *,
    quality: int,
    level: int,
    lossless: bool,
) -> None:
    layout = OutputLayout.of(img, fmt)
    arr = layout.quantize(img.rgb, img.alpha)
    if layout.by_pillow:
        save_pillow(f, layout.pillow_image(arr), layout, meta, quality, level, lossless)
        return
    stream = layout.stream(f, meta, level)  # type: ignore[arg-type]
    stream.write(arr)
    stream.close()


@dataclass(frozen=True)
class OutputLayout:
    """How the pixels of an image are written in a format: channels, bit depth, and the encoder
    (Pillow, or engine.imaging.encoders for 16-bit colour and for streamed output)."""

    fmt: str
    height: int
    width: int
    deep: bool  # 16 bits a sample
    gray: bool  # written single-channel (plus alpha)
    alpha: bool  # an alpha channel is written
    composite: bool  # alpha composited over white (JPEG)

    @classmethod
    def of(cls, img: ImageData, fmt: str) -> OutputLayout:
        deep = img.bit_depth == 16 and fmt in ("png", "tiff")
        alpha = img.alpha is not None and fmt != "jpeg"
        # WebP has no grayscale; Pillow cannot read 16-bit gray+alpha TIFFs, so those are RGBA.
        gray = img.grayscale and fmt != "webp" and not (deep and fmt == "tiff" and alpha)
        composite = fmt == "jpeg" and img.alpha is not None
        return cls(fmt, img.height, img.width, deep, gray, alpha, composite)

    @property
    def channels(self) -> int:
        return (1 if self.gray else 3) + self.alpha

    @property
    def by_pillow(self) -> bool:
        """Whole-image writes go through Pillow except 16-bit PNG and 16-bit colour TIFF."""
        return not (self.deep and (self.fmt == "png" or self.channels > 1))

    def icc(self, meta: _Metadata) -> bytes | None:
        """The profile, where its colour space matches the written pixels."""
        return meta.icc if _icc_space(meta.icc) == (b"GRAY" if self.gray else b"RGB ") else None

    def quantize(self, rgb: torch.Tensor, alpha: torch.Tensor | None) -> np.ndarray:
        """(3, h, W) colour and (1, h, W) alpha in [0, 1] -> the h x W x channels array to write."""
        color = _luma(rgb) if self.gray else rgb
        if self.composite and alpha is not None:  # no alpha in JPEG: composite over white
            color = color * alpha + (1.0 - alpha)
        planes = color if not self.alpha or alpha is None else torch.cat([color, alpha], dim=0)
        return _quantize(planes, 65535 if self.deep else 255)

    def quantize_alpha(self, alpha: torch.Tensor) -> np.ndarray:
        """(1, h, W) alpha -> its h x W x 1 samples: quantize()'s last channel on its own."""
        return _quantize(alpha, 65535 if self.deep else 255)

    def pillow_image(self, arr: np.ndarray) -> Image.Image:
        return Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)

    def stream(self, f: IO[bytes], meta: _Metadata, level: int) -> PngStream | TiffStream:
        """An encoder taking bands of quantize()'s arrays (PNG or TIFF only)."""
        size = {"width": self.width, "height": self.height, "channels": self.channels}
        depth = 16 if self.deep else 8
        icc = self.icc(meta)
        if self.fmt == "png":
            exif = meta.exif
            return PngStream(f, **size, depth=depth, icc=icc, exif=exif, dpi=meta.dpi, level=level)
        return TiffStream(f, **size, depth=depth, icc=icc, dpi=meta.dpi)


def save_pillow(
    f: object,
    pil: Image.Image,
    layout: OutputLayout,
    meta: _Metadata,
    quality: int,
    level: int,
    lossless: bool,
) -> None:
    fmt = layout.fmt
    options: dict[str, object] = {}
    icc = layout.icc(meta)
    if icc:
        options["icc_profile"] = icc
    if meta.exif:
        options["exif"] = meta.exif
    if meta.dpi and fmt != "webp":
        options["dpi"] = meta.dpi
    if fmt == "png":
        options["compress_level"] = level
    elif fmt == "jpeg":
        # a restart marker after each row of blocks: the same bytes as a streamed write
        # (engine.imaging.jpeg_stream), for 2 bytes a row
        subsampling = jpeg_subsampling(quality)
        options.update(quality=quality, subsampling=subsampling, restart_marker_rows=1)
    elif fmt == "webp":
        options.update(quality=quality, lossless=lossless, method=4)
    elif features.check("libtiff"):
        options["compression"] = "tiff_adobe_deflate"
    pil.save(f, format=OUTPUT_FORMATS[fmt], **options)


def jpeg_subsampling(quality: int) -> int:
    """Pillow's subsampling: full chroma resolution (0) at quality 90 and above, else 4:2:0 (2)."""
    return 0 if quality >= 90 else 2


def _luma(rgb: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=rgb.dtype).reshape(3, 1, 1)
    return (rgb * weights).sum(dim=0, keepdim=True)


def _quantize(planes: torch.Tensor, peak: int) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> HxWxC uint8 (peak 255) or uint16 (peak 65535), made a chunk
    of rows at a time so that no float copy of the whole image is made."""
    c, h, w = planes.shape
    out = np.empty((h, w, c), np.uint8 if peak == 255 else np.uint16)
    samples = torch.from_numpy(out)  # torch's cast and transpose use every thread, numpy's one
    step = max(1, QUANTIZE_CHUNK // max(1, c * w))
    for top in range(0, h, step):
        part = planes[:, top : top + step].detach().to(device="cpu", dtype=torch.float32)
        part = part.clamp(0, 1).mul_(peak).round_()
        samples[top : top + step].copy_(part.permute(1, 2, 0))
    return out
