"""Live status: the ledger's effects under the active rulebooks, kept current incrementally.

The service reads the ledger's own ``entries`` table; it needs no hook in the ledger:

* :meth:`StatusService.catch_up` takes the entries after the watermark, re-evaluates the subjects
  they touch (every active rulebook, as of the clock's today) and writes status, history, the
  measure index, a change marker and the new watermark in **one** transaction. A crash loses
  nothing: the watermark moves only with the status it stands for.
* :meth:`StatusService.sweep` re-evaluates the subjects whose ``next_change`` has come (terms that
  end, points that are restored, cycles that turn over, listings whose grace period is over).
* :meth:`StatusService.rebuild` recomputes everything from the ledger into the same tables; a
  property test proves it equal to the incremental path.

Writers are optimistic across processes: each reads the watermark, evaluates without holding a
lock, then writes under the status lock only if the watermark has not moved (else it starts over).
Within a process a lock keeps them from racing each other.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from socialcredit import ids
from socialcredit.cases.gate import gate
from socialcredit.catalog import Catalogue
from socialcredit.clock import Clock
from socialcredit.engine.records import Rec
from socialcredit.engine.reference import Status, evaluate
from socialcredit.errors import InputError, NotFoundError, Problem
from socialcredit.ledger import Ledger, RecordView
from socialcredit.ledger.schema import entries
from socialcredit.ledger.store import fold_subject, newest_seq, subject_entries
from socialcredit.rulebooks import Issue, Rulebook, RulebookError, load_folder
from socialcredit.rulebooks.loader import shipped_dir
from socialcredit.status.db import STATUS_LOCK_KEY, locked_transaction, naive_utc
from socialcredit.status.schema import (
    active_rulebooks,
    measure_index,
    status_changes,
    status_current,
    status_history,
    status_watermark,
)

WATERMARK = "ledger"
CHUNK = 500  # subjects per query


def status_json(status: Status, review: list[dict[str, Any]] | None = None) -> str:
    """The stored form of a status: canonical JSON without ``as_of`` (kept in ``evaluated_for``).

    ``review``: memberships the review gate withheld (``socialcredit.cases.gate``), if any.
    """
    d = status.as_dict()
    del d["as_of"]
    if review:
        d["review"] = review
    return orjson.dumps(d, option=orjson.OPT_SORT_KEYS).decode()


def rec_of(v: RecordView) -> Rec:
    """The engine's view of a ledger record (as ``Rec.from_row(v.as_dict())``, without the detour)."""
    return Rec(
        v.record_id,
        v.subject,
        v.subject_kind,
        v.kind,
        v.decision_date,
        v.severity,
        v.amount_minor,
        v.attributes,
        v.in_force,
    )


def _chunks(items: Sequence[str], n: int = CHUNK) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


@dataclass(frozen=True, slots=True)
class Active:
    """An active rulebook: its row in ``active_rulebooks`` and the loaded rulebook."""

    rulebook: Rulebook
    source: str
    activated_at: dt.datetime


@dataclass(slots=True)
class Evaluated:
    """One subject re-evaluated under every active rulebook."""

    subject: str
    ledger_seq: int
    statuses: list[tuple[str, str, str, dt.date | None]] = field(default_factory=list)
    # (rulebook id, rulebook ref, status JSON, next change)
    measures: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Report:
    subjects: int
    changed: int
    watermark: int


