"""Batch throughput: images per second for a folder of small PNGs, read -> upscale -> write.

    .venv/bin/python bench/bench_batch.py [--count 16] [--size 128] [--device auto] [--tile auto]
        [--threads N] [--compare]
    .venv/bin/python bench/bench_batch.py --processes [--workdir DIR] [--count 64] [--size 480x360]
        [--model A2F-SD] [--repeat 2]

Runs MATLAB bicubic x2 and, when its weights can be found (installed, or the authors' checkpoint
in ../shared/official-weights), A2F-SD x2. --compare times each model with read-ahead off, then
on (engine.batch.READ_AHEAD: the next file is decoded while this one is upscaled) and prints the
speed-up.

--processes: `srstudio upscale FOLDER --scale 2 --device cpu` on a folder of --count photos
(../shared/train/SunHays80 images, centre-cropped to the aspect of --size and resized to it with
Lanczos, saved as PNG, made once in --workdir), timed in fresh processes: one process (torch's
own thread count, the machine's cores) against `python -m torch.distributed.run --standalone
--nproc_per_node 2` with OMP_NUM_THREADS=1 (each process takes half the files and
engine.distributed.cpu_threads: cores // 2 threads), interleaved 1, 2, 1, 2 ... for --repeat
rounds, fresh output folders each round. Prints images per second, wall and CPU seconds
(os.wait4, the process and its children), the median ratio 2-process/1-process, and whether the
two modes wrote the same files byte for byte.
"""

from __future__ import annotations

import argparse
import filecmp
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

import engine.batch  # noqa: E402
from engine import distributed  # noqa: E402
from engine.batch import BatchJob, run_batch  # noqa: E402
from engine.checkpoints import load_model  # noqa: E402
from engine.descriptor import ModelDescriptor  # noqa: E402
from engine.errors import SRStudioError  # noqa: E402
from engine.inference.upscaler import UpscaleOptions, Upscaler  # noqa: E402

SHARED = Path(os.environ.get("SRSTUDIO_SHARED", ROOT.parent / "shared"))
SUNHAYS = SHARED / "train" / "SunHays80"


def make_inputs(folder: Path, count: int, size: int) -> None:
    """Smooth random images (a low-resolution noise field, bilinearly enlarged)."""
    rng = np.random.default_rng(0)
    for i in range(count):
        small = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        small.resize((size, size), Image.Resampling.BILINEAR).save(folder / f"img_{i:03d}.png")


