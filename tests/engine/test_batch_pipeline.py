"""run_batch with read-ahead (engine.read_ahead): the next file is decoded on a worker thread while
this one is upscaled. Same report, events, progress and outputs as the sequential loop; failures in
file order; a cancel or an exception stops the worker's read and leaves no thread behind.

Deterministic: no timing assertions. A read that must still be running when something happens
waits for its should_stop (as a long decode polls it) with a 30 s safety cap that fails the test.
"""

from __future__ import annotations

import dataclasses
import io
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import engine.batch as batch
from engine.batch import PROGRESS_STEPS, BatchJob, FileRecord, run_batch
from engine.checkpoints import load_model
from engine.descriptor import ModelDescriptor
from engine.errors import Cancelled, StopFn, never_stop
from engine.imaging.io import ImageData, read_image
from engine.inference.upscaler import UpscaleOptions, Upscaler
from tests.engine.test_batch import out_name, snapshot

CAP_SECONDS = 30.0


def _u8(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _images(folder: Path, count: int = 4, size: int = 16) -> None:
    folder.mkdir()
    for i in range(count):
        Image.fromarray(_u8((size, size + i, 3), i)).save(folder / f"im{i}.png")


def _mixed(folder: Path) -> None:
    """A good PNG, a corrupt one, a JPEG, one over the pixel limit (40x40) and another PNG."""
    folder.mkdir()
    Image.fromarray(_u8((24, 20, 3), 0)).save(folder / "a_good.png")
    png = io.BytesIO()
    Image.fromarray(_u8((32, 32, 3), 1)).save(png, "PNG")
    (folder / "b_corrupt.png").write_bytes(png.getvalue()[:200])
    Image.fromarray(_u8((32, 30, 3), 2)).save(folder / "c_photo.jpg", quality=90)
    Image.fromarray(_u8((48, 48, 3), 3)).save(folder / "d_large.png")
    Image.fromarray(_u8((16, 18, 3), 4)).save(folder / "e_good.png")


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("srstudio-read-ahead")]


class Reads:
    """read_image as run_batch calls it, recording the thread of each read. A file in `hold`
    reads like a long decode: it polls its should_stop until True, then raises Cancelled."""

    def __init__(self, hold: tuple[str, ...] = (), fail: tuple[str, ...] = ()) -> None:
        self.hold, self.fail = hold, fail
        self.threads: dict[str, threading.Thread] = {}
        self.reading: dict[str, threading.Event] = defaultdict(threading.Event)
        self.gave_up: list[str] = []

    def __call__(
        self,
        path: Path,
        *,
        max_pixels: int | None = None,
        should_stop: StopFn = never_stop,
        eight_bit: bool = False,
    ) -> ImageData:
        name = Path(path).stem
        self.threads[name] = threading.current_thread()
        self.reading[name].set()
        if name in self.fail:
            raise RuntimeError(f"bad decode of {name}")
        if name in self.hold:
            deadline = time.monotonic() + CAP_SECONDS
            while not should_stop():
                if time.monotonic() > deadline:
                    self.gave_up.append(name)
                    break
                time.sleep(0.001)
            else:
                raise Cancelled()
        return read_image(path, max_pixels=max_pixels, should_stop=should_stop, eight_bit=eight_bit)


class Nearest(nn.Module):
    """x2 nearest; calls `hook` before each forward."""

    def __init__(self, hook) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.hook = hook

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.hook()
        return nn.functional.interpolate(x, scale_factor=2, mode="nearest")


def _upscaler(hook) -> Upscaler:  # type: ignore[no-untyped-def]
    desc = ModelDescriptor(
        family="Test", variant="x", scale=2, params=0, input_range=1.0, size_multiple=1,
        tiling_safe=True, tile_overlap=0, source="untrained", model=Nearest(hook),
    )  # fmt: skip
    return Upscaler(desc, UpscaleOptions(tile=0, device="cpu"))


