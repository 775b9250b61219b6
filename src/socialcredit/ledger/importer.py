"""Streaming import of furnished records from CSV, NDJSON or Parquet.

Memory stays constant whatever the file size: rows are read, validated and written in batches,
each batch in one transaction together with the import's checkpoint. A crash or kill at any moment
leaves the ledger consistent (a batch is in or out, never half) and the chain valid; running the
same import again resumes after the last committed row, and idempotent references make any overlap
a no-op. Rejected rows go to a CSV error report (row, field, rule, value, message).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import marshal
import multiprocessing as mp
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Full
from typing import Any, BinaryIO

import sqlalchemy as sa

from socialcredit.errors import InputError, Problem
from socialcredit.ledger import chain
from socialcredit.ledger.db import is_sqlite, write_transaction
from socialcredit.ledger.schema import imports as imports_t
from socialcredit.ledger.store import COLUMNS, Ledger, _naive_utc
from socialcredit.ledger.validate import (
    ATTR_PREFIX,
    PREPARED_FIELDS,
    RECORD_FIELDS,
    Plan,
    Prepared,
    RecordValidator,
    prepare,
)

FORMATS = ("csv", "ndjson", "parquet")
ERROR_COLUMNS = ("row", "field", "rule", "value", "message")
Row = tuple[int, Sequence[Any] | Mapping[str, Any] | Problem]


class FileError(InputError):
    """The file as a whole cannot be imported (unknown format, bad header, unreadable)."""


@dataclass
class ImportReport:
    import_id: int
    file: str
    format: str
    status: str = "running"  # done | partial | rejected | failed
    rows_read: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    resumed_after: int = 0
    errors_file: str | None = None
    problems: list[Problem] = field(default_factory=list)  # the first few, for display

    def as_dict(self) -> dict[str, Any]:
        return {
            "import_id": self.import_id,
            "file": self.file,
            "format": self.format,
            "status": self.status,
            "rows_read": self.rows_read,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "resumed_after": self.resumed_after,
            "errors_file": self.errors_file,
            "problems": [p.as_dict() for p in self.problems],
        }


def detect_format(path: Path) -> str:
    name = path.name.lower()
    for suffix, fmt in (
        (".csv", "csv"),
        (".ndjson", "ndjson"),
        (".jsonl", "ndjson"),
        (".parquet", "parquet"),
    ):
        if name.endswith(suffix):
            return fmt
    raise FileError(
        [
            Problem(
                "file",
                "unknown-format",
                path.name,
                "cannot tell the format from the name: use --format csv|ndjson|parquet",
            )
        ]
    )


def _check_columns(columns: list[str], fmt: str) -> None:
    problems = []
    for c in columns:
        if c not in RECORD_FIELDS and not c.startswith(ATTR_PREFIX):
            problems.append(
                Problem(c, "unknown-column", c, f"'{c}' is not a record field (nor attr.NAME)")
            )
    have = set(columns)
    for c in ("ref", "kind", "decision_no", "decision_date"):
        if c not in have:
            problems.append(
                Problem(c, "missing-column", None, f"the {fmt} file has no '{c}' column")
            )
    if "subject" not in have and not {"subject_scheme", "subject_id"} <= have:
        problems.append(
            Problem(
                "subject",
                "missing-column",
                None,
                "the file needs a 'subject' column (or 'subject_scheme' and 'subject_id')",
            )
        )
    if problems:
        raise FileError(problems)


class _Counting(io.RawIOBase):
    """A binary reader that remembers how many bytes were read, for the progress bar."""

    def __init__(self, raw: BinaryIO):
        self.raw, self.pos = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self.raw.readinto(b)  # type: ignore[attr-defined]
        self.pos += n or 0
        return n or 0


def _read_csv(f: _Counting) -> tuple[list[str], Iterator[Row]]:
    """The header, and the rows: see :func:`_csv_rows`."""
    text = io.TextIOWrapper(io.BufferedReader(f, 1 << 16), encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        raise FileError(
            [Problem("file", "empty", None, "the CSV file has no header row")]
        ) from None
    except (csv.Error, UnicodeDecodeError) as e:
        raise FileError(
            [Problem("file", "malformed-csv", None, f"cannot read the header: {e}")]
        ) from None
    header = [h.strip() for h in header]
    _check_columns(header, "CSV")
    return header, _csv_rows(text, reader.line_num)


def _csv_rows(text: Any, line: int) -> Iterator[Row]:
    """Each record after line ``line`` with its line number, as the ``csv`` module reads it.

    A line without a quote is a record of its own, and splitting it at the commas gives exactly
    what ``csv`` would: such lines come as the text itself (with its line ending; the consumer
    splits it with :func:`_split_line` when it needs the values, and checks the width). A line
    with a quote (a field may run over several lines) or an overlong one is read by ``csv`` from
    there, and comes as its list of values.
    """
    limit = csv.field_size_limit()
    while True:
        try:
            raw = next(text)
        except StopIteration:
            return
        except UnicodeDecodeError as e:
            yield line + 1, Problem("row", "malformed-csv", None, f"cannot be read as CSV: {e}")
            continue
        if '"' not in raw and len(raw) <= limit:
            line += 1
            if len(raw) > 2 or raw.strip("\r\n"):
                yield line, raw
            continue
        reader = csv.reader(itertools.chain((raw,), text))
        try:
            values = next(reader)
        except (csv.Error, UnicodeDecodeError) as e:
            yield line + 1, Problem("row", "malformed-csv", None, f"cannot be read as CSV: {e}")
            line += reader.line_num
            continue
        row_no, line = line + 1, line + reader.line_num
        if values:
            yield row_no, values


def _split_line(raw: str) -> list[str]:
    """The values of a CSV line without quotes (see :func:`_csv_rows`)."""
    return raw.rstrip("\r\n").split(",")


def _malformed_row(n: int, width: int) -> Problem:
    return Problem("row", "malformed-row", n, f"has {n} values but the header has {width} columns")


def _read_ndjson(f: _Counting) -> Iterator[Row]:
    """Each row as a mapping (the keys may differ from row to row)."""
    text = io.TextIOWrapper(io.BufferedReader(f, 1 << 16), encoding="utf-8-sig")
    for n, line in enumerate(text, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            yield (
                n,
                Problem("row", "malformed-json", line[:80].rstrip(), f"is not valid JSON: {e.msg}"),
            )
            continue
        if not isinstance(obj, dict):
            yield n, Problem("row", "malformed-json", line[:80].rstrip(), "is not a JSON object")
            continue
        yield n, obj


def _read_parquet(path: Path) -> tuple[list[str], Iterator[Row]]:
    """The column names, and each row as a tuple of values in that order."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:
        raise FileError(
            [Problem("file", "malformed-parquet", path.name, f"cannot be read as Parquet: {e}")]
        ) from e
    columns = list(pf.schema_arrow.names)
    _check_columns(columns, "Parquet")

    def rows() -> Iterator[Row]:
        n = 0
        for batch in pf.iter_batches(batch_size=8192):
            for values in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                n += 1
                yield n, values

    return columns, rows()


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except Exception as e:
        raise FileError(
            [Problem("file", "malformed-parquet", path.name, f"cannot be read as Parquet: {e}")]
        ) from e


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _Abort(Exception):
    """Raised inside an all-or-nothing import to roll back the single transaction."""


