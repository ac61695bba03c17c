"""Honest time (issue 14, item 2): the progress counts real work from the first moment (loading,
each self-ensemble pass), the time left is pause-aware, and a run estimated to be long is not
started by opening an image. Fake clocks and fake estimates: no timed assertion."""

from __future__ import annotations

import pytest

from app import jobs
from app.jobs import bicubic_choice
from app.run_control import RunControl
from engine import RunOutcome
from tests.app.conftest import write_png


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(control: RunControl) -> list[tuple[str, int, int, bool, str]]:
    """Everything the control is asked to show: (kind, value, maximum, text shown, status)."""
    seen: list[tuple[str, int, int, bool, str]] = []
    show_work, show_step = control.show_work, control.show_step

    def work(done, total, text, **kw):
        show_work(done, total, text, **kw)
        bar = control.progress
        seen.append(("work", bar.value(), bar.maximum(), bar.isTextVisible(), text))

    def step(text):
        show_step(text)
        bar = control.progress
        seen.append(("step", bar.value(), bar.maximum(), bar.isTextVisible(), text))

    control.show_work, control.show_step = work, step
    return seen


def _open(qtbot, window, tmp_path, side: int = 12) -> None:
    window.upscale.open_path(write_png(tmp_path / "in.png", side, side))
    qtbot.waitUntil(lambda: window.upscale.input is not None, timeout=5000)


def test_no_count_before_any_run(window):
    bar = window.upscale.progress
    assert not bar.isTextVisible()
    assert bar.value() in (0, -1) and bar.maximum() != 100  # never "0 / 100 tiles"
    for tab in (window.batch, window.trainer):
        assert not tab.control.progress.isTextVisible()


def test_an_ensemble_run_counts_its_passes(qtbot, window, tmp_path):
    """Self-ensemble on the whole image: one tile, 8 passes. The bar moves pass by pass (not
    "0 / 1" until the end), after a loading step that shows no count."""
    window.settings.auto_run = False
    tab = window.upscale
    assert tab.panel.selector.set_current(bicubic_choice(2))
    tab.panel.tile_mode.setCurrentIndex(tab.panel.tile_mode.findData("whole"))
    tab.panel.ensemble.setChecked(True)
    _open(qtbot, window, tmp_path)
    seen = _record(tab.run_box.control)
    tab.run()
    qtbot.waitUntil(lambda: len(tab.results) == 1 and not tab.busy, timeout=20_000)

    assert seen[0][0] == "step" and "loading the model" in seen[0][4].lower()
    assert all(not shown for kind, *_, shown, _text in seen if kind == "step")
    work = [(value, maximum) for kind, value, maximum, shown, _ in seen if kind == "work"]
    assert work and all(maximum == 8 for _, maximum in work)
    assert [v for v, _ in work] == sorted(v for v, _ in work)
    assert {v for v, _ in work} >= {1, 4, 7, 8}  # every pass counted, not 0 then 8
    assert (0, 1) not in work
    texts = [text for kind, *_, text in seen if kind == "work"]
    assert any("pass 2 of 8" in t for t in texts)
    assert tab.status.text().startswith("Done: 1 output")
    assert tab.progress.value() == tab.progress.maximum()


def test_a_tiled_run_says_tiles_of_work(qtbot, window, tmp_path):
    window.settings.auto_run = False
    tab = window.upscale
    assert tab.panel.selector.set_current(bicubic_choice(2))
    tab.panel.tile_mode.setCurrentIndex(tab.panel.tile_mode.findData("manual"))
    tab.panel.tile_size.setValue(16)
    _open(qtbot, window, tmp_path, side=48)  # 3 x 3 tiles
    seen = _record(tab.run_box.control)
    tab.run()
    qtbot.waitUntil(lambda: len(tab.results) == 1 and not tab.busy, timeout=20_000)
    texts = [text for kind, *_, text in seen if kind == "work"]
    assert any(t.endswith("upscaling, 3 of 9 tiles") for t in texts)
    assert all(maximum == 9 and value >= 1 for kind, value, maximum, *_ in seen if kind == "work")


def test_opening_an_image_does_not_start_a_long_run(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "estimate_seconds", lambda upscaler, h, w, **kw: 150.0)
    window.settings.auto_run = True
    assert window.settings.hold_long_runs  # the default
    tab = window.upscale
    assert tab.panel.selector.set_current(bicubic_choice(2))
    tab.panel.device.setCurrentIndex(tab.panel.device.findData("cpu"))
    _open(qtbot, window, tmp_path)
    qtbot.waitUntil(lambda: "2:30" in tab.status.text(), timeout=10_000)
    assert not tab.busy and tab.task is None and not tab.results
    assert "press Upscale" in tab.status.text() and "on the CPU" in tab.status.text()
    assert tab.run_button.isEnabled() and not tab.progress.isTextVisible()
    # Upscale by hand runs it, with the estimate as the time left until the rate is known.
    tab.run()
    qtbot.waitUntil(lambda: len(tab.results) == 1 and not tab.busy, timeout=20_000)


def test_a_short_run_or_the_setting_off_starts_at_once(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "estimate_seconds", lambda upscaler, h, w, **kw: 1.0)
    window.settings.auto_run = True
    tab = window.upscale
    assert tab.panel.selector.set_current(bicubic_choice(2))
    _open(qtbot, window, tmp_path)
    qtbot.waitUntil(lambda: len(tab.results) == 1 and not tab.busy, timeout=20_000)

    monkeypatch.setattr(jobs, "estimate_seconds", lambda upscaler, h, w, **kw: 999.0)
    window.hold_long_action.setChecked(False)
    assert not window.settings.hold_long_runs
    window.upscale.open_path(write_png(tmp_path / "other.png", 10, 10))
    qtbot.waitUntil(lambda: tab.source_name == "other.png", timeout=5000)
    qtbot.waitUntil(lambda: len(tab.results) == 1 and not tab.busy, timeout=20_000)


