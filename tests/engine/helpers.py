"""Shared builders for the engine tests: snapshots on each backend, and the reference's tables."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.parquet as pq

from socialcredit.engine.batch import BatchResult, compile_plan, records_table
from socialcredit.engine.records import Rec
from socialcredit.engine.reference import evaluate
from socialcredit.ledger.export import RECORD_SCHEMA
from socialcredit.rulebooks.model import Rulebook

_BASE: dict[str, Any] = {
    "id": "rb-test",
    "title": "Test rulebook",
    "jurisdiction": "test",
    "version": "1",
    "effective": {"from": "2020-01-01"},
}
_LIST: dict[str, Any] = {
    "title": "A list",
    "type": "black",
    "authority": "test authority",
    "legal_basis": "test basis",
}


def rulebook(**parts: Any) -> Rulebook:
    """A rulebook from plain dicts; lists get a title, type, authority and basis if missing."""
    doc = dict(_BASE)
    doc.update(parts)
    doc["lists"] = [{**_LIST, **lst} for lst in parts.get("lists", [])]
    doc["schemes"] = [
        {"title": "A scheme", "subjects": ["person"], "base": 100, "restore_after": "2y", **s}
        for s in parts.get("schemes", [])
    ]
    doc["memoranda"] = [
        {"title": "A memorandum", "legal_basis": "test", **m} for m in parts.get("memoranda", [])
    ]
    return Rulebook.model_validate(doc)


def row(
    record_id: int,
    subject: str,
    kind: str,
    decision_date: str | dt.date,
    *,
    subject_kind: str | None = "person",
    severity: str | None = None,
    amount_minor: int | None = None,
    attributes: dict[str, Any] | None = None,
    in_force: bool = True,
) -> dict[str, Any]:
    """One snapshot row (``RECORD_SCHEMA``)."""
    d = dt.date.fromisoformat(decision_date) if isinstance(decision_date, str) else decision_date
    return {
        "record_id": record_id,
        "origin_id": record_id,
        "subject": subject,
        "subject_kind": subject_kind,
        "subject_name": None,
        "kind": kind,
        "authority_id": "a",
        "authority_ref": f"ref-{record_id}",
        "decision_no": f"no-{record_id}",
        "decision_date": d,
        "severity": severity,
        "amount_minor": amount_minor,
        "legal_basis": "basis",
        "attributes": json.dumps(attributes, sort_keys=True) if attributes else None,
        "recorded_at": dt.datetime(2020, 1, 1),
        "state": "active" if in_force else "retracted",
        "disputed": False,
        "suspended": False,
        "in_force": in_force,
        "versions": 1,
    }


def snapshot(rows: Sequence[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=RECORD_SCHEMA)


# --------------------------------------------------------------------------- backends


def duckdb_records(
    rows: Sequence[dict[str, Any]], path: Path, con: Any | None = None
) -> ibis.Table:
    """The rows as a Parquet snapshot read by DuckDB (on ``con`` if given, else a new one)."""
    pq.write_table(snapshot(rows), path)
    return records_table(con if con is not None else ibis.duckdb.connect(), path)


def spark_records(rows: Sequence[dict[str, Any]], path: Path, con: Any) -> ibis.Table:
    """The rows as a Parquet snapshot read by Spark (``con`` from ``batch.connect("spark")``)."""
    pq.write_table(snapshot(rows), path)
    return records_table(con, path)


_SQL_TYPES = {
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.string(): "TEXT",
    pa.date32(): "DATE",
    pa.bool_(): "BOOLEAN",
    pa.timestamp("us"): "TIMESTAMP",
}


def _plain(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def sqlite_records(rows: Sequence[dict[str, Any]], path: Path) -> ibis.Table:
    """A real SQLite file holding the snapshot as a ``records`` table."""
    cols = ", ".join(f'"{f.name}" {_SQL_TYPES[f.type]}' for f in RECORD_SCHEMA)
    with sqlite3.connect(path) as c:
        c.execute(f"CREATE TABLE records ({cols})")
        names = RECORD_SCHEMA.names
        c.executemany(
            f"INSERT INTO records VALUES ({', '.join('?' * len(names))})",
            [tuple(_plain(r[n]) for n in names) for r in rows],
        )
    c.close()
    return records_table(ibis.sqlite.connect(path), "records")


def postgres_records(rows: Sequence[dict[str, Any]], url: str) -> ibis.Table:
    import psycopg

    from socialcredit.engine.batch import connect

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    cols = ", ".join(f'"{f.name}" {_SQL_TYPES[f.type]}' for f in RECORD_SCHEMA)
    with psycopg.connect(plain, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS records")
        c.execute(f"CREATE TABLE records ({cols})")
        with (
            c.cursor() as cur,
            cur.copy(f"COPY records ({', '.join(RECORD_SCHEMA.names)}) FROM STDIN") as cp,
        ):
            for r in rows:
                cp.write_row([r[n] for n in RECORD_SCHEMA.names])
    return records_table(connect("sql", plain), "records")


# --------------------------------------------------------------------------- comparing


def recs_of(rows: Iterable[dict[str, Any]]) -> list[Rec]:
    return [Rec.from_row(r) for r in rows]


def expected(rb: Rulebook, rows: Sequence[dict[str, Any]], as_of: dt.date) -> dict[str, Any]:
    """The reference's status of every subject, as multisets of plain tuples per table."""
    recs = recs_of(rows)
    by_subject: dict[str, list[Rec]] = {}
    for r in recs:
        by_subject.setdefault(r.subject, []).append(r)
    mem: Counter[tuple[Any, ...]] = Counter()
    pend: Counter[tuple[Any, ...]] = Counter()
    sch: Counter[tuple[Any, ...]] = Counter()
    mea: Counter[tuple[Any, ...]] = Counter()
    nxt: Counter[tuple[Any, ...]] = Counter()
    for subject, rs in by_subject.items():
        st = evaluate(rb, rs, as_of, subject=subject)
        for m in st.memberships:
            mem[(subject, m.list_id, m.since, m.until, m.basis, m.rules, m.via, m.repair_from)] += 1
        for p in st.pending:
            pend[(subject, p.list_id, p.effective, p.rule, p.basis)] += 1
        for s in st.schemes:
            sch[
                (subject, s.scheme_id, s.points, s.grade, s.band_grade, s.consent, s.next_change)
            ] += 1
        for x in st.measures:
            mea[(subject, x.measure_id, x.memorandum_id, x.via, x.basis)] += 1
        nxt[(subject, st.next_change)] += 1
    return {
        "memberships": mem,
        "pending": pend,
        "schemes": sch,
        "measures": mea,
        "next_change": nxt,
    }