class _ErrorReport:
    """The per-row error report, opened on the first problem (appended to when resuming)."""

    def __init__(self, path: Path, append: bool):
        self.path, self.append = path, append
        self._f: Any = None
        self._w: Any = None

    def write(self, p: Problem) -> None:
        if self._w is None:
            fresh = not (self.append and self.path.exists())
            self._f = self.path.open("w" if fresh else "a", newline="", encoding="utf-8")
            self._w = csv.writer(self._f)
            if fresh:
                self._w.writerow(ERROR_COLUMNS)
        value = (
            p.value if p.value is None or isinstance(p.value, (str, int, float)) else str(p.value)
        )
        self._w.writerow((p.row, p.field, p.rule, "" if value is None else value, p.message))

    def close(self) -> None:
        if self._f is not None:
            self._f.close()


def import_file(
    ledger: Ledger,
    path: str | Path,
    authority_id: str,
    *,
    fmt: str | None = None,
    batch_size: int = 5000,
    all_or_nothing: bool = False,
    errors_path: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import one file of records furnished by ``authority_id``. See the module docstring."""
    path = Path(path)
    if not path.is_file():
        raise FileError([Problem("file", "not-found", str(path), "no such file")])
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise FileError(
            [Problem("format", "unknown-format", fmt, "the format must be csv, ndjson or parquet")]
        )
    validator = ledger.validator(authority_id)
    digest = _sha256(path)
    total = path.stat().st_size if fmt != "parquet" else _parquet_rows(path)
    engine = ledger.engine
    now = _naive_utc(ledger.clock.now())

    with engine.begin() as conn:
        prior = (
            conn.execute(
                sa.select(imports_t)
                .where(
                    imports_t.c.authority_id == authority_id,
                    imports_t.c.file_sha256 == digest,
                    imports_t.c.status.in_(("running", "failed")),
                )
                .order_by(imports_t.c.import_id.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        if prior is not None and not all_or_nothing:
            import_id, resume_after = int(prior["import_id"]), int(prior["last_row"])
            conn.execute(
                imports_t.update()
                .where(imports_t.c.import_id == import_id)
                .values(status="running")
            )
        else:
            import_id = int(
                conn.execute(
                    imports_t.insert().values(
                        authority_id=authority_id,
                        file_name=path.name,
                        file_sha256=digest,
                        format=fmt,
                        status="running",
                        started_at=now,
                        last_row=0,
                        rows_stored=0,
                        rows_duplicate=0,
                        rows_rejected=0,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            )
            resume_after = 0
    report = ImportReport(import_id, str(path), fmt, resumed_after=resume_after)
    errors = _ErrorReport(
        Path(errors_path) if errors_path else path.with_name(path.name + ".errors.csv"),
        resume_after > 0,
    )
    if prior is not None and not all_or_nothing:
        report.stored = int(prior["rows_stored"])
        report.duplicates = int(prior["rows_duplicate"])
        report.rejected = int(prior["rows_rejected"])

    def reject(p: Problem) -> None:
        report.rejected += 1
        errors.write(p)
        if len(report.problems) < 20:
            report.problems.append(p)

    def take(batch: Batch) -> None:
        report.rows_read += batch.read
        report.rejected += batch.rejected
        for p in batch.problems:
            errors.write(p)
            if len(report.problems) < 20:
                report.problems.append(p)

    def flush(conn: sa.Connection, batch: Batch) -> None:
        if batch.items:
            stored, duplicates, conflicts = _append_batch(
                ledger, conn, batch, authority_id, import_id
            )
            report.stored += stored
            report.duplicates += duplicates
            for i, problem in conflicts:
                reject(problem.at_row(batch.rows[i]))
        conn.execute(
            imports_t.update()
            .where(imports_t.c.import_id == import_id)
            .values(
                last_row=batch.last_row,
                rows_stored=report.stored,
                rows_duplicate=report.duplicates,
                rows_rejected=report.rejected,
            )
        )

    def finish(status: str) -> None:
        report.status = status
        with engine.begin() as conn:
            conn.execute(
                imports_t.update()
                .where(imports_t.c.import_id == import_id)
                .values(
                    status=status,
                    finished_at=_naive_utc(ledger.clock.now()),
                    rows_stored=report.stored,
                    rows_duplicate=report.duplicates,
                    rows_rejected=report.rejected,
                )
            )

    if progress:
        progress(0, total)
    pipelined = total >= PIPELINE_MIN_BYTES and "fork" in mp.get_all_start_methods()
    source = _pipelined if pipelined else _produce
    args = (path, fmt, validator, resume_after, batch_size, _encoding(engine))
    try:
        try:
            if all_or_nothing:
                try:
                    with write_transaction(engine) as conn:
                        for batch in source(*args):
                            take(batch)
                            flush(conn, batch)
                            if progress:
                                progress(batch.position, total)
                        if report.rejected:
                            raise _Abort
                except _Abort:
                    report.stored = report.duplicates = 0
            else:
                for batch in source(*args):
                    take(batch)
                    with write_transaction(engine) as conn:
                        flush(conn, batch)
                    if progress:
                        progress(batch.position, total)
        except InputError:
            finish("rejected")
            raise
        except BaseException:
            finish("failed")
            raise
    finally:
        errors.close()
    if progress:
        progress(total, total)
    if report.rejected:
        report.errors_file = str(errors.path)
    if all_or_nothing and report.rejected:
        finish("rejected")
    else:
        finish("partial" if report.rejected else "done")
    return report


# ---------------------------------------------------------------- producing validated batches
#
# Rows are checked by the validator's fast plan (``RecordValidator.plan``) and only go through the
# full ``validate`` (which names every problem) when the plan cannot accept them. A valid row
# travels as a prepared tuple (PREPARED_FIELDS) with its content hash; for PostgreSQL it is
# already COPY text, so the writer only adds the chain columns. Parsing and validation run in
# forked processes for large files, overlapping with the writes.

PIPELINE_MIN_BYTES = 4 << 20  # files this large are validated in other processes
COPY_LINES = 1000  # rows per write to the COPY stream (the server works while we hash on)
_PLANS_MAX = 64  # NDJSON: fast plans for this many distinct key sets, then the full path only

ENTRY_COLUMNS = (
    "seq",
    "op",
    "authority_id",
    "authority_ref",
    "target_seq",
    "origin_seq",
    *PREPARED_FIELDS[1:],
    "reason",
    "recorded_at",
    "import_id",
    "content_hash",
    "prev_hash",
    "entry_hash",
)
if ENTRY_COLUMNS != COLUMNS or PREPARED_FIELDS[0] != "authority_ref":
    raise RuntimeError("update the importer's row layout to the columns of 'entries'")
_FURNISHED = (
    "op",
    "authority_id",
    PREPARED_FIELDS[0],
    "target_seq",
    *PREPARED_FIELDS[1:],
    "reason",
)
if chain.CONTENT_FIELDS != _FURNISHED:
    raise RuntimeError("update chain.furnish_content_hash to chain.CONTENT_FIELDS")
_INSERT_SQL = f"INSERT INTO entries ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_COPY_SQL = f"COPY entries ({', '.join(COLUMNS)}) FROM STDIN"

# COPY text format: the characters psycopg escapes, and how (backslash sequences)
_COPY_ESCAPES = {
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\v": "\\v",
    "\f": "\\f",
    "\r": "\\r",
}
_COPY_TABLE = str.maketrans(_COPY_ESCAPES)
_COPY_UNESCAPE = re.compile(r"\\[\\btnvfr]")
_UNESCAPES = {v: k for k, v in _COPY_ESCAPES.items()}


def copy_escape(value: Any) -> str:
    """One value in PostgreSQL's COPY text format, as psycopg writes it (``None`` is ``\\N``)."""
    if value is None:
        return "\\N"
    text = value if value.__class__ is str else str(value)
    return text.translate(_COPY_TABLE)


def copy_text(prepared: Prepared) -> str:
    """A prepared row as COPY text: its fields and the (empty) reason, tab-separated, escaped."""
    values = [v if v.__class__ is str else "\\N" if v is None else str(v) for v in prepared]
    # the common case in a few C calls: nothing to escape when the fields hold only printable
    # characters (no tab, newline or other control) and no backslash but those of the \N
    whole = "".join(values)
    if not whole.isprintable() or whole.count("\\") != prepared.count(None):
        values = [copy_escape(v) for v in prepared]
    values.append("\\N")
    return "\t".join(values)


def copy_fields(text: str) -> list[str | None]:
    """The values of a row written by :func:`copy_text` (all text, ``None`` for ``\\N``)."""
    return [
        None
        if f == "\\N"
        else _COPY_UNESCAPE.sub(lambda m: _UNESCAPES[m.group(0)], f)
        if "\\" in f
        else f
        for f in text.split("\t")
    ]


def _encoding(engine: sa.Engine) -> str:
    return "values" if is_sqlite(engine) else "copy"


@dataclass
class Batch:
    """Validated rows ready to append, and the rows refused, up to ``last_row``."""

    items: list[Any]  # each valid row: a prepared tuple ("values") or its COPY text ("copy")
    hashes: list[str]  # the content hash of each valid row
    rows: list[int]  # the row number of each valid row
    problems: list[Problem]  # refusals (with row numbers), several per row possible
    rejected: int  # rows refused in this batch
    read: int  # rows read in this batch
    last_row: int
    position: int  # bytes (CSV, NDJSON) or rows (Parquet) consumed, for progress


def _produce(
    path: Path,
    fmt: str,
    validator: RecordValidator,
    resume_after: int,
    batch_size: int,
    encoding: str = "values",
    shard: int = 0,
    shards: int = 1,
) -> Iterator[Batch]:
    """Read and validate the file in order, after ``resume_after``, one batch at a time.

    ``encoding`` is how valid rows travel: ``values`` (prepared tuples) or ``copy`` (COPY text).
    With ``shards`` > 1 this producer validates and yields only every ``shards``-th batch, starting
    with batch ``shard``; the others are read past (row numbers stay exact).
    """
    with path.open("rb") as raw:
        counting = _Counting(raw)
        rows: Iterator[Row]
        columns: list[str] | None = None
        if fmt == "csv":
            columns, rows = _read_csv(counting)
        elif fmt == "ndjson":
            rows = _read_ndjson(counting)
        else:
            columns, rows = _read_parquet(path)
        validate = validator.validate
        plan = None if columns is None else validator.plan(columns)
        plans: dict[tuple[str, ...], Plan | None] = {}
        authority_id = validator.authority.authority_id
        content_hash = chain.furnish_content_hash
        as_text = encoding == "copy"
        items: list[Any] = []
        hashes: list[str] = []
        numbers: list[int] = []
        problems: list[Problem] = []
        rejected = read = index = 0
        last = resume_after
        mine = shard == 0
        width = 0 if columns is None else len(columns)
        for row_no, row in rows:
            if row_no <= resume_after:
                continue
            if read >= batch_size:  # the batch is full: hand it over (if it is ours)
                if mine:
                    pos = counting.pos if fmt != "parquet" else last
                    yield Batch(items, hashes, numbers, problems, rejected, read, last, pos)
                items, hashes, numbers, problems, rejected, read = [], [], [], [], 0, 0
                index += 1
                mine = index % shards == shard
            read += 1
            last = row_no
            if not mine:
                continue  # read past: another process validates this batch
            if isinstance(row, Problem):
                problems.append(row.at_row(row_no))
                rejected += 1
                continue
            prepared: Prepared | None = None
            mapping: Mapping[str, Any] | None = None
            if columns is None:  # NDJSON: a mapping, whose keys may vary
                assert isinstance(row, Mapping)
                mapping = row
                keys = tuple(row)
                if keys in plans:
                    check = plans[keys]
                elif len(plans) < _PLANS_MAX:
                    check = plans[keys] = validator.plan(keys)
                else:
                    check = None
                if check is not None:
                    prepared = check(list(row.values()))
            else:
                values = _split_line(row) if isinstance(row, str) else row
                assert not isinstance(values, Mapping)
                if len(values) != width:  # (CSV)
                    problems.append(_malformed_row(len(values), width).at_row(row_no))
                    rejected += 1
                    continue
                if plan is not None:
                    prepared = plan(values)
                if prepared is None:
                    mapping = dict(zip(columns, values, strict=True))
            if prepared is None:
                assert mapping is not None
                draft, found = validate(mapping)
                if draft is None:
                    problems.extend(p.at_row(row_no) for p in found)
                    rejected += 1
                    continue
                prepared = prepare(draft)
            hashes.append(content_hash(authority_id, prepared))
            items.append(copy_text(prepared) if as_text else prepared)
            numbers.append(row_no)
        if not mine:
            return
        yield Batch(
            items,
            hashes,
            numbers,
            problems,
            rejected,
            read,
            last,
            counting.pos if fmt != "parquet" else last,
        )


# ---------------------------------------------------------------- writing batches


def _append_batch(
    ledger: Ledger, conn: sa.Connection, batch: Batch, authority_id: str, import_id: int
) -> tuple[int, int, list[tuple[int, Problem]]]:
    """Chain and insert a batch of valid rows inside a :func:`write_transaction`.

    Returns (stored, duplicates, conflicts by index in the batch). The common case (no reference
    already known) is one COPY / executemany; when the database refuses a reference as already
    used, the batch is appended through the ledger's checked path (duplicates skipped, conflicts
    reported), exactly as :meth:`Ledger.append` does.
    """
    savepoint = conn.begin_nested()
    try:
        _insert_batch(ledger, conn, batch, authority_id, import_id)
    except sa.exc.IntegrityError:
        savepoint.rollback()
        drafts = _drafts(batch, authority_id)
        result = ledger._append_checked(conn, drafts, import_id)
        return len(result.stored), len(result.duplicates), result.conflicts
    savepoint.commit()
    return len(batch.items), 0, []


def _drafts(batch: Batch, authority_id: str) -> list[dict[str, Any]]:
    """The batch's rows as the draft entries :meth:`Ledger.append` takes."""
    drafts = []
    for item, content in zip(batch.items, batch.hashes, strict=True):
        values = copy_fields(item)[: len(PREPARED_FIELDS)] if isinstance(item, str) else item
        draft = dict(zip(PREPARED_FIELDS, values, strict=True))
        draft.update(
            op="furnish",
            authority_id=authority_id,
            target_seq=None,
            origin_seq=None,
            reason=None,
            content_hash=content,
        )
        drafts.append(draft)
    return drafts


def _insert_batch(
    ledger: Ledger, conn: sa.Connection, batch: Batch, authority_id: str, import_id: int
) -> None:
    """Give each row its place in the chain and insert the batch (raises IntegrityError when a
    reference is already used). The entry hash is :func:`chain.entry_hash`, spelt out inline: a
    furnish entry is its own origin."""
    seq, prev = ledger.head(conn)
    now = _naive_utc(ledger.clock.now())
    when, imp = chain.hash_tail(now, import_id)
    sha = chain.sha256
    if is_sqlite(ledger.engine):
        rows: list[tuple[Any, ...]] = []
        append = rows.append
        stored_at = now.isoformat(" ")  # what sqlite3's datetime adapter stores, once per batch
        for item, content in zip(batch.items, batch.hashes, strict=True):
            seq += 1
            h = sha(f"{seq}|{prev}|{content}|{when}|{seq}|{imp}".encode()).hexdigest()
            append(
                (seq, "furnish", authority_id, item[0], None, seq, *item[1:], None, stored_at,
                 import_id, content, prev, h)
            )  # fmt: skip
            prev = h
        conn.exec_driver_sql(_INSERT_SQL, rows)  # type: ignore[arg-type]
        return
    head = f"\tfurnish\t{copy_escape(authority_id)}\t"
    tail = f"\t{copy_escape(now)}\t{import_id}\t"
    raw = conn.connection.driver_connection
    try:
        with raw.cursor() as cur, cur.copy(_COPY_SQL) as copy:  # type: ignore[union-attr]
            lines: list[str] = []
            line = lines.append
            for item, content in zip(batch.items, batch.hashes, strict=True):
                seq += 1
                h = sha(f"{seq}|{prev}|{content}|{when}|{seq}|{imp}".encode()).hexdigest()
                ref, body = item.split("\t", 1)
                line(f"{seq}{head}{ref}\t\\N\t{seq}\t{body}{tail}{content}\t{prev}\t{h}\n")
                prev = h
                if len(lines) >= COPY_LINES:
                    copy.write("".join(lines))
                    lines.clear()
            copy.write("".join(lines))
    except Exception as e:  # psycopg raises its own UniqueViolation: surface it as SQLAlchemy does
        import psycopg

        if isinstance(e, psycopg.errors.UniqueViolation):
            raise sa.exc.IntegrityError(_COPY_SQL, None, e) from e
        raise


# ---------------------------------------------------------------- validating in other processes


def _worker(queue: Any, args: tuple[Any, ...], parent: int) -> None:
    """Runs in a forked process: validate and hand batches over; stop if the parent is gone."""

    def put(item: Any) -> None:
        while True:
            try:
                queue.put(item, timeout=1)
                return
            except Full:
                if os.getppid() != parent:
                    os._exit(1)

    try:
        for b in _produce(*args):
            # the rows as one marshal blob: several times cheaper than pickling tuples one by one
            rows = marshal.dumps((b.items, b.hashes, b.rows), 4)
            put(("batch", rows, b.problems, b.rejected, b.read, b.last_row, b.position))
        put(None)
    except InputError as e:
        put(("input-error", type(e).__name__, e.problems))
    except BaseException as e:  # report anything else to the parent, then stop
        put(("error", type(e).__name__, str(e)))


def _pipelined(
    path: Path,
    fmt: str,
    validator: RecordValidator,
    resume_after: int,
    batch_size: int,
    encoding: str = "values",
) -> Iterator[Batch]:
    """Like :func:`_produce`, but parsing and validation run in forked processes, overlapping
    with the writes. Each worker validates every other batch; batches are taken in file order."""
    ctx = mp.get_context("fork")
    shards = VALIDATORS
    queues = [ctx.Queue(maxsize=3) for _ in range(shards)]  # bounded: memory stays constant
    procs = [
        ctx.Process(
            target=_worker,
            args=(
                q,
                (path, fmt, validator, resume_after, batch_size, encoding, k, shards),
                os.getpid(),
            ),
            daemon=True,
        )
        for k, q in enumerate(queues)
    ]
    for proc in procs:
        proc.start()
    try:
        turn = 0
        while True:
            queue, proc = queues[turn % shards], procs[turn % shards]
            try:
                item = queue.get(timeout=1)
            except Empty:
                if not proc.is_alive():
                    raise RuntimeError("a validating process died unexpectedly") from None
                continue
            if item is None:
                return  # the batch whose turn it is does not exist: the file is done
            if item[0] == "batch":
                items, hashes, rows = marshal.loads(item[1])
                yield Batch(items, hashes, rows, *item[2:])
                turn += 1
                continue
            if item[0] == "input-error":
                cls = FileError if item[1] == "FileError" else InputError
                raise cls(item[2])
            raise RuntimeError(f"validating process failed: {item[1]}: {item[2]}")
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
            proc.join(5)


# two validating processes keep one core's worth of writes fed on a two-core machine
VALIDATORS = 2
