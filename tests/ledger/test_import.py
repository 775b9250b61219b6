"""Streaming import: formats, error reports, all-or-nothing, idempotent re-runs."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from socialcredit.ledger import Ledger
from socialcredit.ledger.importer import FileError, import_file

from .helpers import PERSON, PERSON2, setup_authorities

HEADER = [
    "ref",
    "subject",
    "kind",
    "decision_no",
    "decision_date",
    "severity",
    "amount",
    "attr.utility",
]


def _rows(n: int, start: int = 0) -> list[list[str]]:
    return [
        [
            f"W{i:06d}",
            PERSON if i % 2 else PERSON2,
            "utility.late-payment",
            f"D{i}",
            "2025-03-01",
            "minor",
            f"{i}.50",
            "water",
        ]
        for i in range(start, start + n)
    ]


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def reg(ledger: Ledger) -> Ledger:
    setup_authorities(ledger)
    return ledger


def test_csv_import_in_batches(reg: Ledger, tmp_path: Path) -> None:
    f = write_csv(tmp_path / "w.csv", _rows(23))
    seen: list[tuple[int, int]] = []
    report = import_file(reg, f, "water-1", batch_size=5, progress=lambda d, t: seen.append((d, t)))
    assert (report.status, report.rows_read, report.stored, report.rejected) == ("done", 23, 23, 0)
    assert report.errors_file is None and not (tmp_path / "w.csv.errors.csv").exists()
    assert reg.count()["furnish"] == 23
    assert seen and seen[-1][0] == seen[-1][1] == f.stat().st_size
    assert reg.verify().ok


def test_rejected_rows_get_an_exact_report(reg: Ledger, tmp_path: Path) -> None:
    rows = _rows(5)
    rows[1][1] = "cn-rid:110105194912310021"  # wrong check character
    rows[3][7] = "lava"  # not a utility
    rows[4][4] = "2030-01-01"  # in the future
    f = write_csv(tmp_path / "w.csv", rows)
    report = import_file(reg, f, "water-1")
    assert (report.status, report.stored, report.rejected) == ("partial", 2, 3)
    with open(report.errors_file or "") as fh:
        got = [(r["row"], r["field"], r["rule"], r["value"]) for r in csv.DictReader(fh)]
    assert got == [
        ("3", "subject", "check-character", "cn-rid:110105194912310021"),
        ("5", "attributes.utility", "enum", "lava"),
        ("6", "decision_date", "future-date", "2030-01-01"),
    ]


def test_all_or_nothing_stores_nothing_on_any_error(reg: Ledger, tmp_path: Path) -> None:
    rows = _rows(12)
    rows[10][2] = "court.judgment-defaulter"  # not accredited for the waterworks
    f = write_csv(tmp_path / "w.csv", rows)
    before = reg.count()
    report = import_file(reg, f, "water-1", batch_size=4, all_or_nothing=True)
    assert report.status == "rejected" and report.stored == 0 and report.rejected == 1
    assert reg.count() == before
    assert reg.verify().ok
    rows[10][2] = "utility.late-payment"
    report = import_file(
        reg, write_csv(tmp_path / "w.csv", rows), "water-1", batch_size=4, all_or_nothing=True
    )
    assert report.status == "done" and report.stored == 12


def test_duplicates_and_conflicts_inside_and_across_files(reg: Ledger, tmp_path: Path) -> None:
    import_file(reg, write_csv(tmp_path / "a.csv", _rows(4)), "water-1")
    rows = _rows(6)  # W0..W3 again (duplicates), W4, W5 new
    rows[2][6] = "999.00"  # W2 with different content: conflict
    rows.append(list(rows[4]))  # W4 twice in the same file: duplicate
    changed = list(rows[5])
    changed[6] = "1.00"
    rows.append(changed)  # W5 twice with different content: conflict
    report = import_file(reg, write_csv(tmp_path / "b.csv", rows), "water-1", batch_size=100)
    assert (report.stored, report.duplicates, report.rejected) == (2, 4, 2)
    rules = {(p.row, p.rule) for p in report.problems}
    assert rules == {(4, "conflict"), (9, "conflict")}
    assert reg.count()["furnish"] == 6
    assert reg.verify().ok


def test_ndjson_and_parquet(reg: Ledger, tmp_path: Path) -> None:
    nd = tmp_path / "t.ndjson"
    lines = [
        {
            "ref": "T1",
            "subject": "cn-uscc:91110105MA01AB3CXM",
            "kind": "tax.arrears",
            "decision_no": "T/1",
            "decision_date": "2025-01-02",
            "severity": "general",
            "amount": 100,
            "attributes": {"deadline": "2025-02-01"},
        },
        "this is not json",
        {
            "ref": "T2",
            "subject": "cn-uscc:91110105MA01AB3CXM",
            "kind": "tax.arrears",
            "decision_no": "T/2",
            "decision_date": "2025-01-03",
            "severity": "general",
        },
    ]
    nd.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    report = import_file(reg, nd, "tax-1")
    assert report.stored == 1 and report.rejected == 2
    assert {(p.row, p.field, p.rule) for p in report.problems} == {
        (2, "row", "malformed-json"),
        (3, "amount", "required"),
        (3, "attributes.deadline", "required"),
    }
    table = pa.table(
        {
            "ref": ["P1", "P2"],
            "subject": [PERSON, PERSON2],
            "kind": ["utility.late-payment"] * 2,
            "decision_no": ["a", "b"],
            "decision_date": pa.array([dt.date(2025, 1, 1)] * 2),
            "severity": ["minor", "general"],
            "amount": [1.5, 2.25],
            "attr.utility": ["gas", "water"],
        }
    )
    pq.write_table(table, tmp_path / "u.parquet")
    report = import_file(reg, tmp_path / "u.parquet", "water-1")
    assert report.stored == 2, report.problems
    assert {r.amount_minor for r in reg.subject_records(PERSON)} == {150}


def test_malformed_files_are_refused_whole(reg: Ledger, tmp_path: Path) -> None:
    before = reg.count()
    bad_header = write_csv(tmp_path / "h.csv", _rows(2), header=[*HEADER[:-1], "colour"])
    with pytest.raises(FileError) as e:
        import_file(reg, bad_header, "water-1")
    assert [(p.field, p.rule) for p in e.value.problems] == [("colour", "unknown-column")]
    no_ref = write_csv(tmp_path / "r.csv", [r[1:] for r in _rows(2)], header=HEADER[1:])
    with pytest.raises(FileError, match="no 'ref' column"):
        import_file(reg, no_ref, "water-1")
    junk = tmp_path / "x.parquet"
    junk.write_bytes(b"not parquet at all")
    with pytest.raises(FileError) as e:
        import_file(reg, junk, "water-1")
    assert e.value.problems[0].rule == "malformed-parquet"
    with pytest.raises(FileError, match="format"):
        import_file(reg, write_csv(tmp_path / "x.txt", _rows(1)), "water-1")
    ragged = tmp_path / "g.csv"
    ragged.write_text(",".join(HEADER) + "\n" + ",".join(_rows(1)[0]) + ",extra\n")
    report = import_file(reg, ragged, "water-1")
    assert report.problems[0].rule == "malformed-row" and report.problems[0].row == 2
    assert reg.count() == before


def test_rerun_of_a_finished_import_stores_nothing_new(reg: Ledger, tmp_path: Path) -> None:
    f = write_csv(tmp_path / "w.csv", _rows(10))
    import_file(reg, f, "water-1", batch_size=3)
    report = import_file(reg, f, "water-1", batch_size=3)
    assert (report.stored, report.duplicates) == (0, 10)
    assert reg.count()["furnish"] == 10


def test_pipelined_import_equals_inline(
    reg: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large files are validated by forked processes, every other batch each; the result is the
    same as validating in line: same rows stored in file order, same refusals with row numbers."""
    from socialcredit.ledger import importer

    rows = _rows(57)
    for i in (3, 17, 30, 44, 56):  # refusals spread over both validators' batches
        rows[i][4] = "2031-01-01"
    f = write_csv(tmp_path / "w.csv", rows)
    monkeypatch.setattr(importer, "PIPELINE_MIN_BYTES", 0)
    report = import_file(reg, f, "water-1", batch_size=5)
    assert (report.stored, report.rejected, report.rows_read) == (52, 5, 57)
    assert [p.row for p in report.problems] == [5, 19, 32, 46, 58]
    stored = [v.authority_ref for v in reg.iter_records()]
    assert stored == [r[0] for i, r in enumerate(rows) if i not in (3, 17, 30, 44, 56)]
    assert reg.verify().ok
