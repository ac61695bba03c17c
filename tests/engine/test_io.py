from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms, ImageOps

from engine.errors import ImageError
from engine.imaging import io as imgio
from engine.imaging.io import ImageData, read_image, write_image

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _u8(shape: tuple[int, ...]) -> np.ndarray:
    return _rng().integers(0, 256, shape, dtype=np.uint8)


def _u16(shape: tuple[int, ...]) -> np.ndarray:
    return _rng().integers(0, 65536, shape).astype(np.uint16)


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).numpy()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png16_all_filters(arr: np.ndarray) -> bytes:
    """A 16-bit PNG whose rows use each of the five filter types in turn (None, Sub, Up, Average,
    Paeth), encoded here independently of engine/imaging/io.py."""
    h, w, c = arr.shape
    bpp = 2 * c
    rows = [bytes(arr[y].astype(">u2").tobytes()) for y in range(h)]
    out, prev = [], bytes(len(rows[0]))
    for y, row in enumerate(rows):
        kind = y % 5
        filt = bytearray()
        for i, x in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            cc = prev[i - bpp] if i >= bpp else 0
            if kind == 0:
                pred = 0
            elif kind == 1:
                pred = a
            elif kind == 2:
                pred = b
            elif kind == 3:
                pred = (a + b) // 2
            else:
                p = a + b - cc
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - cc)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else cc
            filt.append((x - pred) % 256)
        out.append(bytes([kind]) + bytes(filt))
        prev = row
    color_type = {3: 2, 4: 6, 2: 4}[c]
    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"".join(out)))
        + _png_chunk(b"IEND", b"")
    )


def _raw_tiff16(arr: np.ndarray, big_endian: bool) -> bytes:
    """An uncompressed 16-bit RGB TIFF in either byte order."""
    h, w, c = arr.shape
    e = ">" if big_endian else "<"
    data = arr.astype(e + "u2").tobytes()
    bps_off = 8 + len(data)
    ifd_off = bps_off + 2 * c
    tags = [
        (256, 3, 1, struct.pack(e + "HH", w, 0)),
        (257, 3, 1, struct.pack(e + "HH", h, 0)),
        (258, 3, c, struct.pack(e + "I", bps_off)),
        (259, 3, 1, struct.pack(e + "HH", 1, 0)),
        (262, 3, 1, struct.pack(e + "HH", 2, 0)),
        (273, 4, 1, struct.pack(e + "I", 8)),
        (277, 3, 1, struct.pack(e + "HH", c, 0)),
        (278, 3, 1, struct.pack(e + "HH", h, 0)),
        (279, 4, 1, struct.pack(e + "I", len(data))),
    ]
    header = (b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(e + "I", ifd_off)
    ifd = struct.pack(e + "H", len(tags))
    ifd += b"".join(struct.pack(e + "HHI", t, ty, n) + v for t, ty, n, v in tags)
    return header + data + struct.pack(e + f"{c}H", *([16] * c)) + ifd + struct.pack(e + "I", 0)


def _image(rgb: np.ndarray, alpha: np.ndarray | None = None, **kw: object) -> ImageData:
    t = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))
    a = None if alpha is None else torch.from_numpy(np.ascontiguousarray(alpha[None]))
    return ImageData(t, a, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ 8-bit


def test_rgb_png_roundtrip_keeps_pixels_icc_exif_dpi(tmp_path: Path) -> None:
    arr = _u8((9, 13, 3))
    exif = Image.Exif()
    exif[0x010F] = "SRStudioTest"
    src = tmp_path / "a.png"
    Image.fromarray(arr).save(src, icc_profile=SRGB, exif=exif.tobytes(), dpi=(300, 300))
    img = read_image(src)
    assert (img.width, img.height, img.bit_depth, img.grayscale) == (13, 9, 8, False)
    assert img.alpha is None and img.source_format == "PNG"
    assert np.array_equal(np.round(_hwc(img.rgb) * 255).astype(np.uint8), arr)
    assert img.icc_profile == SRGB
    assert img.dpi is not None and img.dpi[0] == pytest.approx(300, abs=0.01)
    out = tmp_path / "b.png"
    write_image(out, img)
    with Image.open(out) as back:
        assert back.mode == "RGB" and np.array_equal(np.asarray(back), arr)
        assert back.info["icc_profile"] == SRGB
        assert back.getexif()[0x010F] == "SRStudioTest"
        assert back.info["dpi"][0] == pytest.approx(300, abs=0.01)


def test_grayscale_stays_single_channel(tmp_path: Path) -> None:
    arr = _u8((6, 7))
    Image.fromarray(arr, "L").save(tmp_path / "g.png")
    img = read_image(tmp_path / "g.png")
    assert img.grayscale and img.rgb.shape == (3, 6, 7)
    assert torch.equal(img.rgb[0], img.rgb[1]) and torch.equal(img.rgb[0], img.rgb[2])
    for ext, mode in (("png", "L"), ("jpg", "L"), ("tiff", "L"), ("webp", "RGB")):
        write_image(tmp_path / f"o.{ext}", img)
        with Image.open(tmp_path / f"o.{ext}") as back:
            assert back.mode == mode, ext
    with Image.open(tmp_path / "o.png") as back:
        assert np.array_equal(np.asarray(back), arr)


def test_la_and_rgba_alpha_kept(tmp_path: Path) -> None:
    la = np.stack([_u8((5, 6)), np.linspace(0, 255, 30).reshape(5, 6).astype(np.uint8)], -1)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    img = read_image(tmp_path / "la.png")
    assert img.grayscale and img.alpha is not None
    assert np.array_equal(np.round(img.alpha[0].numpy() * 255).astype(np.uint8), la[..., 1])
    write_image(tmp_path / "la_out.png", img)
    with Image.open(tmp_path / "la_out.png") as back:
        assert back.mode == "LA" and np.array_equal(np.asarray(back), la)
    rgba = _u8((4, 5, 4))
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.webp", lossless=True)
    img = read_image(tmp_path / "rgba.webp")
    write_image(tmp_path / "rgba_out.tiff", img)
    with Image.open(tmp_path / "rgba_out.tiff") as back:
        assert back.mode == "RGBA" and np.array_equal(np.asarray(back), rgba)


def test_palette_with_and_without_transparency(tmp_path: Path) -> None:
    arr = np.zeros((4, 4), np.uint8)
    arr[1:3, 1:3] = 1
    pal = Image.fromarray(arr, "P")
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.save(tmp_path / "t.gif", transparency=0)
    pal.save(tmp_path / "o.png")
    img = read_image(tmp_path / "t.gif")
    assert img.alpha is not None and not img.grayscale
    assert img.alpha[0, 0, 0] == 0 and img.alpha[0, 1, 1] == 1
    assert img.rgb[:, 1, 1].tolist() == [1.0, 0.0, 0.0]
    opaque = read_image(tmp_path / "o.png")
    assert opaque.alpha is None and opaque.rgb[:, 2, 2].tolist() == [1.0, 0.0, 0.0]


def test_first_frame_of_animated_gif(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 6), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=50)
    img = read_image(tmp_path / "a.gif")
    assert img.rgb[:, 3, 3].tolist() == [1.0, 0.0, 0.0]


