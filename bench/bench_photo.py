"""A real photo, upscaled the way a user does it: speed and peak memory of `srstudio upscale`.

Run: .venv/bin/python bench/bench_photo.py [--models A2F-SD ...] [--scales 4] [--format jpg]
     [--size 8000x6000]
     .venv/bin/python bench/bench_photo.py --pooling [--models A2F-SD RNAN-tiny CRAN-tiny]

The photo: four ../shared/train/SunHays80 images (img_001..004), each resized to 2000x1500
(Pillow, Lanczos) and tiled 2x2 into one 4000x3000 JPEG (quality 95), made once in --workdir;
--size 8000x6000 makes a 48 MP one the same way (parts of 4000x3000).

For each model and scale: `srstudio upscale photo.jpg -o OUT --model M --scale S` (bundled or
installed weights) in a fresh process through the `srstudio` entry point (app.launcher, which
preloads jemalloc where installed), timed, its peak RSS, user/system CPU seconds and minor page
faults from os.wait4; output megapixels per second; and the same network's throughput on a
256x256 crop of the photo in one whole-image pass (tile 0), measured in this process in the same
run: --repeat passes just before the photo's process and --repeat just after it, so a machine
whose speed drifts over the photo's minute or two (these shared cores do, by 10-20%) weighs on
both sides. The ratio is to the median of those passes; the best pass and the ratio to it are
printed beside. --env KEY=VALUE (repeatable) sets
variables for the upscale process, e.g. SRSTUDIO_JEMALLOC=0 to measure glibc's malloc, and
SRSTUDIO_MALLOC_TUNING=0 to measure that without engine.inference.allocator (and glibc's
MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ to try other values); --upscale-arg passes
options on to srstudio upscale.

--pooling: per-tile pooling (one pass) against shared pooling (two passes, --exact-tiles) at the
automatic tile size: the photo is shrunk by MATLAB bicubic to LR, upscaled both ways, and the
mean PSNR (Y, shave the scale, rounded) against the photo is printed for each, per model/scale.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.checkpoints import load_model  # noqa: E402
from engine.imaging.io import read_image  # noqa: E402
from engine.imaging.resize import imresize  # noqa: E402
from engine.inference.upscaler import UpscaleOptions, Upscaler  # noqa: E402
from engine.metrics import psnr  # noqa: E402

SUNHAYS = ROOT.parent / "shared" / "train" / "SunHays80"
# the `srstudio` entry point, as installed (app.launcher: it preloads jemalloc where installed)
SRSTUDIO = [sys.executable, "-c", "import sys; from app.launcher import main; sys.exit(main())"]
PART = (2000, 1500)


def make_photo(path: Path, part_size: tuple[int, int] = PART) -> Path:
    if path.exists():
        return path
    photo = Image.new("RGB", (2 * part_size[0], 2 * part_size[1]))
    for i in range(4):
        with Image.open(SUNHAYS / f"img_{i + 1:03d}.png") as im:
            part = im.convert("RGB").resize(part_size, Image.Resampling.LANCZOS)
        photo.paste(part, ((i % 2) * part_size[0], (i // 2) * part_size[1]))
    photo.save(path, quality=95)
    return path


class WholeImage:
    """One network's whole-image pass on a 256x256 crop of the photo, timed pass by pass."""

    def __init__(self, model: str, scale: int, photo: Path) -> None:
        rgb = read_image(photo).rgb
        top, left = (rgb.shape[1] - 256) // 2, (rgb.shape[2] - 256) // 2
        self.x = rgb[None, :, top : top + 256, left : left + 256].contiguous()
        self.up = Upscaler(load_model(model, scale=scale), UpscaleOptions(tile=0, device="cpu"))
        self.megapixels = (256 * scale) ** 2 / 1e6
        self.up.upscale_tensor(self.x)  # warm-up

    def passes(self, repeat: int) -> list[float]:
        """Output MP/s of `repeat` passes."""
        rates = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            self.up.upscale_tensor(self.x)
            rates.append(self.megapixels / (time.perf_counter() - t0))
        return rates


def run_upscale(
    model: str,
    scale: int,
    photo: Path,
    out: Path,
    fmt: str | None,
    env: dict[str, str],
    extra: list[str] = (),  # type: ignore[assignment]
) -> dict[str, float]:
    cmd = [*SRSTUDIO, "upscale", str(photo), "-o", str(out)]
    cmd += ["--model", model, "--scale", str(scale), *extra]
    if fmt:
        cmd += ["--format", fmt]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with exit status {proc.returncode}")
    return {
        "seconds": seconds,
        "rss_mib": usage.ru_maxrss / 1024,  # KiB on Linux
        "user": usage.ru_utime,
        "system": usage.ru_stime,
        "minflt": usage.ru_minflt,
    }