def make_photos(folder: Path, count: int, size: tuple[int, int]) -> Path:
    """`count` SunHays80 images, centre-cropped to the aspect of `size` and resized to it
    (Lanczos), as PNG in folder/photos-WxH-N; made once, reused when complete."""
    width, height = size
    out = folder / f"photos-{width}x{height}-{count}"
    sources = sorted(SUNHAYS.glob("*.png"))
    if len(sources) < count:
        raise SystemExit(f"{SUNHAYS} has {len(sources)} images, --count asks for {count}")
    if out.is_dir() and len(list(out.glob("*.png"))) == count:
        return out
    out.mkdir(parents=True, exist_ok=True)
    for src in sources[:count]:
        with Image.open(src) as im:
            im = im.convert("RGB")
            w, h = im.size
            cw, ch = min(w, h * width // height), min(h, w * height // width)
            box = ((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch)
            im.resize(size, Image.Resampling.LANCZOS, box=box).save(out / src.name)
    return out


def timed(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, the process and its waited-for children); the
    output goes to `log`."""
    with log.open("w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=out)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        tail = log.read_text()[-2000:]
        raise SystemExit(f"{' '.join(cmd)} failed ({os.waitstatus_to_exitcode(status)}):\n{tail}")
    return wall, usage.ru_utime + usage.ru_stime


def same_files(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    if names != sorted(p.name for p in b.iterdir()):
        return False
    match, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    return not mismatch and not errors


def processes(args: argparse.Namespace) -> int:
    """One process with all the cores against two with half each (see the module's doc)."""
    if not SUNHAYS.is_dir():
        print(f"skipped: {SUNHAYS} is absent (no photos to upscale)")
        return 0
    width, height = (int(v) for v in args.size.lower().split("x"))
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_batch_"))
    photos = make_photos(work, args.count, (width, height))
    cores = len(os.sched_getaffinity(0))
    per_process = distributed.cpu_threads(distributed.DistInfo(0, 2, 0, 2))
    print(
        f"{args.count} photos {width}x{height} PNG ({photos}), {args.model} x2 on the CPU, "
        f"{cores} cores; 1 process: {torch.get_num_threads()} torch threads; 2 processes: "
        f"OMP_NUM_THREADS=1, engine.distributed.cpu_threads {per_process} each"
    )
    upscale = ["-m", "engine.cli", "upscale", str(photos)]
    options = ["--model", args.model, "--scale", "2", "--device", "cpu"]
    commands = {
        1: ([sys.executable, *upscale], {}),
        2: (
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
            + ["2", *upscale],
            {"OMP_NUM_THREADS": "1"},
        ),
    }
    seconds: dict[int, list[float]] = {1: [], 2: []}
    print("| round | processes | threads each | wall s | CPU s | images/s | same files |")
    print("|---|---|---|---|---|---|---|")
    for round_ in range(1, args.repeat + 1):
        outs = {}
        for n, (cmd, env) in commands.items():
            outs[n] = work / f"out-{n}p-round{round_}"
            if outs[n].exists():
                for old in outs[n].iterdir():
                    old.unlink()
                outs[n].rmdir()
            log = work / f"log-{n}p-round{round_}.txt"
            wall, cpu = timed([*cmd, "-o", str(outs[n]), *options], env, log)
            done = len(list(outs[n].iterdir()))
            assert done == args.count, f"{n} process(es) wrote {done} of {args.count} files"
            seconds[n].append(wall)
            same = "" if n == 1 else ("yes" if same_files(outs[1], outs[2]) else "**NO**")
            threads = torch.get_num_threads() if n == 1 else per_process
            print(
                f"| {round_} | {n} | {threads} | {wall:.1f} | {cpu:.1f} | "
                f"{args.count / wall:.2f} | {same} |",
                flush=True,
            )
    ratios = [one / two for one, two in zip(seconds[1], seconds[2], strict=True)]
    print(
        f"median images/s: 1 process {args.count / statistics.median(seconds[1]):.2f}, "
        f"2 processes {args.count / statistics.median(seconds[2]):.2f}; "
        f"ratio 2-process/1-process (median of rounds) {statistics.median(ratios):.2f}x "
        f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    return 0


def models() -> list[ModelDescriptor]:
    found = [load_model("bicubic", scale=2)]
    for source in ("A2F-SD-x2", SHARED / "official-weights/a2f/AAF_SD_x2.pt"):
        try:
            found.append(load_model(source))
            break
        except SRStudioError as e:
            print(f"(A2F-SD x2 from {source}: {e})", file=sys.stderr)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, help="images (default 16; 64 with --processes)")
    parser.add_argument("--size", help="side N (default 128); WxH with --processes (480x360)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tile", default="auto", help="auto, 0 (whole image) or N")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--compare", action="store_true", help="read-ahead off, then on")
    parser.add_argument("--processes", action="store_true", help="1 process against 2 (torchrun)")
    parser.add_argument("--workdir", help="--processes: where the photos are made once")
    parser.add_argument("--model", default="A2F-SD", help="--processes: model name")
    parser.add_argument("--repeat", type=int, default=2, help="--processes: rounds")
    args = parser.parse_args()
    if args.processes:
        args.count = args.count or 64
        args.size = args.size or "480x360"
        return processes(args)
    args.count = args.count or 16
    args.size = int(args.size or 128)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        make_inputs(src, args.count, args.size)
        for desc in models():
            tile = None if args.tile == "auto" else int(args.tile)
            upscaler = Upscaler(desc, UpscaleOptions(device=args.device, tile=tile))
            warm = Path(tmp) / "warm"  # one image first: weights to device, kernels chosen
            run_batch(BatchJob(inputs=[src / "img_000.png"], output_dir=warm), upscaler)
            seconds = {}
            for read_ahead in (False, True) if args.compare else (engine.batch.READ_AHEAD,):
                engine.batch.READ_AHEAD = read_ahead
                out = Path(tmp) / f"out_{desc.family}_{read_ahead}"
                start = time.perf_counter()
                report = run_batch(BatchJob(inputs=[src], output_dir=out), upscaler)
                seconds[read_ahead] = time.perf_counter() - start
                done = report.count("done")
                assert done == args.count, report.to_text()
                print(
                    f"{desc.label:<14} {done} x {args.size}x{args.size} PNG -> x2 on "
                    f"{upscaler.device} ({torch.get_num_threads()} threads, tile {args.tile}, "
                    f"read-ahead {'on' if read_ahead else 'off'}): "
                    f"{done / seconds[read_ahead]:7.2f} images/s ({seconds[read_ahead]:.2f} s)"
                )
            if args.compare:
                print(f"{desc.label:<14} read-ahead speed-up {seconds[False] / seconds[True]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
