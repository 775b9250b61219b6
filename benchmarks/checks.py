"""Eligibility-check benchmark: the API against baselines on the same server, over loopback only.

Builds a registry with N subjects (default 1,000,000; a share of them on the SPC defaulter list
under cn-national, with every measure the rulebook binds to that list), inserted straight into
``status_current`` and ``measure_index`` by a bulk path (the benchmark population has no ledger
records; the measured write path below does). Starts ``socialcredit``'s API with uvicorn on
127.0.0.1 in a subprocess, with two baseline endpoints switched on (``SOCIALCREDIT_SERVE_BENCH=1``):
``GET /bench/hello`` (hello world) and ``POST /bench/raw`` (parse ids with orjson, look them up in
a Python set-like index, answer with orjson), both served by the app's lane as ``/v1/checks`` is,
so the way in costs them what it costs a check, and ``GET /bench/hello-routed``, the same hello
world as a FastAPI route. Then, with ``--concurrency`` keep-alive connections for ``--duration``
seconds per phase, the load sent by wrk (Debian's ``wrk``, installed by ``scripts/system-deps.sh``:
a few percent of a core) or, without it or with ``--client python``, by the small asyncio client
below (it needs most of a core, which on a 2-core machine is taken from the server, so the
baselines that do little per request are bounded by the client, not the server; wrk runs whole
seconds). Write-to-visible and the soak read every answer, so they always use the asyncio client:

1. single checks (``POST /v1/checks`` with one check) vs hello world: req/s, p50 and p99 latency.
   Goals: throughput >= 0.7x hello, p99 <= 5 ms. Two hello worlds are measured: ``/bench/hello``
   is served by the app's lane, as ``/v1/checks`` is (no routing, no dependency solving, no
   middleware: the server's floor), and ``/bench/hello-routed`` is an ordinary FastAPI route
   (what a hello world on this framework costs). Both ratios are reported.
2. batch checks (``--batch`` subjects per request) vs the raw endpoint: ids/s. Goal: >= 0.65x raw.
   Batches are sent in the columnar form (one measure, ``subjects``: what the SDK's
   ``check_subjects`` sends) and in the object form (``checks``: one object per subject); both
   are reported. Then: how many decisions the subject index of the log (built in bulk behind it,
   see ``socialcredit.status.decisions``) is behind, and how long the server takes to catch up.
3. write-to-visible: POST a record for a fresh subject, then check until the answer is "deny".
   Goal: p99 <= 50 ms. Measured twice: on the quiet server before the load phases, and after
   them, once the projection has caught up (the disk is then still busy with what the load wrote:
   the projection's pages and the checkpoints that copy them).
4. ``--soak S``: S seconds of mixed load (single checks, batches, writes), then counts errors and
   compares the decision rows written with the answers received (goal: 0 errors, 0 missing).
5. answer forms, last: rounds of raw, columnar batches and columnar batches with ``"answers":
   "exceptions"`` (what ``check_exceptions`` sends: only the answers that are not the default come
   back), reported as ratios to raw (no goal). Last, because their answers add to the projection's
   backlog, which the phases above would otherwise meet: run in the rounds of phases 1 and 2, at
   1,000,000 subjects, they left twice the backlog (21.8M answers against 10.9M) and the
   projection had not caught up when the benchmark stopped waiting for it (600 s).

Every answer the API gives is durably logged before it is sent, so the check figures include a
committed database write; the baselines write nothing.

Run: ``uv run python benchmarks/checks.py`` (``--subjects 100000 --duration 3`` for a quick look).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from socialcredit import ids
from socialcredit.engine.records import Rec
from socialcredit.engine.reference import evaluate
from socialcredit.ledger import Ledger
from socialcredit.rulebooks import load
from socialcredit.status.decisions import count_decisions as count_rows
from socialcredit.status.decisions import project_decisions, projection_lag
from socialcredit.status.parties import add_party, set_limits
from socialcredit.status.schema import measure_index, status_changes, status_current
from socialcredit.status.service import StatusService, status_json
from socialcredit.web.keys import create_key

HOST = "127.0.0.1"
RULEBOOK = "cn-national"


# ---------------------------------------------------------------------- a tiny HTTP/1.1 client


class Conn:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1 (just enough for this benchmark)."""

    def __init__(self, port: int, token: str | None = None):
        self.port = port
        self.auth = f"Authorization: Bearer {token}\r\n".encode() if token else b""
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> Conn:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        return self

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
        ).encode()
        self.writer.write(head + self.auth + b"\r\n" + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        length = 0
        for line in raw.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
                break
        payload = await self.reader.readexactly(length) if length else b""
        return status, payload


async def run_load(
    port: int,
    token: str | None,
    make: Callable[[random.Random], tuple[str, str, bytes]],
    *,
    concurrency: int,
    duration: float,
    per_request: int = 1,
    check: Callable[[int, bytes], bool] | None = None,
) -> dict[str, Any]:
    """``concurrency`` connections issuing requests for ``duration`` seconds."""
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + duration

    async def worker(n: int) -> None:
        nonlocal errors
        rng = random.Random(n)
        conn = await Conn(port, token).open()
        try:
            while time.perf_counter() < stop:
                method, path, body = make(rng)
                t0 = time.perf_counter()
                status, payload = await conn.request(method, path, body)
                latencies.append(time.perf_counter() - t0)
                if status >= 400 or (check is not None and not check(status, payload)):
                    errors += 1
        finally:
            await conn.close()

    t_start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - t_start
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n,
        "rps": n / elapsed,
        "items_per_s": n * per_request / elapsed,
        "p50_ms": latencies[n // 2] * 1000 if n else float("nan"),
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else float("nan"),
        "errors": errors,
    }


# ---------------------------------------------------------------------- wrk, when it is installed

# wrk (Debian's package, written in C) generates the load with a few percent of one core, where
# the asyncio client above needs most of a core: on a 2-core machine that core is taken from the
# server. Each wrk thread formats every request once (init) and then cycles through them.
WRK_SCRIPT = r"""
local reqs, n, i = {}, 0, 0
function init(args)
  local method, path, token, file = args[1], args[2], args[3], args[4]
  local headers = {["Content-Type"] = "application/json"}
  if token ~= "" then headers["Authorization"] = "Bearer " .. token end
  if file == "" then
    n = 1; reqs[1] = wrk.format(method, path, headers, nil)
  else
    for line in io.lines(file) do n = n + 1; reqs[n] = wrk.format(method, path, headers, line) end
  end
  i = (tonumber(id) or 0) * 7919 % n
end
function setup(thread)
  thread:set("id", tostring(#threads))
  table.insert(threads, thread)
end
threads = {}
function request()
  i = i % n + 1
  return reqs[i]
end
function done(s, latency, _)
  local e = s.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    s.requests, s.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def run_wrk(
    port: int,
    token: str | None,
    method: str,
    path: str,
    bodies: list[bytes] | None,
    *,
    concurrency: int,
    duration: float,
    per_request: int = 1,
    threads: int = 1,
) -> dict[str, Any]:
    """The same figures as :func:`run_load`, with wrk sending the requests (every body is a line
    of a file wrk reads once; non-2xx answers and socket errors count as errors)."""
    with tempfile.TemporaryDirectory(prefix="sc-wrk-") as tmp:
        script = Path(tmp) / "bench.lua"
        script.write_text(WRK_SCRIPT)
        data = ""
        if bodies:
            data = str(Path(tmp) / "bodies")
            Path(data).write_bytes(b"\n".join(bodies) + b"\n")
        out = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{concurrency}",
                f"-d{max(1, round(duration))}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                f"http://{HOST}:{port}{path}",
                "--",
                method,
                path,
                token or "",
                data,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    doc = json.loads(out.strip().splitlines()[-1])
    seconds = doc["duration_us"] / 1e6
    n = doc["requests"]
    return {
        "requests": n,
        "rps": n / seconds,
        "items_per_s": n * per_request / seconds,
        "p50_ms": doc["p50_us"] / 1000,
        "p99_ms": doc["p99_us"] / 1000,
        "errors": sum(doc[k] for k in ("connect", "read", "write", "status", "timeout")),
    }


# ---------------------------------------------------------------------- the registry


def build(db: str, subjects: int, share: float, seed: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    rng = random.Random(seed)
    with Ledger.open(db) as led:
        led.register_authority("court-1", "Bench Court", "court", ["court.judgment-defaulter"])
        svc = StatusService(led)
        svc.activate(RULEBOOK)
        add_party(led.engine, led.catalogue, led.clock.now(), "air-1", "Bench Air", "airline")
        # a daily limit it never reaches: every check pays for the accounting, as under an
        # operator who sets one
        set_limits(led.engine, "air-1", led.clock.now(), {"daily_limit": 10**15})
        _, rp = create_key(led.engine, led.clock.now(), "relying-party", "air-1", "bench")
        _, prov = create_key(led.engine, led.clock.now(), "provider", "court-1", "bench")
        rb = load(RULEBOOK)
        today = led.clock.now().date()
        keys = sorted({f"cn-rid:{ids.random_rid(rng)}" for _ in range(subjects)})
        listed = set(rng.sample(keys, int(len(keys) * share)))
        sample = Rec(
            1,
            keys[0],
            "person",
            "court.judgment-defaulter",
            today,
            "serious",
            None,
            {"ground": "able-but-refuses", "case_no": "X"},
        )
        st_listed = evaluate(rb, [sample], today, subject=keys[0], subject_kind="person")
        st_clean = evaluate(rb, [], today, subject=keys[0], subject_kind="person")
        clean_json, listed_json = status_json(st_clean), status_json(st_listed)
        memo_basis = {m.id: " ".join(m.legal_basis.split()) for m in rb.memoranda}
        template = [
            (
                m.measure_id,
                m.memorandum_id,
                m.via,
                led.catalogue.measures[m.measure_id].domain,
                memo_basis[m.memorandum_id],
            )
            for m in st_listed.measures
        ]
        now = led.clock.now().replace(tzinfo=None)
        head = led.head()[0]
        with led.engine.begin() as conn:
            rows: list[dict[str, Any]] = []
            idx: list[dict[str, Any]] = []
            for i, k in enumerate(keys):
                on = k in listed
                rows.append(
                    {
                        "subject": k,
                        "rulebook_id": rb.id,
                        "rulebook_ref": rb.ref,
                        "evaluated_for": today,
                        "status": (listed_json if on else clean_json).replace(keys[0], k),
                        "next_change": None,
                        "ledger_seq": 0,
                        "updated_at": now,
                    }
                )
                if on:
                    basis = orjson.dumps(
                        {"legal_basis": None, "records": [i + 1_000_000_000]},
                        option=orjson.OPT_SORT_KEYS,
                    ).decode()
                    for measure, memo, via, domain, lb in template:
                        idx.append(
                            {
                                "subject": k,
                                "rulebook_id": rb.id,
                                "measure": measure,
                                "memorandum": memo,
                                "via": via,
                                "rulebook_ref": rb.ref,
                                "domain": domain,
                                "basis": basis.replace(
                                    '"legal_basis":null', f'"legal_basis":{json.dumps(lb)}'
                                ),
                                "since": today,
                            }
                        )
                if len(rows) >= 50_000:
                    conn.execute(status_current.insert(), rows)
                    rows.clear()
                if len(idx) >= 50_000:
                    conn.execute(measure_index.insert(), idx)
                    idx.clear()
            if rows:
                conn.execute(status_current.insert(), rows)
            if idx:
                conn.execute(measure_index.insert(), idx)
            top = conn.execute(sa.select(sa.func.max(status_changes.c.change_seq))).scalar() or 0
            conn.execute(status_changes.insert().values(change_seq=top + 1, subject=None, at=now))
        assert svc.lag() == 0 or head >= 0
    return {
        "keys": keys,
        "listed": listed,
        "rp": rp,
        "provider": prov,
        "measures": len(template),
        "seconds": time.perf_counter() - t0,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def start_server(db: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SOCIALCREDIT_DB": db, "SOCIALCREDIT_SERVE_BENCH": "1"}
    if workers > 1:
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sc-bench-metrics-")
    code = (
        "import uvicorn; uvicorn.run('socialcredit.web.app:app_from_env', factory=True, "
        f"host='{HOST}', port={port}, workers={workers}, log_level='warning', access_log=False)"
    )
    return subprocess.Popen([sys.executable, "-c", code], env=env)


async def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 600) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit("the server exited")
        try:
            conn = await Conn(port).open()
            status, _ = await conn.request("GET", "/readyz")
            await conn.close()
            if status == 200:
                return time.perf_counter() - t0
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("the server did not become ready")


# ---------------------------------------------------------------------- phases


def defaulter_row(ref: str, subject: str) -> bytes:
    return orjson.dumps(
        {
            "ref": ref,
            "subject": subject,
            "kind": "court.judgment-defaulter",
            "decision_no": f"B-{ref}",
            "decision_date": "2025-06-01",
            "severity": "serious",
            "attributes": {"ground": "able-but-refuses", "case_no": f"B-{ref}"},
        }
    )


async def write_to_visible(port: int, pop: dict[str, Any], n: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    prov = await Conn(port, pop["provider"]).open()
    rp = await Conn(port, pop["rp"]).open()
    out: list[float] = []
    try:
        for i in range(n):
            subject = f"cn-rid:{ids.random_rid(rng)}"
            body = orjson.dumps(
                {"purpose": "bench", "checks": [{"subject": subject, "measure": "travel.flights"}]}
            )
            t0 = time.perf_counter()
            status, _ = await prov.request(
                "POST", "/v1/records", defaulter_row(f"wv-{seed}-{i}", subject)
            )
            assert status in (200, 201), status
            while True:
                status, payload = await rp.request("POST", "/v1/checks", body)
                if orjson.loads(payload)["results"][0]["decision"] == "deny":
                    break
                if time.perf_counter() - t0 > 10:
                    raise SystemExit("a write did not become visible within 10 s")
            out.append(time.perf_counter() - t0)
    finally:
        await prov.close()
        await rp.close()
    out.sort()
    return {
        "n": n,
        "p50_ms": out[len(out) // 2] * 1000,
        "p99_ms": out[min(len(out) - 1, int(len(out) * 0.99))] * 1000,
        "max_ms": out[-1] * 1000,
    }


def index_catch_up(db: str, timeout: float = 600) -> dict[str, float]:
    """The decisions not yet in the subject index right after the load, and how long the server's
    background loop takes to index them (that work is deferred, not skipped: it is reported)."""
    with Ledger.open(db, create=False) as led:
        t0 = time.perf_counter()
        lag = first = projection_lag(led.engine)
        while lag and time.perf_counter() - t0 < timeout:
            time.sleep(0.2)
            lag = projection_lag(led.engine)
        return {"lag": first, "seconds": time.perf_counter() - t0, "left": lag}


def count_decisions(db: str) -> int:
    """One row per answer, counted in ``decisions`` once everything logged is projected (the
    rows themselves, not the answer counts the log's requests declare)."""
    with Ledger.open(db, create=False) as led:
        project_decisions(led.engine)
        return count_rows(led.engine)


async def soak(port: int, pop: dict[str, Any], seconds: float, db: str) -> dict[str, Any]:
    before = count_decisions(db)
    keys = pop["keys"]
    answers = 0
    errors = 0
    stop = time.perf_counter() + seconds

    async def checks(n: int, size: int, columns: bool = False) -> None:
        nonlocal answers, errors
        rng = random.Random(n)
        conn = await Conn(port, pop["rp"]).open()
        try:
            while time.perf_counter() < stop:
                subjects = [rng.choice(keys) for _ in range(size)]
                body = orjson.dumps(
                    {"purpose": "soak", "measure": "travel.flights", "subjects": subjects}
                    if columns
                    else {
                        "purpose": "soak",
                        "checks": [{"subject": s, "measure": "travel.flights"} for s in subjects],
                    }
                )
                try:
                    status, payload = await conn.request("POST", "/v1/checks", body)
                except (OSError, asyncio.IncompleteReadError):
                    errors += 1
                    conn = await Conn(port, pop["rp"]).open()
                    continue
                if status != 200:
                    errors += 1
                else:
                    doc = orjson.loads(payload)
                    answers += doc["decision_ids"]["count"] if columns else len(doc["results"])
        finally:
            await conn.close()

    async def writes(n: int) -> None:
        nonlocal errors
        rng = random.Random(1000 + n)
        conn = await Conn(port, pop["provider"]).open()
        i = 0
        try:
            while time.perf_counter() < stop:
                i += 1
                subject = f"cn-rid:{ids.random_rid(rng)}"
                status, _ = await conn.request(
                    "POST", "/v1/records", defaulter_row(f"soak-{n}-{i}", subject)
                )
                if status not in (200, 201):
                    errors += 1
        finally:
            await conn.close()

    tasks = [checks(i, 1) for i in range(12)] + [checks(100, 100), checks(101, 100, columns=True)]
    tasks += [writes(i) for i in range(2)]
    await asyncio.gather(*tasks)
    rows = count_decisions(db) - before
    return {
        "seconds": seconds,
        "answers": answers,
        "decision_rows": rows,
        "missing": answers - rows,
        "errors": errors,
    }


# ---------------------------------------------------------------------- main


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


async def measure(
    args: argparse.Namespace, port: int, pop: dict[str, Any], db: str
) -> dict[str, Any]:
    keys: list[str] = pop["keys"]
    rp = pop["rp"]
    res: dict[str, Any] = {}
    c, d = args.concurrency, args.duration

    # Every phase cycles through bodies made here, so the load generator does no JSON work.
    rng = random.Random(args.seed)

    def columnar(extra: dict[str, str]) -> list[bytes]:
        """Bodies of the columnar form, ``--batch`` subjects each, with ``extra`` fields."""
        return [
            orjson.dumps(
                {
                    "purpose": "bench",
                    "measure": "travel.flights",
                    "subjects": rng.sample(keys, args.batch),
                }
                | extra
            )
            for _ in range(200)
        ]

    phases: dict[str, tuple[str, str, list[bytes] | None, int]] = {
        "hello": ("GET", "/bench/hello", None, 1),
        "hello_routed": ("GET", "/bench/hello-routed", None, 1),
        "single": (
            "POST",
            "/v1/checks",
            [
                orjson.dumps(
                    {
                        "purpose": "bench",
                        "checks": [{"subject": rng.choice(keys), "measure": "travel.flights"}],
                    }
                )
                for _ in range(50_000)
            ],
            1,
        ),
        "raw": (
            "POST",
            "/bench/raw",
            [orjson.dumps({"ids": rng.sample(keys, args.batch)}) for _ in range(200)],
            args.batch,
        ),
        "batch": ("POST", "/v1/checks", columnar({}), args.batch),
        "batch_exceptions": (
            "POST",
            "/v1/checks",
            columnar({"answers": "exceptions"}),
            args.batch,
        ),
        "batch_objects": (
            "POST",
            "/v1/checks",
            [
                orjson.dumps(
                    {
                        "purpose": "bench",
                        "checks": [
                            {"subject": s, "measure": "travel.flights"}
                            for s in rng.sample(keys, args.batch)
                        ],
                    }
                )
                for _ in range(200)
            ],
            args.batch,
        ),
    }

    async def run_phase(name: str, concurrency: int, duration: float) -> dict[str, Any]:
        method, path, bodies, per = phases[name]
        if args.client == "wrk":
            return await asyncio.to_thread(
                run_wrk,
                port,
                rp,
                method,
                path,
                bodies,
                concurrency=concurrency,
                duration=duration,
                per_request=per,
            )

        def make(r: random.Random) -> tuple[str, str, bytes]:
            return method, path, r.choice(bodies) if bodies else b""

        return await run_load(
            port, rp, make, concurrency=concurrency, duration=duration, per_request=per
        )

    # warm up, then alternate the phases round by round: the machine is shared (client and
    # server on the same cores), so each ratio compares phases run seconds apart
    await run_phase("hello", 2, 1)
    await run_phase("single", 2, 1)
    await write_to_visible(port, pop, 5, args.seed + 100)  # the first writes load what writes use
    res["write_to_visible_quiet"] = await write_to_visible(port, pop, args.writes, args.seed)

    def medians(rounds: list[dict[str, Any]], names: Iterable[str]) -> dict[str, Any]:
        return {
            name: {
                k: statistics.median(r[name][k] for r in rounds)
                for k in ("rps", "items_per_s", "p50_ms", "p99_ms")
            }
            | {"errors": sum(r[name]["errors"] for r in rounds)}
            for name in names
        }

    def ratios(rounds: list[dict[str, Any]], names: Iterable[str]) -> dict[str, float]:
        return {
            f"{name}_ratio": statistics.median(
                r[name]["items_per_s"] / r["raw"]["items_per_s"] for r in rounds
            )
            for name in names
        }

    main_phases = [name for name in phases if name != "batch_exceptions"]
    rounds: list[dict[str, Any]] = []
    for _ in range(args.rounds):
        rounds.append({name: await run_phase(name, c, d) for name in main_phases})
    res["rounds"] = rounds
    res |= medians(rounds, main_phases)
    res["single_ratio"] = statistics.median(r["single"]["rps"] / r["hello"]["rps"] for r in rounds)
    res["single_ratio_routed"] = statistics.median(
        r["single"]["rps"] / r["hello_routed"]["rps"] for r in rounds
    )
    res |= ratios(rounds, ("batch", "batch_objects"))
    res["index"] = await asyncio.to_thread(index_catch_up, db)
    res["single_c2"] = await run_phase("single", 2, d)
    res["hello_c2"] = await run_phase("hello", 2, d)
    res["write_to_visible"] = await write_to_visible(port, pop, args.writes, args.seed + 1)
    if args.soak:
        res["soak"] = await soak(port, pop, args.soak, db)
    forms = ("raw", "batch", "batch_exceptions")
    form_rounds = [
        {name: await run_phase(name, c, d) for name in forms} for _ in range(args.rounds)
    ]
    res["forms"] = {"rounds": form_rounds} | medians(form_rounds, forms)
    res["forms"] |= ratios(form_rounds, ("batch", "batch_exceptions"))
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--subjects", type=int, default=1_000_000)
    p.add_argument("--listed-share", type=float, default=0.05)
    p.add_argument(
        "--db", help="a SQLite path or postgresql:// URL (default: a temporary SQLite file)"
    )
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--duration", type=float, default=3.0, help="seconds per phase and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--writes", type=int, default=100, help="write-to-visible samples")
    p.add_argument("--soak", type=float, default=0.0, help="seconds of mixed load (e.g. 60)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--client",
        choices=("wrk", "python"),
        default="wrk" if shutil.which("wrk") else "python",
        help="load generator: wrk (C, a few percent of a core; the default when installed) or "
        "the asyncio client in this file (most of a core, taken from the server)",
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="sc-bench-")
    db = args.db or str(Path(tmp.name) / "bench.db")
    pop = build(db, args.subjects, args.listed_share, args.seed)
    print(
        f"registry: {len(pop['keys']):,} subjects, {len(pop['listed']):,} listed "
        f"({pop['measures']} measures each) built in {pop['seconds']:.1f} s",
        flush=True,
    )
    port = free_port()
    proc = start_server(db, port, args.workers)
    try:
        ready = asyncio.run(wait_ready(port, proc))
        print(f"server ready in {ready:.1f} s (workers: {args.workers}), port {port}", flush=True)
        res = asyncio.run(measure(args, port, pop, db))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    h, s, r, b, w = res["hello"], res["single"], res["raw"], res["batch"], res["write_to_visible"]
    hr, bo = res["hello_routed"], res["batch_objects"]
    single_ratio, batch_ratio = res["single_ratio"], res["batch_ratio"]
    routed_ratio, objects_ratio = res["single_ratio_routed"], res["batch_objects_ratio"]
    s2, h2 = res["single_c2"], res["hello_c2"]
    print(
        f"\nconcurrency {args.concurrency}, {args.rounds} rounds of {args.duration:g} s per phase "
        f"(medians), batch {args.batch}, load from {args.client}"
    )
    print(
        f"  hello world      {h['rps']:>10,.0f} req/s   p50 {h['p50_ms']:.2f} ms  p99 {h['p99_ms']:.2f} ms  (lane)"
    )
    print(
        f"  hello world      {hr['rps']:>10,.0f} req/s   p50 {hr['p50_ms']:.2f} ms  p99 {hr['p99_ms']:.2f} ms  (FastAPI route)"
    )
    print(
        f"  single check     {s['rps']:>10,.0f} req/s   p50 {s['p50_ms']:.2f} ms  p99 {s['p99_ms']:.2f} ms  errors {s['errors']}"
    )
    print(f"  raw id lookup    {r['items_per_s']:>10,.0f} ids/s   ({r['rps']:,.0f} req/s)")
    print(
        f"  batch check      {b['items_per_s']:>10,.0f} ids/s   ({b['rps']:,.0f} req/s)  errors {b['errors']}  (columns)"
    )
    print(
        f"  batch check      {bo['items_per_s']:>10,.0f} ids/s   ({bo['rps']:,.0f} req/s)  errors {bo['errors']}  (objects)"
    )
    print(
        f"  at concurrency 2: single p50 {s2['p50_ms']:.2f} ms p99 {s2['p99_ms']:.2f} ms; hello p50 {h2['p50_ms']:.2f} ms p99 {h2['p99_ms']:.2f} ms"
    )
    wq = res["write_to_visible_quiet"]
    for label, x in (("quiet", wq), ("after the load", w)):
        print(
            f"  write-to-visible p50 {x['p50_ms']:.1f} ms  p99 {x['p99_ms']:.1f} ms  "
            f"max {x['max_ms']:.1f} ms ({x['n']} writes, {label})"
        )
    ix = res["index"]
    print(
        f"  subject index of the decision log: {ix['lag']:,.0f} decisions behind after the last "
        f"phase, caught up {ix['seconds']:.1f} s later ({ix['left']:,.0f} left)"
    )
    print("\ngoals")
    print(f"  single >= 0.7x hello (lane):  {single_ratio:.2f}x  {verdict(single_ratio >= 0.7)}")
    print(f"  single >= 0.7x hello (route): {routed_ratio:.2f}x  {verdict(routed_ratio >= 0.7)}")
    print(f"  single p99 <= 5 ms (c=16): {s['p99_ms']:.2f} ms  {verdict(s['p99_ms'] <= 5)}")
    print(f"  single p99 <= 5 ms (c=2):  {s2['p99_ms']:.2f} ms  {verdict(s2['p99_ms'] <= 5)}")
    print(f"  batch >= 0.65x raw (columns): {batch_ratio:.2f}x  {verdict(batch_ratio >= 0.65)}")
    print(f"  batch >= 0.65x raw (objects): {objects_ratio:.2f}x  {verdict(objects_ratio >= 0.65)}")
    print(
        f"  write-to-visible p99 <= 50 ms (quiet): {wq['p99_ms']:.1f} ms  {verdict(wq['p99_ms'] <= 50)}"
    )
    print(
        f"  write-to-visible p99 <= 50 ms (after the load): {w['p99_ms']:.1f} ms  "
        f"{verdict(w['p99_ms'] <= 50)}"
    )
    if "soak" in res:
        k = res["soak"]
        print(
            f"  soak {k['seconds']:g} s: {k['answers']:,} answers, {k['decision_rows']:,} decision rows, "
            f"{k['missing']} missing, {k['errors']} errors  {verdict(k['missing'] == 0 and k['errors'] == 0)}"
        )
    f = res["forms"]
    print(f"\nanswer forms, {args.rounds} rounds after everything above (no goal)")
    print(f"  raw id lookup    {f['raw']['items_per_s']:>10,.0f} ids/s")
    for name, label in (("batch", "all answers"), ("batch_exceptions", "exceptions only")):
        x = f[name]
        print(
            f"  batch check      {x['items_per_s']:>10,.0f} ids/s   {f[name + '_ratio']:.2f}x raw  "
            f"errors {x['errors']}  (columns, {label})"
        )
    if args.json:
        print(json.dumps(res, indent=2))
    tmp.cleanup()


if __name__ == "__main__":
    main()
