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
import json
import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Full
from typing import Any, BinaryIO

import sqlalchemy as sa

from socialcredit.errors import InputError, Problem
from socialcredit.ledger import chain
from socialcredit.ledger.db import write_transaction
from socialcredit.ledger.schema import imports as imports_t
from socialcredit.ledger.store import Ledger, _naive_utc
from socialcredit.ledger.validate import ATTR_PREFIX, RECORD_FIELDS, RecordValidator

FORMATS = ("csv", "ndjson", "parquet")
ERROR_COLUMNS = ("row", "field", "rule", "value", "message")
Row = tuple[int, Mapping[str, Any] | Problem]


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


def _read_csv(f: _Counting) -> Iterator[Row]:
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
    width = len(header)
    line = reader.line_num
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as e:
            yield line + 1, Problem("row", "malformed-csv", None, f"cannot be read as CSV: {e}")
            line = reader.line_num
            continue
        row_no, line = line + 1, reader.line_num
        if not values:
            continue
        if len(values) != width:
            yield (
                row_no,
                Problem(
                    "row",
                    "malformed-row",
                    len(values),
                    f"has {len(values)} values but the header has {width} columns",
                ),
            )
            continue
        yield row_no, dict(zip(header, values, strict=True))


def _read_ndjson(f: _Counting) -> Iterator[Row]:
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


def _read_parquet(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:
        raise FileError(
            [Problem("file", "malformed-parquet", path.name, f"cannot be read as Parquet: {e}")]
        ) from e
    _check_columns(pf.schema_arrow.names, "Parquet")
    n = 0
    for batch in pf.iter_batches(batch_size=8192):
        for row in batch.to_pylist():
            n += 1
            yield n, row


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

    def flush(
        conn: sa.Connection, batch: list[dict[str, Any]], rows: list[int], last_row: int
    ) -> None:
        if batch:
            result = ledger.append(conn, batch, import_id=import_id)
            report.stored += len(result.stored)
            report.duplicates += len(result.duplicates)
            for i, problem in result.conflicts:
                reject(problem.at_row(rows[i]))
        conn.execute(
            imports_t.update()
            .where(imports_t.c.import_id == import_id)
            .values(
                last_row=last_row,
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
    try:
        try:
            if all_or_nothing:
                try:
                    with write_transaction(engine) as conn:
                        for batch in source(path, fmt, validator, resume_after, batch_size):
                            take(batch)
                            flush(conn, batch.drafts, batch.rows, batch.last_row)
                            if progress:
                                progress(batch.position, total)
                        if report.rejected:
                            raise _Abort
                except _Abort:
                    report.stored = report.duplicates = 0
            else:
                for batch in source(path, fmt, validator, resume_after, batch_size):
                    take(batch)
                    with write_transaction(engine) as conn:
                        flush(conn, batch.drafts, batch.rows, batch.last_row)
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

PIPELINE_MIN_BYTES = 4 << 20  # files this large are validated in a second process


@dataclass
class Batch:
    """Validated rows ready to append, and the rows refused, up to ``last_row``."""

    drafts: list[dict[str, Any]]
    rows: list[int]  # the row number of each draft
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
    shard: int = 0,
    shards: int = 1,
) -> Iterator[Batch]:
    """Read and validate the file in order, after ``resume_after``, one batch at a time.

    With ``shards`` > 1 this producer validates and yields only every ``shards``-th batch, starting
    with batch ``shard``; the others are read past (row numbers stay exact).
    """
    with path.open("rb") as raw:
        counting = _Counting(raw)
        rows: Iterator[Row]
        if fmt == "csv":
            rows = _read_csv(counting)
        elif fmt == "ndjson":
            rows = _read_ndjson(counting)
        else:
            rows = _read_parquet(path)
        validate = validator.validate
        drafts: list[dict[str, Any]] = []
        numbers: list[int] = []
        problems: list[Problem] = []
        rejected = read = index = 0
        last = resume_after
        mine = shard == 0
        for row_no, row in rows:
            if row_no <= resume_after:
                continue
            read += 1
            last = row_no
            if not mine:
                pass
            elif isinstance(row, Problem):
                problems.append(row.at_row(row_no))
                rejected += 1
            else:
                draft, found = validate(row)
                if draft is None:
                    problems.extend(p.at_row(row_no) for p in found)
                    rejected += 1
                else:
                    draft["content_hash"] = chain.content_hash(draft)
                    drafts.append(draft)
                    numbers.append(row_no)
            if read >= batch_size:
                if mine:
                    pos = counting.pos if fmt != "parquet" else last
                    yield Batch(drafts, numbers, problems, rejected, read, last, pos)
                drafts, numbers, problems, rejected, read = [], [], [], 0, 0
                index += 1
                mine = index % shards == shard
        if not mine:
            return
        yield Batch(
            drafts,
            numbers,
            problems,
            rejected,
            read,
            last,
            counting.pos if fmt != "parquet" else last,
        )


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
        for batch in _produce(*args):
            put(batch)
        put(None)
    except InputError as e:
        put(("input-error", type(e).__name__, e.problems))
    except BaseException as e:  # report anything else to the parent, then stop
        put(("error", type(e).__name__, str(e)))


def _pipelined(
    path: Path, fmt: str, validator: RecordValidator, resume_after: int, batch_size: int
) -> Iterator[Batch]:
    """Like :func:`_produce`, but parsing and validation run in forked processes, overlapping
    with the writes. Each worker validates every other batch; batches are taken in file order."""
    ctx = mp.get_context("fork")
    shards = VALIDATORS
    queues = [ctx.Queue(maxsize=3) for _ in range(shards)]  # bounded: memory stays constant
    procs = [
        ctx.Process(
            target=_worker,
            args=(q, (path, fmt, validator, resume_after, batch_size, k, shards), os.getpid()),
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
            if isinstance(item, tuple):
                if item[0] == "input-error":
                    cls = FileError if item[1] == "FileError" else InputError
                    raise cls(item[2])
                raise RuntimeError(f"validating process failed: {item[1]}: {item[2]}")
            yield item
            turn += 1
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
            proc.join(5)


# two validating processes keep one core's worth of writes fed on a two-core machine
VALIDATORS = 2
