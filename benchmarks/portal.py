"""Portal search benchmark: ``GET /search?q=`` over 1,000,000 subjects, against hello world.

Builds a SQLite registry (the ledger's migrations, cn-national active) whose portal search index
(``socialcredit.publish.search``: the ``portal_search`` table with its name index and the FTS5
trigram table) holds N subjects (default 1,000,000): 70% organisations with valid unified social
credit codes and generated company names, 30% persons with valid identity numbers, of whom 2% have
a public entry (``public_until`` in the future; the rest must never be found). The index is filled
by a bulk path (``executemany`` + one ``INSERT ... SELECT`` into FTS5), not through the ledger:
the benchmark population has no ledger records, and the index's watermarks are set to the ledger's
head so the server's per-request ``sync`` finds nothing to do (its cost is still paid: it runs on
every search).

Then it starts ``socialcredit``'s API with uvicorn on 127.0.0.1 in a subprocess (with the
``/bench/hello`` baseline switched on) and measures, over keep-alive HTTP/1.1 connections, for
``--duration`` seconds each (``--workers`` uvicorn processes, default 2; ``--db`` keeps the registry
and reuses it on the next run):

* ``hello``: ``GET /bench/hello`` (the floor: the framework and the loopback);
* ``search``: the HTML search page for a mix of queries — exact codes (25%), name prefixes of one
  or two words (35%), substrings of 3+ characters from inside names (30%) and misses (10%).

and then the same two with one connection (one visitor at a time). It prints requests/s, p50, p95
and p99 for each, and checks the goal: search p95 <= 100 ms under the concurrent load.

Run: ``uv run python benchmarks/portal.py`` (``--subjects 100000 --duration 5`` for a quick look).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from checks import Conn, free_port, start_server, wait_ready
from socialcredit import ids
from socialcredit.ledger import Ledger
from socialcredit.ledger.schema import entries
from socialcredit.publish import search as S
from socialcredit.status.schema import status_changes
from socialcredit.status.service import StatusService

CITIES = [
    "Beijing", "Shanghai", "Chengdu", "Rongcheng", "Xiamen", "Suining", "Hangzhou", "Wuhan",
    "Nanjing", "Tianjin", "Qingdao", "Dalian", "Kunming", "Harbin", "Changsha", "Jinan",
]  # fmt: skip
WORDS = [
    "Bright", "Golden", "Harmony", "Eastern", "Silver", "Jade", "Great Wall", "Pearl", "Summit",
    "Evergreen", "Phoenix", "Lotus", "Rising Sun", "Blue Sky", "Orient", "Unity", "Prosper",
    "Crystal", "Dragon", "Maple", "Cloud", "River", "Mountain", "Star", "Ocean", "Spring",
]  # fmt: skip
TRADES = [
    "Pipes", "Textiles", "Trading", "Construction", "Logistics", "Foods", "Pharmaceuticals",
    "Electronics", "Machinery", "Chemicals", "Software", "Real Estate", "Catering", "Printing",
]  # fmt: skip
FORMS = ["Co., Ltd.", "Group Co., Ltd.", "Industrial Co., Ltd.", "Partnership", "Cooperative"]
SURNAMES = ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu"]
GIVEN = ["Wei", "Fang", "Na", "Min", "Jing", "Lei", "Jun", "Yan", "Tao", "Ping", "Hui", "Qiang"]


def company_name(rng: random.Random, n: int) -> str:
    return (
        f"{rng.choice(CITIES)} {rng.choice(WORDS)} {rng.choice(TRADES)} {n:07d} {rng.choice(FORMS)}"
    )


def build(db: str, subjects: int, seed: int, public_share: float = 0.02) -> dict[str, Any]:
    """The registry and its search index; returns samples to query with."""
    rng = random.Random(seed)
    t0 = time.perf_counter()
    today = dt.date(2026, 1, 15)
    with Ledger.open(db) as led:
        StatusService(led).activate("cn-national")
        engine = led.engine
        S.ensure_index(engine)
        rows: list[dict[str, Any]] = []
        codes: list[str] = []
        names: list[str] = []
        persons_public: list[str] = []
        persons_private: list[str] = []
        seen: set[str] = set()
        n = 0
        with S.writing(engine) as conn:
            while n < subjects:
                if rng.random() < 0.7:
                    key = f"cn-uscc:{ids.random_uscc(rng)}"
                    name = company_name(rng, n)
                    kind, person, until = "enterprise", False, None
                else:
                    key = f"cn-rid:{ids.random_rid(rng)}"
                    name = f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}{rng.choice(GIVEN).lower()}"
                    kind, person = "person", True
                    until = today + dt.timedelta(days=365) if rng.random() < public_share else None
                if key in seen:
                    continue
                seen.add(key)
                rows.append(
                    {
                        "subject": key,
                        "kind": kind,
                        "name": name,
                        "name_norm": S.normalise_name(name),
                        "person": person,
                        "public_until": until,
                    }
                )
                if not person and len(codes) < 5000:
                    codes.append(key)
                    names.append(name)
                elif person and until is not None and len(persons_public) < 1000:
                    persons_public.append(key)
                elif person and until is None and len(persons_private) < 1000:
                    persons_private.append(key)
                n += 1
                if len(rows) == 20_000:
                    conn.execute(S.portal_search.insert(), rows)
                    rows = []
            if rows:
                conn.execute(S.portal_search.insert(), rows)
        t_rows = time.perf_counter() - t0
        with S.writing(engine) as conn:
            conn.exec_driver_sql(
                "INSERT INTO portal_search_fts (rowid, name_norm) "
                "SELECT rid, name_norm FROM portal_search"
            )
            head = conn.execute(sa.select(sa.func.max(entries.c.seq))).scalar() or 0
            chead = conn.execute(sa.select(sa.func.max(status_changes.c.change_seq))).scalar()
            conn.execute(S.portal_search_state.delete())
            conn.execute(
                S.portal_search_state.insert(),
                [{"name": "ledger", "seq": int(head)}, {"name": "changes", "seq": int(chead or 0)}],
            )
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
        # correctness on the built index before timing anything
        assert S.search(engine, codes[0], today)[0].subject_key == codes[0]
        assert S.search(engine, persons_public[0], today)[0].subject_key == persons_public[0]
        assert S.search(engine, persons_private[0], today) == []
    return {
        "codes": codes,
        "names": names,
        "build_s": time.perf_counter() - t0,
        "rows_s": t_rows,
        "subjects": subjects,
    }


def existing(db: str) -> dict[str, Any] | None:
    """Samples from a registry this benchmark built before (``--db``), or None."""
    with Ledger.open(db) as led, led.engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(S.portal_search)).scalar() or 0
        if not n:
            return None
        rows = conn.execute(
            sa.select(S.portal_search.c.subject, S.portal_search.c.name)
            .where(S.portal_search.c.person.is_(False), S.portal_search.c.rid % 199 == 1)
            .limit(5000)
        ).all()
    return {"codes": [r[0] for r in rows], "names": [r[1] for r in rows], "subjects": int(n)}


def make_queries(pop: dict[str, Any], rng: random.Random, n: int = 5000) -> list[str]:
    out = []
    for _ in range(n):
        r = rng.random()
        name = rng.choice(pop["names"])
        words = name.split()
        if r < 0.25:
            code = rng.choice(pop["codes"]).split(":", 1)[1]
            out.append(code if rng.random() < 0.5 else code.lower())
        elif r < 0.60:
            out.append(" ".join(words[: rng.choice((1, 2))]).lower())
        elif r < 0.90:
            w = rng.choice(words[1:4])
            out.append(w[: max(3, len(w))].lower() if len(w) >= 3 else name[5:12])
        else:
            out.append(f"nomatch{rng.randrange(10**9)}")
    return out


async def timed(
    port: int, paths: list[str], concurrency: int, duration: float, expect: bytes | None
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + duration

    async def worker(w: int) -> None:
        nonlocal errors
        conn = await Conn(port).open()
        i = w
        try:
            while time.perf_counter() < stop:
                path = paths[i % len(paths)]
                i += concurrency
                t0 = time.perf_counter()
                status, body = await conn.request("GET", path)
                latencies.append(time.perf_counter() - t0)
                if status != 200 or (expect is not None and expect not in body):
                    errors += 1
        finally:
            await conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    n = len(latencies)

    def pct(p: float) -> float:
        return latencies[min(n - 1, int(n * p))] * 1000 if n else float("nan")

    return {"requests": n, "rps": n / elapsed, "p50_ms": pct(0.5), "p95_ms": pct(0.95),
            "p99_ms": pct(0.99), "errors": errors}  # fmt: skip


async def measure(port: int, pop: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed + 1)
    queries = make_queries(pop, rng)
    search_paths = [f"/search?q={urllib.parse.quote(q)}" for q in queries]
    # warm up (templates, caches) and check that codes are found
    await timed(port, search_paths[:200], 2, 2.0, b"</html>")
    hello = await timed(port, ["/bench/hello"], args.concurrency, args.duration, None)
    search = await timed(port, search_paths, args.concurrency, args.duration, b"</html>")
    # one visitor at a time: the latency of a search on its own
    hello1 = await timed(port, ["/bench/hello"], 1, args.duration / 2, None)
    search1 = await timed(port, search_paths[::-1], 1, args.duration / 2, b"</html>")
    return {"hello": hello, "search": search, "hello_1": hello1, "search_1": search1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--subjects", type=int, default=1_000_000)
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--db", help="reuse or keep the registry here (default: a temporary file)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="sc-portal-bench-")
    db = args.db or str(Path(tmp) / "portal.db")
    pop = existing(db) if args.db and Path(db).exists() else None
    if pop is not None:
        args.subjects = pop["subjects"]
        print(f"reusing {args.subjects:,} subjects in {db}", flush=True)
    else:
        print(f"building {args.subjects:,} subjects in {db} ...", flush=True)
        pop = build(db, args.subjects, args.seed)
        print(
            f"  built in {pop['build_s']:.1f} s (rows {pop['rows_s']:.1f} s, FTS5 trigram index "
            f"{pop['build_s'] - pop['rows_s']:.1f} s)",
            flush=True,
        )
    port = free_port()
    proc = start_server(db, port, args.workers)
    try:
        ready = asyncio.run(wait_ready(port, proc))
        print(f"  server ready in {ready:.1f} s on 127.0.0.1:{port}", flush=True)
        res = asyncio.run(measure(port, pop, args))
    finally:
        proc.terminate()
        proc.wait(30)
    h, s = res["hello"], res["search"]
    ok = s["p95_ms"] <= 100 and s["errors"] == 0
    if args.json:
        print(json.dumps({**res, "subjects": args.subjects, "ok": ok}, indent=2))
        return
    print(
        f"\n{'connections':14}{'req/s':>10}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'errors':>8}"
    )
    for label, r in (
        (f"hello x{args.concurrency}", h),
        (f"search x{args.concurrency}", s),
        ("hello x1", res["hello_1"]),
        ("search x1", res["search_1"]),
    ):
        print(
            f"{label:14}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p95_ms']:>10.2f}"
            f"{r['p99_ms']:>10.2f}{r['errors']:>8}"
        )
    print(
        f"\nsearch over {args.subjects:,} subjects: p95 {s['p95_ms']:.1f} ms "
        f"(goal <= 100 ms): {'OK' if ok else 'MISSED'}; concurrency {args.concurrency}, "
        f"{args.workers} worker(s)"
    )


if __name__ == "__main__":
    main()
