"""Snapshots: every format carries the same rows as the ledger's own fold."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from socialcredit.ledger import Ledger
from socialcredit.ledger.export import export

from .helpers import PERSON, PERSON2, defaulter_row, setup_authorities, utility_row


@pytest.fixture
def filled(ledger: Ledger) -> Ledger:
    setup_authorities(ledger)
    for i in range(5):
        ledger.furnish("water-1", utility_row(f"W{i}", subject=PERSON if i % 2 else PERSON2))
    d = ledger.furnish("court-1", defaulter_row())
    ledger.correct("court-1", d.seq, "R-1-c", {"amount": "10.00"}, "amount")
    w0 = ledger.subject_records(PERSON2)[0]
    ledger.retract("water-1", w0.record_id, "W0-r", "paid before the deadline")
    return ledger


@pytest.mark.parametrize("fmt", ["parquet", "ndjson", "csv"])
def test_record_snapshot(filled: Ledger, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"snap.{fmt}"
    n = export(filled, out, fmt, batch=2)
    assert n == 6 and out.exists() and not (tmp_path / f"snap.{fmt}.partial").exists()
    if fmt == "parquet":
        rows = pq.read_table(out).to_pylist()
    elif fmt == "ndjson":
        rows = [json.loads(line) for line in out.read_text().splitlines()]
    else:
        with out.open() as f:
            rows = list(csv.DictReader(f))
    by_origin = {int(r["origin_id"]): r for r in rows}
    expected = {v.origin_id: v for v in filled.iter_records()}
    assert set(by_origin) == set(expected)
    for origin, v in expected.items():
        r = by_origin[origin]
        assert int(r["record_id"]) == v.record_id
        assert r["state"] == v.state
        assert str(r["in_force"]).lower() == str(v.in_force).lower()
    states = sorted(r["state"] for r in rows)
    assert states.count("retracted") == 1
    corrected = [r for r in rows if int(r["versions"]) == 2]
    assert len(corrected) == 1 and int(corrected[0]["amount_minor"]) == 1000


def test_entries_snapshot_is_the_whole_chain(filled: Ledger, tmp_path: Path) -> None:
    out = tmp_path / "chain.parquet"
    n = export(filled, out, "parquet", table="entries")
    assert n == sum(filled.count().values())
    t = pq.read_table(out)
    assert t.column("seq").to_pylist() == list(range(1, n + 1))
    assert t.column("entry_hash").to_pylist()[-1] == filled.head()[1]


def test_empty_ledger_exports_an_empty_file(ledger: Ledger, tmp_path: Path) -> None:
    assert export(ledger, tmp_path / "e.parquet", "parquet") == 0
    assert pq.read_table(tmp_path / "e.parquet").num_rows == 0
