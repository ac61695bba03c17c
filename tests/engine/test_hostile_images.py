"""Crafted and broken image files at the one door every image goes through (read_image and the
functions built on it): nothing runs, nothing but ImageError (or Cancelled) comes out, and what
the header claims is checked before anything is decoded."""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from engine.errors import Cancelled, ImageError
from engine.evaluate import load_pairs
from engine.imaging.io import read_image, read_rgb_uint8
from engine.imaging.safe_open import image_size
from engine.training.data import scan
from tests.engine.hostile import (
    BINARY_EPS,
    POSTSCRIPT,
    bmp_with_size,
    encoded,
    gif_with_size,
    jpeg_with_size,
    noise,
    png16_gray,
    png_with_size,
    tiff_with_size,
)


@pytest.mark.parametrize("name", ["photo.jpg", "photo.png", "scan.tif", "photo.eps", "noext"])
@pytest.mark.parametrize("content", [POSTSCRIPT, BINARY_EPS, b"\n\n  " + POSTSCRIPT])
def test_postscript_never_reaches_ghostscript(trap, tmp_path: Path, name: str, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageError, match="PostScript") as e:
        read_image(path)
    assert "\n" not in str(e.value) and name in str(e.value)
    with pytest.raises(ImageError):
        image_size(path)
    with pytest.raises(ImageError):
        read_rgb_uint8(path)
    assert not trap.sprung
    assert path.read_bytes() == content


def test_ghostscript_is_off_for_the_whole_process(tmp_path: Path, monkeypatch):
    """Second lock: even a plain Pillow open elsewhere in the process cannot start Ghostscript
    once the engine is imported."""
    from tests.engine.hostile import Trap

    t = Trap(tmp_path / "bin")
    monkeypatch.setenv("PATH", t.path)
    path = tmp_path / "x.eps"
    path.write_bytes(POSTSCRIPT)
    with Image.open(path) as im, pytest.raises(OSError, match="Ghostscript"):
        im.load()
    assert not t.sprung


def test_polyglot_png_with_postscript_tail_is_just_a_png(trap, tmp_path: Path):
    arr = noise((6, 7, 3))
    path = tmp_path / "poly.png"
    path.write_bytes(encoded(arr, "PNG") + POSTSCRIPT)
    img = read_image(path)
    assert img.source_format == "PNG"
    assert np.array_equal(read_rgb_uint8(path), arr)
    assert not trap.sprung


@pytest.mark.parametrize(
    "content, kind",
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF"),
        (b"PK\x03\x04" + bytes(26) + b"a.png", "zip archive"),
        (b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>", "SVG"),
        (b"#!/bin/sh\necho hi\n", "script"),
        (b"\x7fELF\x02\x01\x01" + bytes(9), "program"),
        (b"P6\n4 4\n255\n" + bytes(48), "PNM"),
        (b"hello, I am text", "unknown kind"),
    ],
)
def test_other_kinds_of_file_are_named_not_decoded(tmp_path: Path, content: bytes, kind: str):
    path = tmp_path / "image.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=kind):
        read_image(path)


@pytest.mark.parametrize(
    "make", [png_with_size, jpeg_with_size, gif_with_size, bmp_with_size, tiff_with_size]
)
def test_headers_claiming_huge_images_are_refused_before_decoding(tmp_path: Path, make):
    path = tmp_path / "liar.img"
    path.write_bytes(make(40_000, 30_000))
    t0 = time.perf_counter()
    with pytest.raises(ImageError, match="decompression bomb"):
        read_image(path)
    with pytest.raises(ImageError, match="decompression bomb"):
        read_rgb_uint8(path)
    # nothing of 1.2 gigapixels was decoded: the refusal comes from the header
    assert time.perf_counter() - t0 < 30


def test_a_jpeg_of_thousands_of_scans_is_refused(tmp_path: Path):
    """Each scan of a progressive JPEG walks the image again: a scan bomb is small and slow."""
    buf = io.BytesIO()
    Image.fromarray(noise((64, 64, 3))).save(buf, "JPEG", progressive=True)
    data = buf.getvalue()
    last_scan = data[data.rindex(b"\xff\xda") : -2]
    path = tmp_path / "scans.jpg"
    path.write_bytes(data[:-2] + last_scan * 1200 + b"\xff\xd9")
    with pytest.raises(ImageError, match="more than 1000 scans"):
        read_image(path)
    (tmp_path / "normal.jpg").write_bytes(data)
    assert read_image(tmp_path / "normal.jpg").width == 64


@pytest.mark.parametrize("make", [png_with_size, tiff_with_size])
def test_headers_claiming_more_pixels_than_the_data_holds(tmp_path: Path, make):
    path = tmp_path / "short.img"
    path.write_bytes(make(900, 700))
    with pytest.raises(ImageError, match="corrupt or truncated|cannot read"):
        read_image(path)


