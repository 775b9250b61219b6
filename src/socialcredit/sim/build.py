"""Load a generated city into a ledger and make it ready to serve.

:func:`build_city` does, in order: register the city's authorities; write each authority's records
to an NDJSON file and import it through the ordinary bulk importer (the same validation, batching
and hash chain as ``socialcredit records import``); apply the generated corrections, retractions
and overturns through the ledger's own lineage operations; activate the national and the city
rulebook and catch the status up; register relying parties; create one API key per role; and open
a few cases through the cases room's Python API (:mod:`socialcredit.sim.cases_hook`).

Every step reports through ``progress(phase, done, total)`` so the CLI can draw a bar (``total``
0: the step has no measure of its own until it is done).
"""

from __future__ import annotations

import collections
import datetime as dt
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from socialcredit.errors import Problem
from socialcredit.ledger import Ledger
from socialcredit.ledger.importer import import_file
from socialcredit.ledger.schema import entries
from socialcredit.sim.city import City

Progress = Callable[[str, int, int], None]

RULEBOOKS = ("cn-national", "cn-sd-rongcheng")

# id, name, type, answers a day (an operator's choice: the passenger volumes of a small city's
# airline and railway, a bank's applications, a trading centre's bidders)
PARTIES: tuple[tuple[str, str, str, int], ...] = (
    ("shandong-air", "Shandong Airlines", "airline", 100_000),
    ("jinan-railway-tickets", "China Railway Jinan Group, ticketing", "railway", 100_000),
    ("rc-rural-bank", "Rongcheng Rural Commercial Bank, lending", "bank", 10_000),
    ("rc-procurement", "Rongcheng Public Resources Trading Centre", "procurement-office", 2_000),
)


@dataclass(frozen=True, slots=True)
class DemoKey:
    role: str
    scope: str | None
    label: str
    key_id: str
    token: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "scope": self.scope,
            "label": self.label,
            "key_id": self.key_id,
            "key": self.token,
        }


@dataclass
class BuildReport:
    db: str
    today: dt.date
    people: int
    organisations: int
    records: int
    stored: int = 0
    rejected: int = 0
    problems: list[Problem] = field(default_factory=list)
    lineage: dict[str, int] = field(default_factory=dict)
    subjects: dict[str, int] = field(default_factory=dict)  # person / organisation in the ledger
    entries: int = 0
    lists: dict[str, int] = field(default_factory=dict)  # list id -> members (all rulebooks)
    pending: dict[str, int] = field(default_factory=dict)  # list id -> listings in grace
    review: dict[str, int] = field(default_factory=dict)  # list id -> listings awaiting review
    grades: dict[str, dict[str, int]] = field(default_factory=dict)  # scheme -> grade -> n
    parties: list[dict[str, Any]] = field(default_factory=list)
    keys: list[DemoKey] = field(default_factory=list)
    cases: list[dict[str, Any]] = field(default_factory=list)
    cases_note: str | None = None
    featured: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def key(self, role: str) -> DemoKey:
        return next(k for k in self.keys if k.role == role)

    def as_dict(self) -> dict[str, Any]:
        return {
            "db": self.db,
            "today": self.today.isoformat(),
            "people": self.people,
            "organisations": self.organisations,
            "records": self.records,
            "stored": self.stored,
            "rejected": self.rejected,
            "problems": [p.as_dict() for p in self.problems],
            "lineage": self.lineage,
            "subjects": self.subjects,
            "entries": self.entries,
            "lists": self.lists,
            "pending": self.pending,
            "review": self.review,
            "grades": self.grades,
            "parties": self.parties,
            "keys": [k.as_dict() for k in self.keys],
            "cases": self.cases,
            "cases_note": self.cases_note,
            "featured": self.featured,
            "seconds": self.seconds,
        }


def _noop(phase: str, done: int, total: int) -> None:
    return None


def write_files(city: City, folder: Path) -> list[tuple[str, Path, int]]:
    """One NDJSON file per authority: (authority id, path, rows)."""
    out = []
    for aid, rows in city.records.items():
        path = folder / f"{aid}.ndjson"
        with path.open("wb") as f:
            for r in rows:
                f.write(orjson.dumps(r))
                f.write(b"\n")
        out.append((aid, path, len(rows)))
    return out


