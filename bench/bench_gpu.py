"""The GPU figures of issue 16 (item 6), in one run on one large NVIDIA GPU (made for an H200).

Run: .venv/bin/python bench/bench_gpu.py [--budget 540] [--repeat 5] [--models A2F-SD ...]
     [--sizes 256 512] [--oom-model A2F-M] [--oom-size 1536]
     .venv/bin/python bench/bench_gpu.py --dry-run-cpu   # the same code paths, tiny, on the CPU

Expected duration: about 4 to 8 minutes (model loading, four sections); a wall-clock guard
(--budget seconds, default 540, counted from the start) skips a section with a printed note when
too little of the budget is left, and stops section 1's repeats early, so the whole run stays
within a 10-minute device budget. Without CUDA it exits 2 (except with --dry-run-cpu).

Sections, in this order:
1. Throughput, per model at x4 on a --sizes x --sizes random input (seeded): output megapixels per
   second on CUDA for fp32, fp16 autocast, bf16 autocast and fp32 channels_last (model and input
   converted), synchronised timings, a warm-up first, median of --repeat, all models, sizes and
   variants interleaved in one loop so that the ratios hold. Models: the bundled weights
   (A2F-SD, RNAN-tiny, CRAN-tiny, HPINet-T, engine.checkpoints.load_model) and the paper-size
   variants with random weights (A2F-M, HPINet-M, RNAN-paper, CRAN-paper, build_untrained).
2. Agreement: PSNR (RGB, 0..1, clamped) of each model's fp16 and bf16 output against its fp32
   output on the 256x256 input (channels_last too); below 45 dB is marked.
3. Out-of-memory recovery: torch.cuda.set_per_process_memory_fraction caps the allocator below
   what a whole-image pass of --oom-model x4 on an --oom-size square input needs (the cap is set
   from a 256x256 probe's measured peak); the Upscaler, asked for the whole image (tile 0) and for
   a too-large tile, must finish by halving its tiles (engine.inference.tiling counts the
   out-of-memory errors it recovers from; the "engine" log lines are shown), with an output within
   50 dB of the same Upscaler without the cap at the tile side it ended on. The fraction is reset
   to 1.0 afterwards.
4. The 12 MP photo of bench/bench_photo.py (needs ../shared/train, skipped without it), end to
   end: `srstudio upscale --device cuda` in a fresh process for A2F-SD x4 in fp32, fp16 and bf16
   (seconds, output MP/s, peak host RSS), and the same in this process through
   Upscaler.upscale_to_file for the peak GPU memory (torch.cuda.max_memory_allocated).

Everything is printed as markdown tables, after a header line with the GPU, torch, CUDA and
cuDNN versions: paste them into a new GPU section of BENCHMARKS.md (whoever runs this creates it).
Note that "fp32" convolutions use TF32 on Ampere and later unless torch.backends.cudnn.allow_tf32
is off (the header says which): that is what the app runs, so it is measured as it is.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import logging
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bench_photo  # noqa: E402

from engine.checkpoints import build_untrained, load_model  # noqa: E402
from engine.descriptor import ModelDescriptor  # noqa: E402
from engine.errors import SRStudioError  # noqa: E402
from engine.imaging.io import read_image  # noqa: E402
from engine.inference import tiling  # noqa: E402
from engine.inference.upscaler import UpscaleOptions, Upscaler  # noqa: E402

START = time.monotonic()
SCALE = 4
BUNDLED = ("A2F-SD", "RNAN-tiny", "CRAN-tiny", "HPINet-T")
PAPER = ("A2F-M", "HPINet-M", "RNAN-paper", "CRAN-paper")
VARIANTS = ("fp32", "fp16", "bf16", "fp32-cl")
HALF = {"fp16": torch.float16, "bf16": torch.bfloat16}
AGREEMENT_DB = 45.0  # issue 16: fp16 / bf16 against fp32
OOM_AGREEMENT_DB = 50.0
AGREEMENT_SIZE = 256
PROBE_SIZE = 256  # section 3: the input whose measured peak sets the memory cap
# Section 3's cap, in probes' working memory: a tile of oom-size / 4 (plus context, ~2.6 probes at
# the defaults) fits, one of oom-size / 2 (~9.8) and the whole image (36) do not.
CAP_PROBES = 6
PHOTO_MODEL = "A2F-SD"
PRECISIONS = ("fp32", "fp16", "bf16")
# least seconds of budget a section must have left to be started (section 1 stops its repeats
# early to leave the later sections theirs)
SECTION_NEEDS = {1: 45, 2: 15, 3: 60, 4: 100}
PHOTO_RUN_GUESS = 40.0  # seconds one photo run (subprocess + in-process) is assumed to take


@dataclass(frozen=True)
class Setup:
    device: torch.device
    dry: bool
    models: list[str]
    sizes: list[int]
    variants: tuple[str, ...]
    repeat: int
    budget: float


def remaining(setup: Setup) -> float:
    return setup.budget - (time.monotonic() - START)


def may_run(setup: Setup, section: int, title: str) -> bool:
    need = 1 if setup.dry else SECTION_NEEDS[section]
    left = remaining(setup)
    if left < need:
        print(
            f"\n_Section {section} ({title}) skipped: {left:.0f} s of the {setup.budget:.0f} s "
            f"budget left, it needs about {need} s._",
            flush=True,
        )
        return False
    print(
        f"\n### {section}. {title}\n\n_Started at {time.monotonic() - START:.0f} s._\n", flush=True
    )
    return True


def later_needs(setup: Setup, section: int) -> float:
    return 0.0 if setup.dry else sum(v for k, v in SECTION_NEEDS.items() if k > section)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def release(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def seeded_input(size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    g = torch.Generator().manual_seed(size)
    return torch.rand(1, 3, size, size, generator=g).to(device)


def load(name: str) -> tuple[ModelDescriptor, str]:
    """The bundled weights of a bundled model, random weights (seeded per model) otherwise."""
    if name in BUNDLED:
        desc = load_model(name, scale=SCALE)
        return desc, Path(desc.source.split(":", 1)[-1]).name
    torch.manual_seed(sum(map(ord, name)))
    return build_untrained(name, SCALE), "random"


@dataclass
class Entry:
    name: str
    variant: str
    model: torch.nn.Module
    x: torch.Tensor
    times: list[float]
    error: str = ""


def forward(entry: Entry, device: torch.device) -> torch.Tensor:
    dtype = HALF.get(entry.variant)
    with (
        torch.inference_mode(),
        torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None),
    ):
        y = entry.model(entry.x)
    sync(device)
    return y


def variant_model(model: torch.nn.Module, variant: str) -> torch.nn.Module:
    if variant == "fp32-cl":
        return copy.deepcopy(model).to(memory_format=torch.channels_last)
    return model


def variant_input(x: torch.Tensor, variant: str) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if variant == "fp32-cl" else x


def short_error(exc: BaseException) -> str:
    if tiling.is_out_of_memory(exc):
        return "out of memory"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:60]}"


def throughput(setup: Setup, models: dict[str, tuple[ModelDescriptor, str]]) -> None:
    device = setup.device
    cl_models: dict[str, torch.nn.Module] = {}
    entries: dict[tuple[str, int, str], Entry] = {}
    for name, (desc, _) in models.items():
        if "fp32-cl" in setup.variants:
            cl_models[name] = variant_model(desc.model, "fp32-cl")
        for size in setup.sizes:
            x = seeded_input(size, device)
            for variant in setup.variants:
                model = cl_models[name] if variant == "fp32-cl" else desc.model
                entries[name, size, variant] = Entry(
                    name, variant, model, variant_input(x, variant), []
                )
    for entry in entries.values():  # warm-up; a variant that fails is left out
        try:
            forward(entry, device)
        except RuntimeError as exc:
            entry.error = short_error(exc)
            release(device)
    live = [e for e in entries.values() if not e.error]
    stop_at = later_needs(setup, 1)
    done = 0
    for _ in range(setup.repeat):
        for entry in live:
            t0 = time.perf_counter()
            forward(entry, device)
            entry.times.append(time.perf_counter() - t0)
        done += 1
        if remaining(setup) < stop_at and done < setup.repeat:
            print(f"_Budget: stopped after {done} of {setup.repeat} repeats._\n")
            break
    print(
        f"{device}, x{SCALE}, output MP/s, median of {done}, all interleaved in one loop; "
        "(ratio to fp32); fp16/bf16: autocast, weights float32; channels_last: model and input.\n"
    )
    names = {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16", "fp32-cl": "fp32 channels_last"}
    for size in setup.sizes:
        print(f"{size}x{size} -> {size * SCALE}x{size * SCALE}:\n")
        cols = " | ".join(names[v] for v in setup.variants)
        print(f"| model | weights | params | {cols} |")
        print("|---" * (3 + len(setup.variants)) + "|")
        out_mp = (size * SCALE) ** 2 / 1e6
        for name, (desc, weights) in models.items():
            base = entries[name, size, "fp32"]
            ref = statistics.median(base.times) if base.times else None
            cells = []
            for variant in setup.variants:
                e = entries[name, size, variant]
                if e.error or not e.times:
                    cells.append(e.error or "-")
                    continue
                t = statistics.median(e.times)
                rel = f" ({ref / t:.2f}x)" if ref and variant != "fp32" else ""
                cells.append(f"{mps(out_mp / t)}{rel}")
            print(f"| {name} | {weights} | {desc.params:,} | {' | '.join(cells)} |")
        print()
    del entries, live, cl_models
    release(device)


def psnr01(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR over all RGB samples of two [0, 1] images (nan when either has non-finite values)."""
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    if not math.isfinite(mse):
        return math.nan
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def db(value: float, floor: float | None = None) -> str:
    if math.isnan(value):
        text = "non-finite"
    elif math.isinf(value):
        text = "identical"
    else:
        text = f"{value:.1f} dB"
    if floor is not None and not value >= floor:
        text += f" **< {floor:g} dB**"
    return text


