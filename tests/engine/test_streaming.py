"""The streamed upscale (bands of finished rows, engine.inference.tiling.stream_tiled) against the
full-canvas blending it replaced, and the streamed writers (engine.imaging.stream_writers)."""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor

from engine.archs.pooling import ImagePooling
from engine.checkpoints import build_untrained, load_model
from engine.errors import Cancelled
from engine.imaging.encoders import PngStream, TiffStream
from engine.imaging.io import ImageData, read_image, write_image
from engine.inference import blending, tiling
from engine.inference.tiling import Rect, _Tiler, part_progress, stream_tiled, upscale_tiled
from engine.inference.upscaler import ONE_PASS_MIN_PIXELS, UpscaleOptions, Upscaler

CPU = torch.device("cpu")


def _canvas_reference(forward, x: Tensor, *, scale: int, tile: int, overlap: int, shared: bool):
    """The blending the streamed tiler replaced, kept here as the reference: a float32 canvas and
    a weight canvas of the whole output, weights computed per tile from absolute positions."""
    height, width = x.shape[-2:]

    def ramp(lo: int, hi: int, core: tuple[int, int], length: int, half: int) -> Tensor:
        u = lo + (torch.arange((hi - lo) * scale, dtype=torch.float64) + 0.5) / scale
        w = torch.ones_like(u)
        a, b = core
        if half == 0:
            w *= (u >= a) & (u < b)
        else:
            if a > 0:
                w *= 0.5 - 0.5 * torch.cos(math.pi * ((u - (a - half)) / (2 * half)).clamp(0, 1))
            if b < length:
                w *= 0.5 - 0.5 * torch.cos(math.pi * (((b + half) - u) / (2 * half)).clamp(0, 1))
        return w.float()

    tiler = _Tiler(
        forward, x, side=tile, overlap=overlap, scale=scale, device=CPU,
        dtype=torch.float32, should_stop=lambda: False,
    )  # fmt: skip
    pooling = None
    if shared and len(tiler.layout()) > 1:
        pooling = ImagePooling(height, width)
        for _ in tiler.tiles(lambda d, t: None, pooling):
            pass
        pooling.share()
    half = overlap // 2
    out = weight = None
    for core, window, y in tiler.tiles(lambda d, t: None, pooling):
        wy = ramp(window.top, window.bottom, (core.top, core.bottom), height, half)
        wx = ramp(window.left, window.right, (core.left, core.right), width, half)
        ys, xs = blending.support(wy), blending.support(wx)
        w = wy[ys, None] * wx[None, xs]
        if out is None:
            out = torch.zeros(1, y.shape[1], height * scale, width * scale)
            weight = torch.zeros(1, 1, height * scale, width * scale)
        oy = slice(window.top * scale + ys.start, window.top * scale + ys.stop)
        ox = slice(window.left * scale + xs.start, window.left * scale + xs.stop)
        out[:, :, oy, ox].addcmul_(y[:, :, ys, xs], w)
        weight[:, :, oy, ox] += w  # type: ignore[index]
    assert out is not None and weight is not None
    return out.div_(weight)


def _quantized(t: Tensor) -> Tensor:
    return t.clamp(0, 1).mul(255).round().to(torch.uint8)


@pytest.mark.parametrize(
    ("model", "scale", "size", "tile", "overlap"),
    [
        ("A2F-SD", 4, (29, 37), 12, 8),
        ("A2F-SD", 2, (41, 23), 10, 6),
        ("RNAN-tiny", 3, (27, 31), 10, 6),
        ("CRAN-tiny", 2, (33, 19), 8, 8),
        ("HPINet-T", 4, (25, 35), 8, 8),  # patches of 8 and 12: tiles of 8 + 2 x 8
        ("bicubic", 3, (31, 45), 8, 4),
    ],
)
def test_streamed_bands_equal_the_full_canvas_blend(model, scale, size, tile, overlap) -> None:
    """Odd sizes, every family (untrained weights), image-wide pooling shared where the family
    does; overlaps smaller than the families' own so that these small images are cut."""
    torch.manual_seed(0)
    bicubic = model == "bicubic"
    desc = load_model("bicubic", scale=scale) if bicubic else build_untrained(model, scale)
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(1))
    kw = {"scale": scale, "tile": tile, "overlap": overlap}
    with torch.no_grad():
        expected = _canvas_reference(desc.model, x, **kw, shared=desc.shared_pooling)
        bands = [
            b.clone()
            for b in stream_tiled(
                desc.model, x, **kw, device=CPU, shared_pooling=desc.shared_pooling
            )
        ]
    assert len(bands) > 1  # really streamed: several bands
    streamed = torch.cat(bands, dim=2)
    assert streamed.shape == expected.shape
    assert torch.equal(_quantized(streamed), _quantized(expected))  # bit for bit in 8 bits
    assert (streamed - expected).abs().max() < 1e-6


