"""The batch plan over a real ledger: entries folded relationally, compared with the reference.

A ledger (SQLite file, and PostgreSQL) gets furnished records, corrections (new amount, new
decision date, new attributes), retractions, an overturn and a suspension; the batch plan reads
the ``entries`` table through :func:`records_table` (and, for DuckDB, an exported Parquet
snapshot) and must give what the reference gives on ``Ledger.iter_records()``.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from socialcredit.engine.batch import connect, evaluate_population, records_table
from socialcredit.engine.records import Rec
from socialcredit.ids import random_rid, random_uscc
from socialcredit.ledger import Ledger
from socialcredit.ledger.export import RECORD_SCHEMA, export
from tests.engine.helpers import actual, expected, rulebook
from tests.ledger.helpers import setup_authorities

RB = rulebook(
    lists=[
        {
            "id": "defaulters",
            "entry": [
                {
                    "id": "listed",
                    "when": {"kinds": ["court.judgment-defaulter"]},
                    "term": {"length": "2y", "extend_by_attribute": "extension_years", "max": "4y"},
                }
            ],
            "removal": [
                {
                    "id": "performed",
                    "when": {"kinds": ["court.obligation-performed"]},
                    "match_attributes": ["case_no"],
                }
            ],
            "repair": {"minimum": "1y"},
        },
        {
            "id": "arrears",
            "entry": [
                {
                    "id": "repeated",
                    "grace": "10d",
                    "count": {
                        "when": {"kinds": ["utility.late-payment"]},
                        "weights": {"general": 2, "minor": 1},
                        "at_least": 3,
                        "within": "1y",
                    },
                    "term": {"length": "6m"},
                }
            ],
        },
        {
            "id": "watch",
            "type": "key-attention",
            "entry": [
                {"id": "both", "lists": {"any_of": ["defaulters", "arrears"], "at_least": 1}}
            ],
        },
    ],
    schemes=[
        {
            "id": "score",
            "subjects": ["person", "enterprise"],
            "base": 100,
            "min": 0,
            "restore_after": "2y",
            "rules": [
                {"id": "defaulter", "when": {"kinds": ["court.judgment-defaulter"]}, "points": -50},
                {
                    "id": "late",
                    "when": {"kinds": ["utility.late-payment"]},
                    "points": -5,
                    "once_per": "utility",
                    "cap": {"total": 10, "per": "year"},
                },
                {
                    "id": "arrears",
                    "when": {"kinds": ["tax.arrears"]},
                    "brackets": [
                        {"amount_at_least": 0, "points": -10},
                        {"amount_at_least": 1000, "points": -30},
                    ],
                },
            ],
            "grades": {
                "order": ["A", "B", "C", "D"],
                "bands": [
                    {"grade": "A", "min": 95},
                    {"grade": "B", "min": 80},
                    {"grade": "C", "min": 50},
                    {"grade": "D"},
                ],
                "limits": [
                    {
                        "id": "tax",
                        "at_best": "D",
                        "when": {"kinds": ["tax.arrears"]},
                        "for": "1y",
                    }
                ],
            },
        }
    ],
    memoranda=[
        {
            "id": "joint",
            "bindings": [
                {"when": {"list": "defaulters"}, "measures": ["travel.flights"]},
                {"when": {"scheme": "score", "grades": ["D"]}, "measures": ["finance.loans"]},
            ],
        }
    ],
)

AS_OF = [dt.date(2024, 3, 1), dt.date(2025, 1, 10), dt.date(2025, 9, 30), dt.date(2026, 1, 15)]


def _fill(ledger: Ledger, seed: int = 7) -> None:
    """Records about a dozen subjects, then corrections, retractions, an overturn, a suspension."""
    setup_authorities(ledger)
    rng = random.Random(seed)
    subjects = [f"cn-rid:{random_rid(rng)}" for _ in range(8)] + [
        f"cn-uscc:{random_uscc(rng)}" for _ in range(4)
    ]
    start = dt.date(2023, 1, 1)
    furnished: list[tuple[str, int]] = []  # (authority, seq)
    n = 0
    for s in subjects:
        for _ in range(rng.randint(1, 6)):
            n += 1
            day = (start + dt.timedelta(days=rng.randint(0, 1050))).isoformat()
            case = f"(2024) Zhi {rng.randint(1, 3)}"
            pick = rng.random()
            if pick < 0.3:
                row: dict[str, Any] = {
                    "ref": f"D{n}",
                    "subject": s,
                    "kind": "court.judgment-defaulter",
                    "decision_no": f"J{n}",
                    "decision_date": day,
                    "severity": "serious",
                    "amount": f"{rng.randint(1, 9000)}.00",
                    "attributes": {
                        "ground": "able-but-refuses",
                        "case_no": case,
                        "extension_years": rng.choice([0, 1, 3]),
                    },
                }
                authority = "court-1"
            elif pick < 0.45:
                row = {
                    "ref": f"P{n}",
                    "subject": s,
                    "kind": "court.obligation-performed",
                    "decision_no": f"P{n}",
                    "decision_date": day,
                    "attributes": {"trigger": "performed", "case_no": case},
                }
                authority = "court-1"
            elif pick < 0.85:
                row = {
                    "ref": f"W{n}",
                    "subject": s,
                    "kind": "utility.late-payment",
                    "decision_no": f"W{n}",
                    "decision_date": day,
                    "severity": rng.choice(["minor", "general"]),
                    "amount": "12.30",
                    "attributes": {"utility": rng.choice(["water", "gas"])},
                }
                authority = "water-1"
            else:
                row = {
                    "ref": f"T{n}",
                    "subject": s,
                    "kind": "tax.arrears",
                    "decision_no": f"T{n}",
                    "decision_date": day,
                    "severity": "general",
                    "amount": f"{rng.choice([50, 999, 1000, 5000])}.00",
                    "attributes": {"deadline": day},
                }
                authority = "tax-1"
            furnished.append((authority, ledger.furnish(authority, row).seq))
    rng.shuffle(furnished)
    for i, (authority, seq) in enumerate(furnished[:6]):
        changes: dict[str, Any] = (
            {"decision_date": "2025-02-28"} if i % 2 else {"amount": "2000.00"}
        )
        ledger.correct(authority, seq, f"C{i}", changes, "corrected")
    for i, (authority, seq) in enumerate(furnished[6:10]):
        current = ledger.subject_records(ledger.entry(seq)["subject_key"])
        target = next(v.record_id for v in current if v.origin_id == seq)
        if i == 0:
            ledger.overturn("court-1", target, f"O{i}", "overturned on appeal")
        elif i == 1:
            ledger._lineage_op("suspend", authority, target, f"S{i}", "under review")
        elif i == 2:
            ledger._lineage_op("suspend", authority, target, f"S{i}", "under review")
            ledger._lineage_op("reinstate", authority, target, f"R{i}", "review done")
        else:
            ledger.retract(authority, target, f"X{i}", "furnished in error")


def _reference_rows(ledger: Ledger) -> list[dict[str, Any]]:
    return [v.as_dict(history=False) for v in ledger.iter_records()]


def _check(result: Any, ledger: Ledger, as_of: dt.date) -> None:
    rows = _reference_rows(ledger)
    want = expected(RB, rows, as_of)
    got = actual(result)
    for name in want:
        assert got[name] == want[name], f"{name} as of {as_of}"


@pytest.fixture
def filled(ledger: Ledger) -> Ledger:
    _fill(ledger)
    return ledger


def test_fold_of_entries_equals_the_ledgers_own_fold(filled: Ledger) -> None:
    con = connect("sql", filled.url.replace("postgresql+psycopg://", "postgresql://"))
    t = records_table(con, "entries")
    assert list(t.schema().names) == list(RECORD_SCHEMA.names)
    got = {r["origin_id"]: r for r in t.to_pyarrow().to_pylist()}
    want = {v.origin_id: v for v in filled.iter_records()}
    assert set(got) == set(want)
    for origin, v in want.items():
        r = got[origin]
        assert r["record_id"] == v.record_id
        assert (r["state"], r["suspended"], r["in_force"], r["versions"]) == (
            v.state,
            v.suspended,
            v.in_force,
            v.versions,
        )
        assert Rec.from_row(r) == Rec.from_row(v.as_dict(history=False))
    assert {r["state"] for r in got.values()} == {"active", "retracted", "overturned"}
    assert any(r["suspended"] for r in got.values())


def test_batch_over_the_ledger_equals_the_reference(filled: Ledger) -> None:
    source = filled.url.replace("postgresql+psycopg://", "postgresql://")
    if source.startswith("sqlite"):
        source = source.split("///", 1)[1]
    for as_of in AS_OF:
        _check(evaluate_population(RB, engine="sql", source=source, as_of=as_of), filled, as_of)


def test_batch_over_an_exported_snapshot_equals_the_reference(
    filled: Ledger, tmp_path: Path
) -> None:
    snap = tmp_path / "snapshot.parquet"
    export(filled, snap, "parquet")
    assert pq.read_table(snap).num_rows == len(_reference_rows(filled))
    for as_of in AS_OF:
        _check(evaluate_population(RB, engine="duckdb", source=snap, as_of=as_of), filled, as_of)
