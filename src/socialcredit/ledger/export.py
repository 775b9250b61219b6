"""Snapshots of the ledger for the batch engine, open data and auditors.

``records`` (the default) is one row per record lineage in its current state — the table the batch
engine evaluates. ``entries`` is the raw hash chain, for an auditor who wants to re-verify it
elsewhere. Both stream in batches, so memory stays flat.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from socialcredit.ledger.schema import entries as entries_t
from socialcredit.ledger.store import Ledger

EXPORT_FORMATS = ("parquet", "ndjson", "csv")

RECORD_SCHEMA = pa.schema(
    [
        ("record_id", pa.int64()),
        ("origin_id", pa.int64()),
        ("subject", pa.string()),
        ("subject_kind", pa.string()),
        ("subject_name", pa.string()),
        ("kind", pa.string()),
        ("authority_id", pa.string()),
        ("authority_ref", pa.string()),
        ("decision_no", pa.string()),
        ("decision_date", pa.date32()),
        ("severity", pa.string()),
        ("amount_minor", pa.int64()),
        ("legal_basis", pa.string()),
        ("attributes", pa.string()),
        ("recorded_at", pa.timestamp("us")),
        ("state", pa.string()),
        ("disputed", pa.bool_()),
        ("suspended", pa.bool_()),
        ("in_force", pa.bool_()),
        ("versions", pa.int32()),
    ]
)

ENTRY_SCHEMA = pa.schema(
    [
        (
            c.name,
            {
                "BIGINT": pa.int64(),
                "DATE": pa.date32(),
                "DATETIME": pa.timestamp("us"),
            }.get(str(c.type).split("(")[0], pa.string()),
        )
        for c in entries_t.columns
    ]
)


def _record_rows(ledger: Ledger, known_at: dt.datetime | None) -> Iterator[dict[str, Any]]:
    for v in ledger.iter_records(known_at=known_at):
        yield {
            "record_id": v.record_id,
            "origin_id": v.origin_id,
            "subject": v.subject,
            "subject_kind": v.subject_kind,
            "subject_name": v.subject_name,
            "kind": v.kind,
            "authority_id": v.authority_id,
            "authority_ref": v.authority_ref,
            "decision_no": v.decision_no,
            "decision_date": v.decision_date,
            "severity": v.severity,
            "amount_minor": v.amount_minor,
            "legal_basis": v.legal_basis,
            "attributes": json.dumps(v.attributes, ensure_ascii=False, sort_keys=True)
            if v.attributes
            else None,
            "recorded_at": v.recorded_at,
            "state": v.state,
            "disputed": v.disputed,
            "suspended": v.suspended,
            "in_force": v.in_force,
            "versions": v.versions,
        }


def _entry_rows(ledger: Ledger, batch: int = 50_000) -> Iterator[dict[str, Any]]:
    last = 0
    while True:
        with ledger.engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(entries_t)
                    .where(entries_t.c.seq > last)
                    .order_by(entries_t.c.seq)
                    .limit(batch)
                )
                .mappings()
                .all()
            )
        if not rows:
            return
        for r in rows:
            yield dict(r)
        last = rows[-1]["seq"]


def _plain(v: Any) -> Any:
    return v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v


def export(
    ledger: Ledger,
    out: str | Path,
    fmt: str,
    *,
    table: str = "records",
    known_at: dt.datetime | None = None,
    progress: Callable[[int], None] | None = None,
    batch: int = 50_000,
) -> int:
    """Write a snapshot; returns the number of rows written."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}")
    if table not in ("records", "entries"):
        raise ValueError("table must be 'records' or 'entries'")
    schema = RECORD_SCHEMA if table == "records" else ENTRY_SCHEMA
    rows = _record_rows(ledger, known_at) if table == "records" else _entry_rows(ledger)
    out = Path(out)
    tmp = out.with_name(out.name + ".partial")
    n = 0
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with pq.ParquetWriter(tmp, schema, compression="zstd") as w:
            chunk: list[dict[str, Any]] = []
            for r in rows:
                chunk.append(r)
                if len(chunk) >= batch:
                    w.write_batch(pa.RecordBatch.from_pylist(chunk, schema=schema))
                    n += len(chunk)
                    chunk = []
                    if progress:
                        progress(n)
            if chunk or n == 0:
                w.write_batch(pa.RecordBatch.from_pylist(chunk, schema=schema))
                n += len(chunk)
    else:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            if fmt == "ndjson":
                for r in rows:
                    f.write(
                        json.dumps({k: _plain(v) for k, v in r.items()}, ensure_ascii=False) + "\n"
                    )
                    n += 1
                    if progress and n % batch == 0:
                        progress(n)
            else:
                w = csv.writer(f)
                w.writerow(schema.names)
                for r in rows:
                    w.writerow(["" if r[k] is None else _plain(r[k]) for k in schema.names])
                    n += 1
                    if progress and n % batch == 0:
                        progress(n)
    tmp.replace(out)
    if progress:
        progress(n)
    return n