def test_transparency_key_of_rgb_png_becomes_alpha(tmp_path: Path) -> None:
    arr = np.full((3, 3, 3), 200, np.uint8)
    arr[1, 1] = (10, 20, 30)
    Image.fromarray(arr).save(tmp_path / "k.png", transparency=(10, 20, 30))
    img = read_image(tmp_path / "k.png")
    assert img.alpha is not None and img.alpha[0, 1, 1] == 0 and img.alpha[0, 0, 0] == 1


def test_cmyk_jpeg_becomes_rgb_without_cmyk_profile(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red ink-wise
    fake_cmyk_icc = SRGB[:16] + b"CMYK" + SRGB[20:]  # unusable as a transform: dropped
    cmyk.save(tmp_path / "c.jpg", quality=100, icc_profile=fake_cmyk_icc)
    img = read_image(tmp_path / "c.jpg")
    assert img.icc_profile is None and not img.grayscale and img.alpha is None
    red = img.rgb[:, 4, 4]
    assert red[0] > 0.9 and red[1] < 0.1 and red[2] < 0.1
    write_image(tmp_path / "c_out.jpg", img)
    with Image.open(tmp_path / "c_out.jpg") as back:
        assert back.mode == "RGB" and "icc_profile" not in back.info


def test_rgb_icc_on_cmyk_or_gray_pixels_is_not_written(tmp_path: Path) -> None:
    gray = _image(np.full((4, 4, 3), 0.5, np.float32), grayscale=True, icc_profile=SRGB)
    write_image(tmp_path / "g.png", gray)
    with Image.open(tmp_path / "g.png") as back:
        assert back.mode == "L" and "icc_profile" not in back.info
    Image.new("L", (3, 3), 9).save(tmp_path / "l_rgb_icc.png", icc_profile=SRGB)
    assert read_image(tmp_path / "l_rgb_icc.png").icc_profile is None


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_applied_and_reset(tmp_path: Path, orientation: int) -> None:
    arr = _u8((4, 7, 3))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Maker"
    src = tmp_path / "o.png"
    Image.fromarray(arr).save(src, exif=exif.tobytes(), dpi=(100, 200))
    expected = np.asarray(ImageOps.exif_transpose(Image.open(src)))
    img = read_image(src)
    assert np.array_equal(np.round(_hwc(img.rgb) * 255).astype(np.uint8), expected)
    swapped = orientation in (5, 6, 7, 8)
    assert img.dpi is not None and img.dpi[0] == pytest.approx(200 if swapped else 100, abs=0.01)
    back = Image.Exif()
    back.load(img.exif)
    assert back.get(0x0112) == 1 and back[0x010F] == "Maker"


def test_rotated_jpeg_with_icc(tmp_path: Path) -> None:
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :10] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise
    Image.fromarray(arr).save(tmp_path / "r.jpg", exif=exif.tobytes(), icc_profile=SRGB)
    img = read_image(tmp_path / "r.jpg")
    assert (img.width, img.height) == (10, 20) and img.icc_profile == SRGB
    assert img.rgb[:, 2, 5].min() > 0.9 and img.rgb[:, 17, 5].max() < 0.1  # white on top now
    write_image(tmp_path / "r_out.jpg", img)
    with Image.open(tmp_path / "r_out.jpg") as back:
        assert back.size == (10, 20) and back.info["icc_profile"] == SRGB
        assert back.getexif().get(0x0112) == 1


