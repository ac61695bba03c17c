"""Hostile --name templates, file names and reports (issue 30, items 4, 5 and 7): every refusal is
one line and exit 2 before any image is read, never a traceback; names reach the reports in a form
that cannot break a line or fail to encode; a report that cannot be written is its own outcome;
`report merge` checks numbers and sizes before it writes anything."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import engine.cli.upscale as cli_upscale
import engine.report_file as report_file
from engine.batch import (
    TEMPLATE_FIELDS,
    BatchJob,
    BatchReport,
    FileRecord,
    check_name_template,
    quote_name,
    render_name,
    run_batch,
)
from engine.checkpoints import load_model
from engine.cli import main
from engine.errors import SRStudioError
from engine.inference.upscaler import UpscaleOptions, Upscaler
from engine.report_file import load_report
from tests.engine.hostile import noise

BICUBIC = ["--model", "bicubic", "--scale", "2", "--tile", "0", "--device", "cpu"]
UTF8_NAMES = sys.getfilesystemencoding().lower() in ("utf-8", "utf8") and os.name == "posix"


def _save(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(noise((6, 8, 3), seed)).save(path)


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def _one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# -- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{index[0]}", "no [index] or .attribute"),  # was a TypeError traceback
        ("{stem.upper}", "no [index] or .attribute"),
        ("{stem:>8000000000}", "width or precision over 256"),  # was an 8 GB string
        ("{index:.9999}", "width or precision over 256"),
        ("{stem:{index}}", "format"),
        (".", "not a file name"),  # was the output folder itself, written from its parent
        ("..", "not a file name"),
        ("sub/{stem}.png", "not a file name"),
        ("{stem}\\{ext}", "not a file name"),
        ("{stem:/>4}.png", "not a file name"),
        ("a\nb.png", "control character"),
        ("{index:c}", "control character"),
        ("{stem:>200}{model:>200}", "at most 255"),
        ("{}", "unknown field"),
        ("{stem!z}", "conversion"),
    ],
)
def test_bad_templates_are_one_line_usage_errors(tmp_path: Path, capsys, template, message):
    _save(tmp_path / "in" / "a.png")
    before = _tree(tmp_path)
    code, err = _run(
        capsys, "upscale", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--name", template,
        *BICUBIC,
    )  # fmt: skip
    assert code == 2 and message in _one_error(err), err
    assert _tree(tmp_path) == before  # nothing written, not even a temporary file in tmp_path


def test_an_integer_format_of_index_is_accepted(tmp_path: Path, capsys) -> None:
    for k in range(3):
        _save(tmp_path / "in" / f"{'abc'[k]}.png", seed=k)
    out = tmp_path / "out"
    code, err = _run(
        capsys, "upscale", str(tmp_path / "in"), "-o", str(out), "--name", "{index:04d}.{ext}",
        *BICUBIC,
    )  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["0001.png", "0002.png", "0003.png"]


def test_a_real_stem_that_makes_no_file_name_is_refused_before_any_image(tmp_path: Path) -> None:
    _save(tmp_path / "a.png")
    (tmp_path / "..png").write_bytes((tmp_path / "a.png").read_bytes())  # its stem is '.'
    up = Upscaler(load_model("bicubic", scale=2), UpscaleOptions(tile=0, device="cpu"))
    job = BatchJob(inputs=[tmp_path / "..png"], output_dir=tmp_path / "o", name_template="{stem}")
    with pytest.raises(SRStudioError, match="not a file name") as caught:
        run_batch(job, up)
    assert "\n" not in str(caught.value) and not (tmp_path / "o").exists()


FIELD_NAMES = st.sampled_from([*TEMPLATE_FIELDS, "", "0", "x", "index[0]", "stem.a", "index]"])
SPEC_SYNTAX = r"(.?[<>=^])?[-+ ]?#?0?[0-9]{0,11}[,_]?(\.[0-9]{0,11})?[bcdeEfFgGnosxX%]?"
SPECS = st.one_of(
    st.just(""),
    st.from_regex(SPEC_SYNTAX, fullmatch=True),
    st.text(alphabet="<>^=+- #0,_.1234567890dsxc%{}/!:\\", max_size=12),
)
FIELDS = st.builds(
    lambda name, conv, spec: "{" + name + conv + (":" + spec if spec else "") + "}",
    FIELD_NAMES,
    st.sampled_from(["", "!r", "!s", "!a", "!x", "!"]),
    SPECS,
)
TEMPLATES = st.lists(
    st.one_of(FIELDS, st.text(max_size=8), st.sampled_from(["{", "}", "{{", "}}", "/", ".", ".."])),
    max_size=6,
).map("".join)
STEMS = st.text(
    st.characters(blacklist_characters="/\0", blacklist_categories=()), min_size=1, max_size=40
)  # what a file name on POSIX can hold (surrogates: os.fsdecode's undecodable bytes)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(template=TEMPLATES, stem=STEMS, index=st.integers(1, 10**6))
def test_any_template_gives_a_one_line_error_or_a_plain_file_name(template, stem, index) -> None:
    fields = {
        "stem": stem, "ext": "png", "model": "A2F-SD", "family": "A2F", "variant": "SD",
        "scale": "2", "index": index,
    }  # fmt: skip
    for check in (lambda: check_name_template(template), lambda: render_name(template, fields)):
        try:
            check()
        except SRStudioError as e:
            assert "\n" not in str(e) and len(str(e)) < 2000
            return
    name = render_name(template, fields)
    assert name.strip() and name not in (".", "..") and not set(name) & {"/", "\0"}
    assert "\\" not in name or "\\" in stem  # a backslash only from a real name
    assert (Path("out") / name).parent == Path("out") and len(name) < 10_000
    os.fsencode(name)  # the file system can hold it


# -- names in reports ---------------------------------------------------------------------------


def test_quote_name_is_what_gnu_ls_shell_escape_prints() -> None:
    assert quote_name("plain name.png") == "plain name.png"
    assert quote_name("a\nb.png") == "'a'$'\\n''b.png'"
    assert quote_name(os.fsdecode(b"a\xff.png")) == "'a'$'\\377''.png'"
    assert quote_name("q'\x1b") == "'q'\\'''$'\\033'"
    assert quote_name("x\u2028y") == "'x'$'\\342\\200\\250''y'"
    assert quote_name("\ud800") == "$'\\ud800'"  # a lone surrogate from JSON: no byte to show


@pytest.mark.skipif(not shutil.which("bash") or not UTF8_NAMES, reason="needs bash, UTF-8 names")
def test_a_quoted_name_is_the_name_again_in_a_shell() -> None:
    for raw in (b"a\nb.png", b"a\xff\xfe.png", b"it's\t\x01.png", b"x\xe2\x80\xa8y"):
        quoted = quote_name(os.fsdecode(raw))
        shown = subprocess.run(["bash", "-c", f"printf %s {quoted}"], capture_output=True)
        assert shown.stdout == raw, quoted


@pytest.mark.skipif(not UTF8_NAMES, reason="file names are bytes only on POSIX with UTF-8")
def test_an_undecodable_name_with_a_newline_is_reported(tmp_path: Path, capsys) -> None:
    src = tmp_path / "in"
    _save(src / "good.png")
    raw = os.fsencode(src) + b"/bad\xff\nfailed    forged.png"
    with open(raw, "wb") as f:
        f.write((src / "good.png").read_bytes())
    report, out = tmp_path / "rep", tmp_path / "out"
    code, err = _run(
        capsys, "upscale", str(src), "-o", str(out), "--report", str(report), *BICUBIC
    )  # fmt: skip
    assert code == 0, err  # was 1: a UnicodeEncodeError after every image was done
    lines = err.splitlines()
    assert sum(line.startswith("done ") for line in lines) == 2  # one line a file
    assert not any(line.startswith("failed") for line in lines)  # no forged line
    data = report.with_suffix(".json").read_bytes()
    files = json.loads(data.decode("ascii"))["files"]
    assert {os.fsencode(f["input"]) for f in files} == {raw, os.fsencode(src / "good.png")}
    assert all(Path(f["output"]).is_file() for f in files)  # the names round-trip exactly
    text = report.with_suffix(".txt").read_bytes().decode("utf-8")
    assert "bad'$'\\377\\n''failed    forged.png'" in text
    assert len(text.splitlines()) == 3 + len(files)  # title, summary, blank, one line a file


def test_the_text_report_keeps_one_line_a_file_whatever_the_names() -> None:
    names = ["a\nfailed      0.00 s  forged.png", "b\r.png", "c\u2029.png", "\ud800.png"]
    records = [
        FileRecord(n, output=n, status="done", reason="x\ny", warnings=["w\nv"]) for n in names
    ]
    text = BatchReport(records=records, model="M\nforged").to_text()
    text.encode("utf-8")  # no lone surrogate left
    assert len(text.splitlines()) == 3 + 2 * len(names)
    assert json.loads(BatchReport(records=records).to_json())["files"][3]["input"] == "\ud800.png"


def test_a_report_that_cannot_be_written_is_its_own_error(tmp_path: Path, capsys, monkeypatch):
    _save(tmp_path / "in" / "a.png")
    folder = tmp_path / "reports"
    real_run_batch = cli_upscale.run_batch

    def run_then_block_the_report(*args, **kwargs):
        report = real_run_batch(*args, **kwargs)
        folder.rmdir()  # checked before the batch; now a file stands where the folder was
        folder.write_text("in the way")
        return report

    monkeypatch.setattr(cli_upscale, "run_batch", run_then_block_the_report)
    code, err = _run(
        capsys, "upscale", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--report",
        str(folder / "r"), *BICUBIC,
    )  # fmt: skip
    assert code == cli_upscale.REPORT_NOT_WRITTEN == 3  # not 1 (files failed), not 2 (usage)
    assert "the report was not written" in _one_error(err) and "1 done, 0 skipped, 0 failed" in err
    assert (tmp_path / "out" / "a_Bicubic_x2.png").is_file()


def test_an_empty_report_path_is_refused_before_any_image(tmp_path, capsys, monkeypatch) -> None:
    _save(tmp_path / "in" / "a.png")
    monkeypatch.chdir(tmp_path)
    for report in ("", "  "):
        code, err = _run(capsys, "upscale", "in", "-o", "out", "--report", report, *BICUBIC)
        assert code == 2 and "--report needs a path" in _one_error(err)
    code, err = _run(capsys, "report", "merge", "", "-o", "m")
    assert code == 2 and "empty REPORT path" in _one_error(err)
    assert _tree(tmp_path) == ["in", "in/a.png"]  # no output folder, no report.json here


# -- report merge -------------------------------------------------------------------------------


def _shard(
    index: int, count: int, files: list[str], seconds: float = 1.0, planned: int | None = 4
) -> dict:
    report = BatchReport(
        records=[FileRecord(f, output=f + ".out", status="done") for f in files],
        model="Bicubic x2",
        shard=(index, count),
        planned_files=planned,
    )
    data = report.to_dict()
    data["seconds"] = seconds
    return data


def _merge(capsys, folder: Path, reports: list[object | str]) -> tuple[int, str, Path]:
    paths = []
    for k, report in enumerate(reports):
        path = folder / f"r{k}.json"
        path.write_text(report if isinstance(report, str) else json.dumps(report))
        paths.append(str(path))
    out = folder / "merged"
    code, err = _run(capsys, "report", "merge", *paths, "-o", str(out))
    return code, err, out


BIG = "1" + "0" * 400  # a JSON integer past any float: was an OverflowError traceback


def _edited(key: str, old: str, new: str) -> list[object | str]:
    """One shard report, as JSON text with `"key": old` replaced by `"key": new`."""
    text = json.dumps(_shard(1, 1, ["a"]))
    assert f'"{key}": {old}' in text
    return [text.replace(f'"{key}": {old}', f'"{key}": {new}')]


@pytest.mark.parametrize(
    ("reports", "message"),
    [
        ([_shard(1, 1, ["a"], 1e308), _shard(1, 1, ["b"])], "seconds"),
        ([_shard(1, 2, ["a"], 1e308), _shard(2, 2, ["b"], 1e308)], "seconds"),  # was Infinity
        (_edited("seconds", "1.0", BIG), "seconds"),
        (_edited("seconds", "1.0", "NaN"), "seconds"),
        (_edited("seconds", "1.0", "1e999"), "seconds"),  # Python reads it as inf
        (_edited("index", "1", BIG), "shard"),
        (_edited("index", "1", "1.0"), "shard.index"),
        (_edited("index", "1", "true"), "shard.index"),
        (_edited("planned_files", "4", BIG), "planned_files"),
        (_edited("input_bytes", "null", BIG), "input_bytes"),
        ([_shard(1, 1_000_000, ["a"])], "at most 10,000"),  # was 14 MB of output
        ([{"files": [], "shards": {"count": 3, "merged": [1, 2, 3, 1]}}], "shards.merged"),
    ],
)  # fmt: skip
def test_merge_refuses_bad_numbers_and_sizes(tmp_path: Path, capsys, reports, message) -> None:
    code, err, out = _merge(capsys, tmp_path, reports)
    assert code == 2 and message in _one_error(err), err
    assert not out.with_suffix(".json").exists() and not out.with_suffix(".txt").exists()


def test_merge_bounds_files_and_bytes(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(report_file, "MAX_REPORT_FILES", 3)
    code, err, _ = _merge(capsys, tmp_path, [_shard(1, 1, ["a", "b", "c", "d"])])
    assert code == 2 and "at most 3" in _one_error(err)
    halves = [_shard(1, 2, ["a", "b"], planned=None), _shard(2, 2, ["c", "d"], planned=None)]
    code, err, _ = _merge(capsys, tmp_path, halves)
    assert code == 2 and "4 files; at most 3" in _one_error(err)
    monkeypatch.setattr(report_file, "MAX_REPORT_BYTES", 100)
    code, err, out = _merge(capsys, tmp_path, [_shard(1, 1, ["a"])])
    assert (
        code == 2 and "over 100 bytes" in _one_error(err) and not out.with_suffix(".json").exists()
    )


def test_merge_keeps_names_with_lone_surrogates(tmp_path: Path, capsys) -> None:
    names = ["\ud800.png", os.fsdecode(b"b\xff\n.png")]  # was a UnicodeEncodeError, half written
    code, err, out = _merge(capsys, tmp_path, [_shard(1, 2, names[:1]), _shard(2, 2, names[1:])])
    assert code == 0, err
    assert [r.input for r in load_report(out.with_suffix(".json")).records] == names
    text = out.with_suffix(".txt").read_text(encoding="utf-8")
    assert "$'\\ud800''.png'" in text and "'b'$'\\377\\n''.png'" in text
    assert len(text.splitlines()) == 5 + len(names)


def _strict_json(text: str) -> object:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


NUMBERS = st.one_of(
    st.integers(-5, 5),
    st.integers(),
    st.integers(10**300, 10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -0.0, 0.5]),
)
TEXTS = st.text(st.characters(blacklist_categories=()), max_size=10)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXTS)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXTS, inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
STATUSES = st.sampled_from(["done", "failed", "skipped", "cancelled"])
RECORDS = st.fixed_dictionaries(
    {"input": TEXTS, "status": STATUSES | VALUES},
    optional={
        "output": st.one_of(st.none(), TEXTS), "reason": TEXTS, "seconds": NUMBERS,
        "input_size": st.one_of(st.lists(NUMBERS, max_size=3), VALUES),
        "input_bytes": NUMBERS, "warnings": st.lists(TEXTS, max_size=2) | VALUES,
    },
)  # fmt: skip
SHARD = st.fixed_dictionaries(
    {
        "index": st.one_of(st.integers(1, 3), NUMBERS),
        "count": st.one_of(st.integers(1, 3), NUMBERS),
    },
    optional={"planned_files": st.one_of(st.none(), st.integers(0, 5), NUMBERS)},
)
REPORTS = st.fixed_dictionaries(
    {"files": st.lists(RECORDS, max_size=3) | VALUES, "shard": SHARD | VALUES},
    optional={"seconds": NUMBERS, "model": st.one_of(st.just("M"), TEXTS, VALUES)},
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reports=st.lists(REPORTS, min_size=1, max_size=3))
def test_merge_of_any_json_is_a_report_or_a_one_line_refusal(reports) -> None:
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(io.StringIO()) as err:
        folder = Path(tmp)
        paths = []
        for k, report in enumerate(reports):
            paths.append(folder / f"r{k}.json")
            paths[-1].write_text(json.dumps(report))
        out = folder / "merged"
        code = main(["report", "merge", *map(str, paths), "-o", str(out)])
        written = [out.with_suffix(".json"), out.with_suffix(".txt")]
        assert "Traceback" not in err.getvalue()
        if code == 2:
            _one_error(err.getvalue())
            assert not any(p.exists() for p in written)
            return
        assert code in (0, 1)
        _strict_json(written[0].read_bytes().decode("ascii"))
        written[1].read_bytes().decode("utf-8")
        merged = load_report(written[0])
        assert len(merged.records) == sum(len(r["files"]) for r in reports)  # type: ignore
