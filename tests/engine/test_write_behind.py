"""Encoding on a worker thread while the next band is made (engine.imaging.write_behind): the
same files as writing on the calling thread, the same order, and the same failure and cancel
behaviour."""

from __future__ import annotations

import errno
import threading
import time

import numpy as np
import pytest
import torch

from engine.checkpoints import load_model
from engine.errors import Cancelled, ImageError
from engine.imaging import encoders, write_behind
from engine.imaging.io import ImageData, read_image
from engine.imaging.write_behind import write_all
from engine.inference.upscaler import UpscaleOptions, Upscaler


def _writer_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("srstudio-write")]


def _bands(buffer: np.ndarray, count: int, log: list[str]):
    """`count` bands made in one reused buffer, as the tiler hands them on."""
    for k in range(count):
        buffer[:] = k
        log.append(f"made {k}")
        yield buffer


def test_bands_are_written_in_order_on_a_worker_thread_as_copies() -> None:
    log: list[str] = []
    written: list[tuple[int, str]] = []

    def write(band: np.ndarray) -> None:
        time.sleep(0.01)  # the maker overwrites its buffer meanwhile
        written.append((int(band.max()), threading.current_thread().name))

    write_all(_bands(np.zeros((4, 5, 3), np.uint8), 6, log), write)
    assert [k for k, _ in written] == [0, 1, 2, 3, 4, 5]
    assert all(name.startswith("srstudio-write") for _, name in written)
    assert _writer_threads() == []


def test_the_next_band_is_made_while_one_is_written() -> None:
    events: list[str] = []

    def write(band: np.ndarray) -> None:
        events.append(f"write {int(band.max())} starts")
        time.sleep(0.05)
        events.append(f"write {int(band.max())} ends")

    write_all(_bands(np.zeros((2, 2, 1), np.uint8), 3, events), write)
    assert events.index("made 1") < events.index("write 0 ends")
    # one band in flight: band 1 is handed over only once band 0 is written
    assert events.index("write 0 ends") < events.index("write 1 starts")


def test_a_failed_write_is_raised_here_and_no_more_bands_are_made() -> None:
    made: list[str] = []

    def write(band: np.ndarray) -> None:
        if band.max() == 1:
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        write_all(_bands(np.zeros((2, 2, 1), np.uint8), 10, made), write)
    assert len(made) <= 3  # band 2 may be made while band 1 fails; none after
    assert _writer_threads() == []


def test_a_cancel_waits_for_the_write_in_progress() -> None:
    state = {"writing": False}

    def write(band: np.ndarray) -> None:
        state["writing"] = True
        time.sleep(0.1)
        state["writing"] = False

    def bands():
        yield np.zeros((2, 2, 1), np.uint8)
        raise Cancelled()

    with pytest.raises(Cancelled):
        write_all(bands(), write)
    assert state["writing"] is False  # nothing writes to the file once the caller is told
    assert _writer_threads() == []


def _photo(h: int, w: int) -> ImageData:
    g = torch.Generator().manual_seed(7)
    return ImageData(rgb=torch.rand(3, h, w, generator=g), alpha=None, bit_depth=8)


@pytest.mark.parametrize("ext", ["png", "tiff", "jpg", "webp"])
def test_files_are_the_same_bytes_with_and_without_write_behind(tmp_path, monkeypatch, ext):
    img = _photo(37, 29)
    up = Upscaler(load_model("bicubic", scale=2), UpscaleOptions(tile=6))
    for on in (True, False):
        monkeypatch.setattr(write_behind, "WRITE_BEHIND", on)
        up.upscale_to_file(img, tmp_path / f"{on}.{ext}")
    assert (tmp_path / f"True.{ext}").read_bytes() == (tmp_path / f"False.{ext}").read_bytes()
    assert read_image(tmp_path / f"True.{ext}").width == 58


@pytest.mark.parametrize("ext", ["png", "tiff"])
def test_a_full_disk_mid_file_leaves_nothing(tmp_path, monkeypatch, ext) -> None:
    stream = encoders.PngStream if ext == "png" else encoders.TiffStream
    real = stream.write
    calls: list[int] = []

    def failing(self, band: np.ndarray) -> None:
        calls.append(band.shape[0])
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, band)

    monkeypatch.setattr(stream, "write", failing)
    up = Upscaler(load_model("bicubic", scale=2), UpscaleOptions(tile=4))
    with pytest.raises(ImageError, match="No space left"):
        up.upscale_to_file(_photo(40, 40), tmp_path / f"full.{ext}")
    assert list(tmp_path.iterdir()) == []
    assert _writer_threads() == []


def test_bands_too_large_to_copy_are_written_on_the_calling_thread(monkeypatch) -> None:
    monkeypatch.setattr(write_behind, "MAX_BAND_BYTES", 100)
    seen: list[tuple[int, str]] = []

    def bands():
        yield np.zeros((2, 5, 3), np.uint8)  # 30 bytes: behind
        yield np.ones((10, 5, 3), np.uint8)  # 150 bytes: here, after the first is written
        yield np.full((1, 5, 3), 2, np.uint8)

    write_all(bands(), lambda b: seen.append((int(b.max()), threading.current_thread().name)))
    assert [k for k, _ in seen] == [0, 1, 2]
    assert seen[0][1].startswith("srstudio-write") and seen[2][1].startswith("srstudio-write")
    assert seen[1][1] == threading.current_thread().name
