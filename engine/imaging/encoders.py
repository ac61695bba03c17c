"""PNG and TIFF encoders that take the image a band of rows at a time, so that an output never has
to exist whole in memory.

Why hand-written: Pillow encodes only a whole image, has no 16-bit colour modes, and holds 8-bit
RGB at 4 bytes a pixel; tifffile was not needed for the little that TIFF takes. Both write to an
open binary file (engine.atomic's atomic_open, so a failure or a cancel leaves no partial file).

PNG: 8 or 16 bits, gray / gray+alpha / RGB / RGBA, the 'Up' filter, one zlib stream split into
IDAT chunks as bands arrive; iCCP, pHYs and eXIf chunks. TIFF: little-endian, 8 or 16 bits,
1-4 samples (the last one unassociated alpha for 2 and 4), deflate with the horizontal predictor,
strips of a fixed number of rows; ICC and resolution tags; the IFD goes after the strips and the
header is patched to point at it when the last band is in.
"""

from __future__ import annotations

import struct
import zlib
from typing import IO

import numpy as np

STRIP_BYTES = 1 << 20  # uncompressed bytes per TIFF strip (about; at least one row)
CHUNK_BYTES = 8 << 20  # PNG: rows filtered and compressed at a time, so its buffers stay small


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


class PngStream:
    """write(band) HxWxC uint8 or uint16 bands top to bottom, then close()."""

    def __init__(
        self,
        f: IO[bytes],
        *,
        width: int,
        height: int,
        channels: int,
        depth: int,
        icc: bytes | None = None,
        exif: bytes | None = None,
        dpi: tuple[float, float] | None = None,
        level: int = 6,
    ) -> None:
        self.f, self.height, self.depth = f, height, depth
        self.rows = 0
        self.previous: np.ndarray | None = None  # the last row written, as bytes
        self.z = zlib.compressobj(level)
        color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
        head = [
            b"\x89PNG\r\n\x1a\n",
            _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)),
        ]
        if icc:
            head.append(_png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc)))
        if dpi:
            ppm = [max(1, round(d / 0.0254)) for d in dpi]
            head.append(_png_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
        if exif:
            head.append(_png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
        f.write(b"".join(head))

    def write(self, band: np.ndarray) -> None:
        step = max(1, CHUNK_BYTES // max(1, band[:1].nbytes))
        for top in range(0, band.shape[0], step):
            self._write(band[top : top + step])

    def _write(self, band: np.ndarray) -> None:
        h = band.shape[0]
        big = band.astype(">u2") if self.depth == 16 else band.astype(np.uint8, copy=False)
        rows = np.ascontiguousarray(big).view(np.uint8).reshape(h, -1)
        raw = np.empty((h, rows.shape[1] + 1), np.uint8)
        raw[:, 0] = 2  # filter 'Up': each byte minus the one above it, wrapping
        np.subtract(rows[1:], rows[:-1], out=raw[1:, 1:])
        raw[0, 1:] = rows[0] if self.previous is None else rows[0] - self.previous
        self.previous = rows[-1].copy()
        self.rows += h
        self._idat(self.z.compress(raw.data))

    def close(self) -> None:
        if self.rows != self.height:
            raise ValueError(f"PNG stream got {self.rows} rows of {self.height}")
        self._idat(self.z.flush())
        self.f.write(_png_chunk(b"IEND", b""))

    def _idat(self, data: bytes) -> None:
        if data:
            self.f.write(_png_chunk(b"IDAT", data))


class TiffStream:
    """write(band) HxWxC uint8 or uint16 bands top to bottom, then close()."""

    def __init__(
        self,
        f: IO[bytes],
        *,
        width: int,
        height: int,
        channels: int,
        depth: int,
        icc: bytes | None = None,
        dpi: tuple[float, float] | None = None,
        level: int = 6,
    ) -> None:
        self.f, self.width, self.height, self.channels = f, width, height, channels
        self.depth, self.level = depth, level
        row_bytes = width * channels * depth // 8
        self.rows_per_strip = max(1, min(height, STRIP_BYTES // max(1, row_bytes)))
        self.icc, self.dpi = icc, dpi
        self.pending: list[np.ndarray] = []  # rows not yet in a strip
        self.offsets: list[int] = []
        self.counts: list[int] = []
        self.rows = 0
        self.start = f.tell()
        f.write(b"II*\x00" + struct.pack("<I", 0))  # the IFD offset is patched in close()
        self.position = self.start + 8

    def write(self, band: np.ndarray) -> None:
        self.pending.append(band)
        self.rows += band.shape[0]
        held = sum(b.shape[0] for b in self.pending)
        if held < self.rows_per_strip:
            self.pending[-1] = band.copy()  # a band may be a view its maker reuses
            return
        rows = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
        whole = held // self.rows_per_strip * self.rows_per_strip
        for top in range(0, whole, self.rows_per_strip):
            self._strip(rows[top : top + self.rows_per_strip])
        self.pending = [rows[whole:].copy()] if whole < held else []

    def _strip(self, rows: np.ndarray) -> None:
        dtype = np.uint8 if self.depth == 8 else np.dtype("<u2")
        diff = rows.astype(dtype)  # a copy: predictor 2, differences along each row, wrapping
        diff[:, 1:] -= rows[:, :-1].astype(dtype)
        data = zlib.compress(diff.tobytes(), self.level)
        self.offsets.append(self.position - self.start)
        self.counts.append(len(data))
        pad = b"\x00" if len(data) % 2 else b""
        self.f.write(data + pad)
        self.position += len(data) + len(pad)

    def close(self) -> None:
        if self.pending:
            self._strip(np.concatenate(self.pending))
            self.pending = []
        if self.rows != self.height:
            raise ValueError(f"TIFF stream got {self.rows} rows of {self.height}")
        c = self.channels
        entries: list[tuple[int, int, list[int]]] = [  # (tag, type, values): 3 SHORT, 4 LONG,
            (256, 4, [self.width]),  # 5 RATIONAL, 7 UNDEFINED
            (257, 4, [self.height]),
            (258, 3, [self.depth] * c),
            (259, 3, [8]),
            (262, 3, [1 if c <= 2 else 2]),
            (273, 4, self.offsets),
            (277, 3, [c]),
            (278, 4, [self.rows_per_strip]),
            (279, 4, self.counts),
            (284, 3, [1]),
            (317, 3, [2]),
        ]
        if self.dpi:  # an input that stated no resolution gets none
            res = [(round(d * 1000), 1000) for d in self.dpi]
            entries += [(282, 5, list(res[0])), (283, 5, list(res[1])), (296, 3, [2])]
            entries.sort()
        if c in (2, 4):
            entries.append((338, 3, [2]))
        if self.icc:
            entries.append((34675, 7, list(self.icc)))
        ifd_offset = self.position - self.start
        self.f.write(_ifd(entries, ifd_offset))
        end = self.f.tell()
        self.f.seek(self.start + 4)
        self.f.write(struct.pack("<I", ifd_offset))
        self.f.seek(end)


def _ifd(entries: list[tuple[int, int, list[int]]], offset: int) -> bytes:
    """One little-endian IFD at file offset `offset`, its out-of-line values right after it."""
    values_offset = offset + 2 + 12 * len(entries) + 4
    ifd, values = [struct.pack("<H", len(entries))], []
    fmt = {3: "H", 4: "I", 5: "I", 7: "B"}
    for tag, typ, vals in entries:
        payload = struct.pack(f"<{len(vals)}{fmt[typ]}", *vals)
        count = len(vals) // 2 if typ == 5 else len(vals)
        if len(payload) <= 4:
            field = payload.ljust(4, b"\x00")
        else:
            field = struct.pack("<I", values_offset + sum(len(v) for v in values))
            values.append(payload + (b"\x00" if len(payload) % 2 else b""))
        ifd.append(struct.pack("<HHI", tag, typ, count) + field)
    ifd.append(struct.pack("<I", 0))
    return b"".join(ifd) + b"".join(values)
