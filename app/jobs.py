"""The work the app hands to worker threads: plain functions over engine calls (no Qt here), each
taking a TaskContext (app.workers) and returning or emitting plain data (numpy arrays, records)."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from app.views.pyramid import Pyramid
from engine import (
    BatchJob,
    BatchReport,
    Cancelled,
    ImageData,
    ImageError,
    InputQuality,
    ModelDescriptor,
    OutputStore,
    PassProgress,
    Release,
    SRStudioError,
    UpscaleOptions,
    Upscaler,
    build_untrained,
    cleanup_note,
    download_release,
    estimate_seconds,
    free_memory_bytes,
    load_model,
    make_lr,
    read_image,
    run_batch,
    score_rows,
    tensor_to_uint8,
    trim_allocator,
    uint8_to_tensor,
)

BICUBIC = "Bicubic"
ENSEMBLE_SUFFIX = " + extra quality"  # the Options box's words for the x8 self-ensemble
CLEANUP_SUFFIX = " + clean-up"
DEVICE_WORDS = {"cpu": "the CPU", "cuda": "the GPU", "mps": "the Apple GPU"}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelChoice:
    """One entry of the model panel: bicubic, installed weights (family-variant at a scale, found
    by engine.library) or a weights file picked by the user."""

    family: str
    variant: str
    scale: int
    path: str | None = None

    @property
    def name(self) -> str:
        return BICUBIC if self.family == BICUBIC else f"{self.family}-{self.variant}"

    @property
    def label(self) -> str:
        suffix = f" ({Path(self.path).name})" if self.path else ""
        return f"{self.name} x{self.scale}{suffix}"

    def load(self) -> ModelDescriptor:
        if self.family == BICUBIC:
            return load_model("bicubic", scale=self.scale)
        if self.path:
            return load_model(self.path, scale=self.scale)
        return load_model(self.name, scale=self.scale)


def bicubic_choice(scale: int) -> ModelChoice:
    return ModelChoice(BICUBIC, "MATLAB", scale)


@dataclass(frozen=True)
class Metrics:
    psnr: float | None = None
    ssim: float | None = None
    error: str = ""  # why there are no numbers (sizes differ, image too small)


@dataclass
class ModelResult:
    choice: ModelChoice
    label: str
    params: int
    source: str
    device: str
    seconds: float
    # what gets saved (alpha, bit depth, ICC... carried over), on disk; deleted with the result
    store: OutputStore = field(repr=False)
    pyramid: Pyramid = field(repr=False)  # what panes draw
    metrics: Metrics = Metrics()
    ensemble: bool = False  # x8 self-ensemble: an entry of its own, beside the plain run
    cleanup: str = ""  # whether the clean-up network ran first, and why (engine CleanupDecision)
    cleaned: bool = False  # it did: an entry of its own, beside a run without it

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the output."""
        return self.store.height, self.store.width

    @property
    def pixels(self) -> np.ndarray:
        """The whole output as HxWx3 uint8, read from the store (metrics, the clipboard)."""
        return self.pyramid.whole()

    @property
    def key(self) -> str:
        """What tells this result from the others of one comparison."""
        suffix = (ENSEMBLE_SUFFIX if self.ensemble else "") + (CLEANUP_SUFFIX * self.cleaned)
        return self.choice.label + suffix


@dataclass(frozen=True)
class ModelFailed:
    choice: ModelChoice
    message: str


@dataclass(frozen=True)
class Stage:
    index: int  # model `index` of `count` is starting (its weights are being loaded)
    count: int
    label: str


@dataclass(frozen=True)
class Upscaling:
    """Model `index` is loaded and runs: the progress that follows counts network passes,
    `passes` a tile (8 with a self-ensemble run tile by tile), over `rounds` rounds of `tiles`
    tiles (engine's Upscaler.plan); `seconds` is the estimate of its run."""

    index: int
    passes: int
    seconds: float | None
    rounds: int = 1
    tiles: int = 0


@dataclass(frozen=True)
class Filling:
    """Model `index`'s output has begun: its pyramid fills in band by band as the tiles finish
    (rows not made yet are black), until its ModelResult replaces it."""

    index: int
    label: str
    pyramid: Pyramid = field(repr=False)


@dataclass(frozen=True)
class Step:
    """Something under way that cannot be counted yet, in words ("Upscaling the first image")."""

    text: str