def actual(res: BatchResult) -> dict[str, Any]:
    """The batch result in the same shape as :func:`expected`."""
    out: dict[str, Any] = {}
    for name in ("memberships", "pending", "schemes", "measures", "next_change"):
        t: pa.Table = getattr(res, name)
        c: Counter[tuple[Any, ...]] = Counter()
        for r in t.to_pylist():
            c[tuple(tuple(v) if isinstance(v, list) else v for v in r.values())] += 1
        out[name] = c
    return out


def check(
    rb: Rulebook,
    rows: Sequence[dict[str, Any]],
    as_of: dt.date,
    records: ibis.Table,
    *,
    subject_keys: str = "auto",
) -> BatchResult:
    """Assert the batch plan on ``records`` equals the reference on ``rows``, table by table."""
    res = compile_plan(rb).run(records, as_of, subject_keys=subject_keys)
    want, got = expected(rb, rows, as_of), actual(res)
    for name in want:
        if want[name] != got[name]:
            missing = want[name] - got[name]
            extra = got[name] - want[name]
            raise AssertionError(
                f"{name} differ as of {as_of}:\n  reference only: {sorted(missing.elements(), key=repr)}"
                f"\n  batch only:     {sorted(extra.elements(), key=repr)}"
            )
    return res


# --------------------------------------------------------------------------- shipped rulebooks


def shipped_scenario(
    name: str, max_days: int = 3
) -> tuple[Rulebook, list[dict[str, Any]], list[dt.date]]:
    """A population made of every test case of a shipped rulebook (``rulebooks/NAME/tests``):
    one subject per case (the case's subject key, suffixed with the case number), record ids
    numbered across the population; with up to ``max_days`` of the cases' as-of days (evenly
    spread over the sorted distinct days, first and last included)."""
    import yaml

    from socialcredit.catalog import load_catalogue
    from socialcredit.rulebooks import load
    from tests.shipped.test_shipped_rulebooks import ROOT, _case_files, build_records

    catalogue = load_catalogue()
    rows: list[dict[str, Any]] = []
    days: set[dt.date] = set()
    n = 0
    for file in _case_files(name):
        for case in yaml.safe_load(file.read_text(encoding="utf-8")) or []:
            subject, kind, recs = build_records(case, catalogue)
            who = f"{subject}~{n}"
            days.add(dt.date.fromisoformat(str(case["as_of"])))
            n += 1
            for r in recs:
                rows.append(
                    row(
                        len(rows) + 1,
                        who,
                        r.kind,
                        r.decision_date,
                        subject_kind=kind,
                        severity=r.severity,
                        amount_minor=r.amount_minor,
                        attributes=dict(r.attributes),
                        in_force=r.in_force,
                    )
                )
    srt = sorted(days)
    if len(srt) > max_days > 1:
        srt = sorted({srt[round(i * (len(srt) - 1) / (max_days - 1))] for i in range(max_days)})
    return load(ROOT / name), rows, srt[:max_days]