def test_blend_ramps_are_made_once_per_axis_shape(monkeypatch) -> None:
    made: list[tuple] = []
    ramp = blending.ramp

    def counted(span, half, scale):  # type: ignore[no-untyped-def]
        made.append(span.key())
        return ramp(span, half, scale)

    monkeypatch.setattr(blending, "ramp", counted)
    x = torch.rand(1, 3, 96, 96)
    calls: list[tuple[int, int]] = []
    upscale_tiled(
        torch.nn.Upsample(scale_factor=2), x, scale=2, tile=16, overlap=8, device=CPU,
        on_progress=lambda d, t: calls.append((d, t)),
    )  # fmt: skip
    assert calls[-1] == (36, 36)  # 6 x 6 tiles
    assert len(made) == 3  # first, middle and last tile: one ramp each, rows and columns alike


def test_float_held_is_the_seams_not_a_row_of_tiles(monkeypatch) -> None:
    """Finished blocks leave the float sums at once: what stays float is the blocks of the tile
    just added and the seams, well under a row of tiles of float output; the converted store
    holds about one row of tiles."""
    held: list[int] = []
    add = blending.BlockAccumulator.add

    def spy(self, *args) -> None:  # type: ignore[no-untyped-def]
        add(self, *args)
        held.append(sum(0 if b.sums is None else b.sums.shape[2] * b.width for b in self.blocks))

    monkeypatch.setattr(blending.BlockAccumulator, "add", spy)
    monkeypatch.setattr(blending._Block, "QUANTUM", 1)  # capacity = rows held, at this size
    x = torch.rand(1, 3, 80, 1200, generator=torch.Generator().manual_seed(2))
    up = torch.nn.Upsample(scale_factor=2)
    kw = {"scale": 2, "tile": 20, "overlap": 8, "device": CPU}
    stored: list[int] = []
    with torch.no_grad():
        bands = [b.clone() for b in stream_tiled(up, x, **kw, convert=_to_uint8)]
        for b in stream_tiled(up, x, **kw, convert=_to_uint8):
            stored.append(b.shape[0])
        expected = _quantized(upscale_tiled(up, x, **kw))
    assert torch.equal(torch.cat(bands).permute(2, 0, 1).unsqueeze(0), expected)
    row_of_tiles = (20 + 8) * 2 * 2400  # HR rows a row of tiles reaches, full width
    assert 0 < max(held) <= row_of_tiles // 2
    assert max(stored) <= (20 + 8) * 2


def _to_uint8(piece: Tensor) -> Tensor:
    return _quantized(piece)[0].permute(1, 2, 0)


def test_converted_bands_equal_the_float_bands_after_an_out_of_memory_split() -> None:
    """An out-of-memory error halves the tiles not done yet: an irregular layout, still blended
    and converted block by block exactly as the float bands are."""
    model = build_untrained("A2F-SD", 2).model
    x = torch.rand(1, 3, 45, 70, generator=torch.Generator().manual_seed(3))

    def failing_once() -> object:
        calls = [0]

        def forward(t: Tensor) -> Tensor:
            calls[0] += 1
            if calls[0] == 3:
                raise RuntimeError("CPU: out of memory")
            return model(t)

        return forward

    kw = {"scale": 2, "tile": 24, "overlap": 8, "device": CPU}
    with torch.no_grad():
        floats = [b.clone() for b in stream_tiled(failing_once(), x, **kw)]
        converted = [b.clone() for b in stream_tiled(failing_once(), x, **kw, convert=_to_uint8)]
    assert len(converted) > 1
    expected = _quantized(torch.cat(floats, dim=2))
    assert torch.equal(torch.cat(converted).permute(2, 0, 1).unsqueeze(0), expected)


