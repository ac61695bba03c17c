"""Photos as people have them: JPEG and noise on the benchmark LR images, upscaled with the
clean-up stage off and on "auto", scored as gain over bicubic of the same damaged input.

Run: .venv/bin/python bench/bench_real_inputs.py [--sets Set5 Set14] [--scales 2 4]
     [--models A2F-SD RNAN-tiny CRAN-tiny HPINet-T official:A2F-SD official:HPINet-M]
     [--inputs q50 q75 q90 n5q85 n10q85] [--cleanup WEIGHTS] [--json OUT.json]
     .venv/bin/python bench/bench_real_inputs.py --photo [--rounds 1]

The damaged LR image (../shared/specs/real-inputs.md, "How the project measures it"): the
benchmark's LR PNG, for nN first Gaussian noise of sigma N (seeded per image, rounded, clipped),
then saved as JPEG with Pillow's defaults (4:2:0) at the quality given (qQ), and read back through
engine.imaging.io as a user's file is, so that "auto" sees the file's quantisation tables.
PSNR and SSIM on Y, `scale` pixels shaved, of the output against the HR image; the gain is over
MATLAB-bicubic upscaling of the same damaged input. Each row also gives the seconds per image
with the clean-up off and auto (the time the clean-up adds, measured in the same run).
A --sets entry that is a folder holds photos (e.g. weights/holdout.py's, which the project does
not have): each is shrunk by MATLAB bicubic to make its LR image. Bundled models are the weights/
files; official:NAME are the authors' releases in
../shared/official-weights (x4 only here).

--photo: what the clean-up costs on the 12 MP photo of bench/bench_photo.py (4000x3000 JPEG),
A2F-SD x4: `srstudio upscale` with --clean-up off and on, each in a fresh process, alternating
for --rounds rounds; seconds, peak RSS and the on/off time ratio, measured in one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.checkpoints import load_model  # noqa: E402
from engine.evaluate import make_lr, score  # noqa: E402
from engine.imaging.io import read_image  # noqa: E402
from engine.inference.upscaler import UpscaleOptions, Upscaler  # noqa: E402

SHARED = ROOT.parent / "shared"
OFFICIAL = {
    ("A2F-SD", 4): SHARED / "official-weights" / "a2f" / "AAF_SD_x4.pt",
    ("HPINet-M", 4): SHARED / "official-weights" / "hpinet" / "HPINet-M-x4.pth",
    ("A2F-SD", 2): SHARED / "official-weights" / "a2f" / "AAF_SD_x2.pt",
    ("HPINet-M", 2): SHARED / "official-weights" / "hpinet" / "HPINet-M-x2.pth",
}
INPUTS = {  # name -> (noise sigma, JPEG quality)
    "q50": (0.0, 50),
    "q75": (0.0, 75),
    "q90": (0.0, 90),
    "n5q85": (5.0, 85),
    "n10q85": (10.0, 85),
}


@dataclass
class Row:
    set: str
    scale: int
    model: str
    input: str
    bicubic: tuple[float, float]
    off: tuple[float, float]
    auto: tuple[float, float]
    seconds_off: float
    seconds_auto: float
    cleaned: int  # images auto ran the clean-up on
    images: int


def damaged_lr(
    lr: np.ndarray, name: str, sigma: float, quality: int, seed: int, work: Path
) -> Path:
    arr = lr.astype(np.float64)
    if sigma > 0:
        arr = arr + sigma * np.random.default_rng([seed, int(sigma * 10)]).standard_normal(
            arr.shape
        )
    img = Image.fromarray(np.clip(np.floor(arr + 0.5), 0, 255).astype(np.uint8))
    path = work / f"{name}_n{sigma:g}_q{quality}.jpg"
    img.save(path, "JPEG", quality=quality)
    return path


def pairs(set_name: str, scale: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, HR, LR) uint8 arrays: a benchmark's own pairs, or for a folder of photos (a path)
    each photo cropped to a multiple of `scale` and shrunk with MATLAB bicubic."""
    rgb = lambda p: np.asarray(Image.open(p).convert("RGB"))  # noqa: E731
    if Path(set_name).is_dir():
        found = []
        for path in sorted(Path(set_name).iterdir()):
            hr = rgb(path)
            hr = hr[: hr.shape[0] // scale * scale, : hr.shape[1] // scale * scale]
            found.append((path.stem, hr, make_lr(hr, scale)))
        return found
    folder = SHARED / "benchmarks" / set_name / f"x{scale}"
    hrs = sorted((folder / "HR").iterdir())
    lrs = {p.stem.lower().removesuffix(f"x{scale}"): p for p in (folder / "LR").iterdir()}
    return [(hr.stem, rgb(hr), rgb(lrs[hr.stem.lower()])) for hr in hrs]


CLEANUP: list[str] = []  # --cleanup: another clean-up network's weights than the installed one


def upscalers(model: str, scale: int) -> tuple[Upscaler, Upscaler]:
    cleanup = load_model(CLEANUP[0]) if CLEANUP else None
    if model.startswith("official:"):
        desc = load_model(OFFICIAL[(model.split(":", 1)[1], scale)])
    else:
        desc = load_model(model, scale=scale)
    options = UpscaleOptions(tile=0, device="cpu")
    return Upscaler(desc, options), Upscaler(
        desc, UpscaleOptions(tile=0, device="cpu", cleanup="auto"), cleanup=cleanup
    )


def run(img, up: Upscaler) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    out = up.upscale_image(img)
    rgb = (out.rgb.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return rgb, time.perf_counter() - t0


def measure(set_name: str, scale: int, model: str, name: str, work: Path) -> Row:
    sigma, quality = INPUTS[name]
    bicubic = Upscaler(load_model("bicubic", scale=scale), UpscaleOptions(tile=0, device="cpu"))
    off, auto = upscalers(model, scale)
    scores: dict[str, list[tuple[float, float]]] = {"bicubic": [], "off": [], "auto": []}
    seconds = {"off": 0.0, "auto": 0.0}
    cleaned = 0
    for i, (stem, hr, lr) in enumerate(pairs(set_name, scale)):
        img = read_image(damaged_lr(lr, stem, sigma, quality, i, work))
        hr = hr[: img.height * scale, : img.width * scale]
        for key, up in (("bicubic", bicubic), ("off", off), ("auto", auto)):
            sr, s = run(img, up)
            scores[key].append(score(sr, hr, scale))
            if key in seconds:
                seconds[key] += s
        cleaned += auto.cleanup_decision(img).on
    n = len(scores["off"])

    def mean(key: str) -> tuple[float, float]:
        return tuple(statistics.fmean(v[j] for v in scores[key]) for j in (0, 1))  # type: ignore[return-value]

    return Row(
        set_name, scale, model, name, mean("bicubic"), mean("off"), mean("auto"),
        seconds["off"] / n, seconds["auto"] / n, cleaned, n,
    )  # fmt: skip


def print_row(r: Row) -> None:
    gain = lambda k: (getattr(r, k)[0] - r.bicubic[0], getattr(r, k)[1] - r.bicubic[1])  # noqa: E731
    off, auto = gain("off"), gain("auto")
    print(
        f"| {r.set} | x{r.scale} | {r.model} | {r.input} | {r.bicubic[0]:.2f} | "
        f"{off[0]:+.2f} / {off[1]:+.4f} | {auto[0]:+.2f} / {auto[1]:+.4f} | "
        f"{r.cleaned}/{r.images} | {r.seconds_off:.2f} | {r.seconds_auto - r.seconds_off:+.2f} |",
        flush=True,
    )


def photo_cost(rounds: int) -> None:
    from bench.bench_photo import make_photo, run_upscale

    with tempfile.TemporaryDirectory() as tmp:
        photo = make_photo(Path(tmp) / "photo.jpg")
        seconds: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(rounds):
            for mode in ("off", "on"):
                out = Path(tmp) / mode
                extra = ["--clean-up", mode]
                run = run_upscale("A2F-SD", 4, photo, out, None, {}, extra)
                for f in out.iterdir():
                    f.unlink()
                seconds[mode].append(run["seconds"])
                print(f"clean-up {mode}: {run['seconds']:.1f} s, peak RSS {run['rss_mib']:.0f} MiB")
        off, on = statistics.median(seconds["off"]), statistics.median(seconds["on"])
        print(f"A2F-SD x4, 12 MP photo: clean-up on / off = {on / off:.2f}x ({on - off:+.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photo", action="store_true", help="the clean-up's cost on a photo")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--sets", nargs="+", default=["Set5", "Set14"], help="benchmark names or photo folders"
    )
    parser.add_argument("--scales", nargs="+", type=int, default=[2, 4])
    default_models = ["A2F-SD", "RNAN-tiny", "CRAN-tiny", "HPINet-T"]
    default_models += ["official:A2F-SD", "official:HPINet-M"]
    parser.add_argument("--models", nargs="+", default=default_models)
    parser.add_argument("--inputs", nargs="+", default=list(INPUTS), choices=list(INPUTS))
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--cleanup", help="a clean-up network's weights (default: the installed)")
    args = parser.parse_args()
    CLEANUP[:] = [args.cleanup] if args.cleanup else []
    if args.photo:
        photo_cost(args.rounds)
        return
    print(
        "| set | scale | model | input | bicubic PSNR | gain off (dB / SSIM) | "
        "gain auto (dB / SSIM) | cleaned | s/image off | clean-up adds s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for set_name in args.sets:
            for scale in args.scales:
                for model in args.models:
                    if model.startswith("official:") and (model[9:], scale) not in OFFICIAL:
                        continue
                    for name in args.inputs:
                        rows.append(measure(set_name, scale, model, name, Path(tmp)))
                        print_row(rows[-1])
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=1))


if __name__ == "__main__":
    main()