def test_zero_sized_png_header(tmp_path: Path):
    path = tmp_path / "zero.png"
    path.write_bytes(png_with_size(0, 5))
    with pytest.raises(ImageError):
        read_image(path)


def test_decoding_can_be_cancelled(tmp_path: Path):
    path = tmp_path / "big.png"
    path.write_bytes(encoded(noise((1200, 1000, 3)), "PNG", compress_level=0))
    reads = []

    def stop_after_some_reads() -> bool:
        reads.append(1)
        return len(reads) > 3

    with pytest.raises(Cancelled):
        read_image(path, should_stop=stop_after_some_reads)
    assert read_image(path).width == 1000  # the same file decodes when not stopped


def test_16bit_gray_reads_the_same_for_eval_train_and_upscale(tmp_path: Path):
    """16-bit gray used to reach eval through Pillow's convert('RGB'), which clips to 255."""
    values = np.random.default_rng(3).integers(0, 65536, (40, 36)).astype(np.uint16)
    hr16 = tmp_path / "hr16" / "a.png"
    hr16.parent.mkdir()
    hr16.write_bytes(png16_gray(values))
    expected = np.round(values / 65535.0 * 255.0).astype(np.uint8)
    pixels = read_rgb_uint8(hr16)
    assert np.array_equal(pixels, np.repeat(expected[..., None], 3, axis=2))
    (pair,) = load_pairs(hr16.parent, None, 2)
    assert np.array_equal(pair.hr, pixels[:40, :36])
    upscale_view = read_image(hr16)
    assert upscale_view.bit_depth == 16 and upscale_view.grayscale
    assert torch.allclose(upscale_view.rgb[0], torch.from_numpy(values / 65535.0).float())


def test_eval_and_train_refuse_what_upscale_refuses(trap, tmp_path: Path):
    folder = tmp_path / "hr"
    folder.mkdir()
    (folder / "ps.png").write_bytes(POSTSCRIPT)
    (folder / "bomb.png").write_bytes(png_with_size(30_000, 30_000))
    Image.fromarray(noise((64, 64, 3))).save(folder / "good.png")
    with pytest.raises(ImageError):
        load_pairs(folder, None, 2)
    warnings: list[str] = []
    entries = scan([str(folder)], None, 2, 16, warnings.append)
    assert [e.hr.name for e in entries] == ["good.png"]
    assert len(warnings) == 2
    assert any("PostScript" in w for w in warnings)
    assert any("decompression bomb" in w for w in warnings)
    assert not trap.sprung


def test_eval_refuses_hr_images_smaller_than_the_ssim_window(tmp_path: Path):
    folder = tmp_path / "hr"
    folder.mkdir()
    Image.fromarray(noise((12, 12, 3))).save(folder / "tiny.png")
    with pytest.raises(Exception, match=r"too small to measure at x2 \(needs at least 15x15"):
        load_pairs(folder, None, 2)


# ------------------------------------------------------------------ property-based: any bytes

_SEEDS = {
    "png": encoded(noise((5, 6, 3)), "PNG"),
    "png-rgba": encoded(noise((4, 4, 4)), "PNG"),
    "jpeg": encoded(noise((8, 8, 3)), "JPEG"),
    "gif": encoded(noise((5, 5)), "GIF"),
    "bmp": encoded(noise((4, 5, 3)), "BMP"),
    "tiff": encoded(noise((4, 5, 3)), "TIFF"),
    "webp": encoded(noise((6, 6, 3)), "WEBP"),
    "png16": png16_gray(np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000),
}


def _mutated(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    out = bytearray(data)
    for position, value in edits:
        out[position % len(out)] = value
    return bytes(out[:cut] if cut else out)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    seed=st.sampled_from(sorted(_SEEDS)),
    edits=st.lists(st.tuples(st.integers(0, 4096), st.integers(0, 255)), max_size=8),
    cut=st.none() | st.integers(1, 4096),
)
def test_mutated_headers_give_image_errors_only(tmp_path: Path, seed: str, edits, cut):
    path = tmp_path / "fuzz.png"
    path.write_bytes(_mutated(_SEEDS[seed], edits, cut))
    try:
        img = read_image(path, max_pixels=4_000_000)
    except ImageError as e:
        assert "\n" not in str(e)
        return
    assert img.rgb.dtype == torch.float32 and img.rgb.shape[0] == 3
    assert float(img.rgb.min()) >= 0.0 and float(img.rgb.max()) <= 1.0


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    magic=st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"II*\x00"]),
    body=st.binary(max_size=600),
)
def test_random_bodies_behind_a_known_magic_give_image_errors_only(
    tmp_path: Path, magic: bytes, body: bytes
):
    path = tmp_path / "fuzz.img"
    path.write_bytes(magic + body)
    with contextlib.suppress(ImageError):
        read_image(path, max_pixels=4_000_000)