@pytest.fixture
def bicubic2() -> Upscaler:
    return Upscaler(load_model("bicubic", scale=2), UpscaleOptions(tile=0, device="cpu"))


@pytest.fixture(params=[True, False], ids=["read-ahead", "sequential"])
def read_ahead(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(batch, "READ_AHEAD", request.param)
    return request.param


def _statuses(report: batch.BatchReport) -> list[tuple[str, str]]:
    return [(r.status, r.reason) for r in report.records]


def test_same_report_events_progress_and_outputs_as_sequential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bicubic2: Upscaler
) -> None:
    _mixed(tmp_path / "in")
    out = tmp_path / "out"
    job = BatchJob(inputs=[tmp_path / "in"], output_dir=out, max_pixels=40 * 40)
    runs = {}
    for on in (True, False):
        monkeypatch.setattr(batch, "READ_AHEAD", on)
        calls: list[object] = []

        def on_file(record: FileRecord, calls: list[object] = calls) -> None:
            calls.append(dataclasses.replace(record, seconds=0.0, warnings=list(record.warnings)))

        def on_progress(done: int, total: int, calls: list[object] = calls) -> None:
            calls.append((done, total))

        report = run_batch(job, bicubic2, on_file=on_file, on_progress=on_progress)
        assert not _workers()
        report.seconds = 0.0
        for r in report.records:
            r.seconds = 0.0
        runs[on] = (report.to_json(), report.to_text(), calls, snapshot(out))
        for p in out.iterdir():
            p.unlink()
    assert runs[True] == runs[False]

    report_json, _, calls, outputs = runs[True]
    records = [c for c in calls if isinstance(c, FileRecord)]
    assert [Path(r.input).name for r in records] == [
        "a_good.png", "b_corrupt.png", "c_photo.jpg", "d_large.png", "e_good.png",
    ]  # fmt: skip
    assert [r.status for r in records] == ["done", "failed", "done", "failed", "done"]
    assert "corrupt or truncated" in records[1].reason and "too large" in records[3].reason
    assert records[2].input_size == (30, 32) and records[2].output_size == (60, 64)
    assert sorted(outputs) == sorted(
        out_name(stem, ext)
        for stem, ext in (("a_good", "png"), ("c_photo", "jpg"), ("e_good", "png"))
    )
    assert calls[-1] == records[-1] and calls[-2] == (5 * PROGRESS_STEPS, 5 * PROGRESS_STEPS)


def test_the_next_file_is_read_on_a_worker_while_this_one_is_upscaled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _images(tmp_path / "in", count=3)
    reads = Reads()
    monkeypatch.setattr(batch, "read_image", reads)
    seen_in_first_forward: list[bool] = []

    def hook() -> None:  # the first forward (im0) waits until im1 is being read
        if not seen_in_first_forward:
            seen_in_first_forward.append(reads.reading["im1"].wait(CAP_SECONDS))

    report = run_batch(
        BatchJob(inputs=[tmp_path / "in"], output_dir=tmp_path / "out"), _upscaler(hook)
    )
    assert seen_in_first_forward == [True]
    assert [r.status for r in report.records] == ["done"] * 3
    assert sorted(reads.threads) == ["im0", "im1", "im2"]
    assert all(t is not threading.main_thread() for t in reads.threads.values())
    assert not _workers()


def test_a_failed_read_on_the_worker_is_reported_in_its_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bicubic2: Upscaler, read_ahead: bool
) -> None:
    _images(tmp_path / "in")
    monkeypatch.setattr(batch, "read_image", Reads(fail=("im1", "im2")))
    order: list[str] = []
    job = BatchJob(inputs=[tmp_path / "in"], output_dir=tmp_path / "out")
    report = run_batch(job, bicubic2, on_file=lambda r: order.append(Path(r.input).stem))
    assert order == ["im0", "im1", "im2", "im3"]
    assert _statuses(report) == [
        ("done", ""),
        ("failed", "RuntimeError: bad decode of im1"),
        ("failed", "RuntimeError: bad decode of im2"),
        ("done", ""),
    ]
    assert report.records[1].input_size is None
    assert not _workers()


