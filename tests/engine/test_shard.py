"""Shards of a batch for job arrays (engine.shard, upscale --shard, report merge); no Qt."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.batch import BatchReport, FileRecord
from engine.cli import main
from engine.errors import SRStudioError
from engine.report_file import load_report
from engine.shard import (
    UNREADABLE_WEIGHT,
    Shard,
    assign_shards,
    check_distinct_outputs,
    parse_shard,
    pixel_weight,
    shard_files,
    shard_from_env,
)

BICUBIC = ["--model", "bicubic", "--scale", "2", "--tile", "0", "--device", "cpu"]
SLURM = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN")


@pytest.fixture(autouse=True)
def _no_slurm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests that run under a Slurm array must not shard by accident."""
    for name in (*SLURM, "SLURM_ARRAY_TASK_STEP"):
        monkeypatch.delenv(name, raising=False)


def _save(path: Path, h: int = 6, w: int = 8, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)


def _weights(count: int, seed: int = 0) -> dict[Path, int]:
    rng = random.Random(seed)
    return {Path(f"img/{n:03d}.png"): rng.choice([1, 64, 100, 4096, 10_000]) for n in range(count)}


@pytest.mark.parametrize("count", [1, 2, 3, 7, 25, 40])
def test_every_file_in_exactly_one_shard(count: int) -> None:
    weights = _weights(25)
    files = list(weights)
    owners = assign_shards(files, count, weigh=weights.__getitem__)
    assert all(1 <= k <= count for k in owners)
    shares = [shard_files(files, k, count, weigh=weights.__getitem__) for k in range(1, count + 1)]
    assert sorted(p for share in shares for p in share) == sorted(files)
    for share in shares:  # in planned order
        assert share == [p for p in files if p in set(share)]
    if count > len(files):  # one file each, the rest empty
        assert sum(bool(share) for share in shares) == len(files)


def test_split_is_deterministic_and_independent_of_listing_order() -> None:
    weights = _weights(30, seed=1)
    files = list(weights)
    first = assign_shards(files, 4, weigh=weights.__getitem__)
    assert assign_shards(files, 4, weigh=weights.__getitem__) == first
    shuffled = files[:]
    random.Random(2).shuffle(shuffled)
    again = dict(zip(shuffled, assign_shards(shuffled, 4, weigh=weights.__getitem__), strict=True))
    assert again == dict(zip(files, first, strict=True))


def test_split_is_balanced_by_pixels_not_files(tmp_path: Path) -> None:
    _save(tmp_path / "big.png", 64, 64)  # 4096 pixels
    for n in range(6):
        _save(tmp_path / f"small{n}.png", 8, 8, seed=n)  # 64 pixels each
    (tmp_path / "broken.png").write_bytes(b"not an image")
    files = sorted(tmp_path.iterdir())
    assert pixel_weight(tmp_path / "big.png") == 4096
    assert pixel_weight(tmp_path / "broken.png") == UNREADABLE_WEIGHT
    shares = [shard_files(files, k, 2) for k in (1, 2)]
    # by file count it would be 4 + 4; by pixels the big one is alone
    assert [p.name for p in shares[0]] == ["big.png"]
    assert len(shares[1]) == 7 and tmp_path / "broken.png" in shares[1]


def test_parse_shard() -> None:
    assert parse_shard("2/8") == Shard(2, 8) and str(parse_shard("1/1")) == "1/1"
    bad_values = (
        "0/3",
        "4/3",
        "1/0",
        "0/0",
        "a/b",
        "3",
        "-1/3",
        "1/3/4",
        "1.0/2",
        "",
        "1/10000001",
    )
    for bad in bad_values:
        with pytest.raises(SRStudioError):
            parse_shard(bad)


