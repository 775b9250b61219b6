"""Evaluation benchmark: the compiled batch plan against a hand-written DuckDB query.

Generates a synthetic population as a Parquet snapshot (the shape ``socialcredit export``
writes), then, each in its own process so peak memory is its own:

1. the batch plan (``socialcredit.engine.batch``) compiled from ``benchmarks/bench-rulebook``
   and run on DuckDB over the snapshot;
2. a hand-written DuckDB SQL query computing the same list memberships (since, until) and the
   same scores and grades.

Both results are written to Parquet and compared row for row: the run fails if they disagree.
Prints both times, the ratio (goal: plan <= 1.5x the hand-written query) and each side's peak
memory (goal: <= 4 GB). Both clocks start once the modules are loaded and stop once the results
are written. The hand-written query's DuckDB may use 3 GB; the plan's 2.5 GB, as the plan's
process also holds its results in Arrow. Both spill to the system's temporary directory.

    uv run python benchmarks/evaluate.py --size quick   # 1M subjects, 10M records
    uv run python benchmarks/evaluate.py --size full    # 10M subjects, 100M records
    uv run python benchmarks/evaluate.py --size quick --repeat 3   # medians of 3 runs each
    uv run python benchmarks/evaluate.py --snapshot /tmp/sc-eval-.../snapshot.parquet  # --keep's
    uv run --extra spark python benchmarks/evaluate.py --size tiny --engine spark

``--engine spark`` runs the batch plan on Spark (a local session, ``SC_SPARK_MASTER`` to change)
instead of DuckDB; the hand-written query stays on DuckDB. Spark's time includes starting its
JVM, and its peak memory that of the JVM too (a child process, ended before measuring).
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RULEBOOK = HERE / "bench-rulebook"
SIZES = {
    "tiny": (20_000, 200_000),
    "quick": (1_000_000, 10_000_000),
    "full": (10_000_000, 100_000_000),
}
AS_OF = dt.date(2025, 6, 30)
DUCKDB_MEMORY = "3GB"  # the hand-written query's DuckDB (it writes its results from DuckDB)
# The plan's DuckDB gets less: its process also holds the results as Arrow tables (about 0.7 GB
# at the full size) and Ibis, so 2.5 GB keeps the whole process within the 4 GB goal.
PLAN_DUCKDB_MEMORY = "2500MB"

KINDS = (  # (kind, share in percent)
    ("utility.late-payment", 40),
    ("admin.penalty", 25),
    ("tax.credit-rating", 12),
    ("civil.volunteering", 10),
    ("court.judgment-defaulter", 5),
    ("court.obligation-performed", 3),
    ("commerce.contract-breach", 5),
)


def generate(path: Path, subjects: int, records: int, threads: int = 2) -> None:
    """A synthetic snapshot in the export schema, written straight from DuckDB."""
    import duckdb

    cases = []
    acc = 0
    for kind, share in KINDS:
        acc += share
        cases.append(f"WHEN k < {acc} THEN '{kind}'")
    kind_expr = "CASE " + " ".join(cases) + " END"
    con = duckdb.connect()
    con.execute(
        f"SET threads={threads}; SET memory_limit='{DUCKDB_MEMORY}'; SET preserve_insertion_order=false"
    )
    con.execute(f"""
        COPY (
          WITH base AS (
            SELECT i,
                   (hash(i * 2654435761) % {subjects}) AS s,
                   (hash(i * 40503) % 100)::INTEGER AS k,
                   (hash(i * 97) % 2922)::INTEGER AS day,
                   (hash(i * 131) % 100)::INTEGER AS r
            FROM range({records}) t(i)
          ), typed AS (
            SELECT *, {kind_expr} AS kind FROM base
          )
          SELECT i + 1 AS record_id, i + 1 AS origin_id,
                 'generic:S' || s AS subject,
                 CASE WHEN s % 4 = 0 THEN 'enterprise' ELSE 'person' END AS subject_kind,
                 NULL::VARCHAR AS subject_name,
                 kind,
                 'bench' AS authority_id, 'R' || i AS authority_ref, 'D' || i AS decision_no,
                 (DATE '2018-01-01' + day)::DATE AS decision_date,
                 CASE WHEN kind IN ('admin.penalty') THEN (['minor', 'general', 'serious'])[1 + r % 3]
                      WHEN kind IN ('utility.late-payment') THEN (['minor', 'general'])[1 + r % 2]
                      WHEN kind IN ('court.judgment-defaulter', 'commerce.contract-breach') THEN 'serious'
                      ELSE NULL END AS severity,
                 CASE WHEN kind IN ('admin.penalty', 'utility.late-payment') AND r < 90
                      THEN ((hash(i * 7) % 5000000))::BIGINT ELSE NULL END AS amount_minor,
                 'benchmark' AS legal_basis,
                 NULL::VARCHAR AS attributes,
                 TIMESTAMP '2026-01-01 00:00:00' AS recorded_at,
                 CASE WHEN r < 98 THEN 'active' ELSE 'retracted' END AS state,
                 false AS disputed, false AS suspended, r < 98 AS in_force, 1::INTEGER AS versions
          FROM typed
        ) TO '{path}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)
    """)
    con.close()


HAND_SQL = """
WITH r AS (
  SELECT subject, record_id, kind, decision_date AS d, severity, amount_minor
  FROM read_parquet('{src}') WHERE in_force AND decision_date <= DATE '{t}'
),
people AS (SELECT DISTINCT subject, subject_kind FROM read_parquet('{src}')),
def AS (
  SELECT subject, record_id, d AS start, CAST(d + INTERVAL 2 YEAR AS DATE) AS stop
  FROM r WHERE kind = 'court.judgment-defaulter' AND d + INTERVAL 2 YEAR > DATE '{t}'
),
perf AS (SELECT subject, max(d) AS last_perf FROM r WHERE kind = 'court.obligation-performed' GROUP BY subject),
def_active AS (
  SELECT def.* FROM def LEFT JOIN perf USING (subject)
  WHERE perf.last_perf IS NULL OR perf.last_perf < def.start
),
w AS (
  SELECT subject, record_id, d, CASE severity WHEN 'serious' THEN 3 ELSE 1 END AS wt
  FROM r WHERE kind = 'admin.penalty' AND severity IN ('general', 'serious')
    AND d + INTERVAL 2 YEAR > DATE '{t}'
),
trig AS (
  SELECT a.subject, a.d, list(b.record_id) AS members
  FROM w a JOIN w b ON a.subject = b.subject AND b.d <= a.d AND b.d + INTERVAL 1 YEAR > a.d
  WHERE a.d + INTERVAL 1 YEAR > DATE '{t}'
  GROUP BY a.subject, a.record_id, a.d HAVING sum(b.wt) >= 3
),
memberships AS (
  SELECT subject, 'defaulters' AS list, min(start) AS since, max(stop) AS until,
         list_sort(list(record_id)) AS basis
  FROM def_active GROUP BY subject
  UNION ALL
  SELECT subject, 'repeat-offenders', min(d), CAST(max(d + INTERVAL 1 YEAR) AS DATE),
         list_sort(list_distinct(flatten(list(members))))
  FROM trig GROUP BY subject
),
counted AS (
  SELECT subject, d,
         CASE WHEN kind = 'court.judgment-defaulter' THEN 'defaulter'
              WHEN kind = 'admin.penalty' THEN 'penalty'
              WHEN kind = 'utility.late-payment' THEN 'utility'
              WHEN kind = 'civil.volunteering' THEN 'volunteer' END AS rule,
         CASE WHEN kind = 'court.judgment-defaulter' THEN -50
              WHEN kind = 'admin.penalty' THEN CASE WHEN amount_minor >= 1000000 THEN -30
                                                    WHEN amount_minor >= 0 THEN -10 END
              WHEN kind = 'utility.late-payment' THEN -10
              WHEN kind = 'civil.volunteering' THEN 5 END AS pts
  FROM r
  WHERE kind IN ('court.judgment-defaulter', 'admin.penalty', 'utility.late-payment', 'civil.volunteering')
    AND d + INTERVAL 2 YEAR > DATE '{t}'
),
per_rule AS (
  SELECT subject, rule, year(d) AS y, sum(pts) AS total FROM counted WHERE pts IS NOT NULL
  GROUP BY subject, rule, y
),
sums AS (
  SELECT subject, sum(CASE WHEN rule = 'volunteer' THEN least(total, 20) ELSE total END) AS delta
  FROM per_rule GROUP BY subject
),
limited AS (
  SELECT DISTINCT subject FROM r
  WHERE kind = 'court.judgment-defaulter' AND d + INTERVAL 1 YEAR > DATE '{t}'
),
scores AS (
  SELECT p.subject, 'score' AS scheme, 1000 + coalesce(s.delta, 0) AS points,
         CASE WHEN l.subject IS NOT NULL THEN 'D'
              WHEN 1000 + coalesce(s.delta, 0) >= 990 THEN 'A'
              WHEN 1000 + coalesce(s.delta, 0) >= 950 THEN 'B'
              WHEN 1000 + coalesce(s.delta, 0) >= 900 THEN 'C' ELSE 'D' END AS grade
  FROM people p LEFT JOIN sums s USING (subject) LEFT JOIN limited l USING (subject)
  WHERE p.subject_kind IN ('person', 'enterprise')
)
SELECT * FROM {which}
"""


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_hand(src: str, out: str, q: Any) -> None:
    import duckdb

    con = duckdb.connect()
    spill = Path(tempfile.gettempdir()) / "socialcredit-duckdb"
    # DuckDB's default threads (every core), as on the plan's connection
    con.execute(f"SET memory_limit='{DUCKDB_MEMORY}'; SET temp_directory='{spill}'")
    t = time.perf_counter()
    for which in ("memberships", "scores"):
        sql = HAND_SQL.format(src=src, t=AS_OF.isoformat(), which=which)
        con.execute(f"COPY ({sql}) TO '{out}/{which}.parquet' (FORMAT parquet)")
    q.put((time.perf_counter() - t, _rss_mb()))


def run_plan(src: str, out: str, engine: str, q: Any) -> None:
    import pyarrow.parquet as pq

    from socialcredit.engine.batch import evaluate_population
    from socialcredit.rulebooks import load

    rb = load(RULEBOOK)
    os.environ["SC_DUCKDB_MEMORY_LIMIT"] = PLAN_DUCKDB_MEMORY
    # Modules are loaded before the clock starts, as run_hand imports duckdb first: Ibis's
    # backend, and pandas, which pyarrow.compute loads on its first call (seconds where Python
    # writes no bytecode cache).
    import pandas  # noqa: F401

    if engine == "duckdb":
        import ibis

        ibis.duckdb  # noqa: B018
    t = time.perf_counter()
    result = evaluate_population(rb, engine=engine, source=src, as_of=AS_OF)
    # the results are written inside the clock, as the hand-written query's COPY writes them
    pq.write_table(result.memberships, f"{out}/memberships.parquet")
    pq.write_table(result.schemes, f"{out}/scores.parquet")
    elapsed = time.perf_counter() - t
    rss = _rss_mb()
    if engine == "spark":
        from socialcredit.engine.batch_spark import stop

        stop()  # ends (and waits for) the JVM, so its peak counts among the children
        rss = max(rss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    q.put((elapsed, rss))


def measure(fn: Any, *args: Any) -> tuple[float, float]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=fn, args=(*args, q))
    p.start()
    p.join()
    if p.exitcode != 0:
        raise SystemExit(f"{fn.__name__} failed with exit code {p.exitcode}")
    return q.get()  # type: ignore[no-any-return]


def compare(hand: Path, plan: Path) -> list[str]:
    """Differences between the two results (empty when they agree)."""
    import duckdb

    con = duckdb.connect()
    problems = []
    checks = {
        "memberships": "subject, list, since, until, basis",
        "scores": "subject, scheme, CAST(points AS DOUBLE) AS points, grade",
    }
    for name, cols in checks.items():
        a = f"SELECT {cols} FROM read_parquet('{hand}/{name}.parquet')"
        b = f"SELECT {cols} FROM read_parquet('{plan}/{name}.parquet')"
        only_a = con.execute(f"SELECT count(*) FROM ({a} EXCEPT ALL {b})").fetchone()[0]  # type: ignore[index]
        only_b = con.execute(f"SELECT count(*) FROM ({b} EXCEPT ALL {a})").fetchone()[0]  # type: ignore[index]
        n = con.execute(f"SELECT count(*) FROM ({a})").fetchone()[0]  # type: ignore[index]
        print(f"  {name}: {n:,} rows; only in hand-written {only_a}, only in plan {only_b}")
        if only_a or only_b:
            problems.append(name)
    return problems


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", choices=sorted(SIZES), default="quick")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument(
        "--engine",
        choices=["duckdb", "spark"],
        default="duckdb",
        help="where the batch plan runs (spark: the optional extra, a local session)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run both sides this many times, alternately, and report each side's median "
        "(on a shared machine single runs vary by a factor of two)",
    )
    ap.add_argument(
        "--snapshot",
        type=Path,
        help="evaluate this snapshot (written by an earlier --keep run) instead of generating one",
    )
    args = ap.parse_args()
    subjects, records = SIZES[args.size]
    work = Path(tempfile.mkdtemp(prefix="sc-eval-"))
    src = work / "snapshot.parquet"
    if args.snapshot is not None:
        src = args.snapshot.resolve()
        print(f"snapshot {src} ({src.stat().st_size / 1e6:,.0f} MB Parquet)")
    else:
        t = time.perf_counter()
        generate(src, subjects, records)
        print(
            f"generated {records:,} records over {subjects:,} subjects in "
            f"{time.perf_counter() - t:.1f} s ({src.stat().st_size / 1e6:,.0f} MB Parquet)"
        )
    (work / "hand").mkdir()
    (work / "plan").mkdir()
    hands, plans = [], []
    for i in range(max(1, args.repeat)):
        hands.append(measure(run_hand, str(src), str(work / "hand")))
        plans.append(measure(run_plan, str(src), str(work / "plan"), args.engine))
        if args.repeat > 1:
            print(f"  run {i + 1}: hand-written {hands[-1][0]:.1f} s, plan {plans[-1][0]:.1f} s")
    hand_t = statistics.median(t for t, _ in hands)
    plan_t = statistics.median(t for t, _ in plans)
    hand_mb = max(mb for _, mb in hands)
    plan_mb = max(mb for _, mb in plans)
    ratio = plan_t / hand_t
    if args.repeat > 1:
        print(f"medians of {args.repeat} runs each; peaks are the largest")
    print(f"hand-written DuckDB SQL: {hand_t:.1f} s, peak {hand_mb:,.0f} MB")
    if args.engine == "spark":
        print(
            f"batch plan (Ibis on Spark, JVM start included): {plan_t:.1f} s, peak {plan_mb:,.0f} MB"
        )
        print(
            f"ratio plan on Spark / hand-written DuckDB: {ratio:.2f} "
            "(Spark is for scale-out; the 1.5x and 4 GB goals are DuckDB's)"
        )
    else:
        print(f"batch plan (Ibis on DuckDB): {plan_t:.1f} s, peak {plan_mb:,.0f} MB")
        print(
            f"ratio plan / hand-written: {ratio:.2f} ({'meets' if ratio <= 1.5 else 'ABOVE'} goal 1.5); "
            f"peak memory {'meets' if plan_mb <= 4096 else 'ABOVE'} goal 4 GB"
        )
    bad = compare(work / "hand", work / "plan")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    if bad:
        print(f"DISAGREE on {', '.join(bad)}")
        sys.exit(1)
    print("results agree")


if __name__ == "__main__":
    main()
