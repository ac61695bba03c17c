"""Inference backends side by side: PyTorch and OpenVINO, fp32 and bf16, on the CPU.

Run: .venv/bin/python bench/bench_backends.py [--models A2F-SD RNAN-tiny CRAN-tiny HPINet-T]
     [--scale 4] [--rounds 5] [--photo A2F-SD] [--workdir /tmp/photo]

Per model (bundled weights), on a 256x256 crop of bench_photo.py's photo, whole image: torch fp32
(the reference), torch bf16 (autocast), OpenVINO fp32 and OpenVINO bf16, the bf16 paths only
where the CPU computes bf16 natively (elsewhere OpenVINO would compute fp32 and say bf16, and
torch emulates it, 10x slower than fp32 on A2F-SD; --emulated-bf16 times torch's anyway). The
paths run interleaved, round by round, after one warm-up each (OpenVINO's conversion and
compilation are not timed; its converted networks go to a temporary cache). Printed: median
seconds, speed relative to torch fp32, max abs difference and PSNR (RGB, 0..1) of each output
against torch fp32's.

--photo MODEL...: also the 12 MP photo for those models, `srstudio upscale` in a fresh process
per backend (fp32, and bf16 where native), output megapixels per second, and the ratio to torch
fp32's 256x256 throughput (median of --rounds passes before and after each photo run, as
bench_photo.py does it).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_photo import WholeImage, make_photo, run_upscale  # noqa: E402

from engine.checkpoints import load_model  # noqa: E402
from engine.imaging.io import read_image  # noqa: E402
from engine.inference import openvino_backend  # noqa: E402
from engine.inference.upscaler import UpscaleOptions, Upscaler  # noqa: E402

PATHS = (("torch", "fp32"), ("torch", "bf16"), ("openvino", "fp32"), ("openvino", "bf16"))


def _paths(emulated_bf16: bool = False) -> list[tuple[str, str]]:
    paths = []
    for backend, precision in PATHS:
        if backend == "openvino" and not openvino_backend.available():
            continue
        emulated = precision == "bf16" and not openvino_backend.native_bf16()
        if emulated and (backend == "openvino" or not emulated_bf16):
            continue
        paths.append((backend, precision))
    return paths


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def crop_table(
    models: list[str], scale: int, photo: Path, rounds: int, emulated_bf16: bool
) -> None:
    rgb = read_image(photo).rgb
    top, left = (rgb.shape[1] - 256) // 2, (rgb.shape[2] - 256) // 2
    x = rgb[None, :, top : top + 256, left : left + 256].contiguous()
    paths = _paths(emulated_bf16)
    print(f"256x256 crop, x{scale}, {torch.get_num_threads()} threads, {rounds} rounds")
    print("| model | path | median s | speed vs torch fp32 | max abs diff | PSNR vs torch fp32 |")
    print("|---|---|---|---|---|---|")
    for model in models:
        desc = load_model(model, scale=scale)
        ups = {
            p: Upscaler(desc, UpscaleOptions(tile=0, device="cpu", backend=p[0], precision=p[1]))
            for p in paths
        }
        outs = {p: up.upscale_tensor(x) for p, up in ups.items()}  # warm-up (and conversion)
        times: dict[tuple[str, str], list[float]] = {p: [] for p in paths}
        for _ in range(rounds):
            for p, up in ups.items():
                t0 = time.perf_counter()
                up.upscale_tensor(x)
                times[p].append(time.perf_counter() - t0)
        ref, base = outs[("torch", "fp32")], statistics.median(times[("torch", "fp32")])
        for p in paths:
            median = statistics.median(times[p])
            diff = float((outs[p] - ref).abs().max())
            print(
                f"| {model} | {p[0]} {p[1]} | {median:.3f} | {base / median:.2f}x | "
                f"{diff:.1e} | {_psnr(outs[p], ref):.1f} dB |",
                flush=True,
            )


def photo_table(models: list[str], scale: int, photo: Path, work: Path, rounds: int) -> None:
    from PIL import Image

    with Image.open(photo) as im:
        width, height = im.size
    print(f"photo {width}x{height}, x{scale}, srstudio upscale in a fresh process")
    head = "| model | path | seconds | output MP/s | torch fp32 256x256 MP/s (median) | ratio |"
    print(head + " peak RSS |")
    print("|---" * 7 + "|")
    for model in models:
        whole = WholeImage(model, scale, photo)
        for backend, precision in _paths():
            rates = whole.passes(rounds)
            out = work / f"out-{model}-x{scale}-{backend}-{precision}"
            extra = ["--backend", backend, "--precision", precision]
            r = run_upscale(model, scale, photo, out, None, {}, extra)
            rates += whole.passes(rounds)
            median = statistics.median(rates)
            mps = width * height * scale * scale / 1e6 / r["seconds"]
            print(
                f"| {model} | {backend} {precision} | {r['seconds']:.1f} | {mps:.2f} | "
                f"{median:.2f} | {mps / median:.2f}x | {r['rss_mib']:.0f} MiB |",
                flush=True,
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=["A2F-SD", "RNAN-tiny", "CRAN-tiny", "HPINet-T"])
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--photo", nargs="*", help="also the 12 MP photo end to end, for these models")
    p.add_argument("--emulated-bf16", action="store_true", help="torch bf16 without native bf16")
    p.add_argument("--workdir", type=Path, help="where the photo and outputs go (default: temp)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("SRSTUDIO_CACHE_DIR", str(Path(tmp) / "cache"))
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        photo = make_photo(work / "photo.jpg")
        if args.photo:  # first: a child forked from a process that has loaded every model
            # inherits that process's peak RSS (ru_maxrss survives the exec)
            photo_table(args.photo, args.scale, photo, work, args.rounds)
        if args.models:
            crop_table(args.models, args.scale, photo, args.rounds, args.emulated_bf16)


if __name__ == "__main__":
    main()
