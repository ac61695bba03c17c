"""The bundled weights on hold-out photographs: gain over MATLAB bicubic per family and scale.

    .venv/bin/python weights/holdout.py [--workdir DIR] [--scales 2 3 4] [--models A2F-SD ...]

Set5 and Set14 are what the papers report, but a few dozen images; issue 17 also asks for images
that no project file contains and no training run has seen. ../shared holds no such set (BSD100,
Urban100 are not there) and this machine reaches PyPI only, so the hold-out set is the natural
photographs that scikit-image and matplotlib ship inside their wheels (15 images, 384x191 to
1000x872: portraits, an animal, objects, textures, a street scene, astronomy, microscopy, scanned
text; six of them grayscale, read as RGB). The wheels are fetched with `pip download` (pinned
versions, no install) into --workdir and the images taken out of them; nothing else is read.

Each image is cropped to a multiple of the scale, shrunk by MATLAB bicubic (the training
degradation, BI) and upscaled by `srstudio eval` (automatic tiles, CPU); PSNR on float Y with
`scale` pixels shaved, the papers' protocol, as for Set5. Printed: per model and scale the mean
PSNR and its gain over bicubic on the same images; --json for one object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ("scikit-image==0.26.0", "matplotlib==3.11.2")
IMAGES = (  # inside the wheels
    "skimage/data/astronaut.png",
    "skimage/data/brick.png",
    "skimage/data/camera.png",
    "skimage/data/chelsea.png",
    "skimage/data/coffee.png",
    "skimage/data/coins.png",
    "skimage/data/grass.png",
    "skimage/data/gravel.png",
    "skimage/data/hubble_deep_field.jpg",
    "skimage/data/ihc.png",
    "skimage/data/moon.png",
    "skimage/data/motorcycle_left.png",
    "skimage/data/page.png",
    "skimage/data/rocket.jpg",
    "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
)
MODELS = ("A2F-SD", "RNAN-tiny", "CRAN-tiny", "HPINet-T")


def fetch_wheels(workdir: Path) -> list[Path]:
    wheels = workdir / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    found = sorted(wheels.glob("*.whl"))
    if len(found) < len(WHEELS):
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels)]
        subprocess.run([*cmd, *WHEELS], check=True)
        found = sorted(wheels.glob("*.whl"))
    return found


def extract(wheels: list[Path], out: Path) -> list[Path]:
    """The listed images, as 8-bit RGB PNGs in `out` (gray ones replicated to three channels)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            for name in IMAGES:
                if name not in zf.namelist():
                    continue
                target = out / (Path(name).stem + ".png")
                if not target.exists():
                    with zf.open(name) as f, Image.open(f) as im:
                        rgb = np.asarray(im.convert("RGB"))
                    Image.fromarray(rgb).save(target)
                written.append(target)
    missing = {Path(n).stem for n in IMAGES} - {p.stem for p in written}
    if missing:
        raise SystemExit(f"not in the wheels: {', '.join(sorted(missing))}")
    return sorted(written)


def evaluate(hr_dir: Path, scale: int, model: str) -> float:
    """Mean float-Y PSNR of `srstudio eval` (bicubic, or the bundled weights of `model`)."""
    which = (
        ["--model", "bicubic"]
        if model == "bicubic"
        else ["--weights", str(ROOT / "weights" / f"{model}-x{scale}.safetensors")]
    )
    cmd = [str(ROOT / "run"), "eval", *which, "--scale", str(scale), "--hr", str(hr_dir)]
    done = subprocess.run(
        [*cmd, "--device", "cpu", "--json"], check=True, capture_output=True, text=True
    )
    return float(json.loads(done.stdout)["psnr"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/srstudio-holdout"))
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    images = extract(fetch_wheels(args.workdir), args.workdir / "HR")
    hr_dir = images[0].parent
    rows = []
    for scale in args.scales:
        base = evaluate(hr_dir, scale, "bicubic")
        rows.append({"model": "bicubic", "scale": scale, "psnr": base, "gain": 0.0})
        for model in args.models:
            value = evaluate(hr_dir, scale, model)
            rows.append({"model": model, "scale": scale, "psnr": value, "gain": value - base})
            if not args.json:
                print(f"x{scale} {model:<10} {value:6.2f} dB  {value - base:+.2f} dB over bicubic")
    if args.json:
        print(json.dumps({"images": [p.name for p in images], "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