@dataclass(frozen=True)
class SimulatedInput:
    """The LR made from the current image (taken as HR) with MATLAB's bicubic, and that HR."""

    scale: int
    lr: ImageData
    lr_pixels: np.ndarray = field(repr=False)
    hr_pixels: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class RunRequest:
    image: ImageData  # the LR input
    choices: Sequence[ModelChoice]
    options: UpscaleOptions
    reference: np.ndarray | None = None  # HxWx3 uint8 HR for metrics
    both_cleanups: bool = False  # each choice twice: clean-up off, then on (side by side)
    quality: InputQuality | None = None  # the image's, when the tab has measured it already

    def runs(self) -> list[tuple[ModelChoice, UpscaleOptions]]:
        """(choice, options) of each run, in order."""
        if not self.both_cleanups:
            return [(choice, self.options) for choice in self.choices]
        modes = [dataclasses.replace(self.options, cleanup=m) for m in ("off", "on")]
        return [(choice, options) for choice in self.choices for options in modes]


def to_pixels(img: ImageData) -> np.ndarray:
    """The colour of an image as HxWx3 uint8 (what an 8-bit PNG of it holds)."""
    return tensor_to_uint8(img.rgb)


def from_pixels(pixels: np.ndarray) -> ImageData:
    return ImageData(rgb=uint8_to_tensor(pixels[..., :3])[0])


def read_input(path: str | Path) -> tuple[ImageData, np.ndarray]:
    img = read_image(path)
    return img, to_pixels(img)


def simulate(hr: ImageData, scale: int) -> SimulatedInput:
    """Treat `hr` as the ground truth: crop it to a multiple of `scale`, make its LR as the
    benchmarks' LR files were made (engine.evaluate.make_lr)."""
    pixels = to_pixels(hr)
    h, w = pixels.shape[0] // scale * scale, pixels.shape[1] // scale * scale
    if h < scale or w < scale:
        raise ImageError(f"the image is too small to simulate x{scale} (needs {scale}x{scale})")
    pixels = np.ascontiguousarray(pixels[:h, :w])
    lr = make_lr(pixels, scale)
    return SimulatedInput(scale, from_pixels(lr), lr, pixels)


def measure(output: np.ndarray | OutputStore, reference: np.ndarray | None, scale: int) -> Metrics:
    """PSNR/SSIM by the papers' protocol (engine.evaluate.score: Y, `scale` pixels shaved) against
    a reference, which may exceed the output by less than `scale` pixels (cropped as eval does).
    An output kept on disk is read a strip of rows at a time (engine.score_rows)."""
    if reference is None:
        return Metrics()
    if isinstance(output, OutputStore):
        oh, ow = output.height, output.width
        store = output

        def read(top: int, bottom: int) -> np.ndarray:
            return store.rgb8(store.read(top, bottom))
    else:
        oh, ow = output.shape[:2]
        pixels = output

        def read(top: int, bottom: int) -> np.ndarray:
            return pixels[top:bottom, :, :3]

    rh, rw = reference.shape[:2]
    if not (oh <= rh < oh + scale and ow <= rw < ow + scale):
        return Metrics(error=f"reference is {rw}x{rh}, output is {ow}x{oh}")
    try:
        p, s = score_rows(read, reference, crop_border=scale, height=oh, width=ow)
    except ValueError as exc:
        return Metrics(error=str(exc))
    return Metrics(p, s)