def test_slurm_environment_maps_to_one_based_shards() -> None:
    ids, count = "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"
    assert shard_from_env({}) is None
    assert shard_from_env({ids: "3"}) is None  # no count: not an array we can split by
    assert shard_from_env({ids: "0", count: "10"}) == Shard(1, 10)
    assert shard_from_env({ids: "9", count: "10"}) == Shard(10, 10)
    min_ = "SLURM_ARRAY_TASK_MIN"
    assert shard_from_env({ids: "1", count: "10", min_: "1"}) == Shard(1, 10)  # --array=1-10
    assert shard_from_env({ids: "10", count: "10", min_: "1"}) == Shard(10, 10)
    stepped = {ids: "8", count: "4", min_: "0", "SLURM_ARRAY_TASK_STEP": "4"}  # --array=0-15:4
    assert shard_from_env(stepped) == Shard(3, 4)
    for bad in ({ids: "10", count: "10"}, {ids: "x", count: "2"}, {ids: "0", count: "0"}):
        with pytest.raises(SRStudioError, match="SLURM_ARRAY_TASK"):
            shard_from_env(bad)


def test_distinct_outputs_check_names_both_inputs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    check_distinct_outputs([(Path("a.png"), out / "a.png"), (Path("b.png"), out / "b.png")])
    with pytest.raises(SRStudioError, match=r"a\.png and .*a\.jpg would both be written"):
        check_distinct_outputs(
            [(Path("a.png"), out / "a_x2.png"), (Path("a.jpg"), out / "sub" / ".." / "a_x2.png")]
        )


def _folder(root: Path) -> Path:
    folder = root / "in"
    sizes = [(16, 16), (8, 8), (12, 6), (4, 4), (16, 8)]
    for n, (h, w) in enumerate(sizes):
        _save(folder / f"f{n}.png", h, w, seed=n)
    _save(folder / "sub" / "s.png", 8, 8, seed=9)
    _save(folder / "sub" / "t.jpg", 6, 6, seed=10)
    return folder


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _upscale(folder: Path, out: Path, *extra: str) -> int:
    name = ["--name", "{index}_{stem}_x{scale}.{ext}"]  # {index} counts in the whole list
    return main(["upscale", str(folder), "-o", str(out), "--recursive", *BICUBIC, *name, *extra])


def test_shards_together_equal_one_run_and_merge(tmp_path: Path, capsys) -> None:
    folder = _folder(tmp_path)
    assert _upscale(folder, tmp_path / "whole") == 0
    reports = []
    for k in (1, 2, 3):
        report = tmp_path / "rep" / f"r{k}"
        assert (
            _upscale(folder, tmp_path / "sharded", "--shard", f"{k}/3", "--report", str(report))
            == 0
        )
        reports.append(report.with_suffix(".json"))
    whole = _tree(tmp_path / "whole")
    assert len(whole) == 7 and _tree(tmp_path / "sharded") == whole
    data = [json.loads(p.read_text()) for p in reports]
    assert all(d["files"] for d in data)  # three real shares (pixels: 256 | 128+64 | 72+64+36+16)
    assert [d["shard"] for d in data] == [
        {"index": k, "count": 3, "planned_files": 7} for k in (1, 2, 3)
    ]
    capsys.readouterr()

    merged = tmp_path / "merged"
    assert main(["report", "merge", *map(str, reports), "-o", str(merged)]) == 0
    err = capsys.readouterr().err
    assert "7 files: 7 done" in err and "Traceback" not in err
    result = json.loads(merged.with_suffix(".json").read_text())
    inputs = [f["input"] for f in result["files"]]
    assert len(inputs) == len(set(inputs)) == 7
    assert result["shards"] == {"count": 3, "merged": [1, 2, 3], "missing": [], "planned_files": 7}
    assert result["counts"]["done"] == 7
    assert "shards missing: none" in merged.with_suffix(".txt").read_text()
    assert json.loads(load_report(merged.with_suffix(".json")).to_json()) == result  # round trip

    # a missing shard: still merged, exit 1, and named; a later merge can add it
    part = tmp_path / "part"
    assert main(["report", "merge", str(reports[0]), str(reports[2]), "-o", str(part)]) == 1
    assert "shards missing: 2" in capsys.readouterr().err
    partial = json.loads(part.with_suffix(".json").read_text())
    assert partial["shards"]["missing"] == [2]
    assert main(["report", "merge", str(part) + ".json", str(reports[1]), "-o", str(merged)]) == 0
    files = json.loads(merged.with_suffix(".json").read_text())["files"]
    assert sorted(f["input"] for f in files) == sorted(inputs)


