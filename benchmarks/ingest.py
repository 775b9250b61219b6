"""Ingest benchmark: socialcredit's import against raw inserts into an equivalent table.

Generates N synthetic records (valid identifiers) as a CSV file, then in the same run:

1. SQLite: ``socialcredit`` import of the CSV file (parsing, validation, idempotency, hash chain,
   checkpoints) into a fresh ledger, against raw ``sqlite3`` ``executemany`` of exactly the rows the
   ledger stored into an equivalent table (same columns, same indexes, same pragmas, same batch size,
   one transaction per batch; only the inserts are timed). Goal: ratio >= 0.6.
   For reference it also times raw ``executemany`` of the CSV's own columns (reading included).
2. PostgreSQL (a private server started here, if installed): the import against raw ``COPY`` of
   the same stored rows into an equivalent indexed table (rows handed to psycopg's ``write_row``,
   as a client would). Goal: ratio >= 0.5. For reference it also times raw ``COPY`` of the CSV's
   own columns, and of the stored rows already encoded as COPY text (the encoding untimed: what
   the server alone takes, a floor no client can beat).

Run: ``uv run python benchmarks/ingest.py --rows 1000000`` (``--rows 100000`` for a quick look).
"""

from __future__ import annotations

import argparse
import csv
import random
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa

from socialcredit import ids
from socialcredit.clock import FixedClock
from socialcredit.ledger import Ledger
from socialcredit.ledger.importer import import_file
from socialcredit.ledger.schema import entries

HEADER = [
    "ref",
    "subject",
    "subject_name",
    "kind",
    "decision_no",
    "decision_date",
    "severity",
    "amount",
    "attr.utility",
    "attr.court_finding",
]
BATCH = 5000
RAW_COLUMNS = ", ".join(f'"{h}"' for h in HEADER)