# ----------------------------------------------------------------------------------- 16-bit


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("ext", ["png", "tiff"])
def test_16bit_roundtrip_exact(tmp_path: Path, channels: int, ext: str) -> None:
    arr = _u16((5, 7, channels))
    gray = channels <= 2
    color = np.repeat(arr[..., :1], 3, 2) if gray else arr[..., :3]
    alpha = arr[..., -1] if channels in (2, 4) else None
    img = _image(
        color.astype(np.float32) / 65535,
        None if alpha is None else alpha.astype(np.float32) / 65535,
        bit_depth=16,
        grayscale=gray,
        dpi=(150.0, 150.0),
    )
    write_image(tmp_path / f"x.{ext}", img)
    back = read_image(tmp_path / f"x.{ext}")
    assert back.bit_depth == 16 and back.dpi is not None
    assert back.dpi[0] == pytest.approx(150, abs=0.05)  # PNG stores pixels per metre
    assert np.array_equal(np.round(_hwc(back.rgb) * 65535).astype(np.uint16), color)
    if alpha is None:
        assert back.alpha is None
    else:
        assert back.alpha is not None
        assert np.array_equal(np.round(back.alpha[0].numpy() * 65535).astype(np.uint16), alpha)
    # gray+alpha TIFF is written as RGBA (Pillow cannot read 16-bit LA TIFFs)
    assert back.grayscale == (gray and not (ext == "tiff" and alpha is not None))


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_16bit_png_any_filter_decoded_exactly(tmp_path: Path, channels: int) -> None:
    arr = _u16((10, 6, channels))
    (tmp_path / "f.png").write_bytes(_png16_all_filters(arr))
    img = read_image(tmp_path / "f.png")
    assert img.bit_depth == 16
    color = np.repeat(arr[..., :1], 3, 2) if channels == 2 else arr[..., :3]
    assert np.array_equal(np.round(_hwc(img.rgb) * 65535).astype(np.uint16), color)
    if channels != 3:
        got = np.round(img.alpha[0].numpy() * 65535).astype(np.uint16)  # type: ignore[index]
        assert np.array_equal(got, arr[..., -1])


@pytest.mark.parametrize("big_endian", [False, True])
def test_uncompressed_16bit_tiff_both_byte_orders(tmp_path: Path, big_endian: bool) -> None:
    arr = _u16((3, 5, 3))
    (tmp_path / "t.tif").write_bytes(_raw_tiff16(arr, big_endian))
    img = read_image(tmp_path / "t.tif")
    assert img.bit_depth == 16
    assert np.array_equal(np.round(_hwc(img.rgb) * 65535).astype(np.uint16), arr)


def test_16bit_gray_png_from_pillow_and_to_jpeg(tmp_path: Path) -> None:
    arr = _u16((6, 8))
    Image.fromarray(arr).save(tmp_path / "g16.png")
    img = read_image(tmp_path / "g16.png")
    assert img.bit_depth == 16 and img.grayscale
    assert np.array_equal(np.round(img.rgb[0].numpy() * 65535).astype(np.uint16), arr)
    write_image(tmp_path / "g16.jpg", img, quality=100)
    with Image.open(tmp_path / "g16.jpg") as back:
        assert back.mode == "L"
        assert np.abs(np.asarray(back).astype(int) - arr / 257).max() < 3


# ----------------------------------------------------------------------------------- writing


def test_jpeg_composites_alpha_over_white(tmp_path: Path) -> None:
    rgb = np.zeros((4, 4, 3), np.float32)
    alpha = np.ones((4, 4), np.float32)
    alpha[0, 0] = 0.0
    write_image(tmp_path / "a.jpg", _image(rgb, alpha), quality=100)
    with Image.open(tmp_path / "a.jpg") as back:
        px = np.asarray(back)
        assert back.mode == "RGB" and px[0, 0].min() > 200 and px[3, 3].max() < 60