def _naive_limits(tiler, bounds, half: int, scale: int) -> list[int]:
    """The pending tiles' reach per column block, tile by tile and block by block."""
    limits = [tiler.height * scale] * len(bounds)
    for core in tiler.pending:
        window = tiler.window(core)
        top = tiling._rows(core, window, tiler.height).reach(half)[0] * scale
        left, right = (v * scale for v in tiling._cols(core, window, tiler.width).reach(half))
        for j, (c0, c1) in enumerate(bounds):
            if left < c1 and right > c0 and top < limits[j]:
                limits[j] = top
    return limits


def test_pending_reach_equals_the_tile_by_tile_limits(monkeypatch) -> None:
    """The limits worked out once per layout equal those of a loop over every pending tile and
    block, at every tile, through an out-of-memory re-layout (several blocks, ragged tiles)."""
    checked = [0]
    real = tiling._PendingReach.limits

    def limits(self) -> list[int]:
        found = real(self)
        bounds = list(zip(self.c0.tolist(), self.c1.tolist(), strict=True))
        assert found == _naive_limits(self.tiler, bounds, self.half, self.scale)
        checked[0] += 1
        return found

    monkeypatch.setattr(tiling._PendingReach, "limits", limits)
    calls = [0]

    def nearest(t: Tensor) -> Tensor:  # a "network" that fails once, as out of memory
        calls[0] += 1
        if calls[0] == 4:
            raise RuntimeError("CPU: out of memory")
        return t.repeat_interleave(3, dim=2).repeat_interleave(3, dim=3)

    x = torch.rand(1, 3, 97, 230, generator=torch.Generator().manual_seed(4))
    bands = [b.clone() for b in stream_tiled(nearest, x, scale=3, tile=40, overlap=8, device=CPU)]
    assert checked[0] > 10
    torch.testing.assert_close(torch.cat(bands, dim=2), nearest(x), rtol=0, atol=1e-6)


def _image(h: int, w: int, *, alpha: bool, gray: bool, depth: int) -> ImageData:
    g = torch.Generator().manual_seed(5)
    rgb = torch.rand(3, h, w, generator=g)
    if gray:
        rgb = rgb[:1].expand(3, -1, -1).contiguous()
    a = torch.rand(1, h, w, generator=g) if alpha else None
    exif = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08" + bytes(6)  # an empty IFD
    return ImageData(rgb, a, depth, gray, None, exif, (72.0, 96.0), "PNG")


@pytest.mark.parametrize("alpha_mode", ["bicubic", "network"])
def test_image_bands_equal_the_whole_image(alpha_mode: str) -> None:
    desc = build_untrained("A2F-SD", 2)
    img = _image(37, 29, alpha=True, gray=False, depth=8)
    whole = Upscaler(desc, UpscaleOptions(tile=0, alpha=alpha_mode)).upscale_image(img)
    up = Upscaler(desc, UpscaleOptions(tile=8, tile_overlap=8, alpha=alpha_mode))
    calls: list[tuple[int, int]] = []
    parts = [  # a band is a view valid until the next one is asked for
        (r.clone(), a.clone())  # type: ignore[union-attr]
        for r, a in up.image_bands(img, on_progress=lambda d, t: calls.append((d, t)))
    ]
    assert len(parts) > 1
    rgb = torch.cat([r for r, _ in parts], dim=1)
    assert (rgb - whole.rgb).abs().max() < 0.02  # tiles of an untrained A2F: pooling differs
    tiled = up.upscale_image(img)
    assert torch.equal(tiled.rgb, rgb)
    assert torch.equal(tiled.alpha, torch.cat([a for _, a in parts], dim=1))
    assert tiled.alpha is not None and whole.alpha is not None
    if alpha_mode == "bicubic":  # strips with margins give exactly the whole resize
        assert torch.equal(tiled.alpha, whole.alpha)
    else:
        assert (tiled.alpha - whole.alpha).abs().max() < 0.02
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert calls[-1][0] == calls[-1][1]