def test_a_cancel_while_waiting_for_a_read_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bicubic2: Upscaler, read_ahead: bool
) -> None:
    _images(tmp_path / "in")
    reads = Reads(hold=("im1",))
    monkeypatch.setattr(batch, "read_image", reads)
    threads_before = set(threading.enumerate())  # an earlier test's may still be ending
    done: list[FileRecord] = []
    checks_after_first: list[int] = []

    def stop() -> bool:  # False for the check before im1, then True once im1 is being read
        if len(done) < 1:
            return False
        checks_after_first.append(1)
        return len(checks_after_first) > 1 and reads.reading["im1"].is_set()

    job = BatchJob(inputs=[tmp_path / "in"], output_dir=tmp_path / "out")
    report = run_batch(job, bicubic2, on_file=done.append, should_stop=stop)
    assert _statuses(report) == [
        ("done", ""),
        ("cancelled", "cancelled while running"),
        ("cancelled", "not started"),
        ("cancelled", "not started"),
    ]
    assert reads.gave_up == []
    assert sorted(snapshot(tmp_path / "out")) == [out_name("im0", "png")]  # no temporaries
    assert set(threading.enumerate()) <= threads_before and not _workers()


def test_a_cancel_during_an_upscale_stops_the_read_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_ahead: bool
) -> None:
    _images(tmp_path / "in", size=32)
    reads = Reads(hold=("im2",))  # still being read when im1 is cancelled
    monkeypatch.setattr(batch, "read_image", reads)
    threads_before = set(threading.enumerate())  # an earlier test's may still be ending
    within_im1 = threading.Event()

    def progress(done: int, total: int) -> None:
        if PROGRESS_STEPS < done < 2 * PROGRESS_STEPS:
            assert not read_ahead or reads.reading["im2"].wait(CAP_SECONDS)
            within_im1.set()

    up = Upscaler(load_model("bicubic", scale=2), UpscaleOptions(tile=8, device="cpu"))
    job = BatchJob(inputs=[tmp_path / "in"], output_dir=tmp_path / "out")
    report = run_batch(job, up, on_progress=progress, should_stop=within_im1.is_set)
    assert _statuses(report) == [
        ("done", ""),
        ("cancelled", "cancelled while running"),
        ("cancelled", "not started"),
        ("cancelled", "not started"),
    ]
    assert reads.gave_up == [] and "im3" not in reads.threads
    assert sorted(snapshot(tmp_path / "out")) == [out_name("im0", "png")]
    assert set(threading.enumerate()) <= threads_before and not _workers()


class Boom(BaseException):
    """Not an Exception: _process lets it through, like KeyboardInterrupt."""


@pytest.mark.parametrize("where", ["on_file", "network"])
def test_an_exception_leaves_no_thread_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_ahead: bool, where: str
) -> None:
    _images(tmp_path / "in")
    reads = Reads(hold=("im1",))
    monkeypatch.setattr(batch, "read_image", reads)
    threads_before = set(threading.enumerate())  # an earlier test's may still be ending

    def raise_in(place: str) -> None:  # once im1 is being read ahead
        if where == place:
            assert not read_ahead or reads.reading["im1"].wait(CAP_SECONDS)
            raise Boom()

    def hook() -> None:
        raise_in("network")

    def on_file(record: FileRecord) -> None:
        raise_in("on_file")

    job = BatchJob(inputs=[tmp_path / "in"], output_dir=tmp_path / "out")
    with pytest.raises(Boom):
        run_batch(job, _upscaler(hook), on_file=on_file)
    assert reads.gave_up == [] and "im2" not in reads.threads
    assert set(threading.enumerate()) <= threads_before and not _workers()
    expected = ["im0_Test-x_x2.png"] if where == "on_file" else []
    assert sorted(snapshot(tmp_path / "out")) == expected  # no partial file, no temporaries