def agreement(setup: Setup, models: dict[str, tuple[ModelDescriptor, str]]) -> None:
    device = setup.device
    size = min(AGREEMENT_SIZE, max(setup.sizes))
    x = seeded_input(size, device)
    others = [v for v in setup.variants if v != "fp32"]
    print(
        f"{size}x{size} x{SCALE}, PSNR over RGB (0..1, clamped) against the fp32 output of the "
        f"same model; marked below {AGREEMENT_DB:g} dB. fp32 std: spread of the fp32 output.\n"
    )
    print(f"| model | weights | fp32 std | {' | '.join(others)} |")
    print("|---" * (3 + len(others)) + "|")
    for name, (desc, weights) in models.items():
        outputs: dict[str, torch.Tensor | str] = {}
        for variant in setup.variants:
            model = variant_model(desc.model, variant)
            entry = Entry(name, variant, model, variant_input(x, variant), [])
            try:
                outputs[variant] = forward(entry, device).float().clamp(0, 1).cpu()
            except RuntimeError as exc:
                outputs[variant] = short_error(exc)
                release(device)
            del entry, model
        ref = outputs["fp32"]
        if isinstance(ref, str):
            print(f"| {name} | {weights} | {ref} |" + " - |" * len(others))
            continue
        cells = []
        for variant in others:
            y = outputs[variant]
            if isinstance(y, str):
                cells.append(y)
            else:
                cells.append(db(psnr01(y, ref), AGREEMENT_DB if variant in HALF else None))
        print(f"| {name} | {weights} | {ref.std().item():.3f} | {' | '.join(cells)} |")
    release(device)