@pytest.mark.parametrize(
    ("ext", "depth", "alpha", "gray"),
    [
        ("png", 8, False, False),
        ("png", 16, True, False),
        ("png", 16, False, True),
        ("png", 8, True, True),
        ("tiff", 8, False, False),
        ("tiff", 16, True, False),
        ("tiff", 16, False, True),
        ("tiff", 8, True, False),
        ("jpg", 8, True, False),
        ("webp", 8, True, True),
    ],
)
def test_streamed_file_equals_the_whole_image_write(tmp_path, ext, depth, alpha, gray) -> None:
    img = _image(19, 23, alpha=alpha, gray=gray, depth=depth)
    if ext == "tiff":  # the streamed TIFF writer keeps no EXIF: Pillow's is used for that
        img.exif = None
    up = Upscaler(load_model("bicubic", scale=2), UpscaleOptions(tile=6))
    whole = up.upscale_image(img)
    write_image(tmp_path / f"whole.{ext}", whole)
    out, warnings = up.upscale_to_file(img, tmp_path / f"streamed.{ext}")
    assert warnings == [] and (out.height, out.width) == (38, 46)
    a, b = read_image(tmp_path / f"whole.{ext}"), read_image(tmp_path / f"streamed.{ext}")
    assert (a.bit_depth, a.grayscale, a.exif, a.dpi) == (b.bit_depth, b.grayscale, b.exif, b.dpi)
    assert torch.equal(a.rgb, b.rgb)
    assert (a.alpha is None) == (b.alpha is None)
    assert a.alpha is None or torch.equal(a.alpha, b.alpha)
    assert b.bit_depth == (depth if ext in ("png", "tiff") else 8)


def test_an_8bit_tiff_with_exif_keeps_it(tmp_path) -> None:
    img = _image(9, 11, alpha=False, gray=False, depth=8)
    up = Upscaler(load_model("bicubic", scale=2), UpscaleOptions(tile=4))
    up.upscale_to_file(img, tmp_path / "e.tiff")
    with Image.open(tmp_path / "e.tiff") as im:
        assert im.size == (22, 18) and im.getexif() is not None
    assert read_image(tmp_path / "e.tiff").dpi == pytest.approx((144.0, 192.0))


@pytest.mark.parametrize(("ext", "depth", "gray"), [("webp", 8, False), ("tiff", 16, True)])
def test_whole_image_formats_read_back_from_the_spool_in_chunks(
    tmp_path, monkeypatch, ext: str, depth: int, gray: bool
) -> None:
    """WebP, and a gray 16-bit TIFF with EXIF (Pillow's writer), go through the spool: read back
    a few rows at a time they give the same file as the whole-image write."""
    from engine.imaging import stream_writers

    monkeypatch.setattr(stream_writers, "SPOOL_CHUNK", 100)  # 1-2 rows of 46 pixels a chunk
    img = _image(19, 23, alpha=False, gray=gray, depth=depth)
    up = Upscaler(load_model("bicubic", scale=2), UpscaleOptions(tile=6))
    write_image(tmp_path / f"whole.{ext}", up.upscale_image(img))
    up.upscale_to_file(img, tmp_path / f"streamed.{ext}")
    a, b = read_image(tmp_path / f"whole.{ext}"), read_image(tmp_path / f"streamed.{ext}")
    assert (a.bit_depth, a.grayscale, a.exif) == (b.bit_depth, b.grayscale, b.exif)
    assert b.bit_depth == depth
    assert torch.equal(a.rgb, b.rgb)
    assert sorted(f.name for f in tmp_path.iterdir()) == [f"streamed.{ext}", f"whole.{ext}"]


def test_allocator_trim_runs_anywhere() -> None:
    from engine.inference import allocator

    assert allocator.trim() in (True, False)  # glibc: malloc_trim; elsewhere nothing


