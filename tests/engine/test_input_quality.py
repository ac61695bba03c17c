"""engine.imaging.input_quality: the JPEG quality from the tables, the noise from the pixels."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.errors import ImageError, SRStudioError
from engine.imaging.input_quality import (
    CHROMINANCE,
    LITTLE_NOISE,
    LUMINANCE,
    NOISY,
    ZIGZAG,
    InputQuality,
    JpegQuality,
    describe,
    ijg_table,
    inspect_input,
    jpeg_quality,
    noise_sigma,
)
from engine.imaging.io import read_rgb_uint8

SIGMAS = (5, 10, 15, 20)


def _jpeg(image: Image.Image, **options: object) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    buffer.seek(0)
    return Image.open(buffer)


def _random_image(mode: str = "RGB") -> Image.Image:
    pixels = np.random.default_rng(1).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    return Image.fromarray(pixels).convert(mode)


def _add_noise(rgb: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Gaussian noise as a real file holds it: added in float, rounded and clipped to uint8."""
    noisy = rgb + np.random.default_rng(seed).normal(0.0, sigma, rgb.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def _smooth_image(height: int = 160, width: int = 200) -> np.ndarray:
    """A noise-free image with gradients, soft edges and colour: no flat field to make it easy."""
    y, x = np.mgrid[0:height, 0:width] / 40.0
    r = 120 + 60 * np.sin(x) * np.cos(0.7 * y)
    g = 110 + 50 * np.tanh(3 * np.sin(0.5 * x + y))
    b = 90 + 40 * np.cos(0.3 * x * y)
    return np.stack([r, g, b], axis=-1)


# ------------------------------------------------------------------------------ JPEG quality


@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("subsampling", [0, 1, 2])  # 4:4:4, 4:2:2, 4:2:0 (no effect on "L")
def test_quality_is_exact_for_every_pillow_quality(mode: str, subsampling: int) -> None:
    image = _random_image(mode)
    for quality in range(1, 101):
        found = jpeg_quality(_jpeg(image, quality=quality, subsampling=subsampling))
        assert found == JpegQuality(quality, True, 0.0), (mode, subsampling, quality)


def test_the_estimate_reproduces_the_files_tables() -> None:
    """Every quality has its own tables, so the estimate is the one quality that made them."""
    pairs = {
        (tuple(ijg_table(LUMINANCE, q)), tuple(ijg_table(CHROMINANCE, q))) for q in range(1, 101)
    }
    assert len(pairs) == 100
    for quality in (1, 2, 49, 50, 51, 75, 98, 99, 100):
        tables = _jpeg(_random_image(), quality=quality).quantization
        found = jpeg_quality(_jpeg(_random_image(), quality=quality))
        assert found is not None and found.quality is not None
        assert list(tables[0]) == list(ijg_table(LUMINANCE, found.quality))
        assert list(tables[1]) == list(ijg_table(CHROMINANCE, found.quality))


def test_quality_from_a_file_and_default_quality(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    _random_image().save(path)  # Pillow's default quality, 75
    assert jpeg_quality(path) == JpegQuality(75, True, 0.0)
    gray = tmp_path / "gray.jpg"
    _random_image("L").save(gray, quality=33)
    assert jpeg_quality(gray) == JpegQuality(33, True, 0.0)


def test_zigzag_ordered_tables_are_read_too() -> None:
    """Pillow before 8.0 gave the tables in zig-zag order."""
    im = _jpeg(_random_image(), quality=63)
    im.quantization = {k: [list(t)[i] for i in ZIGZAG] for k, t in im.quantization.items()}
    assert jpeg_quality(im) == JpegQuality(63, True, 0.0)


def test_custom_tables_are_unknown() -> None:
    rng = np.random.default_rng(5)
    tables = [[int(v) for v in rng.integers(1, 256, 64)] for _ in range(2)]
    found = jpeg_quality(_jpeg(_random_image(), qtables=tables))
    assert found is not None
    assert found.quality is None and not found.exact and found.error > 0.1
    assert (
        describe(found, 1.0)
        == "JPEG, quality unknown (its own compression tables); little or no noise"
    )


def test_tables_close_to_libjpegs_give_an_approximate_quality() -> None:
    lum, chrom = ijg_table(LUMINANCE, 80), ijg_table(CHROMINANCE, 80)
    lum[10:14] += 1  # an encoder that rounds a few entries its own way
    found = jpeg_quality(_jpeg(_random_image(), qtables=[list(lum), list(chrom)]))
    assert found is not None
    assert found.quality == 80 and not found.exact and 0 < found.error < 0.1
    assert describe(found, 5.0).startswith("JPEG, saved at quality about 80; ")


def test_not_a_jpeg_gives_none(tmp_path: Path) -> None:
    path = tmp_path / "image.png"
    Image.fromarray(_smooth_image().astype(np.uint8)).save(path)
    assert jpeg_quality(path) is None
    assert jpeg_quality(Image.open(path)) is None
    found = inspect_input(path)
    assert found.format == "PNG" and found.jpeg is None
    assert found.description == "PNG; little or no noise"


def test_a_file_that_is_no_image_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_bytes(b"%PDF-1.4 not an image")
    with pytest.raises(ImageError, match="not an image"):
        jpeg_quality(path)


# ------------------------------------------------------------------------------------- noise


def test_noise_of_a_synthetic_image() -> None:
    clean = _smooth_image()
    assert noise_sigma(np.round(clean).astype(np.uint8)) < 1.0
    for sigma in (3, 10, 25):
        assert noise_sigma(_add_noise(clean, sigma, seed=sigma)) == pytest.approx(sigma, rel=0.1)
    assert noise_sigma(clean + np.random.default_rng(0).normal(0, 8, clean.shape)) == (
        pytest.approx(8, rel=0.1)
    )  # float input, 0..255


def test_noise_of_a_grayscale_image() -> None:
    gray = _add_noise(_smooth_image()[..., 1], 6, seed=2)
    assert noise_sigma(gray) == pytest.approx(6, rel=0.1)
    assert noise_sigma(np.repeat(gray[..., None], 3, axis=2)) == pytest.approx(noise_sigma(gray))


def test_noise_on_luma_gives_the_per_channel_sigma() -> None:
    noisy = _add_noise(_smooth_image(), 10, seed=3)
    assert noise_sigma(noisy, luma=True) == pytest.approx(10, rel=0.1)


def test_noise_of_flat_tiny_and_odd_images() -> None:
    assert noise_sigma(np.full((64, 64, 3), 7, np.uint8)) == 0.0
    assert noise_sigma(np.zeros((12, 12, 3), np.uint8)) == 0.0  # too small to tell
    with pytest.raises(SRStudioError, match="HxW or HxWx3"):
        noise_sigma(np.zeros((16, 16, 2), np.uint8))


def test_noise_is_deterministic_on_a_sampled_large_image() -> None:
    big = _add_noise(_smooth_image(700, 600), 7, seed=4)  # more positions than are looked at
    first = noise_sigma(big)
    assert noise_sigma(big.copy()) == first
    assert first == pytest.approx(7, rel=0.1)


def _set14(shared: Path, kind: str) -> list[tuple[str, np.ndarray]]:
    folder = shared / "benchmarks" / "Set14" / "x4" / kind
    return [(p.name, read_rgb_uint8(p)) for p in sorted(folder.glob("*.png"))]


def _ratios(images: list[tuple[str, np.ndarray]], sigma: float) -> dict[str, float]:
    """Each image's estimate with noise of `sigma` added, over the noise it then holds: the
    sigma added and the image's own (a film scan's grain, as the estimate reads the clean image),
    which are independent and so add in quadrature."""
    return {
        name: noise_sigma(_add_noise(rgb, sigma, seed=100 + i))
        / math.hypot(sigma, noise_sigma(rgb))
        for i, (name, rgb) in enumerate(images)
    }


def test_noise_on_set14_hr(shared_dir: Path) -> None:
    """Within 20 % at every sigma (0.84 to 1.18 times; baboon's grain reads 3.7, so sigma 5 added
    reads 6.4, 1.28 times sigma alone)."""
    images = _set14(shared_dir, "HR")
    assert len(images) == 14
    clean = {name: noise_sigma(rgb) for name, rgb in images}
    assert max(clean.values()) < LITTLE_NOISE, clean
    for sigma in SIGMAS:
        for name, ratio in _ratios(images, sigma).items():
            assert abs(ratio - 1) <= 0.2, (name, sigma, ratio)


def test_noise_on_set14_lr(shared_dir: Path) -> None:
    """LR images of 62x90 to 192x128 pixels, fewer patches: within 20 % too (up to 1.18 times)."""
    images = _set14(shared_dir, "LR")
    assert max(noise_sigma(rgb) for _, rgb in images) < LITTLE_NOISE / 2
    for sigma in SIGMAS:
        for name, ratio in _ratios(images, sigma).items():
            assert abs(ratio - 1) <= 0.2, (name, sigma, ratio)


def test_luma_estimate_needs_no_full_size_copy() -> None:
    """The luma of the sampled patches equals the patches of the image's luma."""
    rgb = _add_noise(_smooth_image(80, 90), 6, seed=9)
    full = np.zeros(rgb.shape[:2], np.float32)
    for channel, weight in enumerate((0.299, 0.587, 0.114)):
        full += np.float32(weight) * rgb[..., channel].astype(np.float32)
    gain = float(np.linalg.norm(np.array([0.299, 0.587, 0.114], np.float32)))
    assert noise_sigma(rgb, luma=True) == pytest.approx(noise_sigma(full) / gain, rel=1e-6)


def test_describe_wording() -> None:
    assert describe(JpegQuality(70, False, 0.04), 1.2) == (
        "JPEG, saved at quality about 70; little or no noise"
    )
    assert (
        describe(JpegQuality(92, True, 0.0), 5.4)
        == "JPEG, saved at quality 92; some noise (about sigma 5)"
    )
    assert describe(JpegQuality(30, True, 0.0), 0.0) == (
        "JPEG, saved at quality 30 (strongly compressed); little or no noise"
    )
    assert describe(None, 12.3, format_name="PNG") == "PNG; noisy (about sigma 12)"
    assert (
        describe(None, NOISY - 0.1) == f"Not a JPEG; some noise (about sigma {round(NOISY - 0.1)})"
    )
    assert describe(None, LITTLE_NOISE).endswith("; some noise (about sigma 4)")


def test_inspect_input_of_a_noisy_jpeg(tmp_path: Path) -> None:
    noisy = _add_noise(_smooth_image(), 12, seed=6)
    path = tmp_path / "noisy.jpg"
    Image.fromarray(noisy).save(path, quality=95, subsampling=0)
    found = inspect_input(path)
    assert isinstance(found, InputQuality)
    assert found.jpeg == JpegQuality(95, True, 0.0)
    assert found.noise_sigma == pytest.approx(12, rel=0.2)
    assert (
        found.description
        == f"JPEG, saved at quality 95; noisy (about sigma {round(found.noise_sigma)})"
    )


def test_inspect_input_measures_a_subsampled_jpeg_on_luma(tmp_path: Path) -> None:
    """4:2:0 keeps no colour noise: in colour this file would read as clean."""
    noisy = _add_noise(_smooth_image(), 12, seed=7)
    path = tmp_path / "noisy420.jpg"
    Image.fromarray(noisy).save(path, quality=95, subsampling=2)
    pixels = read_rgb_uint8(path)
    assert noise_sigma(pixels) < LITTLE_NOISE
    assert inspect_input(path).noise_sigma == pytest.approx(noise_sigma(pixels, luma=True))
    assert inspect_input(path).noise_sigma > NOISY
