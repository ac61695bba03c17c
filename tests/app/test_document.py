"""The comparison document (app.document): plain Python state with change signals, which the
Upscale tab renders."""

from __future__ import annotations

import numpy as np

from app import document, jobs
from app.document import ComparisonDocument
from app.jobs import Metrics, ModelResult, bicubic_choice
from app.views.pyramid import Pyramid
from engine import OutputStore

RNG = np.random.default_rng(0)


def _pixels(h: int, w: int) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _result(scale: int = 2, psnr: float | None = None, ensemble: bool = False) -> ModelResult:
    pixels = _pixels(8 * scale, 8 * scale)
    image = jobs.from_pixels(pixels)
    store = OutputStore(image)
    store.append(store.layout.quantize(image.rgb, None))
    pyramid = Pyramid(*pixels.shape[:2], store)
    pyramid.add_rows(pixels)
    return ModelResult(
        choice=bicubic_choice(scale),
        label=f"Bicubic x{scale}",
        params=0,
        source="builtin",
        device="cpu",
        seconds=0.1,
        store=store,
        pyramid=pyramid,
        metrics=Metrics(psnr, 0.9 if psnr else None),
        ensemble=ensemble,
    )


def _doc() -> tuple[ComparisonDocument, list[str]]:
    doc = ComparisonDocument()
    said: list[str] = []
    doc.changed.connect(said.append)
    return doc, said


def test_a_new_source_clears_what_belonged_to_the_last_one() -> None:
    doc, said = _doc()
    lr = _pixels(8, 8)
    doc.set_source(jobs.from_pixels(lr), lr, "a.png")
    assert said == [document.SOURCE] and doc.input_pixels is lr and doc.source_name == "a.png"
    doc.set_reference(_pixels(16, 16), "ref.png")
    assert doc.add_result(_result(psnr=30.0), doc.generation)
    assert doc.heatmap("Bicubic x2") is not None and "Bicubic x2" in doc.heatmaps
    doc.previews[2] = _pixels(16, 16)
    before = doc.generation
    doc.set_source(jobs.from_pixels(lr), lr, "b.png", keep_reference=True)
    assert doc.generation > before and not doc.results and not doc.heatmaps and not doc.previews
    assert doc.reference_name == "ref.png"  # kept when asked
    doc.set_source(jobs.from_pixels(lr), lr, "c.png")
    assert doc.reference is None and doc.reference_name == ""


def test_stale_answers_are_dropped() -> None:
    doc, said = _doc()
    old = doc.next_generation()
    doc.next_generation()
    assert not doc.add_result(_result(), old) and not doc.results
    assert not doc.set_metrics({"Bicubic x2": Metrics(1.0, 0.5)}, old)
    assert not doc.set_preview(2, _pixels(4, 4), old) and not doc.previews
    assert said == []
    assert doc.add_result(_result(), doc.generation)
    assert doc.set_metrics({"Bicubic x2": Metrics(31.0, 0.95)}, doc.generation)
    assert doc.results["Bicubic x2"].metrics.psnr == 31.0
    assert said == [document.RESULTS, document.METRICS]


def test_the_reference_and_heatmaps() -> None:
    doc, said = _doc()
    doc.add_result(_result(psnr=30.0), doc.generation)
    assert doc.heatmap("Bicubic x2") is None  # no reference
    serial = doc.reference_serial
    doc.set_reference(_pixels(16, 16), "ref.png")
    assert doc.reference_serial == serial + 1 and said[-1] == document.REFERENCE
    heat = doc.heatmap("Bicubic x2")
    assert heat is not None and doc.heatmap("Bicubic x2") is heat  # made once
    doc.set_reference(_pixels(16, 16), "other.png")
    assert not doc.heatmaps  # made against the old reference


def test_simulation_and_back() -> None:
    doc, said = _doc()
    hr = _pixels(24, 24)
    doc.set_source(jobs.from_pixels(hr), hr, "photo.png")
    sim = jobs.simulate(doc.source, 3)
    doc.set_simulated(sim)
    assert doc.simulated_scale == 3 and doc.input_pixels.shape == (8, 8, 3)
    assert doc.reference is sim.hr_pixels and doc.reference_name == "photo.png (as HR)"
    assert said[-2:] == [document.INPUT, document.REFERENCE]
    assert doc.display_scale(4) == 3
    doc.use_source()
    assert doc.simulated_scale is None and doc.input_pixels is hr and doc.reference is None
    assert doc.display_scale(4) == 4


def test_results_of_another_scale_go_when_a_run_at_a_new_scale_starts() -> None:
    doc, said = _doc()
    doc.add_result(_result(2), doc.generation)
    doc.keep_scale(2)
    assert list(doc.results) == ["Bicubic x2"]
    doc.keep_scale(4)
    assert not doc.results and said[-1] == document.RESULTS


def test_the_upscale_tab_renders_the_document(qtbot, window) -> None:
    tab = window.upscale
    lr = _pixels(8, 8)
    tab.doc.set_source(jobs.from_pixels(lr), lr, "doc.png")
    assert "input" in tab.canvas.contents
    tab.doc.set_reference(_pixels(16, 16), "ref.png")
    assert "ref.png" in tab.metrics_box.reference_label.text()
    assert "reference" in tab.canvas.contents
    tab.doc.add_result(_result(psnr=None), tab.doc.generation)
    assert tab.table.rowCount() == 1 and "Bicubic x2" in tab.canvas.contents
    assert tab.table.item(0, 2).text() == "-"
    tab.doc.set_metrics({"Bicubic x2": Metrics(30.0, 0.9)}, tab.doc.generation)
    assert tab.table.item(0, 2).text() == "30.000"
    tab.doc.clear_outputs()
    assert tab.table.rowCount() == 0 and "Bicubic x2" not in tab.canvas.contents