@pytest.mark.parametrize("ext", ["png", "tiff", "jpg"])
def test_cancel_between_bands_leaves_no_file(tmp_path, ext: str) -> None:
    img = _image(40, 40, alpha=False, gray=False, depth=8)
    seen: list[int] = []

    def stop() -> bool:
        seen.append(1)
        return len(seen) > 20  # well into the run: several bands are written by then

    up = Upscaler(load_model("bicubic", scale=2), UpscaleOptions(tile=4))
    with pytest.raises(Cancelled):
        up.upscale_to_file(img, tmp_path / f"c.{ext}", should_stop=stop)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("encoder", "channels", "depth"),
    [(PngStream, c, d) for c, d in [(1, 8), (2, 16), (3, 8), (4, 16), (3, 16), (2, 8)]]
    + [(TiffStream, c, d) for c, d in [(1, 8), (1, 16), (3, 8), (4, 16), (3, 16), (2, 8)]],
)  # no 16-bit gray+alpha TIFF: Pillow cannot read it (engine.imaging.io writes RGBA instead)
def test_encoders_take_bands_of_any_height(tmp_path, encoder, channels: int, depth: int) -> None:
    rng = np.random.default_rng(channels * depth)
    peak = 255 if depth == 8 else 65535
    dtype = np.uint8 if depth == 8 else np.uint16
    arr = rng.integers(0, peak + 1, (53, 17, channels)).astype(dtype)
    path = tmp_path / ("x.png" if encoder is PngStream else "x.tiff")
    with open(path, "wb") as f:
        stream = encoder(f, width=17, height=53, channels=channels, depth=depth, dpi=(300.0, 300.0))
        for top, bottom in [(0, 1), (1, 20), (20, 21), (21, 53)]:
            stream.write(arr[top:bottom])
        stream.close()
    back = read_image(path)
    color = back.rgb[:1] if channels <= 2 else back.rgb
    planes = color if channels in (1, 3) else torch.cat([color, back.alpha])  # type: ignore[list-item]
    got = (planes * peak).round().permute(1, 2, 0).numpy().astype(np.int64)
    assert np.array_equal(got, arr.astype(np.int64))
    assert back.dpi == pytest.approx((300.0, 300.0), rel=1e-3)


def test_part_progress_and_rect_are_still_exported() -> None:
    """upscaler and tests rely on these names of engine.inference.tiling."""
    assert Rect(0, 0, 1, 1).bottom == 1 and callable(part_progress)


