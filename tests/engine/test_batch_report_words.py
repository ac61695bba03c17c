"""The batch summary counts in plain English: "1 file", "2 files"."""

from __future__ import annotations

from engine.batch import BatchReport, FileRecord


def test_one_file_is_one_file() -> None:
    one = BatchReport([FileRecord("a.png", status="done")], seconds=1.25)
    assert one.summary().startswith("1 file: 1 done, ")
    two = BatchReport([FileRecord("a.png", status="done"), FileRecord("b.png", status="failed")])
    assert two.summary().startswith("2 files: 1 done, ")
    assert BatchReport().summary().startswith("0 files: ")
