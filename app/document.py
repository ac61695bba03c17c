"""The comparison document of the Upscale tab, as plain Python (no Qt): the image opened, the
input runs take (it or its simulated LR), the reference, the results with their metrics, the
heat-maps and bicubic previews made from them, and the counters that tell late worker answers
from current ones. The tab changes it through its methods and renders it when it says what
changed (as napari's layer models drive its Qt controls).

    doc = ComparisonDocument()
    doc.changed.connect(lambda what: ...)   # what: one of CHANGES
    doc.set_source(image, pixels, "photo.jpg")
    gen = doc.generation                    # a worker's answer for gen is dropped if it changed
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np

from app.jobs import Filling, Metrics, ModelResult, SimulatedInput
from app.views.pyramid import Pyramid
from engine import ImageData, InputQuality, OutputStore, difference_map

SOURCE, INPUT, QUALITY, REFERENCE, RESULTS, METRICS, PREVIEW, RUNNING = (
    "source",
    "input",
    "quality",
    "reference",
    "results",
    "metrics",
    "preview",
    "running",
)
CHANGES = (SOURCE, INPUT, QUALITY, REFERENCE, RESULTS, METRICS, PREVIEW, RUNNING)


class Signal:
    """A minimal change signal: connect(fn), emit(*args) calls every fn in order."""

    def __init__(self) -> None:
        self._slots: list[Callable[..., object]] = []

    def connect(self, fn: Callable[..., object]) -> None:
        self._slots.append(fn)

    def disconnect(self, fn: Callable[..., object]) -> None:
        self._slots.remove(fn)

    def emit(self, *args: object) -> None:
        for fn in list(self._slots):
            fn(*args)


class ComparisonDocument:
    """What is compared. `generation` changes whenever the input does (and when a run starts),
    `reference_serial` whenever the reference does: an answer computed for an older value is
    stale and is dropped by the method it is handed to."""

    def __init__(self) -> None:
        self.changed = Signal()  # emitted with one of CHANGES
        self.source: ImageData | None = None  # the image opened
        self.source_pixels: np.ndarray | None = None
        self.source_name = ""
        self.source_quality: InputQuality | None = None  # measured in a worker after opening
        self.input: ImageData | None = None  # what runs take: the source or its simulated LR
        self.input_pixels: np.ndarray | None = None
        self.simulated_scale: int | None = None
        self.reference: np.ndarray | None = None
        self.reference_name = ""
        self.results: dict[str, ModelResult] = {}  # by ModelResult.key, in arrival order
        self.running: Filling | None = None  # the output being made, filling in
        self.heatmaps: dict[str, Pyramid] = {}  # by result key, made on demand
        self.previews: dict[int, Pyramid] = {}  # the input upscaled by bicubic, by scale
        self.generation = 0
        self.reference_serial = 0

    # ================================================================= counters

    def next_generation(self) -> int:
        """A new run or input: answers for the earlier generation are dropped from now on."""
        self.generation += 1
        return self.generation

    # ================================================================= input

    def set_source(
        self, image: ImageData, pixels: np.ndarray, name: str, *, keep_reference: bool = False
    ) -> None:
        """A new image: it is the input; outputs, previews and (unless kept) the reference go."""
        self.next_generation()
        self.source, self.source_pixels, self.source_name = image, pixels, name
        self.source_quality = None
        self.input, self.input_pixels, self.simulated_scale = image, pixels, None
        self._clear_outputs()
        if not keep_reference:
            self.reference, self.reference_name = None, ""
            self.reference_serial += 1
        self.changed.emit(SOURCE)

    def set_quality(self, image: ImageData, quality: InputQuality) -> bool:
        """The opened image's JPEG quality and noise; False (ignored) when another image has
        been opened since (a run starting meanwhile does not make it stale)."""
        if image is not self.source:
            return False
        self.source_quality = quality
        self.changed.emit(QUALITY)
        return True

    def set_simulated(self, sim: SimulatedInput) -> None:
        """Runs take the source's LR (MATLAB bicubic); the source becomes the reference."""
        self.input, self.input_pixels, self.simulated_scale = sim.lr, sim.lr_pixels, sim.scale
        self.previews.clear()
        self.changed.emit(INPUT)
        self.set_reference(sim.hr_pixels, f"{self.source_name} (as HR)")

    def use_source(self) -> None:
        """Simulation off: runs take the source again; the simulated reference goes."""
        self.input, self.input_pixels, self.simulated_scale = (
            self.source,
            self.source_pixels,
            None,
        )
        self.previews.clear()
        self.changed.emit(INPUT)
        self.set_reference(None, "")

    def display_scale(self, default: int) -> int:
        """The scale the input is shown at: the results', else the simulation's, else default."""
        if self.results:
            return next(iter(self.results.values())).choice.scale
        return self.simulated_scale or default

    # ================================================================= reference

    def set_reference(self, pixels: np.ndarray | None, name: str) -> None:
        """A new reference (None: none): heat-maps are dropped; metrics need measuring again."""
        self.reference, self.reference_name = pixels, name
        self.reference_serial += 1
        self.heatmaps.clear()
        self.changed.emit(REFERENCE)

    # ================================================================= results

    def clear_outputs(self) -> None:
        self.next_generation()
        self._clear_outputs()
        self.changed.emit(RESULTS)

    def _clear_outputs(self) -> None:
        self.running = None
        self.results.clear()
        self.heatmaps.clear()
        self.previews.clear()

    def keep_scale(self, scale: int) -> None:
        """Results at another scale than the next run's are dropped (they cannot sit side by
        side)."""
        if self.results and {r.choice.scale for r in self.results.values()} != {scale}:
            self.results.clear()
            self.heatmaps.clear()
            self.changed.emit(RESULTS)

    def set_running(self, filling: Filling | None, generation: int) -> bool:
        """The output being made (None: none any more); False when stale."""
        if generation != self.generation:
            return False
        self.running = filling
        self.changed.emit(RUNNING)
        return True

    def add_result(self, result: ModelResult, generation: int) -> bool:
        """A run's output (it replaces the one filling in); False (ignored) when it belongs to
        an earlier generation."""
        if generation != self.generation:
            return False
        self.running = None
        self.results[result.key] = result
        self.heatmaps.pop(result.key, None)
        self.changed.emit(RESULTS)
        return True

    def set_metrics(self, found: Mapping[str, Metrics], generation: int) -> bool:
        """Metrics measured again against the reference; False when stale."""
        if generation != self.generation:
            return False
        for key, metrics in found.items():
            if key in self.results:
                self.results[key].metrics = metrics
        self.changed.emit(METRICS)
        return True

    def outputs(self) -> list[tuple[str, OutputStore, int]]:
        """(key, store, scale) of every result, for measuring them again."""
        return [(k, r.store, r.choice.scale) for k, r in self.results.items()]

    def measured(self) -> Iterable[ModelResult]:
        return (r for r in self.results.values() if r.metrics.psnr is not None)

    # ================================================================= derived images

    def heatmap(self, key: str) -> Pyramid | None:
        """|Y difference| of result `key` to the reference, None without one: its smaller
        levels made once a strip at a time, its full resolution again for each region shown."""
        result = self.results.get(key)
        if result is None or self.reference is None or result.metrics.psnr is None:
            return None
        heat = self.heatmaps.get(key)
        if heat is None:
            store, reference = result.store, self.reference

            def rows(top: int, bottom: int) -> np.ndarray:
                return difference_map(store.rgb8(store.read(top, bottom)), reference[top:bottom])

            heat = self.heatmaps[key] = Pyramid.made_from(*result.size, rows)
        return heat

    def set_preview(self, scale: int, preview: Pyramid, generation: int) -> bool:
        if generation != self.generation:
            return False
        self.previews[scale] = preview
        self.changed.emit(PREVIEW)
        return True