def run_models(ctx, request: RunRequest, cache: dict[ModelChoice, ModelDescriptor]) -> int:
    """Upscale one image with each choice in turn, emitting per model a Stage (loading), an
    Upscaling (with the estimated time), progress in network passes (tiles x passes, so a
    whole-image or self-ensemble run moves too) and then a ModelResult or a ModelFailed (a wrong
    checkpoint does not stop the others). Returns the number of results; raises Cancelled when
    cancelled (the results already sent stay valid)."""
    image, reference = request.image, request.reference
    runs = request.runs()
    done = 0
    for index, (choice, options) in enumerate(runs):
        # what was freed before (the last network's tiles, the picker's trial runs) goes back
        # to the system before this network's tiles, of other sizes, fragment the heap (glibc)
        trim_allocator()
        if ctx.should_stop():
            raise Cancelled()
        cleaning = " with the clean-up" if request.both_cleanups and options.cleanup == "on" else ""
        ctx.emit(Stage(index, len(runs), choice.label + cleaning))
        try:
            desc = cache.get(choice) or choice.load()
            cache[choice] = desc
            upscaler = Upscaler(desc, options)
            # measures the image unless the tab has (never on the GUI thread)
            decision = upscaler.cleanup_decision(image, request.quality)
            seconds = _estimate(upscaler, image)
            plan = upscaler.plan(image.height, image.width)
            ctx.emit(Upscaling(index, plan.passes, seconds, plan.rounds, plan.tiles))
            progress = PassProgress(ctx.on_progress, plan.passes, plan.tiles * plan.rounds)
            start = time.perf_counter()
            label = (
                desc.label
                + (ENSEMBLE_SUFFIX if options.ensemble else "")
                + (CLEANUP_SUFFIX if decision.on else "")
            )
            with upscaler.counting_passes(progress.on_pass):
                store, pyramid = upscale_kept(
                    upscaler,
                    image,
                    on_start=lambda pyramid, i=index, name=label: ctx.emit(
                        Filling(i, name, pyramid)
                    ),
                    on_progress=progress.on_tiles,
                    should_stop=ctx.should_stop,
                )
            seconds = time.perf_counter() - start
        except Cancelled:
            raise
        except SRStudioError as exc:
            ctx.emit(ModelFailed(choice, str(exc)))
            continue
        except Exception as exc:  # e.g. out of memory: report it and go on with the others
            log.exception("%s failed", choice.label)
            first = (str(exc).splitlines() or [""])[0][:300]
            ctx.emit(ModelFailed(choice, f"{type(exc).__name__}: {first}"))
            continue
        ctx.emit(
            ModelResult(
                choice=choice,
                label=label,
                params=desc.params,
                source=desc.source,
                device=str(upscaler.device),
                seconds=seconds,
                store=store,
                pyramid=pyramid,
                metrics=measure(store, reference, desc.scale),
                ensemble=options.ensemble,
                cleanup=cleanup_note(decision),
                cleaned=decision.on,
            )
        )
        done += 1
    return done


def upscale_kept(
    upscaler: Upscaler,
    image: ImageData,
    on_start: Callable[[Pyramid], None] | None = None,
    **progress_and_stop,
) -> tuple[OutputStore, Pyramid]:
    """The output kept on disk as the CLI would save it (engine.OutputStore) and the pyramid the
    panes draw it from, both made band by band: no full-size copy in memory. `on_start` gets
    the pyramid before the first band. Says in one line, before the network runs, when the
    memory or the disk cannot hold it."""
    out_h, out_w = upscaler.output_size(image.height, image.width)
    need, free = Pyramid.bytes_for(out_h, out_w), free_memory_bytes("cpu")
    if need > free:
        raise ImageError(
            f"showing the {out_w}x{out_h} output needs {need / 2**30:.1f} GB of memory and "
            f"{free / 2**30:.1f} GB is free"
        )
    store = OutputStore(upscaler.output_image(image))  # says so when the disk cannot hold it
    pyramid = Pyramid(store.height, store.width, store)
    if on_start is not None:
        on_start(pyramid)

    def kept(top: int, band: np.ndarray) -> None:
        pyramid.add_rows(store.rgb8(band))

    upscaler.upscale_to_store(image, store=store, on_band=kept, **progress_and_stop)
    return store, pyramid


def _estimate(upscaler: Upscaler, image: ImageData) -> float | None:
    try:
        return estimate_seconds(upscaler, image.height, image.width)
    except Exception:  # an estimate is a nicety: the run itself reports real failures
        log.exception("could not estimate the run")
        return None


def estimate_run(
    ctx, request: RunRequest, cache: dict[ModelChoice, ModelDescriptor]
) -> tuple[float, str]:
    """Seconds the run should take (engine.estimate: a quick calibration per model and device,
    kept for the session) and the device it runs on, in words; the models it needs are loaded
    into `cache`."""
    total, device = 0.0, "this machine"
    for choice in request.choices:
        if ctx.should_stop():
            raise Cancelled()
        desc = cache.get(choice) or choice.load()
        cache[choice] = desc
        upscaler = Upscaler(desc, request.options)
        total += estimate_seconds(upscaler, request.image.height, request.image.width)
        device = DEVICE_WORDS.get(upscaler.device.type, str(upscaler.device))
    return total, device


def measure_all(
    ctx, outputs: Sequence[tuple[str, OutputStore, int]], reference: np.ndarray | None
) -> dict[str, Metrics]:
    """Metrics of several outputs (key, store, scale) against a new reference."""
    found = {}
    for i, (key, pixels, scale) in enumerate(outputs):
        if ctx.should_stop():
            raise Cancelled()
        found[key] = measure(pixels, reference, scale)
        ctx.on_progress(i + 1, len(outputs))
    return found