def _seqs(ledger: Ledger, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """seq of each furnished (authority, ref)."""
    by_auth: dict[str, set[str]] = collections.defaultdict(set)
    for a, r in wanted:
        by_auth[a].add(r)
    out: dict[tuple[str, str], int] = {}
    with ledger.engine.connect() as conn:
        for a, refs in by_auth.items():
            ordered = sorted(refs)
            for i in range(0, len(ordered), 500):
                chunk = ordered[i : i + 500]
                for ref, seq in conn.execute(
                    sa.select(entries.c.authority_ref, entries.c.seq).where(
                        entries.c.authority_id == a,
                        entries.c.authority_ref.in_(chunk),
                        entries.c.op == "furnish",
                    )
                ):
                    out[(a, ref)] = int(seq)
    return out


def build_city(
    ledger: Ledger,
    city: City,
    *,
    progress: Progress | None = None,
    workdir: Path | None = None,
    open_cases: bool = True,
    index_search: bool = False,
) -> BuildReport:
    """Load ``city`` into ``ledger`` and make it ready to serve. See the module docstring."""
    from socialcredit.status.service import StatusService

    say = progress or _noop
    report = BuildReport(
        db=ledger.url,
        today=city.today,
        people=len(city.people),
        organisations=len(city.organisations),
        records=city.record_count,
        featured=dict(city.featured),
    )
    clock = time.perf_counter
    start = t0 = clock()

    # 1. authorities, and the rulebooks (activated while the ledger is still empty, so the status
    # is computed once, by the catch-up after the import, instead of once per rulebook)
    for a in city.authorities:
        ledger.register_authority(a.id, a.name, a.type, a.kinds)
    svc = StatusService(ledger)
    active = {a.rulebook.id for a in svc.active()}
    for i, name in enumerate(RULEBOOKS):
        say("rulebooks", i, len(RULEBOOKS))
        if name not in active:
            svc.activate(name)
    say("rulebooks", len(RULEBOOKS), len(RULEBOOKS))
    report.seconds["rulebooks"] = clock() - t0

    # 2. records, through the bulk importer
    t0 = clock()
    with tempfile.TemporaryDirectory(prefix="socialcredit-city-", dir=workdir) as tmp:
        files = write_files(city, Path(tmp))
        total = sum(n for _, _, n in files)
        done = 0
        say("import", 0, total)
        for aid, path, n in files:
            base = done

            def bar(pos: int, size: int, base: int = base, n: int = n) -> None:
                say("import", base + (n * pos // size if size else n), total)

            r = import_file(
                ledger, path, aid, errors_path=Path(tmp) / f"{aid}.errors.csv", progress=bar
            )
            report.stored += r.stored
            report.rejected += r.rejected
            report.problems.extend(r.problems[: max(0, 20 - len(report.problems))])
            done += n
            say("import", done, total)
    report.seconds["import"] = clock() - t0

    # 3. corrections, retractions and overturns
    t1 = clock()
    seqs = _seqs(ledger, ((op.furnisher, op.target_ref) for op in city.lineage))
    counts: collections.Counter[str] = collections.Counter()
    say("corrections", 0, len(city.lineage))
    for i, op in enumerate(city.lineage, 1):
        target = seqs[(op.furnisher, op.target_ref)]
        if op.op == "correct":
            ledger.correct(op.actor, target, op.ref, op.changes or {}, op.reason)
        elif op.op == "retract":
            ledger.retract(op.actor, target, op.ref, op.reason)
        else:
            ledger.overturn(op.actor, target, op.ref, op.reason)
        counts[op.op] += 1
        say("corrections", i, len(city.lineage))
    report.lineage = dict(sorted(counts.items()))
    report.seconds["corrections"] = clock() - t1

    # 4. status: every subject evaluated once under both rulebooks
    t2 = clock()
    say("status", 0, 0)
    svc.catch_up(limit=10**9)
    say("status", 1, 1)
    report.seconds["status"] = clock() - t2

    # the registry opens with this history: notices start from here (see baseline_notices)
    baseline_notices(ledger)

    # 5. relying parties and keys
    t5 = clock()
    _parties_and_keys(ledger, city, report)
    report.seconds["keys"] = clock() - t5

    # 6. open cases (the cases room's API, when it is there)
    t3 = clock()
    feat = city.featured
    if open_cases:
        from socialcredit.sim.cases_hook import open_demo_cases

        record_seqs = _seqs(
            ledger,
            [feat["objection"], feat["review"], feat["repair_record"], feat["person_listing"]],
        )
        report.cases, report.cases_note = open_demo_cases(ledger, city, record_seqs, report)
        svc.catch_up()
    report.seconds["cases"] = clock() - t3

    # 7. the portal's name index (optional here: the demo builds it in the background while
    # serving, and the portal builds it on first use anyway)
    if index_search:
        t4 = clock()
        say("search", 0, 0)
        warm_search(ledger)
        say("search", 1, 1)
        report.seconds["search"] = clock() - t4

    summarise(ledger, report)
    report.seconds["total"] = clock() - start
    return report


def warm_search(ledger: Ledger) -> int:
    """Bring the portal's name index up to the ledger (the first search is then instant)."""
    try:
        from socialcredit.publish import search
    except ImportError:  # pragma: no cover - the portal is not there
        return 0
    from socialcredit.status.service import StatusService

    return search.sync(ledger.engine, StatusService(ledger).rulebooks, ledger.today())


def baseline_notices(ledger: Ledger) -> None:
    """Start the notifier at the ledger's and the status history's heads.

    The demo registry opens with six years of history already decided; noticing every one of
    those records (tens of thousands of "record added" messages) would keep a freshly started
    server busy for minutes and bury what matters. Subjects are told what happens from the
    opening on: the cases the demo opens, and whatever a visitor does.
    """
    try:
        from socialcredit.cases.notices import baseline
    except ImportError:  # pragma: no cover - the notices room is not there
        return
    baseline(ledger.engine)


def _parties_and_keys(ledger: Ledger, city: City, report: BuildReport) -> None:
    from socialcredit.status.parties import add_party, set_limits
    from socialcredit.web.keys import create_key

    now = ledger.clock.now()
    report.parties = []
    for pid, name, typ, limit in PARTIES:
        add_party(ledger.engine, ledger.catalogue, now, pid, name, typ)
        report.parties.append(set_limits(ledger.engine, pid, now, {"daily_limit": limit}).as_dict())
    feat = city.featured
    wanted: list[tuple[str, str | None, str]] = [
        ("provider", feat["objection"][0], "the utilities group: answers the pending objection"),
        ("relying-party", "shandong-air", "Shandong Airlines: may ask about travel measures"),
        ("subject", feat["person"], f"{feat['person_name']}: a listed judgment defaulter"),
        ("officer", feat["officer"], f"officer {feat['officer_name']}"),
        ("reviewer", feat["reviewer"], f"second officer {feat['reviewer_name']}"),
        ("auditor", None, "an auditor: reads the decision and action logs"),
        ("public", None, "the public: the portal's API"),
    ]
    report.keys = []
    for role, scope, label in wanted:
        key, token = create_key(ledger.engine, now, role, scope, label)
        report.keys.append(DemoKey(role, scope, label, key.key_id, token))


def city_loaded(ledger: Ledger) -> bool:
    """Whether the ledger already holds a generated city (its court has furnished records)."""
    with ledger.engine.connect() as conn:
        return (
            conn.execute(
                sa.select(entries.c.seq)
                .where(entries.c.authority_id == "rc-court", entries.c.op == "furnish")
                .limit(1)
            ).first()
            is not None
        )


def reuse_city(ledger: Ledger, city: City) -> BuildReport:
    """For a ledger that already holds ``city``: catch up, register parties, print new keys."""
    from socialcredit.errors import InputError
    from socialcredit.status.service import StatusService

    t0 = time.perf_counter()
    if not ledger.subject_records(city.featured["person"]):
        raise InputError(
            [
                Problem(
                    "city",
                    "different-city",
                    city.config.seed,
                    "the city in this file was built with other options (--people, --companies, "
                    "--seed, --years or another day): rebuild it with --fresh",
                )
            ]
        )
    report = BuildReport(
        db=ledger.url,
        today=city.today,
        people=len(city.people),
        organisations=len(city.organisations),
        records=city.record_count,
        featured=dict(city.featured),
    )
    StatusService(ledger).catch_up()
    _parties_and_keys(ledger, city, report)
    summarise(ledger, report)
    report.seconds["total"] = time.perf_counter() - t0
    return report


def summarise(ledger: Ledger, report: BuildReport) -> None:
    """Fill the report's counts from the ledger and the status tables."""
    from socialcredit.status.schema import status_current

    with ledger.engine.connect() as conn:
        report.entries = int(
            conn.execute(sa.select(sa.func.count()).select_from(entries)).scalar() or 0
        )
        kinds: collections.Counter[str] = collections.Counter()
        for kind, n in conn.execute(
            sa.select(entries.c.subject_kind, sa.func.count(sa.distinct(entries.c.subject_key)))
            .where(entries.c.op == "furnish")
            .group_by(entries.c.subject_kind)
        ):
            kinds["person" if kind == "person" else "organisation"] += int(n)
        report.subjects = dict(sorted(kinds.items()))
        lists: collections.Counter[str] = collections.Counter()
        pending: collections.Counter[str] = collections.Counter()
        review: collections.Counter[str] = collections.Counter()
        grades: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        seen: set[tuple[str, str]] = set()
        for subject, status in conn.execute(
            sa.select(status_current.c.subject, status_current.c.status).order_by(
                status_current.c.rulebook_id
            )
        ):
            st = orjson.loads(status)
            for m in st.get("memberships", []):
                if (subject, "list:" + m["list"]) not in seen:
                    seen.add((subject, "list:" + m["list"]))
                    lists[m["list"]] += 1
            for p in st.get("pending", []):
                lid = p.get("list") or p.get("list_id") or "?"
                if (subject, "pending:" + lid) not in seen:
                    seen.add((subject, "pending:" + lid))
                    pending[lid] += 1
            for rv in st.get("review", []):
                if rv.get("state") == "proposed" and (subject, "review:" + rv["list"]) not in seen:
                    seen.add((subject, "review:" + rv["list"]))
                    review[rv["list"]] += 1
            for s in st.get("schemes", []):
                if s.get("grade") and (subject, "scheme:" + s["scheme"]) not in seen:
                    seen.add((subject, "scheme:" + s["scheme"]))
                    grades[s["scheme"]][s["grade"]] += 1
    report.lists = dict(sorted(lists.items()))
    report.pending = dict(sorted(pending.items()))
    report.review = dict(sorted(review.items()))
    report.grades = {k: dict(sorted(v.items())) for k, v in sorted(grades.items())}
