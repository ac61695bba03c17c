"""The app's outputs kept on disk, not in memory (issue 32): a run fills its pane in band by band,
its output is saved as the CLI saves it, and nothing is left behind by a cancel or a new image."""

from __future__ import annotations

import filecmp
import gc
import queue
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app import jobs
from app.jobs import Filling, ModelChoice, ModelResult, RunRequest
from app.panels.upscale_tab import RUNNING_KEY
from app.workers import TaskContext
from engine import Cancelled, UpscaleOptions, read_image
from engine.cli import main

RNG = np.random.default_rng(11)


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch, bundled_weights) -> Path:
    monkeypatch.setenv("SRSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "outputs"


def _photo(tmp_path: Path, h: int = 150, w: int = 120) -> Path:
    small = RNG.integers(0, 256, (h // 4, w // 4, 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC).save(path)
    return path


class Context(TaskContext):
    """A worker's context without the thread: what the task emits, in order."""

    def __init__(self, stop_after_bands: int | None = None) -> None:
        super().__init__(queue.SimpleQueue())
        self.events: list[object] = []
        self.stop_after = stop_after_bands

    def emit(self, obj: object) -> None:
        self.events.append(obj)

    def should_stop(self) -> bool:
        filling = [e for e in self.events if isinstance(e, Filling)]
        if self.stop_after is None or not filling:
            return False
        return filling[-1].pyramid.rows_ready > 0  # after the first band is in


def _request(path: Path, tile: int = 24) -> RunRequest:
    options = UpscaleOptions(tile=tile, device="cpu", cleanup="off")
    return RunRequest(read_image(path), [ModelChoice("A2F", "SD", 2)], options)


def test_a_run_fills_its_pane_then_keeps_the_cli_output(tmp_path: Path, cache: Path) -> None:
    src = _photo(tmp_path)
    ctx = Context()
    assert jobs.run_models(ctx, _request(src), {}) == 1
    filling = next(e for e in ctx.events if isinstance(e, Filling))
    result = ctx.events[-1]
    assert isinstance(result, ModelResult) and result.pyramid is filling.pyramid
    assert ctx.events.index(filling) < ctx.events.index(result)
    assert result.store.path.parent == cache and result.size == (300, 240)
    # saved from the app: the CLI's file, byte for byte
    argv = ["upscale", str(src), "-o", str(tmp_path / "cli"), "--model", "A2F-SD", "--scale", "2"]
    assert main([*argv, "--tile", "24", "--device", "cpu", "--clean-up", "off"]) == 0
    saved = jobs.save_output(result.store, tmp_path / "app.png", None, 95)
    assert saved == str(tmp_path / "app.png")
    assert filecmp.cmp(tmp_path / "cli" / "photo_A2F-SD_x2.png", tmp_path / "app.png", False)
    assert np.array_equal(result.pixels, np.asarray(Image.open(tmp_path / "app.png")))
    path = result.store.path
    del result, filling, ctx
    gc.collect()
    assert not path.exists()  # deleted with the result


def test_cancelling_mid_run_leaves_no_store(tmp_path: Path, cache: Path) -> None:
    ctx = Context(stop_after_bands=1)
    with pytest.raises(Cancelled):
        jobs.run_models(ctx, _request(_photo(tmp_path, 300, 200), tile=16), {})
    filling = next(e for e in ctx.events if isinstance(e, Filling))
    assert 0 < filling.pyramid.rows_ready < 600
    assert not any(isinstance(e, ModelResult) for e in ctx.events)
    assert not list(cache.iterdir())


def test_the_tab_shows_the_output_being_made_until_it_is_done(qtbot, window, tmp_path) -> None:
    from tests.app.test_upscale_tab import select, wait_idle

    tab = window.upscale
    select(tab, jobs.bicubic_choice(2))
    tab.open_path(_photo(tmp_path, 60, 50))
    wait_idle(qtbot, tab, 1)
    result = tab.results["Bicubic x2"]
    filling = Filling(0, "Bicubic x2", result.pyramid)
    generation = tab.doc.generation
    tab._run_event(filling, generation)
    assert RUNNING_KEY in tab.canvas.contents
    assert tab.canvas.contents[RUNNING_KEY].title == "Bicubic x2 (being made)"
    tab._run_event(result, generation)
    assert RUNNING_KEY not in tab.canvas.contents and "Bicubic x2" in tab.canvas.contents


def test_an_output_too_big_for_memory_is_said_before_it_runs(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(jobs, "free_memory_bytes", lambda device: 1000)
    ctx = Context()
    assert jobs.run_models(ctx, _request(_photo(tmp_path)), {}) == 0
    (failed,) = [e for e in ctx.events if isinstance(e, jobs.ModelFailed)]
    assert "showing the 240x300 output needs 0.0 GB of memory" in failed.message
    assert not any(isinstance(e, Filling) for e in ctx.events)


def test_the_heap_is_handed_back_before_each_model_of_a_run(tmp_path, monkeypatch) -> None:
    trims: list[int] = []
    monkeypatch.setattr(jobs, "trim_allocator", lambda: trims.append(len(ctx.events)) or True)
    ctx = Context()
    request = _request(_photo(tmp_path, 40, 32))
    request = RunRequest(request.image, [jobs.bicubic_choice(2), *request.choices], request.options)
    assert jobs.run_models(ctx, request, {}) == 2
    first = next(i for i, e in enumerate(ctx.events) if isinstance(e, ModelResult))
    assert trims == [0, first + 1]  # before each model: the second after the first's result