BICUBIC_REACH = 3  # input rows beyond a strip that MATLAB bicubic's 4 taps can read (with margin)


def bicubic_preview(ctx, image: ImageData, scale: int) -> Pyramid:
    """The input upscaled with MATLAB bicubic, for showing the input at output size: its full
    resolution made again from the input rows each region shown needs, its smaller levels made
    now a strip at a time. Nothing of the output's size is kept, in memory or on disk."""
    network = load_model("bicubic", scale=scale).model
    rgb, height, width = image.rgb, image.height, image.width

    def rows(top: int, bottom: int) -> np.ndarray:
        first = max(0, top // scale - BICUBIC_REACH)
        last = min(height, (bottom - 1) // scale + 1 + BICUBIC_REACH)
        with torch.no_grad():
            out = network(rgb[None, :, first:last])
        return tensor_to_uint8(out[0, :, top - first * scale : bottom - first * scale])

    return Pyramid.made_from(height * scale, width * scale, rows, should_stop=ctx.should_stop)


def save_output(store: OutputStore, path: str | Path, fmt: str, quality: int) -> str:
    """The path written, followed by what metadata the format could not hold, if any."""
    warnings = store.save(path, format=fmt, quality=quality)
    return str(path) + (f" ({'; '.join(warnings)})" if warnings else "")


def run_batch_job(
    ctx, job: BatchJob, choice: ModelChoice, options: UpscaleOptions, report_path: Path | None
) -> tuple[BatchReport, tuple[Path, Path] | None]:
    """Run a batch, sending each FileRecord as it is decided; write the report (JSON and text)."""
    upscaler = Upscaler(choice.load(), options)
    ctx.emit(Step(f"{choice.label}: upscaling the first image..."))
    report = run_batch(
        job, upscaler, on_progress=ctx.on_progress, should_stop=ctx.should_stop, on_file=ctx.emit
    )
    written = report.write(report_path) if report_path is not None else None
    return report, written


@dataclass(frozen=True)
class Installed:
    """One release of a download is in the library (sha256 verified) at `path`."""

    release: Release
    path: Path


def download_releases(ctx, releases: Sequence[Release]) -> list[Path]:
    """Download, verify and install the releases one after the other (engine.download_release:
    resumable, sha256-checked); progress in bytes over all of them; each release is emitted when
    it starts and as Installed when it is in. Raises Cancelled (what was received is kept)."""
    total = sum(r.size or 0 for r in releases)
    offset, paths = 0, []
    for release in releases:
        if ctx.should_stop():
            raise Cancelled()
        ctx.emit(release)

        def progress(done: int, whole: int, offset: int = offset) -> None:
            ctx.on_progress(offset + done, max(total, offset + whole))

        path = download_release(release, on_progress=progress, should_stop=ctx.should_stop)
        ctx.emit(Installed(release, path))
        offset += release.size or 0
        paths.append(path)
    return paths


@dataclass(frozen=True)
class SpeedItem:
    """A model whose time to estimate: installed (its weights are loaded) or not (a network of
    the same shape with random weights is timed: the time does not depend on the values)."""

    key: str
    choice: ModelChoice
    installed: bool


@dataclass(frozen=True)
class SpeedEstimate:
    key: str
    seconds: float | None  # None: it could not be estimated


def estimate_speeds(
    ctx,
    items: Sequence[SpeedItem],
    options: UpscaleOptions,
    size: tuple[int, int],
    cache: dict[tuple[ModelChoice, bool], ModelDescriptor],
) -> None:
    """Seconds each model should take for an LR image of size (height, width) on the device of
    `options`, emitted one SpeedEstimate at a time (engine.estimate_seconds: a quick calibration
    per model and device, kept for the session). `cache` holds the networks built so far."""
    for item in items:
        if ctx.should_stop():
            raise Cancelled()
        try:
            key = (item.choice, item.installed)
            desc = cache.get(key)
            if desc is None:
                if item.installed:
                    desc = item.choice.load()
                else:
                    desc = build_untrained(item.choice.name, item.choice.scale)
                cache[key] = desc
            if ctx.should_stop():  # between the loading and the timing: stop sooner
                raise Cancelled()
            timed = Upscaler(desc, dataclasses.replace(options, backend="torch"))  # see estimate
            seconds = estimate_seconds(timed, *size, should_stop=ctx.should_stop)
        except Cancelled:
            raise
        except Exception:  # an estimate is a nicety: the row says it has none
            log.exception("could not estimate %s", item.choice.label)
            seconds = None
        ctx.emit(SpeedEstimate(item.key, seconds))
