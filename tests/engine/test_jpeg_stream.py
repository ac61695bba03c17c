"""JPEG written a strip at a time (engine.imaging.jpeg_stream) against Pillow's whole-image JPEG."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from engine.checkpoints import load_model
from engine.errors import Cancelled, ImageError
from engine.imaging import jpeg_stream
from engine.imaging.io import ImageData, read_image, write_image
from engine.imaging.jpeg_stream import JpegStream, mcu_rows
from engine.imaging.stream_writers import write_bands
from engine.inference.upscaler import UpscaleOptions, Upscaler


def _pixels(h: int, w: int, channels: int, seed: int) -> np.ndarray:
    """Smooth-ish noise: runs of equal bytes and 0xFF in the scan data, as photos give."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (h, w, channels))
    return (np.cumsum(noise, axis=1) // np.arange(1, w + 1)[None, :, None]).astype(np.uint8)


def _options(quality: int) -> dict:
    return {"quality": quality, "subsampling": 0 if quality >= 90 else 2, "restart_marker_rows": 1}


def _streamed(arr: np.ndarray, quality: int, cuts: list[int], dpi: tuple[int, int]) -> bytes:
    h, w, c = arr.shape

    def encode(strip: Image.Image, out, first: bool) -> None:
        strip.save(out, "JPEG", **_options(quality), **({"dpi": dpi} if first else {}))

    out = io.BytesIO()
    mcu = mcu_rows(c, _options(quality)["subsampling"])
    stream = JpegStream(out, width=w, height=h, channels=c, mcu=mcu, encode=encode)
    for top, bottom in zip([0, *cuts], [*cuts, h], strict=True):
        stream.write(arr[top:bottom])
    stream.close()
    return out.getvalue()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    h=st.integers(1, 90),
    w=st.integers(1, 70),
    channels=st.sampled_from([1, 3]),
    quality=st.sampled_from([60, 89, 90, 100]),
    strip_bytes=st.integers(1, 3000),
    data=st.data(),
)
def test_joined_strips_are_pillows_whole_image_bytes(
    h: int, w: int, channels: int, quality: int, strip_bytes: int, data
) -> None:
    arr = _pixels(h, w, channels, seed=h * w)
    cuts = (
        sorted(set(data.draw(st.lists(st.integers(1, max(1, h - 1)), max_size=5)))) if h > 1 else []
    )
    whole = io.BytesIO()
    Image.fromarray(arr[..., 0] if channels == 1 else arr).save(
        whole, "JPEG", **_options(quality), dpi=(300, 300)
    )
    old = jpeg_stream.STRIP_BYTES
    jpeg_stream.STRIP_BYTES = strip_bytes  # down to one MCU row a strip
    try:
        assert _streamed(arr, quality, cuts, (300, 300)) == whole.getvalue()
    finally:
        jpeg_stream.STRIP_BYTES = old


def test_more_than_eight_strips_count_their_restart_markers_on(monkeypatch) -> None:
    """Restart markers number 0-7 and wrap: 40 MCU rows in 20 strips decode to the same pixels."""
    monkeypatch.setattr(jpeg_stream, "STRIP_BYTES", 1)
    arr = _pixels(320, 24, 3, seed=3)
    streamed = _streamed(arr, 75, [5, 150], (72, 72))
    whole = io.BytesIO()
    Image.fromarray(arr).save(whole, "JPEG", quality=75, subsampling=2)  # no restart markers
    with Image.open(io.BytesIO(streamed)) as a, Image.open(whole) as b:
        assert a.size == (24, 320)
        assert np.array_equal(np.asarray(a), np.asarray(b))


def _image(h: int, w: int) -> ImageData:
    torch.manual_seed(0)
    return ImageData(
        rgb=torch.rand(3, h, w),
        alpha=None,
        bit_depth=8,
        grayscale=False,
        icc_profile=None,
        exif=None,
        dpi=(240.0, 240.0),
    )


def test_upscaled_jpeg_is_the_whole_image_files_bytes(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(jpeg_stream, "STRIP_BYTES", 500)  # several strips
    exif = Image.Exif()
    exif[0x010F] = "SR Studio test"  # Make
    img = _image(37, 29)
    img.exif = exif.tobytes()
    up = Upscaler(load_model("bicubic", scale=2), UpscaleOptions(tile=8))
    write_image(tmp_path / "whole.jpg", up.upscale_image(img))
    _, warnings = up.upscale_to_file(img, tmp_path / "streamed.jpg")
    assert warnings == []
    assert (tmp_path / "streamed.jpg").read_bytes() == (tmp_path / "whole.jpg").read_bytes()
    back = read_image(tmp_path / "streamed.jpg")
    assert back.dpi == pytest.approx((480.0, 480.0))  # the same print size at x2
    assert back.exif and b"SR Studio test" in back.exif


def test_cancel_after_strips_were_written_leaves_no_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(jpeg_stream, "STRIP_BYTES", 1)
    written: list[int] = []
    real_strip = JpegStream._strip

    def counting(self, *, last: bool) -> None:
        real_strip(self, last=last)
        written.append(1)

    monkeypatch.setattr(JpegStream, "_strip", counting)
    seen: list[int] = []

    def stop() -> bool:
        seen.append(1)
        return len(seen) > 30

    up = Upscaler(load_model("bicubic", scale=2), UpscaleOptions(tile=4))
    with pytest.raises(Cancelled):
        up.upscale_to_file(_image(40, 40), tmp_path / "c.jpg", should_stop=stop)
    assert written and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("ext", "h", "w", "limit"), [("jpg", 70_000, 1, "65,500"), ("webp", 1, 16_384, "16,383")]
)
def test_an_image_too_large_for_the_format_is_refused_before_any_band_is_made(
    tmp_path, ext: str, h: int, w: int, limit: str
) -> None:
    made: list[int] = []

    def bands(layout):
        made.append(1)
        yield np.zeros((1, 1, 3), np.uint8)

    big = _image(h, w)
    with pytest.raises(ImageError, match=f"at most {limit} pixels a side.*PNG or TIFF"):
        write_bands(tmp_path / f"t.{ext}", big, bands)
    with pytest.raises(ImageError, match=f"at most {limit} pixels a side"):
        write_image(tmp_path / f"t.{ext}", big)
    assert made == [] and list(tmp_path.iterdir()) == []
