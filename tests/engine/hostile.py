"""Crafted image files and a booby-trapped Ghostscript, built by the tests themselves.

The trap: a program called `gs` first on PATH that creates a marker file when run. Pillow hands
EPS content to whatever `gs` it finds, so a marker file means some file made SR Studio run a
program. Every test that opens a crafted file asserts that the marker never appears.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image

from engine.training import TrainConfig, train

POSTSCRIPT = b"""%!PS-Adobe-3.0 EPSF-3.0
%%BoundingBox: 0 0 8 8
%%EndComments
/f (pwned) (w) file def f (ran) writestring f closefile
{ } loop
showpage
"""
# A DOS EPS binary header (magic, PostScript offset and length, no previews) before PostScript.
BINARY_EPS = (
    b"\xc5\xd0\xd3\xc6" + struct.pack("<6I", 30, len(POSTSCRIPT), 0, 0, 0, 0) + b"\xff\xff"
) + POSTSCRIPT


class Trap:
    """A fake `gs` on PATH; `sprung` tells whether anything ran it."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.marker = folder / "gs-was-run"
        self.program = folder / "gs"
        self.program.write_text(f'#!/bin/sh\ntouch "{self.marker}"\necho 10.0\n')
        self.program.chmod(self.program.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP)
        self.path = f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"

    @property
    def sprung(self) -> bool:
        return self.marker.exists()


@pytest.fixture
def trap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trap:
    """The fake `gs` first on PATH, and Pillow's Ghostscript lookup reset so that Pillow would
    find it: what stands between a crafted file and the program is then SR Studio's own check."""
    t = Trap(tmp_path / "trap-bin")
    monkeypatch.setenv("PATH", t.path)
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", None)
    monkeypatch.setattr(EpsImagePlugin, "gs_windows_binary", None)
    return t


def noise(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def encoded(arr: np.ndarray, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **options)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_size(width: int, height: int, *, depth: int = 8, color_type: int = 2) -> bytes:
    """A PNG whose header claims width x height but holds one compressed row of zeros."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def jpeg_with_size(width: int, height: int) -> bytes:
    """A real small JPEG whose SOF0 frame header is rewritten to claim width x height."""
    data = bytearray(encoded(noise((8, 8, 3)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def gif_with_size(width: int, height: int) -> bytes:
    data = bytearray(encoded(noise((8, 8)), "GIF"))
    struct.pack_into("<HH", data, 6, width, height)  # logical screen
    image = data.index(b"\x2c")  # image descriptor
    struct.pack_into("<HH", data, image + 5, width, height)
    return bytes(data)


def bmp_with_size(width: int, height: int) -> bytes:
    data = bytearray(encoded(noise((8, 8, 3)), "BMP"))
    struct.pack_into("<ii", data, 18, width, height)
    return bytes(data)


def tiff_with_size(width: int, height: int) -> bytes:
    """An uncompressed TIFF whose width/length tags are rewritten (LONG values)."""
    data = bytearray(encoded(noise((8, 8, 3)), "TIFF"))
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    for i in range(count):
        entry = ifd + 2 + 12 * i
        tag, typ = struct.unpack_from("<HH", data, entry)
        if tag in (256, 257):
            value = width if tag == 256 else height
            struct.pack_into("<HHII", data, entry, tag, 4, 1, value)
    return bytes(data)


def png16_gray(values: np.ndarray) -> bytes:
    """A 16-bit grayscale PNG, encoded here (filter 0), independent of the project's encoder."""
    h, w = values.shape
    raw = b"".join(b"\x00" + values[y].astype(">u2").tobytes() for y in range(h))
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0))
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every regular file under `folder` (symlinks not followed), by relative path."""
    out = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            if path.is_file() and not path.is_symlink():
                out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def train_config(root: Path, out: Path, **kw) -> TrainConfig:
    """A tiny A2F-SD x2 run on the folders hr/ and val/ of `root` (the resume tests' run)."""
    base = dict(
        model="A2F-SD",
        scale=2,
        hr_dirs=(str(root / "hr"),),
        val_dir=str(root / "val"),
        patch_size=8,
        batch_size=2,
        iterations=3,
        val_every=100,
        log_every=1,
        checkpoint_every=1,
        ema=0.9,
        output=str(out),
        device="cpu",
    )
    return TrainConfig(**(base | kw))


def stopped_training(root: Path) -> Path:
    """A tiny run in `root` (hr/ and val/ made there) stopped after two iterations: its output
    (the resume state is beside it)."""
    rng = np.random.default_rng(0)
    for folder, count in (("hr", 3), ("val", 1)):
        (root / folder).mkdir()
        for i in range(count):
            arr = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / folder / f"{i}.png")
    out = root / "run.safetensors"
    calls = iter(range(100))
    train(train_config(root, out), should_stop=lambda: next(calls) >= 2)
    return out