def test_run_control_eta_excludes_pauses(qtbot):
    clock = FakeClock()
    control = RunControl("Start", pause=True, clock=clock)
    qtbot.addWidget(control)
    control.begin("Loading...")
    assert control.progress.maximum() == 0 and not control.progress.isTextVisible()
    assert control.status.text() == "Loading..."
    clock.now = 10.0
    control.show_work(0, 10, "Working")
    assert control.status.text() == "Working"  # no rate yet: no time left
    clock.now = 12.0
    control.show_work(1, 10, "Working")
    assert control.status.text() == "Working, about 0:18 left"
    control.pause_button.click()  # the tab decides; the control follows
    control.set_paused(True, "Paused.")
    assert control.pause_button.text() == "Resume" and control.status.text() == "Paused."
    clock.now = 500.0
    control.set_paused(False)
    clock.now = 502.0
    control.show_work(2, 10, "Working")
    assert control.status.text() == "Working, about 0:16 left"
    control.finish(RunOutcome.DONE, "Done.")
    assert control.progress.value() == control.progress.maximum()
    assert control.pause_button.text() == "Pause" and not control.pause_button.isChecked()


@pytest.mark.parametrize("outcome", [RunOutcome.CANCELLED, RunOutcome.FAILED])
def test_run_control_empties_the_bar_of_a_run_that_stopped(qtbot, outcome):
    control = RunControl("Start", clock=FakeClock())
    qtbot.addWidget(control)
    control.begin()
    control.show_work(3, 10, "Working")
    control.finish(outcome, "Ended.")
    assert control.progress.value() == 0 and control.status.text() == "Ended."


def test_pause_holds_an_upscale_run(qtbot, window, tmp_path):
    from tests.app.test_upscale_tab import _slow_run

    tab = _slow_run(qtbot, window, tmp_path)
    task = tab.run()
    qtbot.waitUntil(lambda: tab.progress.value() >= 1, timeout=30_000)
    tab.run_box.pause_button.click()
    assert task.paused and tab.run_box.pause_button.text() == "Resume"
    assert tab.run_box.control.eta.paused and tab.status.text().startswith("Paused")
    tab.run_box.pause_button.click()
    assert not task.paused and not tab.run_box.control.eta.paused
    tab.run_box.pause_button.click()
    tab.cancel()  # a paused run cancels too
    qtbot.waitUntil(lambda: not tab.busy, timeout=10_000)
    assert "Cancelled" in tab.status.text()
    assert tab.run_box.pause_button.text() == "Pause" and not tab.run_box.pause_button.isEnabled()


def test_a_batch_says_what_it_does_from_the_first_moment(qtbot, window, tmp_path):
    folder = tmp_path / "in"
    for i in range(3):
        write_png(folder / f"{i}.png", 10, 12, seed=i)
    tab = window.batch
    tab.output_dir.setText(str(tmp_path / "out"))
    assert tab.selector.set_current(bicubic_choice(2))
    tab.add_paths([str(folder)])
    seen = _record(tab.control)
    with qtbot.waitSignal(tab.batch_finished, timeout=20_000):
        assert tab.start() is not None
    assert seen[0][0] == "step" and seen[0][4] == "Loading Bicubic x2..."
    assert seen[1][0] == "step" and "first image" in seen[1][4]
    work = [s for s in seen if s[0] == "work"]
    assert work and all(maximum == 300 and shown for _, _, maximum, shown, _ in work)
    assert any(text == "Upscaling: 1 of 3 files done" for *_, text in work)
    assert tab.progress.value() == tab.progress.maximum() == 300


def test_the_estimate_of_a_held_run_is_redone_for_another_model(
    qtbot, bundled_weights, window, tmp_path, monkeypatch
):
    def fake(upscaler, h, w, **kw):
        return 150.0 if upscaler.descriptor.family == "Bicubic" else 30.0

    monkeypatch.setattr(jobs, "estimate_seconds", fake)
    window.settings.auto_run = True
    tab = window.upscale
    assert tab.panel.selector.set_current(bicubic_choice(2))
    _open(qtbot, window, tmp_path)
    qtbot.waitUntil(lambda: "2:30" in tab.status.text(), timeout=10_000)
    assert tab.status.text().startswith("Bicubic x2 would take about 2:30")
    assert tab.panel.selector.set_current(jobs.ModelChoice("A2F", "SD", 2))
    qtbot.waitUntil(lambda: "0:30" in tab.status.text(), timeout=30_000)
    assert tab.status.text().startswith("A2F-SD x2 would take about 0:30")
    assert not tab.busy and not tab.results  # said, not started


def test_rounds_over_the_tiles_are_said_as_rounds(window):
    """Shared pooling with the self-ensemble goes over the tiles 16 times: the text says the
    image's 9 tiles and the round, never 144 tiles."""
    tab = window.upscale
    generation = tab.doc.generation
    tab._run_event(jobs.Stage(0, 1, "A2F-SD x4"), generation)
    tab._run_event(jobs.Upscaling(0, 1, None, rounds=16, tiles=9), generation)
    seen = _record(tab.run_box.control)
    tab._run_progress(20, 144, generation)
    texts = [text for kind, *_, text in seen if kind == "work"]
    assert texts and texts[-1].endswith("upscaling, 2 of 9 tiles, round 3 of 16")