def speed(args: argparse.Namespace, photo: Path, work: Path) -> None:
    env = dict(item.split("=", 1) for item in args.env)
    with Image.open(photo) as im:
        width, height = im.size
    print(
        f"photo {width}x{height}, torch threads {torch.get_num_threads()}, env {env or '-'}, "
        f"upscale options {' '.join(args.upscale_arg) or '-'}"
    )
    head = "| model | scale | seconds | output MP/s | 256x256 whole MP/s, median (best) | ratio |"
    print(head + " ratio to best | peak RSS | user s | system s | minor faults |")
    print("|---" * 11 + "|")
    for model in args.models:
        for scale in args.scales:
            whole = WholeImage(model, scale, photo)
            rates = whole.passes(args.repeat)
            out = work / f"out-{model}-x{scale}"
            r = run_upscale(model, scale, photo, out, args.format, env, args.upscale_arg)
            rates += whole.passes(args.repeat)
            median, best = statistics.median(rates), max(rates)
            mps = width * height * scale * scale / 1e6 / r["seconds"]
            print(
                f"| {model} | x{scale} | {r['seconds']:.1f} | {mps:.2f} | {median:.2f} "
                f"({best:.2f}) | {mps / median:.2f}x | {mps / best:.2f}x | {r['rss_mib']:.0f} MiB "
                f"| {r['user']:.0f} | {r['system']:.0f} | {r['minflt'] / 1e6:.2f} M |",
                flush=True,
            )
            print("  256x256 passes, MP/s:", " ".join(f"{v:.2f}" for v in rates), flush=True)


def _y_psnr(sr: torch.Tensor, hr: np.ndarray, scale: int) -> float:
    out = (sr[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return psnr(out, hr, crop_border=scale)


def pooling(args: argparse.Namespace, photo: Path) -> None:
    """Per-tile against shared pooling at the automatic tile size, on the photo shrunk to LR."""
    hr_t = read_image(photo).rgb
    print("| model | scale | LR size | tile | PSNR 1 pass | PSNR 2 passes | 1 - 2 (dB) | s 1 / 2 |")
    print("|---" * 8 + "|")
    for model in args.models:
        for scale in args.scales:
            h, w = (s // scale * scale for s in hr_t.shape[1:])
            hr = hr_t[:, :h, :w]
            lr = imresize(hr[None], size=(h // scale, w // scale)).clamp_(0, 1)
            hr8 = (hr.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            desc = load_model(model, scale=scale)
            scores, times, tile = [], [], None
            for exact in (False, True):
                up = Upscaler(desc, UpscaleOptions(device="cpu", exact_tiles=exact))
                tile = up._tile(*lr.shape[-2:])
                t0 = time.perf_counter()
                sr = up.upscale_tensor(lr)
                times.append(time.perf_counter() - t0)
                scores.append(_y_psnr(sr, hr8, scale))
            print(
                f"| {model} | x{scale} | {lr.shape[-1]}x{lr.shape[-2]} | {tile} | "
                f"{scores[0]:.4f} | {scores[1]:.4f} | {scores[0] - scores[1]:+.4f} | "
                f"{times[0]:.0f} / {times[1]:.0f} |",
                flush=True,
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["A2F-SD"])
    p.add_argument("--scales", nargs="+", type=int, default=[4])
    p.add_argument("--format", help="output format (default: the input's, JPEG)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--upscale-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="passed on to srstudio upscale (repeatable), e.g. --upscale-arg=--tile=240",
    )
    p.add_argument("--workdir", type=Path, help="where the photo and outputs go (default: temp)")
    p.add_argument("--pooling", action="store_true", help="per-tile vs shared pooling PSNR")
    p.add_argument(
        "--size",
        default="4000x3000",
        help="photo WIDTHxHEIGHT, even (default 4000x3000; 8000x6000 for the 48 MP check)",
    )
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        width, height = (int(v) for v in args.size.lower().split("x"))
        name = "photo.jpg" if (width, height) == (4000, 3000) else f"photo-{width}x{height}.jpg"
        photo = make_photo(work / name, (width // 2, height // 2))
        if args.pooling:
            pooling(args, photo)
        else:
            speed(args, photo, work)


if __name__ == "__main__":
    main()