class LogLines(logging.Handler):
    """The records of logger "engine" (and its children), as text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


@contextlib.contextmanager
def captured_log() -> Iterator[LogLines]:
    logger = logging.getLogger("engine")
    handler, level = LogLines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@contextlib.contextmanager
def counted_ooms() -> Iterator[list[str]]:
    """The out-of-memory errors the tiler recovers from (it asks tiling.is_out_of_memory)."""
    seen: list[str] = []
    original = tiling.is_out_of_memory

    def counting(exc: BaseException) -> bool:
        hit = original(exc)
        if hit:
            seen.append(type(exc).__name__)
        return hit

    tiling.is_out_of_memory = counting
    try:
        yield seen
    finally:
        tiling.is_out_of_memory = original


def mps(value: float) -> str:
    """Megapixels per second, three significant digits (one decimal from 100 up)."""
    return f"{value:.1f}" if value >= 100 else f"{value:.3g}"


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_bytes(device: torch.device) -> int:
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def oom_recovery(setup: Setup, name: str, size: int) -> None:
    device = setup.device
    desc, weights = load(name)
    x = seeded_input(size)
    release(device)
    probe = Upscaler(desc, UpscaleOptions(device=str(device), tile=0))
    probe.upscale_tensor(seeded_input(PROBE_SIZE))  # warm-up
    sync(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    probe.upscale_tensor(seeded_input(PROBE_SIZE))
    per_probe = torch.cuda.max_memory_allocated(device) - base
    del probe
    release(device)
    total = torch.cuda.get_device_properties(device).total_memory
    cap = base + CAP_PROBES * per_probe
    fraction = cap / total
    whole = base + per_probe * (size / PROBE_SIZE) ** 2
    print(
        f"{name} x{SCALE} ({weights} weights) on a {size}x{size} input; a {PROBE_SIZE}x"
        f"{PROBE_SIZE} whole-image pass peaks at {gib(per_probe)} over the {gib(base)} held, so "
        f"the whole image needs about {gib(whole)}; cap: fraction {fraction:.4f} of "
        f"{gib(total)} = {gib(cap)}.\n"
    )
    rows = []
    final_side = None
    try:
        torch.cuda.set_per_process_memory_fraction(fraction, device)
        for tile in (0, size // 2):
            rows.append(capped_run(desc, x, tile, size, device))
            final_side = rows[-1]["side"] or final_side
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)
        torch.cuda.empty_cache()
    ref = None
    if final_side:
        up = Upscaler(desc, UpscaleOptions(device=str(device), tile=final_side))
        t0 = time.perf_counter()
        ref = up.upscale_tensor(x)
        ref_s = time.perf_counter() - t0
        del up
    print(
        "| tile asked | OOM errors recovered | tile side at the end | tiles run | seconds | "
        "peak GPU allocated | PSNR vs uncapped | verdict |"
    )
    print("|---" * 8 + "|")
    for row in rows:
        y = row.pop("y")
        score = psnr01(y, ref) if y is not None and ref is not None else math.nan
        ok = row["ooms"] > 0 and y is not None and score > OOM_AGREEMENT_DB
        if row["ooms"] == 0 and y is not None:
            verdict = "FAIL: no out-of-memory error (cap too high)"
        elif y is None:
            verdict = f"FAIL: {row['error']}"
        else:
            verdict = "ok" if ok else f"FAIL: below {OOM_AGREEMENT_DB:g} dB"
        print(
            f"| {row['tile'] or '0 (whole image)'} | {row['ooms']} | {row['side'] or '-'} | "
            f"{row['tiles']} | {row['seconds']:.1f} | {gib(row['peak'])} | "
            f"{db(score) if y is not None else '-'} | {verdict} |"
        )
    print()
    for row in rows:
        for line in row["log"]:
            print(f"- log, tile {row['tile']}: {line}")
    if ref is not None:
        print(f"\nUncapped reference: tiles of {final_side}, {ref_s:.1f} s.")
    half = size // 2
    if tiling.tile_shape(half, size, overlap=desc.tile_overlap, scale=SCALE, banded=True) != (
        half,
        half,
    ):
        print(
            f"Note: tiles of {half} are banded on a {size}-pixel-wide image, so after halving "
            f"the tile-{half} run's cores differ from the reference's: its PSNR is approximate."
        )
    del ref, x, desc
    release(device)


def capped_run(
    desc: ModelDescriptor, x: torch.Tensor, tile: int, size: int, device: torch.device
) -> dict:
    totals: list[int] = []
    reset_peak(device)
    up = Upscaler(desc, UpscaleOptions(device=str(device), tile=tile))
    y, error = None, ""
    t0 = time.perf_counter()
    with captured_log() as log, counted_ooms() as ooms:
        try:
            y = up.upscale_tensor(x, on_progress=lambda done, total: totals.append(total))
        except (SRStudioError, RuntimeError) as exc:
            error = short_error(exc)
    seconds = time.perf_counter() - t0
    side = (tile or size) >> len(ooms) if y is not None else None
    del up
    release(device)
    return {
        "tile": tile,
        "ooms": len(ooms),
        "side": side,
        "tiles": totals[-1] if totals else 0,
        "seconds": seconds,
        "peak": peak_bytes(device),
        "y": y,
        "error": error,
        "log": log.lines,
    }


def photo_runs(setup: Setup) -> None:
    device = setup.device
    precisions = ("fp32", "bf16") if setup.dry else PRECISIONS
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if setup.dry:  # a tiny stand-in for the photo
            from PIL import Image

            photo = work / "photo.jpg"
            pixels = (
                (seeded_input(48)[0, :, :, :40] * 255).byte().permute(1, 2, 0).contiguous().numpy()
            )
            Image.fromarray(pixels).save(photo, quality=95)
        else:
            photo = bench_photo.make_photo(work / "photo.jpg")
        img = read_image(photo, eight_bit=True)
        out_mp = img.width * img.height * SCALE * SCALE / 1e6
        print(
            f"{PHOTO_MODEL} x{SCALE} on the {img.width}x{img.height} photo "
            f"({img.width * img.height / 1e6:.1f} MP -> {out_mp:.0f} MP, JPEG q95). srstudio "
            "upscale: a fresh process, automatic tile, timed from start to exit (imports, CUDA "
            "start, decode, encode included); in-process: Upscaler.upscale_to_file, the same "
            "work without the process start.\n"
        )
        print(
            "| precision | srstudio upscale s | output MP/s | peak host RSS | in-process s | "
            "in-process output MP/s | peak GPU allocated | tiling |"
        )
        print("|---" * 8 + "|")
        guess = PHOTO_RUN_GUESS
        for precision in precisions:
            if not setup.dry and remaining(setup) < guess:
                print(f"| {precision} | skipped: {remaining(setup):.0f} s of budget left |")
                continue
            t_start = time.perf_counter()
            extra = ["--device", device.type, "--precision", precision]
            try:
                r = bench_photo.run_upscale(
                    PHOTO_MODEL, SCALE, photo, work / f"cli-{precision}", None, {}, extra
                )
                cli = f"{r['seconds']:.1f} | {mps(out_mp / r['seconds'])} | {r['rss_mib']:.0f} MiB"
            except SystemExit as exc:  # run_upscale's way of saying the command failed
                cli = f"failed: {exc} | - | -"
            up = Upscaler(
                load_model(PHOTO_MODEL, scale=SCALE),
                UpscaleOptions(device=device.type, precision=precision),
            )
            how = up.tiling(img.height, img.width)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            t0 = time.perf_counter()
            up.upscale_to_file(img, work / f"in-process-{precision}.jpg")
            sync(device)
            seconds = time.perf_counter() - t0
            peak = gib(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else "-"
            del up
            release(device)
            print(
                f"| {precision} | {cli} | {seconds:.1f} | {mps(out_mp / seconds)} | {peak} | "
                f"{how} |",
                flush=True,
            )
            guess = 1.2 * (time.perf_counter() - t_start)


def header(setup: Setup) -> None:
    if setup.device.type == "cuda":
        props = torch.cuda.get_device_properties(setup.device)
        where = f"GPU {props.name} ({gib(props.total_memory)})"
    else:
        where = f"DRY RUN on the CPU ({torch.get_num_threads()} threads), tiny sizes"
    print(
        f"**{where}**, torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN "
        f"{torch.backends.cudnn.version()}, TF32 convolutions "
        f"{'on' if torch.backends.cudnn.allow_tf32 else 'off'}, TF32 matmul "
        f"{'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}, cudnn.benchmark "
        f"{'on' if torch.backends.cudnn.benchmark else 'off'}, budget {setup.budget:.0f} s"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=[*BUNDLED, *PAPER])
    p.add_argument("--sizes", nargs="+", type=int, default=[256, 512])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--budget", type=float, default=540.0, help="wall-clock seconds in all")
    p.add_argument("--oom-model", default="A2F-M", help="section 3's network (x4)")
    p.add_argument(
        "--oom-size",
        type=int,
        default=1536,
        help="section 3's input side (1536: tiles of 768 halved are laid out as tiles of 384)",
    )
    p.add_argument(
        "--dry-run-cpu",
        action="store_true",
        help="check the script on the CPU: 32x32, 1 repeat, A2F-SD and HPINet-T, fp32, bf16 and "
        "channels_last, no OOM section, a tiny photo",
    )
    args = p.parse_args()
    if args.dry_run_cpu:
        setup = Setup(
            torch.device("cpu"),
            True,
            [m for m in args.models if m in ("A2F-SD", "HPINet-T")] or ["A2F-SD"],
            [32],
            ("fp32", "bf16", "fp32-cl"),
            1,
            args.budget,
        )
    elif not torch.cuda.is_available():
        print("bench_gpu.py: no CUDA GPU here (use --dry-run-cpu to check the script)")
        sys.exit(2)
    else:
        variants = VARIANTS if torch.cuda.is_bf16_supported() else ("fp32", "fp16", "fp32-cl")
        setup = Setup(
            torch.device("cuda", torch.cuda.current_device()),
            False,
            args.models,
            args.sizes,
            variants,
            args.repeat,
            args.budget,
        )
    header(setup)
    models = {name: load(name) for name in setup.models}
    for desc, _ in models.values():
        desc.model.to(setup.device).eval()
    print(f"_{len(models)} models loaded in {time.monotonic() - START:.0f} s._")
    if may_run(setup, 1, "Throughput"):
        throughput(setup, models)
    if may_run(setup, 2, "fp16 / bf16 agreement with fp32"):
        agreement(setup, models)
    for desc, _ in models.values():
        desc.model.cpu()
    del models
    release(setup.device)
    if setup.dry:
        print("\n_Section 3 (out-of-memory recovery) skipped: dry run on the CPU._")
    elif may_run(setup, 3, "Out-of-memory recovery"):
        oom_recovery(setup, args.oom_model, args.oom_size)
    if not setup.dry and not bench_photo.SUNHAYS.is_dir():
        print(f"\n_Section 4 (12 MP photo) skipped: {bench_photo.SUNHAYS} is missing._")
    elif may_run(setup, 4, "The 12 MP photo, end to end"):
        photo_runs(setup)
    print(f"\n_Done in {time.monotonic() - START:.0f} s._")


if __name__ == "__main__":
    main()