def make_csv(path: Path, rows: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    subjects = [f"cn-rid:{ids.random_rid(rng)}" for _ in range(max(1, rows // 5))]
    utilities = ["water", "gas", "electricity", "heating", "telecom"]
    severities = ["minor", "general"]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for i in range(rows):
            w.writerow(
                [
                    f"U{i:09d}",
                    rng.choice(subjects),
                    "",
                    "utility.late-payment",
                    f"ARR-{i}",
                    f"20{rng.randint(18, 25)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    rng.choice(severities),
                    f"{rng.randint(1, 500000) / 100:.2f}",
                    rng.choice(utilities),
                    "false",
                ]
            )


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def ours(db: str, csv_path: Path) -> tuple[float, int, float]:
    """(seconds, records stored, CPU seconds of this process and its validating processes)."""
    with Ledger.open(db, clock=FixedClock("2026-01-01")) as ledger:
        ledger.register_authority(
            "bench-utility", "Benchmark Waterworks", "utility", ["utility.late-payment"]
        )
        cpu = time.process_time() + children_cpu()
        t = time.perf_counter()
        report = import_file(ledger, csv_path, "bench-utility", batch_size=BATCH)
        dt_ = time.perf_counter() - t
        cpu = time.process_time() + children_cpu() - cpu
        assert report.rejected == 0, report.problems[:3]
        return dt_, report.stored, cpu


def raw_sqlite(path: Path, csv_path: Path) -> tuple[float, int]:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute(f"CREATE TABLE raw (seq INTEGER PRIMARY KEY, {RAW_COLUMNS}, authority TEXT)")
    con.execute('CREATE UNIQUE INDEX raw_ref ON raw (authority, "ref")')
    con.execute('CREATE INDEX raw_subject ON raw ("subject")')
    sql = (
        f"INSERT INTO raw ({RAW_COLUMNS}, authority) VALUES ({', '.join('?' * (len(HEADER) + 1))})"
    )
    n = 0
    t = time.perf_counter()
    with csv_path.open(newline="") as f:
        reader = csv.reader(f)
        next(reader)
        batch = []
        for row in reader:
            row.append("bench-utility")
            batch.append(row)
            if len(batch) >= BATCH:
                con.execute("BEGIN")
                con.executemany(sql, batch)
                con.execute("COMMIT")
                n += len(batch)
                batch = []
        if batch:
            con.execute("BEGIN")
            con.executemany(sql, batch)
            con.execute("COMMIT")
            n += len(batch)
    dt_ = time.perf_counter() - t
    con.close()
    return dt_, n


def stored_batches(ledger_db: str) -> Iterator[list[tuple[Any, ...]]]:
    """The rows the ledger stored, in insert-sized batches (read outside the timed part)."""
    with Ledger.open(ledger_db) as ledger, ledger.engine.connect() as conn:
        last = 0
        while True:
            rows = conn.execute(
                sa.select(entries).where(entries.c.seq > last).order_by(entries.c.seq).limit(BATCH)
            ).all()
            if not rows:
                return
            last = rows[-1][0]
            yield [tuple(r) for r in rows]


def equivalent_table(metadata_url: str) -> None:
    engine = sa.create_engine(metadata_url)
    raw = sa.MetaData()
    t = entries.to_metadata(raw, name="raw_entries")
    for c in t.constraints:
        c.name = None if c.name is None else "raw_" + str(c.name)
    for i in t.indexes:
        i.name = "raw_" + str(i.name)
    raw.create_all(engine)
    engine.dispose()


def raw_sqlite_stored(path: Path, ledger_db: str) -> tuple[float, int, float]:
    equivalent_table(f"sqlite:///{path}")
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    sql = f"INSERT INTO raw_entries VALUES ({', '.join('?' * len(entries.columns))})"
    n, spent, cpu = 0, 0.0, 0.0
    for batch in stored_batches(ledger_db):
        c, t = time.process_time(), time.perf_counter()
        con.execute("BEGIN")
        con.executemany(sql, batch)
        con.execute("COMMIT")
        spent += time.perf_counter() - t
        cpu += time.process_time() - c
        n += len(batch)
    con.close()
    return spent, n, cpu


def raw_copy_stored(url: str, ledger_url: str) -> tuple[float, int, float]:
    import psycopg

    equivalent_table(url)
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    n, spent, cpu = 0, 0.0, 0.0
    with psycopg.connect(conninfo) as con:
        for batch in stored_batches(ledger_url):
            c, t = time.process_time(), time.perf_counter()
            with con.cursor() as cur, cur.copy("COPY raw_entries FROM STDIN") as cp:
                for row in batch:
                    cp.write_row(row)
            con.commit()
            spent += time.perf_counter() - t
            cpu += time.process_time() - c
            n += len(batch)
    return spent, n, cpu


def raw_copy_encoded_stored(url: str, ledger_url: str) -> tuple[float, int]:
    """Raw COPY of the stored rows already encoded as COPY text (encoding not timed): what the
    server alone takes, the floor for any client."""
    import psycopg
    from psycopg._copy_base import TextFormatter
    from psycopg.adapt import Transformer

    equivalent_table(url)
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    n, spent = 0, 0.0
    with psycopg.connect(conninfo) as con:
        for batch in stored_batches(ledger_url):
            formatter = TextFormatter(Transformer())
            data = b"".join(bytes(formatter.write_row(row)) for row in batch)
            data += bytes(formatter.end())
            t = time.perf_counter()
            with con.cursor() as cur, cur.copy("COPY raw_entries FROM STDIN") as cp:
                cp.write(data)
            con.commit()
            spent += time.perf_counter() - t
            n += len(batch)
    return spent, n


def raw_copy(url: str, csv_path: Path) -> tuple[float, int]:
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as con:
        cols = ", ".join(f'"{h}" text' for h in HEADER)
        con.execute(f"CREATE TABLE raw (seq bigserial PRIMARY KEY, {cols}, authority text)")
        con.execute('CREATE UNIQUE INDEX raw_ref ON raw (authority, "ref")')
        con.execute('CREATE INDEX raw_subject ON raw ("subject")')
        con.commit()
        n = 0
        t = time.perf_counter()
        with csv_path.open(newline="") as f:
            reader = csv.reader(f)
            next(reader)
            done = False
            while not done:
                with (
                    con.cursor() as cur,
                    cur.copy(f"COPY raw ({RAW_COLUMNS}, authority) FROM STDIN") as cp,
                ):
                    k = 0
                    for row in reader:
                        row.append("bench-utility")
                        cp.write_row(row)
                        k += 1
                        if k >= BATCH:
                            break
                    else:
                        done = True
                con.commit()
                n += k
        return time.perf_counter() - t, n


def report(
    label: str,
    ours_t: float,
    base_t: float,
    n: int,
    base_label: str,
    goal: float | None,
    extra: int = 0,
) -> None:
    """Rates per furnished record; ``extra`` rows (authority entries) ride along in the baseline."""
    a, b = n / ours_t, n / base_t
    ratio = a / b
    verdict = "" if goal is None else (" meets" if ratio >= goal else " BELOW") + f" goal {goal}"
    print(
        f"{label}: socialcredit {a:,.0f} records/s ({ours_t:.1f} s) | {base_label} {b:,.0f} rows/s "
        f"({base_t:.1f} s{f', +{extra} other rows' if extra else ''}) | ratio {ratio:.2f}{verdict}"
    )


def compare(
    label: str,
    goal: float,
    base_label: str,
    repeat: int,
    run_ours: Callable[[int], tuple[float, int, float]],
    run_base: Callable[[int], tuple[float, int, float]],
) -> tuple[float, int]:
    """Alternate the import and its baseline ``repeat`` times; report each pair, then the best
    time of each side (the run least disturbed by whatever else the machine was doing)."""
    best_ours = best_base = float("inf")
    for i in range(repeat):
        ours_t, stored, ours_cpu = run_ours(i)
        base_t, n, base_cpu = run_base(i)
        if repeat > 1:
            report(f"{label} run {i + 1}", ours_t, base_t, stored, base_label, None, n - stored)
        print(
            f"  CPU per record: socialcredit {ours_cpu / stored * 1e6:.1f} µs (this process and "
            f"its validators) | baseline {base_cpu / n * 1e6:.1f} µs (client side only)"
        )
        best_ours, best_base = min(best_ours, ours_t), min(best_base, base_t)
    report(label, best_ours, best_base, stored, base_label, goal, n - stored)
    return best_ours, stored


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--skip-postgres", action="store_true")
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run the import and its baseline this many times, alternately, and compare the "
        "best time of each (on a shared machine)",
    )
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sc-bench-"))
    csv_path = work / "records.csv"
    t = time.perf_counter()
    make_csv(csv_path, args.rows)
    print(
        f"generated {args.rows:,} records ({csv_path.stat().st_size / 1e6:.0f} MB) in "
        f"{time.perf_counter() - t:.1f} s"
    )

    def sqlite_ours(i: int) -> tuple[float, int, float]:
        for old in work.glob("*.db*"):  # one ledger and one raw table at a time on disk
            old.unlink()
        result = ours(str(work / "ledger.db"), csv_path)
        assert result[1] == args.rows
        return result

    def sqlite_base(i: int) -> tuple[float, int, float]:
        return raw_sqlite_stored(work / "raw.db", str(work / "ledger.db"))

    ours_t, stored = compare(
        "SQLite", 0.6, "raw executemany of the stored rows", args.repeat, sqlite_ours, sqlite_base
    )
    csv_t, n = raw_sqlite(work / "raw-csv.db", csv_path)
    report("SQLite (reference)", ours_t, csv_t, n, "raw executemany of the CSV columns", None)
    print(f"peak RSS so far: {rss_mb():.0f} MB")
    if args.skip_postgres:
        return
    from pgserver import PgServer, find_bin

    bindir = find_bin()
    if bindir is None:
        print("PostgreSQL not installed: skipped (make bench installs it)")
        return
    server = PgServer(bindir).start()
    try:
        urls: dict[str, str] = {}

        def pg_ours(i: int) -> tuple[float, int, float]:
            urls["ledger"] = server.create_database(f"ledger{i}")
            return ours(urls["ledger"], csv_path)

        def pg_base(i: int) -> tuple[float, int, float]:
            return raw_copy_stored(server.create_database(f"raw{i}"), urls["ledger"])

        ours_t, stored = compare(
            "PostgreSQL", 0.5, "raw COPY of the stored rows", args.repeat, pg_ours, pg_base
        )
        ledger_url = urls["ledger"]
        csv_t, n = raw_copy(server.create_database("rawcsv"), csv_path)
        report("PostgreSQL (reference)", ours_t, csv_t, n, "raw COPY of the CSV columns", None)
        enc_t, n = raw_copy_encoded_stored(server.create_database("rawenc"), ledger_url)
        report(
            "PostgreSQL (reference)",
            ours_t,
            enc_t,
            stored,
            "raw COPY of the stored rows pre-encoded",
            None,
            n - stored,
        )
    finally:
        server.stop()
    print(f"peak RSS: {rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
