"""A newcomer's command line: no --model needed, a family name is enough, and `srstudio models`
says what to use and where to get more."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.checkpoints import build_untrained, save_checkpoint
from engine.cli import main
from engine.library import recommended_weights
from engine.quality import BUNDLED_SET5


@pytest.fixture(autouse=True)
def own_weights_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty user weights folder: only the bundled weights are installed."""
    monkeypatch.setenv("SRSTUDIO_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data" / "weights"


def _photo(path: Path) -> Path:
    arr = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


def test_upscale_without_a_model_uses_the_recommended_weights_at_x4(tmp_path: Path, capsys):
    photo = _photo(tmp_path / "p.png")
    assert main(["upscale", str(photo), "-o", str(tmp_path / "o")]) == 0
    chosen = recommended_weights(4)
    assert chosen is not None and chosen.origin == "bundled"
    assert f"using {chosen.name} x4 (bundled)" in capsys.readouterr().err
    (out,) = (tmp_path / "o").iterdir()
    assert out.name == f"p_{chosen.name}_x4.png"
    assert Image.open(out).size == (40, 48)


@pytest.mark.parametrize(
    "model, scale, expected",
    [("RNAN", ["--scale", "2"], "RNAN-tiny_x2"), ("hpinet-x3", [], "HPINet-T_x3")],
)
def test_a_family_name_alone_takes_its_best_installed_weights(
    tmp_path: Path, capsys, model, scale, expected
):
    photo = _photo(tmp_path / "p.png")
    assert main(["upscale", str(photo), "-o", str(tmp_path / "o"), "--model", model, *scale]) == 0
    assert [p.name for p in (tmp_path / "o").iterdir()] == [f"p_{expected}.png"]


def test_the_authors_downloaded_weights_are_recommended_over_the_bundled(own_weights_folder):
    assert recommended_weights(4).origin == "bundled"
    model = build_untrained("A2F-SD", 4).model
    meta = {"origin": "downloaded", "release": "A2F-SD-x4"}
    path = own_weights_folder / "A2F-SD-x4.safetensors"
    save_checkpoint(path, model, family="A2F", variant="SD", scale=4, metadata=meta)
    assert recommended_weights(4).path == path
    assert recommended_weights(4, "HPINet").origin == "bundled"


def test_models_recommends_and_advises(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "recommended (used when no --model is given):" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "1,010,068" in lines["A2F-M"] and "download A2F-M-x3 A2F-M-x4" in lines["A2F-M"]
    assert "Fastest; for previews and large photos" in lines["A2F-SD"]  # what it is good for
    best = recommended_weights(4)
    assert best is not None  # "<- recommended at x4", or "at x2, x4" and so on
    assert re.search(r"<- recommended at (x\d, )*x4\b", lines[f"{best.family}-{best.variant}"])
    assert "recommended" not in lines["RNAN-paper"]
    assert "RNAN-paper" in out and "no release exists; train them" in out
    assert "srstudio models download --all (" in out
    assert main(["models", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert set(listing["recommended"]) == {"2", "3", "4"}


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_the_recommendation_ranks_by_the_set5_figures_the_app_shows(scale):
    """The bundled files are compared by their measured Set5 PSNR (engine.quality), as the app's
    model picker sorts them, not by their training runs' held-out images."""
    best = max(
        (key for key in BUNDLED_SET5 if key[2] == scale), key=lambda key: BUNDLED_SET5[key][0]
    )
    chosen = recommended_weights(scale)
    assert chosen is not None
    assert (chosen.family, chosen.variant, chosen.scale) == best


def test_files_without_a_set5_figure_are_ranked_by_their_held_out_psnr(own_weights_folder):
    for name, psnr in (("low", 20.0), ("high", 30.0)):
        model = build_untrained("CRAN-tiny", 2).model
        meta = {"origin": "imported", "psnr": psnr}
        path = own_weights_folder / f"{name}.safetensors"
        save_checkpoint(path, model, family="CRAN", variant="tiny", scale=2, metadata=meta)
    assert recommended_weights(2).path.name == "high.safetensors"
