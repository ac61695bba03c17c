"""An output kept on disk as it will be saved (engine.imaging.output_store, issue 32): its rows are
the CLI's, saving from it writes the CLI's file byte for byte, and it leaves nothing behind."""

from __future__ import annotations

import filecmp
import gc
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import ImageError, OutputStore, UpscaleOptions, Upscaler, load_model, read_image
from engine.cli import main
from engine.errors import Cancelled
from engine.imaging.io import OutputLayout

RNG = np.random.default_rng(7)


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("SRSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "outputs"


def _upscaler(tile: int = 24) -> Upscaler:
    options = UpscaleOptions(tile=tile, device="cpu", cleanup="off")
    return Upscaler(load_model("A2F-SD", scale=2), options)


def _photo(tmp_path: Path, mode: str = "RGB", name: str = "in.png", size=(97, 45)) -> Path:
    arr = RNG.integers(0, 256, (*size, 4), dtype=np.uint8)
    img = Image.fromarray(arr, "RGBA").convert(mode)
    if mode == "I;16":
        img = Image.fromarray(arr[..., 0].astype(np.uint16) * 257)
    img.save(tmp_path / name)
    return tmp_path / name


def test_the_store_holds_the_cli_output_in_its_own_file(tmp_path: Path, cache: Path) -> None:
    img = read_image(_photo(tmp_path))
    store = _upscaler().upscale_to_store(img)
    assert store.complete and store.path.parent == cache
    assert os.stat(cache).st_mode & 0o777 == 0o700
    assert store.path.stat().st_size == 194 * 90 * 3 and len(store.band_rows) > 1
    whole = _upscaler().upscale_image(img)  # the same tiles, held whole as float
    expected = OutputLayout.of(whole, "png").quantize(whole.rgb, whole.alpha)
    assert np.array_equal(store.read(0, store.height), expected)
    assert np.array_equal(np.concatenate([s for _, s in store.strips(rows=5)]), expected)


@pytest.mark.parametrize(
    ("mode", "formats"),
    [("RGB", ("png", "jpg", "tiff", "webp")), ("RGBA", ("png", "tiff")), ("I;16", ("png",))],
)
def test_saving_from_the_store_writes_the_cli_file(tmp_path, mode, formats) -> None:
    src = _photo(tmp_path, mode)
    with _upscaler().upscale_to_store(read_image(src)) as store:
        for fmt in formats:
            out = tmp_path / "cli"
            argv = ["upscale", str(src), "-o", str(out), "--model", "A2F-SD", "--scale", "2"]
            argv += ["--tile", "24", "--device", "cpu", "--clean-up", "off", "--format", fmt]
            assert main(argv) == 0
            (cli_file,) = out.glob(f"*.{fmt}")
            store.save(tmp_path / f"app.{fmt}")
            assert filecmp.cmp(cli_file, tmp_path / f"app.{fmt}", shallow=False), fmt
            cli_file.unlink()


def test_a_cancelled_or_failed_run_leaves_no_store(tmp_path: Path, cache: Path) -> None:
    img = read_image(_photo(tmp_path, size=(120, 90)))
    bands = []

    def stop() -> bool:
        return len(bands) > 0

    with pytest.raises(Cancelled):
        _upscaler(tile=16).upscale_to_store(
            img, on_band=lambda top, band: bands.append(top), should_stop=stop
        )
    assert bands and not list(cache.iterdir())


def test_dropping_or_closing_a_store_deletes_its_file(tmp_path: Path, cache: Path) -> None:
    img = read_image(_photo(tmp_path))
    store = _upscaler().upscale_to_store(img)
    path = store.path
    del store
    gc.collect()
    assert not path.exists()
    store = _upscaler().upscale_to_store(img)
    store.close()
    assert not store.path.exists() and not list(cache.iterdir())


def test_a_disk_too_small_is_said_before_anything_runs(tmp_path, monkeypatch) -> None:
    import shutil

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=1000))
    ran = []
    up = _upscaler()
    with pytest.raises(ImageError, match=r"needs 0\.0 GB on disk .* has 0\.0 GB free"):
        up.upscale_to_store(read_image(_photo(tmp_path)), on_band=lambda *a: ran.append(a))
    assert not ran


def test_an_unfinished_store_is_not_saved(tmp_path: Path) -> None:
    img = read_image(_photo(tmp_path))
    store = OutputStore(_upscaler().output_image(img))
    with pytest.raises(ImageError, match="not finished"):
        store.save(tmp_path / "out.png")
    with pytest.raises(ValueError, match="does not fit"):
        store.append(np.zeros((2, 5, 3), np.uint8))
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize(("h", "w", "crop"), [(700, 40, 4), (45, 60, 2), (300, 31, 3)])
def test_metrics_read_in_strips_equal_eval(h: int, w: int, crop: int) -> None:
    from engine import score, score_rows

    out = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    ref = np.clip(out.astype(int) + RNG.integers(-12, 13, out.shape), 0, 255).astype(np.uint8)
    strips = []

    def read(top: int, bottom: int) -> np.ndarray:
        strips.append(bottom - top)
        return out[top:bottom]

    found = score_rows(read, ref, crop_border=crop, height=h, width=w)
    expected = score(out, ref, crop)
    assert abs(found[0] - expected[0]) <= 1e-9 and abs(found[1] - expected[1]) <= 1e-9
    assert max(strips) < h or h < 300  # read a strip at a time, not whole


def test_stores_left_by_a_killed_process_are_removed(tmp_path: Path, cache: Path) -> None:
    import subprocess
    import sys

    from engine.imaging import output_store

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    cache.mkdir(parents=True)
    left = cache / f"output-{dead.pid}-abc.raw"
    mine = cache / f"output-{os.getppid()}-def.raw"  # a live process's: kept
    left.write_bytes(b"x")
    mine.write_bytes(b"y")
    output_store._swept.discard(cache)
    with _upscaler().upscale_to_store(read_image(_photo(tmp_path))):
        assert not left.exists() and mine.exists()
