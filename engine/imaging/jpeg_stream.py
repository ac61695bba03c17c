"""A baseline JPEG written a strip of rows at a time, so that a large output is never held whole.

Why hand-written: Pillow encodes only a whole image (held at 4 bytes a pixel: 768 MiB for a 12 MP
photo at x4) and no maintained Python library encodes JPEG from rows. JPEG itself allows it: with
a restart marker after every row of MCUs (Pillow's `restart_marker_rows=1`), the entropy-coded
data of each MCU row starts afresh, so strips whose heights are whole MCU rows can be encoded by
Pillow one by one with the same settings and joined: the first strip's header with the full
height patched into its frame header, then each strip's scan data with its restart markers
renumbered in sequence (they count modulo 8) and one more marker between strips. Each strip's
coefficients are those of the same rows in a whole-image encode (libjpeg's colour conversion,
chroma downsampling and DCT never look across MCU rows), so the joined file is byte for byte
what Pillow writes for the whole image with `restart_marker_rows=1`
(tests/engine/test_jpeg_stream.py checks that).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import IO

import numpy as np
from PIL import Image

MAX_SIDE = 65500  # libjpeg's JPEG_MAX_DIMENSION (engine.imaging.io.check_size refuses larger)
STRIP_BYTES = 8 << 20  # input bytes per encoded strip (about; at least one MCU row)
_SOF = {0xC0, 0xC1, 0xC2}
_SOS = 0xDA

# (strip, file) -> None: Pillow's save of one strip into `file`, with the metadata for the first
Encode = Callable[[Image.Image, IO[bytes], bool], None]


def mcu_rows(channels: int, subsampling: int) -> int:
    """Image rows per MCU row: 16 for colour with 4:2:0 chroma (Pillow's subsampling=2), else 8."""
    return 16 if channels == 3 and subsampling == 2 else 8


class JpegStream:
    """write(band) HxWxC uint8 bands (C = 1 or 3) top to bottom, then close().

    `encode(image, file, first)` saves one strip with Pillow: the same quality and subsampling
    for every strip, `restart_marker_rows=1`, and the metadata (EXIF, ICC, DPI) only when
    `first`. The caller opens `f` (atomically: a failure leaves no file)."""

    def __init__(
        self, f: IO[bytes], *, width: int, height: int, channels: int, mcu: int, encode: Encode
    ) -> None:
        self.f, self.height, self.channels = f, height, channels
        self.encode = encode
        per_row = width * channels
        self.strip_rows = max(mcu, STRIP_BYTES // per_row // mcu * mcu)
        self.buffer = np.empty((min(self.strip_rows, height), width, channels), np.uint8)
        self.held = 0  # rows in the buffer
        self.rows = 0  # rows written to the file
        self.tables: bytes | None = None  # the first strip's tables, which every strip must share
        self.restarts = 0  # restart markers written so far

    def write(self, band: np.ndarray) -> None:
        done = 0
        while done < band.shape[0]:
            take = min(band.shape[0] - done, len(self.buffer) - self.held)
            self.buffer[self.held : self.held + take] = band[done : done + take]
            self.held += take
            done += take
            if self.held == len(self.buffer) and self.rows + self.held < self.height:
                self._strip(last=False)

    def close(self) -> None:
        if self.rows + self.held != self.height:
            raise ValueError(f"JPEG stream got {self.rows + self.held} rows of {self.height}")
        self._strip(last=True)
        self.f.write(b"\xff\xd9")

    def _strip(self, *, last: bool) -> None:
        rows = self.buffer[: self.held]
        strip = Image.fromarray(rows[..., 0] if self.channels == 1 else rows)
        out = io.BytesIO()
        self.encode(strip, out, self.tables is None)
        header, tables, scan, at = _split(out.getbuffer())
        if self.tables is None:
            self.tables = tables
            self.f.write(header[:at] + self.height.to_bytes(2, "big") + header[at + 2 :])
        elif tables != self.tables:
            raise RuntimeError("JPEG strips were encoded with different tables")
        data = np.frombuffer(scan, np.uint8).copy()
        markers = np.flatnonzero((data[:-1] == 0xFF) & ((data[1:] & 0xF8) == 0xD0)) + 1
        data[markers] = 0xD0 + (self.restarts + np.arange(len(markers))) % 8
        self.restarts += len(markers)
        self.f.write(data.data)
        if not last:
            self.f.write(bytes((0xFF, 0xD0 + self.restarts % 8)))
            self.restarts += 1
        self.rows += self.held
        self.held = 0


def _split(jpeg: memoryview) -> tuple[bytes, bytes, bytes, int]:
    """(everything up to the scan data, the tables and frame/scan headers with the frame's height
    blanked, the entropy-coded scan data, where the frame's height is) of one baseline JPEG as
    libjpeg writes it."""
    b = bytes(jpeg)
    if b[:2] != b"\xff\xd8" or b[-2:] != b"\xff\xd9":
        raise RuntimeError("Pillow wrote no JPEG")
    pos, tables, height_at = 2, [], 0
    while True:
        if b[pos] != 0xFF:
            raise RuntimeError("unexpected bytes between JPEG segments")
        kind = b[pos + 1]
        end = pos + 2 + int.from_bytes(b[pos + 2 : pos + 4], "big")
        segment = b[pos:end]
        if kind in _SOF:
            segment, height_at = segment[:5] + b"\x00\x00" + segment[7:], pos + 5
        if not 0xE0 <= kind <= 0xEF and kind != 0xFE:  # not APPn or a comment: tables, headers
            tables.append(segment)
        if kind == _SOS:
            return b[:end], b"".join(tables), b[end:-2], height_at
        pos = end