class _Counting(torch.nn.Module):
    """Nearest x2 plus a whole-tile mean through engine.archs.pooling: a pooling network."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: Tensor) -> Tensor:
        from engine.archs.pooling import mean_pool

        self.calls += 1
        return torch.nn.functional.interpolate(x, scale_factor=2) * 0.5 + mean_pool(x) * 0.5


def _pooling_upscaler(**options: object) -> Upscaler:
    from engine.descriptor import ModelDescriptor

    desc = ModelDescriptor(
        family="Test", variant="pool", scale=2, params=0, input_range=1.0, size_multiple=1,
        tiling_safe=False, tile_overlap=4, source="untrained", shared_pooling=True,
        model=_Counting(),
    )  # fmt: skip
    return Upscaler(desc, UpscaleOptions(device="cpu", **options))  # type: ignore[arg-type]


SIDE = math.isqrt(ONE_PASS_MIN_PIXELS)


@pytest.mark.parametrize(
    ("tile", "exact", "passes"),
    [(SIDE + 8, False, 1), (SIDE + 8, True, 2), (SIDE - 8, False, 2)],
)
def test_large_tiles_pool_per_tile_in_one_pass_unless_exact(tile: int, exact: bool, passes: int):
    up = _pooling_upscaler(tile=tile, exact_tiles=exact)
    x = torch.rand(1, 3, tile, 2 * tile)  # two square tiles side by side
    up.upscale_tensor(x)
    assert up.model.calls == 2 * passes
    words = up.tiling(tile, 2 * tile)
    assert f"tiles of {tile}" in words and f"{passes} pass" in words


def test_the_whole_image_is_one_pass_and_says_so() -> None:
    up = _pooling_upscaler(tile=0)
    up.upscale_tensor(torch.rand(1, 3, 9, 9))
    assert up.model.calls == 1 and up.tiling(9, 9) == "whole image, one pass"


def test_allocator_tuning_is_applied_once() -> None:
    from engine.inference import allocator

    first = allocator.tune()
    assert allocator.tune() == first  # idempotent
    if sys.platform.startswith("linux") and os.environ.get("SRSTUDIO_MALLOC_TUNING") != "0":
        assert first  # glibc takes both settings


def test_wide_outputs_get_tiles_wider_than_tall(monkeypatch) -> None:
    from engine.inference import tiling

    # 48 HR rows of the 300-pixel-wide output: cores of 48 / 2 - 4 (overlap) -> 16 rows
    monkeypatch.setattr(tiling, "BAND_BYTES", 300 * tiling.BAND_BYTES_PER_PIXEL * 48)
    shapes: list[tuple[int, int]] = []
    model = torch.nn.Conv2d(3, 12, 3, padding=1)

    def forward(t: Tensor) -> Tensor:
        shapes.append(tuple(t.shape[-2:]))
        return torch.nn.functional.pixel_shuffle(model(t), 2)

    x = torch.rand(1, 3, 70, 150)
    with torch.no_grad():
        whole = forward(x)
        shapes.clear()
        y = upscale_tiled(forward, x, scale=2, tile=32, overlap=4, device=CPU)
    assert (y - whole).abs().max() < 1e-5  # a local network: still exact
    rows = {h for h, _ in shapes}
    assert max(rows) <= 16 + 2 * 4 and max(w for _, w in shapes) > 32 + 2 * 4


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_eight_bit_samples_give_the_same_file_as_float(tmp_path, ext: str) -> None:
    """read_image(eight_bit=True) keeps uint8 samples (36 MB for a 12 MP photo, not 144): the
    tiler divides each window by 255, exactly as the float read does for the whole image."""
    g = torch.Generator().manual_seed(7)
    arr = (torch.rand(29, 41, 3, generator=g) * 255).round().to(torch.uint8).numpy()
    Image.fromarray(arr).save(tmp_path / "in.png")
    samples = read_image(tmp_path / "in.png", eight_bit=True)
    floats = read_image(tmp_path / "in.png")
    assert samples.rgb.dtype == torch.uint8 and floats.rgb.dtype == torch.float32
    assert torch.equal(samples.rgb.float() / 255.0, floats.rgb)
    up = Upscaler(build_untrained("A2F-SD", 2), UpscaleOptions(tile=12, tile_overlap=8))
    up.upscale_to_file(samples, tmp_path / f"a.{ext}")
    up.upscale_to_file(floats, tmp_path / f"b.{ext}")
    assert (tmp_path / f"a.{ext}").read_bytes() == (tmp_path / f"b.{ext}").read_bytes()
    assert torch.equal(up.upscale_tensor(samples.rgb[None]), up.upscale_tensor(floats.rgb[None]))


def test_sixteen_bit_sources_stay_float_with_eight_bit(tmp_path) -> None:
    arr = np.arange(12 * 10 * 3, dtype=np.uint16).reshape(12, 10, 3) * 50
    img = ImageData(torch.from_numpy(arr.astype(np.float32) / 65535.0).permute(2, 0, 1), None, 16)
    write_image(tmp_path / "deep.png", img)
    assert read_image(tmp_path / "deep.png", eight_bit=True).rgb.dtype == torch.float32


@pytest.mark.parametrize(("channels", "depth"), [(3, 8), (4, 16), (1, 8)])
def test_png_bands_are_encoded_in_small_chunks_to_the_same_bytes(
    tmp_path, monkeypatch, channels: int, depth: int
) -> None:
    from engine.imaging import encoders

    rng = np.random.default_rng(5)
    dtype = np.uint8 if depth == 8 else np.uint16
    arr = rng.integers(0, 255 if depth == 8 else 65535, (41, 13, channels)).astype(dtype)
    files = []
    for chunk in (8 << 20, 100):  # one chunk a band; then a row or two at a time
        monkeypatch.setattr(encoders, "CHUNK_BYTES", chunk)
        path = tmp_path / f"{chunk}.png"
        with open(path, "wb") as f:
            stream = PngStream(f, width=13, height=41, channels=channels, depth=depth)
            for top in (0, 17, 30):
                stream.write(arr[top : {0: 17, 17: 30, 30: 41}[top]])
            stream.close()
        files.append(path.read_bytes())
    assert files[0] == files[1]
    if depth == 8:  # Pillow reads 16-bit colour as 8 bits
        with Image.open(tmp_path / "100.png") as im:
            back = np.asarray(im)
        assert np.array_equal(back.reshape(arr.shape), arr)