def test_shards_from_slurm_environment(tmp_path: Path, monkeypatch, caplog, capsys) -> None:
    folder = tmp_path / "in"
    for n in range(3):
        _save(folder / f"f{n}.png", 8, 8, seed=n)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "4")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "3")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "3")  # --array=3-5: task 4 is shard 2
    report = tmp_path / "r"
    with caplog.at_level(logging.INFO):
        code = main(["-v", "upscale", str(folder), "-o", str(tmp_path / "o"), *BICUBIC,
                     "--report", str(report)])  # fmt: skip
    assert code == 0
    assert "shard 2/3 from SLURM_ARRAY_TASK_ID" in caplog.text
    data = json.loads(report.with_suffix(".json").read_text())
    assert data["shard"]["index"] == 2 and len(data["files"]) == 1
    # --shard wins over the environment; a task id out of range is a usage error
    assert _upscale(folder, tmp_path / "o2", "--shard", "1/1") == 0
    assert len(list((tmp_path / "o2").iterdir())) == 3
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "9")
    capsys.readouterr()
    assert _upscale(folder, tmp_path / "o3") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SLURM_ARRAY_TASK_ID=9" in err


@pytest.mark.parametrize("value", ["0/3", "4/3", "1/0", "a/b", "3", "-1/3", "1/2/3"])
def test_bad_shard_value_is_a_one_line_usage_error(tmp_path: Path, capsys, value: str) -> None:
    _save(tmp_path / "a.png")
    code = main(["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), *BICUBIC,
                 f"--shard={value}"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--shard" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_sharded_run_refuses_outputs_that_collide(tmp_path: Path, capsys) -> None:
    _save(tmp_path / "in" / "a.png")
    _save(tmp_path / "in" / "a.jpg", seed=1)
    out = tmp_path / "o"
    argv = ["upscale", str(tmp_path / "in"), "-o", str(out), *BICUBIC, "--format", "png"]
    for k in (1, 2):  # whichever shard each lands in, both refuse
        assert main([*argv, "--shard", f"{k}/2"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "a.jpg" in err and "a.png" in err
        assert "would both be written to" in err
    assert not out.exists()


def _shard_report(path: Path, index: int, count: int, files: list[str]) -> Path:
    records = [FileRecord(input=f, output=f + ".out", status="done") for f in files]
    report = BatchReport(records=records, model="Bicubic x2", shard=(index, count))
    report.planned_files = 4
    return report.write(path)[0]


def test_merge_refuses_reports_of_different_runs_and_garbage(tmp_path: Path, capsys) -> None:
    r1 = _shard_report(tmp_path / "r1", 1, 2, ["a.png", "b.png"])
    r2 = _shard_report(tmp_path / "r2", 2, 2, ["c.png", "d.png"])
    r1_of_3 = _shard_report(tmp_path / "x1", 1, 3, ["e.png"])
    again = _shard_report(tmp_path / "again", 2, 2, ["e.png"])
    twice = _shard_report(tmp_path / "twice", 2, 2, ["a.png"])
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\xff\x00{not json" * 10)
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"files": [{"input": "a.png", "status": 7}]}))
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps({"files": [], "shards": {"count": 10**15, "merged": [1]}}))
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000 + "]" * 100_000)
    unsharded = tmp_path / "plain"
    BatchReport(records=[FileRecord("z.png", status="done")]).write(unsharded)
    cases = [
        ([r1, r1_of_3], "not shards of one run"),
        ([r1, r2, again], "shard 2/2 is in both"),
        ([r1, twice], "a.png is in both"),
        ([r1, garbage], "not an SR Studio batch report"),
        ([r1, foreign], "files[0].status"),
        ([nested], "not an SR Studio batch report"),
        ([huge], "at most 10,000"),
        ([r1, unsharded.with_suffix(".json")], "not a shard's report"),
        ([r1, tmp_path / "nowhere.json"], "cannot read"),
        ([r1, r2], "is one of the inputs"),  # -o over a report being merged
    ]
    for reports, message in cases:
        target = tmp_path / ("r1" if message.startswith("is one") else "merged")
        code = main(["report", "merge", *map(str, reports), "-o", str(target)])
        err = capsys.readouterr().err
        assert code == 2, message
        assert err.count("\n") == 1 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "merged.json").exists()
    assert main(["report"]) == 2  # no action: its help
