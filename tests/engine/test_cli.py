"""`srstudio models` and `srstudio eval`, including the papers' reference figures."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from engine.cli import main


def run_json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


VARIANTS = {  # every registered network variant
    "RNAN": ("paper", "light", "tiny"),
    "CRAN": ("paper", "light", "tiny"),
    "A2F": ("S", "SD", "M", "L"),
    "HPINet": ("S", "M", "L", "T"),
}


def test_models_lists_every_variant_with_parameter_counts(capsys):
    rows = {r["name"]: r for r in run_json(capsys, ["models", "--json"])["models"]}
    every = {f"{family}-{v}" for family, variants in VARIANTS.items() for v in variants}
    assert every <= set(rows)
    for name in every:
        assert set(rows[name]["params"]) == {"2", "3", "4"}
    assert rows["A2F-SD"]["params"] == {"2": 313_372, "3": 315_997, "4": 319_672}
    assert rows["HPINet-M"]["params"] == {"2": 782_539, "3": 923_939, "4": 895_659}
    assert rows["HPINet-S"]["params"]["4"] == 463_131
    assert abs(rows["RNAN-paper"]["params"]["4"] - 17.30e6) / 17.30e6 < 0.01
    assert abs(rows["CRAN-paper"]["params"]["2"] - 14.94e6) / 14.94e6 < 0.05
    assert main(["models"]) == 0
    assert "HPINet-M" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys, tmp_path):
    assert main(["eval", "--model", "bicubic", "--hr", str(tmp_path)]) == 2
    assert "bicubic needs" in capsys.readouterr().err
    assert main(["eval", "--model", "A2F-SD", "--scale", "2", "--hr", str(tmp_path / "none")]) == 2
    assert main(["nonsense"]) == 2


def test_console_script_runs():
    out = subprocess.run(
        [sys.executable, "-m", "engine.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.startswith("srstudio ")


# (model or weights file, scale, set, float-Y PSNR, SSIM) from shared/specs/evaluation.md
# (A2F-S/-M and SD x3: the published figures, shared/benchmarks/published.json)
REFERENCE = [
    ("bicubic", 2, "Set5", 33.68, 0.9304),
    ("bicubic", 4, "Set5", 28.43, 0.8113),
    ("a2f/AAF_SD_x2.pt", 2, "Set5", 37.91, 0.9602),
    ("a2f/AAF_SD_x4.pt", 4, "Set5", 32.06, 0.8928),
    ("a2f/AAF_SD_x2.pt", 2, "Set14", 33.46, 0.9164),
    ("a2f/AAF_SD_x3.pt", 3, "Set5", 34.23, 0.9259),
    ("a2f/AAF_S_x3.pt", 3, "Set5", 34.06, 0.9241),
    ("a2f/AAF_S_x4.pt", 4, "Set5", 31.87, 0.8900),
    ("a2f/AAF_M_x3.pt", 3, "Set5", 34.50, 0.9278),
    ("a2f/AAF_M_x4.pt", 4, "Set5", 32.28, 0.8955),
    ("hpinet/HPINet-M-x2.pth", 2, "Set5", 38.21, 0.9615),
    ("hpinet/HPINet-M-x3.pth", 3, "Set5", 34.74, 0.9300),
    ("hpinet/HPINet-M-x4.pth", 4, "Set5", 32.63, 0.8998),
    ("hpinet/HPINet-S-x4.pth", 4, "Set5", 32.50, 0.8987),
]


@pytest.mark.parametrize(("model", "scale", "dataset", "ref_psnr", "ref_ssim"), REFERENCE)
def test_eval_reproduces_the_reference_table(
    capsys, shared_dir, model, scale, dataset, ref_psnr, ref_ssim
):
    bench = shared_dir / "benchmarks" / dataset / f"x{scale}"
    source = (
        ["--model", "bicubic"]
        if model == "bicubic"
        else ["--weights", str(shared_dir / "official-weights" / model)]
    )
    result = run_json(
        capsys,
        [
            "eval",
            *source,
            "--scale",
            str(scale),
            "--hr",
            str(bench / "HR"),
            "--lr",
            str(bench / "LR"),
            "--tile",
            "0",
            "--device",
            "cpu",
            "--json",
        ],
    )
    assert result["psnr"] == pytest.approx(ref_psnr, abs=0.01)
    assert result["ssim"] == pytest.approx(ref_ssim, abs=0.0002)
    assert len(result["images"]) == len(list((bench / "HR").glob("*.png")))
    assert result["seconds"] > 0


def test_eval_rounded_y_and_lr_made_from_hr(capsys, shared_dir):
    bench = shared_dir / "benchmarks" / "Set5" / "x4"
    weights = str(shared_dir / "official-weights" / "a2f" / "AAF_SD_x4.pt")
    rounded = run_json(
        capsys,
        [
            "eval",
            "--weights",
            weights,
            "--hr",
            str(bench / "HR"),
            "--lr",
            str(bench / "LR"),
            "--y-round",
            "--tile",
            "0",
            "--json",
        ],
    )
    assert rounded["psnr"] == pytest.approx(32.04, abs=0.01)
    assert rounded["ssim"] == pytest.approx(0.8917, abs=0.0002)
    made = run_json(
        capsys, ["eval", "--model", "bicubic", "--scale", "4", "--hr", str(bench / "HR"), "--json"]
    )
    assert made["psnr"] == pytest.approx(28.43, abs=0.01)