class StatusService:
    """Materialised status for the active rulebooks. Thread-safe; cheap to call when idle."""

    def __init__(
        self,
        ledger: Ledger,
        rulebooks: Sequence[Rulebook] | None = None,
        catalogue: Catalogue | None = None,
        clock: Clock | None = None,
    ):
        self.ledger = ledger
        self.engine = ledger.engine
        self.catalogue = catalogue or ledger.catalogue
        self.clock = clock or ledger.clock
        self._lock = threading.RLock()
        self._fixed = rulebooks is not None
        self._active: dict[str, Active] = {}
        self._fingerprint: tuple[Any, ...] | None = None
        if rulebooks is not None:
            now = naive_utc(self.clock.now())
            self._active = {rb.id: Active(rb, rb.id, now) for rb in rulebooks}
        else:
            self.refresh_rulebooks()

    # ------------------------------------------------------------------ rulebooks

    @property
    def rulebooks(self) -> list[Rulebook]:
        return [a.rulebook for a in sorted(self._active.values(), key=lambda a: a.rulebook.id)]

    def active(self) -> list[Active]:
        return sorted(self._active.values(), key=lambda a: a.rulebook.id)

    def refresh_rulebooks(self) -> bool:
        """Reload the active rulebooks if another process changed them. True if they changed."""
        if self._fixed:
            return False
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(active_rulebooks).order_by("rulebook_id")).all()
        fp = tuple((r.rulebook_id, r.version, r.source) for r in rows)
        if fp == self._fingerprint:
            return False
        loaded: dict[str, Active] = {}
        for r in rows:
            rb = load_folder(r.source).rulebook
            if rb.version != r.version:
                raise RulebookError(
                    [
                        Issue(
                            r.source,
                            None,
                            "version",
                            "version-changed",
                            f"{r.ref} is active but {r.source} now holds version {rb.version}: "
                            f"activate it again (socialcredit status activate {r.source})",
                        )
                    ]
                )
            loaded[rb.id] = Active(rb, r.source, r.activated_at)
        with self._lock:
            self._active, self._fingerprint = loaded, fp
        return True

    def activate(self, name: str | Path, *, lint: bool = True) -> Report:
        """Enforce a rulebook (shipped name or folder): lint it, record it, rebuild the status.

        Historical rulebooks (charter art. 2) and rulebooks with lint errors are refused.
        """
        try:
            loaded = load_folder(name)
        except RulebookError as e:
            raise InputError(
                Problem(i.path or "rulebook", i.rule, f"{i.file}:{i.line or ''}", i.message)
                for i in e.issues
            ) from None
        rb = loaded.rulebook
        if rb.historical:
            raise InputError(
                [
                    Problem(
                        "rulebook",
                        "historical",
                        rb.ref,
                        f"{rb.ref} is a historical rulebook (charter art. 2): "
                        "it runs only in the simulator and is never enforced",
                    )
                ]
            )
        if lint:
            from socialcredit.rulebooks.lint import lint as lint_rulebook

            issues = lint_rulebook(loaded, self.catalogue)
            if issues:
                raise InputError(
                    Problem(i.path or "rulebook", i.rule, f"{i.file}:{i.line or ''}", i.message)
                    for i in issues
                )
        folder = loaded.folder.resolve()
        shipped = (shipped_dir() / folder.name).resolve()
        source = folder.name if shipped == folder else str(folder)
        now = naive_utc(self.clock.now())
        active = dict(self._active)
        active[rb.id] = Active(rb, source, now)
        row = {
            "rulebook_id": rb.id,
            "version": rb.version,
            "ref": rb.ref,
            "source": source,
            "activated_at": now,
        }
        return self._rebuild(active, activate=row)

    def deactivate(self, rulebook_id: str) -> Report:
        if rulebook_id not in self._active:
            raise NotFoundError(f"rulebook '{rulebook_id}' is not active")
        active = {k: v for k, v in self._active.items() if k != rulebook_id}
        return self._rebuild(active, deactivate=rulebook_id)

    # ------------------------------------------------------------------ reading

    def watermark(self, conn: sa.Connection | None = None) -> int:
        q = sa.select(status_watermark.c.seq).where(status_watermark.c.name == WATERMARK)
        if conn is None:
            with self.engine.connect() as c:
                v = c.execute(q).scalar()
        else:
            v = conn.execute(q).scalar()
        return int(v or 0)

    def lag(self) -> int:
        """How many ledger entries are not yet reflected in the status tables."""
        with self.engine.connect() as conn:
            return newest_seq(conn) - self.watermark(conn)

    def current(self, subject: str) -> list[dict[str, Any]]:
        """The materialised status rows of one subject, one per active rulebook."""
        key = ids.parse_key(subject).key
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(status_current)
                .where(status_current.c.subject == key)
                .order_by(status_current.c.rulebook_id)
            ).mappings()
            return [
                {
                    "rulebook": r["rulebook_ref"],
                    "evaluated_for": r["evaluated_for"].isoformat(),
                    "next_change": r["next_change"].isoformat() if r["next_change"] else None,
                    "ledger_seq": r["ledger_seq"],
                    "status": orjson.loads(r["status"]),
                }
                for r in rows
            ]

    def history(self, subject: str) -> list[dict[str, Any]]:
        """A subject's path: every change of status under each rulebook, oldest first."""
        key = ids.parse_key(subject).key
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(status_history)
                .where(status_history.c.subject == key)
                .order_by(status_history.c.id)
            ).mappings()
            return [
                {
                    "rulebook": r["rulebook_ref"],
                    "from": r["from_date"].isoformat(),
                    "ledger_seq": r["ledger_seq"],
                    "status": orjson.loads(r["status"]),
                }
                for r in rows
            ]

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Everything rebuild() recomputes, in a comparable form (no evaluation days or times)."""
        with self.engine.connect() as conn:
            cur = conn.execute(
                sa.select(
                    status_current.c.subject,
                    status_current.c.rulebook_id,
                    status_current.c.rulebook_ref,
                    status_current.c.status,
                    status_current.c.next_change,
                    status_current.c.ledger_seq,
                ).order_by(status_current.c.subject, status_current.c.rulebook_id)
            ).all()
            idx = conn.execute(
                sa.select(
                    measure_index.c.subject,
                    measure_index.c.rulebook_id,
                    measure_index.c.measure,
                    measure_index.c.memorandum,
                    measure_index.c.via,
                    measure_index.c.rulebook_ref,
                    measure_index.c.domain,
                    measure_index.c.basis,
                    measure_index.c.since,
                ).order_by(
                    measure_index.c.subject,
                    measure_index.c.rulebook_id,
                    measure_index.c.measure,
                    measure_index.c.memorandum,
                    measure_index.c.via,
                )
            ).all()
        return {"status_current": [tuple(r) for r in cur], "measure_index": [tuple(r) for r in idx]}

    # ------------------------------------------------------------------ evaluating

    def _records(self, conn: sa.Connection, subjects: Sequence[str]) -> dict[str, Any]:
        """{subject: (last seq, [RecordView], [action entry])} for a chunk of subjects."""
        out: dict[str, Any] = {}
        for s, es in subject_entries(conn, subjects, chunk=len(subjects) or 1).items():
            views, actions = fold_subject(es)
            out[s] = (es[-1]["seq"] if es else 0, views, actions)
        return out

    def evaluate_subjects(
        self, subjects: Iterable[str], today: dt.date, active: Mapping[str, Active] | None = None
    ) -> list[Evaluated]:
        """Evaluate subjects under the active rulebooks as of ``today`` (reads the ledger)."""
        books = [
            a.rulebook
            for a in sorted((self._active if active is None else active).values(), key=_rb_id)
        ]
        memo_basis = {
            (rb.id, m.id): " ".join(m.legal_basis.split()) for rb in books for m in rb.memoranda
        }
        measures_cat = self.catalogue.measures
        out: list[Evaluated] = []
        todo = sorted(set(subjects))
        for chunk in _chunks(todo):
            with self.engine.connect() as conn:
                loaded = self._records(conn, chunk)
            for subject in chunk:
                seq, views, actions = loaded[subject]
                recs = [rec_of(v) for v in views]
                kind = next((r.subject_kind for r in reversed(recs) if r.subject_kind), None)
                if kind is None:
                    try:
                        kind = ids.parse_key(subject).subject_kind
                    except ids.IdError:
                        kind = None
                ev = Evaluated(subject, seq)
                for rb in books:
                    st = evaluate(rb, recs, today, subject=subject, subject_kind=kind)
                    st, withheld = gate(rb, st, actions)  # human review and halts
                    ev.statuses.append((rb.id, rb.ref, status_json(st, withheld), st.next_change))
                    since = {m.list_id: m.since for m in st.memberships}
                    for m in st.measures:
                        cat = measures_cat.get(m.measure_id)
                        list_id = m.via[5:] if m.via.startswith("list:") else None
                        ev.measures.append(
                            {
                                "subject": subject,
                                "rulebook_id": rb.id,
                                "measure": m.measure_id,
                                "memorandum": m.memorandum_id,
                                "via": m.via,
                                "rulebook_ref": rb.ref,
                                "domain": cat.domain if cat else "unknown",
                                "basis": orjson.dumps(
                                    {
                                        "records": list(m.basis),
                                        "legal_basis": memo_basis.get((rb.id, m.memorandum_id)),
                                    },
                                    option=orjson.OPT_SORT_KEYS,
                                ).decode(),
                                "since": since.get(list_id) if list_id else None,
                            }
                        )
                out.append(ev)
        return out

    # ------------------------------------------------------------------ writing

    def _write(
        self,
        results: Sequence[Evaluated],
        *,
        expect_wm: int,
        new_wm: int,
        today: dt.date,
        full: bool = False,
        active: Mapping[str, Active] | None = None,
        activate: Mapping[str, Any] | None = None,
        deactivate: str | None = None,
    ) -> int | None:
        """Write evaluations if the watermark is still ``expect_wm``. Returns subjects changed."""
        now = naive_utc(self.clock.now())
        active_ids = sorted((self._active if active is None else active).keys())
        with locked_transaction(self.engine, STATUS_LOCK_KEY) as conn:
            if self.watermark(conn) != expect_wm:
                return None
            if activate is not None:
                conn.execute(
                    active_rulebooks.delete().where(
                        active_rulebooks.c.rulebook_id == activate["rulebook_id"]
                    )
                )
                conn.execute(active_rulebooks.insert().values(**activate))
            if deactivate is not None:
                conn.execute(
                    active_rulebooks.delete().where(active_rulebooks.c.rulebook_id == deactivate)
                )
            if full:
                conn.execute(measure_index.delete())
                conn.execute(
                    status_current.delete().where(status_current.c.rulebook_id.notin_(active_ids))
                )
            changed: list[str] = []
            for start in range(0, len(results), CHUNK):
                part = results[start : start + CHUNK]
                keys = [r.subject for r in part]
                old = {
                    (r.subject, r.rulebook_id): (r.status, r.rulebook_ref)
                    for r in conn.execute(
                        sa.select(
                            status_current.c.subject,
                            status_current.c.rulebook_id,
                            status_current.c.status,
                            status_current.c.rulebook_ref,
                        ).where(status_current.c.subject.in_(keys))
                    )
                }
                inserts: list[dict[str, Any]] = []
                updates: list[dict[str, Any]] = []
                history: list[dict[str, Any]] = []
                changed_here: list[str] = []
                for ev in part:
                    subject_changed = False
                    for rb_id, ref, text, nxt in ev.statuses:
                        row = {
                            "subject": ev.subject,
                            "rulebook_id": rb_id,
                            "rulebook_ref": ref,
                            "evaluated_for": today,
                            "status": text,
                            "next_change": nxt,
                            "ledger_seq": ev.ledger_seq,
                            "updated_at": now,
                        }
                        prev = old.get((ev.subject, rb_id))
                        if prev is None:
                            inserts.append(row)
                        else:
                            updates.append({f"b_{k}": v for k, v in row.items()})
                        if prev != (text, ref):
                            subject_changed = True
                            history.append(
                                {
                                    "subject": ev.subject,
                                    "rulebook_id": rb_id,
                                    "rulebook_ref": ref,
                                    "from_date": today,
                                    "status": text,
                                    "ledger_seq": ev.ledger_seq,
                                    "recorded_at": now,
                                }
                            )
                    if subject_changed or full:
                        changed_here.append(ev.subject)
                    if subject_changed:
                        changed.append(ev.subject)
                if inserts:
                    conn.execute(status_current.insert(), inserts)
                if updates:
                    conn.execute(_UPDATE_STATUS, updates)
                if history:
                    conn.execute(status_history.insert(), history)
                if changed_here:
                    if not full:
                        conn.execute(
                            measure_index.delete().where(measure_index.c.subject.in_(changed_here))
                        )
                    wanted = set(changed_here)
                    rows = [m for ev in part if ev.subject in wanted for m in ev.measures]
                    if rows:
                        conn.execute(measure_index.insert(), rows)
            marks: list[str | None] = [None] if full else list(changed)
            if marks:
                base = conn.execute(sa.select(sa.func.max(status_changes.c.change_seq))).scalar()
                n = int(base or 0)
                conn.execute(
                    status_changes.insert(),
                    [
                        {"change_seq": n + i + 1, "subject": s, "at": now}
                        for i, s in enumerate(marks)
                    ],
                )
            if new_wm != expect_wm or full:
                updated = conn.execute(
                    status_watermark.update()
                    .where(status_watermark.c.name == WATERMARK)
                    .values(seq=new_wm)
                ).rowcount
                if not updated:
                    conn.execute(status_watermark.insert().values(name=WATERMARK, seq=new_wm))
            return len(changed)

    # ------------------------------------------------------------------ the three paths

    def catch_up(self, *, limit: int = 5000, refresh: bool = True) -> Report:
        """Reflect every ledger entry after the watermark. Returns what was re-evaluated.

        ``refresh=False`` skips checking whether another process changed the active rulebooks
        (the API's write path: its background loop checks every second).
        """
        subjects = changed = 0
        with self._lock:
            if refresh:
                self.refresh_rulebooks()
            while True:
                today = self.clock.now().date()
                with self.engine.connect() as conn:
                    wm = self.watermark(conn)
                    rows = conn.execute(
                        sa.select(entries.c.seq, entries.c.subject_key)
                        .where(entries.c.seq > wm)
                        .order_by(entries.c.seq)
                        .limit(limit)
                    ).all()
                if not rows:
                    return Report(subjects, changed, wm)
                todo = {r[1] for r in rows if r[1] is not None}
                results = self.evaluate_subjects(todo, today) if self._active else []
                n = self._write(results, expect_wm=wm, new_wm=int(rows[-1][0]), today=today)
                if n is not None:
                    subjects += len(results)
                    changed += n
                    if len(rows) < limit:  # that was everything (as of the read)
                        return Report(subjects, changed, int(rows[-1][0]))

    def sweep(self) -> Report:
        """Re-evaluate the subjects whose status changes on or before today (terms, restoration)."""
        subjects = changed = 0
        with self._lock:
            self.refresh_rulebooks()
            seen: set[str] = set()
            while True:
                today = self.clock.now().date()
                with self.engine.connect() as conn:
                    wm = self.watermark(conn)
                    due = [
                        s
                        for (s,) in conn.execute(
                            sa.select(status_current.c.subject)
                            .where(
                                status_current.c.next_change <= today,
                                status_current.c.rulebook_id.in_(sorted(self._active)),
                            )
                            .distinct()
                            .limit(5000)
                        )
                    ]
                todo = [s for s in due if s not in seen]
                if not todo:
                    return Report(subjects, changed, wm)
                results = self.evaluate_subjects(todo, today)
                n = self._write(results, expect_wm=wm, new_wm=wm, today=today)
                if n is not None:
                    seen.update(todo)
                    subjects += len(results)
                    changed += n

    def rebuild(self) -> Report:
        """Recompute status and the measure index for every subject from the ledger."""
        with self._lock:
            self.refresh_rulebooks()
            return self._rebuild(dict(self._active))

    def _rebuild(
        self,
        active: dict[str, Active],
        *,
        activate: Mapping[str, Any] | None = None,
        deactivate: str | None = None,
    ) -> Report:
        with self._lock:
            while True:
                today = self.clock.now().date()
                with self.engine.connect() as conn:
                    wm = self.watermark(conn)
                    head = newest_seq(conn)
                    subjects = [
                        s
                        for (s,) in conn.execute(
                            sa.select(entries.c.subject_key)
                            .where(entries.c.subject_key.is_not(None), entries.c.seq <= head)
                            .distinct()
                        )
                    ]
                results = self.evaluate_subjects(subjects, today, active) if active else []
                n = self._write(
                    results,
                    expect_wm=wm,
                    new_wm=head,
                    today=today,
                    full=True,
                    active=active,
                    activate=activate,
                    deactivate=deactivate,
                )
                if n is not None:
                    self._active = active
                    if not self._fixed:
                        self._fingerprint = tuple(
                            (a.rulebook.id, a.rulebook.version, a.source)
                            for a in sorted(active.values(), key=_rb_id)
                        )
                    return Report(len(results), n, head)


def _rb_id(a: Active) -> str:
    return a.rulebook.id


_UPDATE_STATUS = (
    status_current.update()
    .where(
        status_current.c.subject == sa.bindparam("b_subject"),
        status_current.c.rulebook_id == sa.bindparam("b_rulebook_id"),
    )
    .values(
        rulebook_ref=sa.bindparam("b_rulebook_ref"),
        evaluated_for=sa.bindparam("b_evaluated_for"),
        status=sa.bindparam("b_status"),
        next_change=sa.bindparam("b_next_change"),
        ledger_seq=sa.bindparam("b_ledger_seq"),
        updated_at=sa.bindparam("b_updated_at"),
    )
)