def test_quality_changes_jpeg_and_webp_size(tmp_path: Path) -> None:
    img = _image(_u8((32, 32, 3)).astype(np.float32) / 255)
    for ext in ("jpg", "webp"):
        write_image(tmp_path / f"lo.{ext}", img, quality=10)
        write_image(tmp_path / f"hi.{ext}", img, quality=95)
        assert (tmp_path / f"lo.{ext}").stat().st_size < (tmp_path / f"hi.{ext}").stat().st_size
    write_image(tmp_path / "x.bin", img, format="jpg")
    with Image.open(tmp_path / "x.bin") as back:
        assert back.format == "JPEG"


def test_unknown_output_format_and_bad_quality(tmp_path: Path) -> None:
    img = _image(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ImageError, match="png, jpg, webp or tiff"):
        write_image(tmp_path / "a.xyz", img)
    with pytest.raises(ImageError, match="quality"):
        write_image(tmp_path / "a.jpg", img, quality=0)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_nothing_and_keeps_old_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "keep.png"
    target.write_bytes(b"old contents")

    def broken(f, *args, **kwargs):  # type: ignore[no-untyped-def]
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(imgio, "_encode", broken)
    with pytest.raises(ImageError, match="No space left"):
        write_image(target, _image(np.zeros((2, 2, 3), np.float32)))
    assert target.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_write_into_missing_folder_is_an_image_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="cannot write"):
        write_image(tmp_path / "nope" / "a.png", _image(np.zeros((2, 2, 3), np.float32)))


# ------------------------------------------------------------------------------------ errors


def test_read_errors_have_clear_messages(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello, I am not an image\n")
    good = io.BytesIO()
    Image.fromarray(_u8((64, 64, 3))).save(good, "PNG")
    (tmp_path / "trunc.png").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    cases = {
        tmp_path / "missing.png": "not found",
        tmp_path / "empty.png": "empty file",
        tmp_path / "text.png": "not an image",
        tmp_path / "trunc.png": "corrupt or truncated",
        tmp_path: "is a folder",
    }
    for path, message in cases.items():
        with pytest.raises(ImageError, match=message):
            read_image(path)


def _bomb_png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def test_decompression_bomb_refused_from_header(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "bomb.png").write_bytes(_bomb_png(40_000, 40_000))  # 1.6 gigapixels
    (tmp_path / "mid.png").write_bytes(_bomb_png(12_000, 10_000))  # 120 MP: over 100 MP

    decoded = []
    monkeypatch.setattr(imgio, "_decode", lambda *a: decoded.append(a))
    for name in ("bomb.png", "mid.png"):
        with pytest.raises(ImageError, match="decompression bomb"):
            read_image(tmp_path / name)
    with pytest.raises(ImageError, match="12000x10000"):
        read_image(tmp_path / "mid.png")
    assert decoded == []  # refused before any pixel was decoded


def test_pixel_limit_is_configurable(tmp_path: Path, monkeypatch) -> None:
    Image.fromarray(_u8((20, 30, 3))).save(tmp_path / "s.png")
    with pytest.raises(ImageError, match="30x20"):
        read_image(tmp_path / "s.png", max_pixels=599)
    assert read_image(tmp_path / "s.png", max_pixels=600).width == 30
    # A limit above Pillow's own (here lowered to 200, so Pillow alone refuses 600 > 2 * 200)
    # lifts Pillow's for the read only.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(tmp_path / "s.png")
    assert read_image(tmp_path / "s.png", max_pixels=None).height == 20
    assert read_image(tmp_path / "s.png", max_pixels=1000).height == 20
    with pytest.raises(ImageError, match="decompression bomb"):
        read_image(tmp_path / "s.png", max_pixels=100)
    assert Image.MAX_IMAGE_PIXELS == 200


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_8bit_pixels_are_made_float_in_chunks_of_rows_exactly(tmp_path, mode: str) -> None:
    """read_image converts 8-bit pixels to float32 a chunk of rows at a time (one float copy of a
    large photo, not three); the values are exactly those of uint8 / 255 in float32."""
    rng = np.random.default_rng(7)
    shape = (600, 700, 3) if mode == "RGB" else (600, 700)
    arr = rng.integers(0, 256, shape, dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    assert imgio.QUANTIZE_CHUNK < 600 * 700 * 3  # more than one chunk
    rgb = read_image(tmp_path / "a.png").rgb
    planes = arr.astype(np.float32) / 255.0
    planes = np.repeat(planes[..., None], 3, axis=2) if mode == "L" else planes
    assert rgb.dtype == torch.float32 and rgb.is_contiguous()
    assert torch.equal(rgb, torch.from_numpy(np.ascontiguousarray(planes.transpose(2, 0, 1))))
