"""The ledger: append-only, hash-chained entries, and the views folded from them.

Every change is a new entry. A record's lineage starts with a ``furnish`` entry; ``correct``
entries replace its content, ``retract`` and ``overturn`` end it, and ``dispute`` / ``confirm`` /
``suspend`` / ``reinstate`` / ``statement`` change its standing. Authorities are registered by
``authority`` entries; the ``authorities`` table is their projection. ``action`` entries record
due-process events and officer actions (``socialcredit.cases``): they are chained like every other
entry but never change a record view.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from socialcredit import ids
from socialcredit.catalog import Catalogue, load_catalogue
from socialcredit.clock import Clock, SystemClock
from socialcredit.errors import ConflictError, InputError, NotFoundError, Problem
from socialcredit.ledger import chain
from socialcredit.ledger.db import is_sqlite, make_engine, migrate, resolve_url, write_transaction
from socialcredit.ledger.schema import authorities as authorities_t
from socialcredit.ledger.schema import entries as entries_t
from socialcredit.ledger.validate import Authority, RecordValidator

RECORD_OPS = ("furnish", "correct")
END_OPS = ("retract", "overturn")
STATE_OPS = ("dispute", "confirm", "suspend", "reinstate", "statement")
ACTION_OP = "action"  # a case event or an officer action (socialcredit.cases)
OPS = ("authority", *RECORD_OPS, *END_OPS, *STATE_OPS, ACTION_OP)

COLUMNS = tuple(c.name for c in entries_t.columns)
_HEAD = ("op", "authority_id", "authority_ref", "target_seq")
_BODY = COLUMNS[COLUMNS.index("subject_key") : COLUMNS.index("reason") + 1]
_head_cols = operator.itemgetter(*_HEAD)
_body_cols = operator.itemgetter(*_BODY)
_EMPTY_DRAFT: dict[str, Any] = dict.fromkeys((*_HEAD, "origin_seq", *_BODY, "content_hash"))
_DRAFT_SIZE = len(_EMPTY_DRAFT)
_INSERT_SQL = f"INSERT INTO entries ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_COPY_SQL = f"COPY entries ({', '.join(COLUMNS)}) FROM STDIN"


@dataclass(frozen=True, slots=True)
class Appended:
    """What became of each draft handed to :meth:`Ledger.append`, by its index in the batch."""

    stored: list[tuple[int, int]] = field(default_factory=list)  # (index, seq)
    duplicates: list[tuple[int, int]] = field(default_factory=list)  # (index, existing seq)
    conflicts: list[tuple[int, Problem]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Outcome:
    seq: int
    status: str  # "stored" | "duplicate"


@dataclass(slots=True)
class RecordView:
    """The current state of one record lineage, folded from its entries."""

    record_id: int  # the entry holding the current content
    origin_id: int  # the furnish entry that started the lineage
    subject: str
    subject_kind: str | None
    subject_name: str | None
    kind: str
    authority_id: str
    authority_ref: str
    decision_no: str
    decision_date: dt.date
    severity: str | None
    amount_minor: int | None
    legal_basis: str
    attributes: dict[str, Any]
    recorded_at: dt.datetime
    state: str = "active"  # active | retracted | overturned
    disputed: bool = False
    suspended: bool = False
    versions: int = 1
    statements: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def in_force(self) -> bool:
        """Whether rules may read this record now (disputed records count until suspended)."""
        return self.state == "active" and not self.suspended

    @property
    def amount(self) -> float | None:
        return None if self.amount_minor is None else self.amount_minor / 100

    def as_dict(self, *, history: bool = True) -> dict[str, Any]:
        d = {
            "record_id": self.record_id,
            "origin_id": self.origin_id,
            "subject": self.subject,
            "subject_kind": self.subject_kind,
            "subject_name": self.subject_name,
            "kind": self.kind,
            "authority_id": self.authority_id,
            "authority_ref": self.authority_ref,
            "decision_no": self.decision_no,
            "decision_date": self.decision_date.isoformat(),
            "severity": self.severity,
            "amount": self.amount,
            "legal_basis": self.legal_basis,
            "attributes": self.attributes,
            "recorded_at": chain.stamp(self.recorded_at),
            "state": self.state,
            "disputed": self.disputed,
            "suspended": self.suspended,
            "in_force": self.in_force,
            "versions": self.versions,
            "statements": self.statements,
        }
        if history:
            d["history"] = self.history
        return d


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    reason: str | None = None


def newest_seq(conn: sa.Connection) -> int:
    """The sequence number of the ledger's newest entry (0 while it is empty): how far a reader
    that tails the ledger (status, notices, search, caches) has to go."""
    return int(conn.execute(sa.select(sa.func.max(entries_t.c.seq))).scalar() or 0)


def _naive_utc(t: dt.datetime) -> dt.datetime:
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t


def _history_item(e: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "seq": e["seq"],
        "op": e["op"],
        "by": e["authority_id"],
        "ref": e["authority_ref"],
        "recorded_at": chain.stamp(e["recorded_at"]),
        "reason": e["reason"],
    }


def _view(e: Mapping[Any, Any]) -> RecordView:
    return RecordView(
        record_id=e["seq"],
        origin_id=e["origin_seq"] or e["seq"],
        subject=e["subject_key"],
        subject_kind=e["subject_kind"],
        subject_name=e["subject_name"],
        kind=e["kind"],
        authority_id=e["authority_id"],
        authority_ref=e["authority_ref"],
        decision_no=e["decision_no"],
        decision_date=e["decision_date"],
        severity=e["severity"],
        amount_minor=e["amount_minor"],
        legal_basis=e["legal_basis"],
        attributes=json.loads(e["attributes"]) if e["attributes"] else {},
        recorded_at=e["recorded_at"],
        history=[_history_item(e)],
    )


def apply_entry(views: dict[int, RecordView], e: Mapping[Any, Any]) -> None:
    """Fold one entry into the record views it touches (keyed by origin id)."""
    op = e["op"]
    if op == "furnish":
        views[e["seq"]] = _view(e)
        return
    if op == ACTION_OP:  # case events and officer actions never change a record's view
        return
    origin = e["origin_seq"]
    v = views.get(origin)
    if v is None:
        return
    v.history.append(_history_item(e))
    if op == "correct":
        nv = _view(e)
        nv.origin_id, nv.versions, nv.history = origin, v.versions + 1, v.history
        nv.statements, nv.suspended = v.statements, v.suspended
        views[origin] = nv
    elif op == "retract":
        v.state = "retracted"
    elif op == "overturn":
        v.state = "overturned"
    elif op == "dispute":
        v.disputed = True
    elif op == "confirm":
        v.disputed = False
    elif op == "suspend":
        v.suspended = True
    elif op == "reinstate":
        v.suspended = False
    elif op == "statement" and e["reason"]:
        v.statements.append(e["reason"])


def subject_entries(
    conn: sa.Connection, subjects: Iterable[str], *, upto: int | None = None, chunk: int = 500
) -> dict[str, list[Mapping[Any, Any]]]:
    """Every entry about each subject, in ``seq`` order (up to ``upto`` if given).

    One ``IN`` query per ``chunk`` subjects; the one place that reads subjects' histories for
    status, notices and cases.
    """
    wanted = sorted(set(subjects))
    out: dict[str, list[Mapping[Any, Any]]] = {s: [] for s in wanted}
    for i in range(0, len(wanted), chunk):
        q = sa.select(entries_t).where(entries_t.c.subject_key.in_(wanted[i : i + chunk]))
        if upto is not None:
            q = q.where(entries_t.c.seq <= upto)
        for e in conn.execute(q.order_by(entries_t.c.seq)).mappings():
            out[e["subject_key"]].append(e)
    return out


def fold_subject(
    es: Iterable[Mapping[Any, Any]],
) -> tuple[list[RecordView], list[Mapping[Any, Any]]]:
    """A subject's (record views, action entries) from its entries in ``seq`` order."""
    views: dict[int, RecordView] = {}
    acts: list[Mapping[Any, Any]] = []
    for e in es:
        if e["op"] == ACTION_OP:
            acts.append(e)
        else:
            apply_entry(views, e)
    return list(views.values()), acts


class Ledger:
    """The registry's ledger. Open with :meth:`open`; every write goes through :meth:`append`."""

    def __init__(self, engine: sa.Engine, catalogue: Catalogue, clock: Clock):
        self.engine = engine
        self.catalogue = catalogue
        self.clock = clock

    @classmethod
    def open(
        cls,
        db: str | None = None,
        *,
        catalogue: Catalogue | None = None,
        clock: Clock | None = None,
        create: bool = True,
    ) -> Ledger:
        url = resolve_url(db)
        engine = make_engine(url)
        if create:
            migrate(engine)
        return cls(engine, catalogue or load_catalogue(), clock or SystemClock())

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def today(self) -> dt.date:
        return self.clock.now().date()

    # ------------------------------------------------------------------ authorities

    def register_authority(
        self,
        authority_id: str,
        name: str,
        type: str,
        kinds: Sequence[str],
        *,
        reason: str | None = None,
    ) -> int:
        """Register (or re-accredit) an authority for record kinds. Returns the entry's seq."""
        problems: list[Problem] = []
        if (
            not authority_id
            or len(authority_id) > 64
            or not all(c.isalnum() or c in "-_." for c in authority_id)
        ):
            problems.append(
                Problem(
                    "authority_id",
                    "format",
                    authority_id,
                    "must be 1-64 letters, digits, '-', '_' or '.'",
                )
            )
        if not name or not name.strip():
            problems.append(Problem("name", "required", name, "the authority's name is required"))
        if type not in self.catalogue.authority_types:
            problems.append(
                Problem(
                    "type",
                    "unknown-authority-type",
                    type,
                    f"'{type}' is not an authority type in the catalogue",
                )
            )
        for k in kinds:
            kind = self.catalogue.record_kinds.get(k)
            if kind is None:
                problems.append(
                    Problem(
                        "kinds", "unknown-kind", k, f"'{k}' is not a record kind in the catalogue"
                    )
                )
            elif type not in kind.furnisher_types:
                problems.append(
                    Problem(
                        "kinds",
                        "not-furnisher",
                        k,
                        f"an authority of type '{type}' cannot furnish '{k}' "
                        f"(furnished by: {', '.join(kind.furnisher_types)})",
                    )
                )
        if problems:
            raise InputError(problems)
        body = {"name": name.strip(), "type": type, "kinds": sorted(set(kinds))}
        try:
            current = self.authority(authority_id)
        except NotFoundError:
            pass
        else:
            if (current.name, current.type, sorted(current.kinds)) == (
                body["name"],
                type,
                body["kinds"],
            ):
                with self.engine.connect() as conn:
                    seq = conn.execute(
                        sa.select(authorities_t.c.seq).where(
                            authorities_t.c.authority_id == authority_id
                        )
                    ).scalar_one()
                return int(seq)
        draft = {
            "op": "authority",
            "authority_id": authority_id,
            "attributes": json.dumps(body, sort_keys=True),
            "reason": reason,
        }
        with write_transaction(self.engine) as conn:
            result = self.append(conn, [draft])
            seq = result.stored[0][1]
            self._project_authority(conn, authority_id, body, seq)
        return seq

    def _project_authority(
        self, conn: sa.Connection, authority_id: str, body: Mapping[str, Any], seq: int
    ) -> None:
        row = {
            "name": body["name"],
            "type": body["type"],
            "kinds": json.dumps(body["kinds"]),
            "seq": seq,
        }
        updated = conn.execute(
            authorities_t.update().where(authorities_t.c.authority_id == authority_id).values(**row)
        ).rowcount
        if not updated:
            conn.execute(authorities_t.insert().values(authority_id=authority_id, **row))

    def authority(self, authority_id: str) -> Authority:
        with self.engine.connect() as conn:
            r = conn.execute(
                sa.select(authorities_t).where(authorities_t.c.authority_id == authority_id)
            ).first()
        if r is None:
            raise NotFoundError(f"no authority '{authority_id}' is registered")
        return Authority(r.authority_id, r.name, r.type, frozenset(json.loads(r.kinds)))

    def authorities(self) -> list[Authority]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(authorities_t).order_by(authorities_t.c.authority_id)
            ).all()
        return [
            Authority(r.authority_id, r.name, r.type, frozenset(json.loads(r.kinds))) for r in rows
        ]

    def validator(self, authority_id: str) -> RecordValidator:
        return RecordValidator(self.catalogue, self.authority(authority_id), self.today())

    # ------------------------------------------------------------------ appending

    def head(self, conn: sa.Connection | None = None) -> tuple[int, str]:
        q = (
            sa.select(entries_t.c.seq, entries_t.c.entry_hash)
            .order_by(entries_t.c.seq.desc())
            .limit(1)
        )
        if conn is None:
            with self.engine.connect() as c:
                r = c.execute(q).first()
        else:
            r = conn.execute(q).first()
        return (0, chain.GENESIS) if r is None else (int(r[0]), str(r[1]))

    def append(
        self, conn: sa.Connection, drafts: Sequence[dict[str, Any]], *, import_id: int | None = None
    ) -> Appended:
        """Append drafts in one go inside a :func:`write_transaction`.

        A draft whose (authority, reference) is already in the ledger with the same content is a
        duplicate (nothing is written); with other content it is a conflict (reported, not stored).
        """
        for d in drafts:
            if "content_hash" not in d:
                d["content_hash"] = chain.content_hash(d)
            if d["op"] == "furnish":
                d["origin_seq"] = None  # set to its own seq in _chain
        savepoint = conn.begin_nested()
        try:
            rows = self._chain(conn, drafts, range(len(drafts)), import_id)
            self._insert(conn, rows)
        except sa.exc.IntegrityError:
            savepoint.rollback()
            return self._append_checked(conn, drafts, import_id)
        savepoint.commit()
        return Appended(stored=[(i, r[0]) for i, r in enumerate(rows)])

    def _append_checked(
        self, conn: sa.Connection, drafts: Sequence[dict[str, Any]], import_id: int | None
    ) -> Appended:
        result = Appended()
        by_authority: dict[str, set[str]] = {}
        for d in drafts:
            if d.get("authority_ref") is not None:
                by_authority.setdefault(d["authority_id"], set()).add(d["authority_ref"])
        known: dict[tuple[str, str], tuple[str, int]] = {}
        for authority_id, refs in by_authority.items():
            ref_list = sorted(refs)
            for i in range(0, len(ref_list), 500):
                chunk = ref_list[i : i + 500]
                for r in conn.execute(
                    sa.select(
                        entries_t.c.authority_ref, entries_t.c.content_hash, entries_t.c.seq
                    ).where(
                        entries_t.c.authority_id == authority_id,
                        entries_t.c.authority_ref.in_(chunk),
                    )
                ):
                    known[(authority_id, r[0])] = (r[1], r[2])
        keep: list[int] = []
        pending: dict[tuple[str, str], tuple[str, int]] = {}
        for i, d in enumerate(drafts):
            ref = d.get("authority_ref")
            if ref is None:
                keep.append(i)
                continue
            key = (d["authority_id"], ref)
            seen = known.get(key)
            if seen is not None:
                if seen[0] == d["content_hash"]:
                    result.duplicates.append((i, seen[1]))
                else:
                    result.conflicts.append(
                        (
                            i,
                            Problem(
                                "ref",
                                "conflict",
                                ref,
                                f"reference '{ref}' of '{key[0]}' is already in the ledger (entry {seen[1]}) "
                                "with different content; send a correction instead",
                            ),
                        )
                    )
                continue
            if key in pending:
                if pending[key][0] == d["content_hash"]:
                    result.duplicates.append((i, -1 - pending[key][1]))
                else:
                    result.conflicts.append(
                        (
                            i,
                            Problem(
                                "ref",
                                "conflict",
                                ref,
                                f"reference '{ref}' appears twice in this input with different content",
                            ),
                        )
                    )
                continue
            pending[key] = (d["content_hash"], i)
            keep.append(i)
        rows = self._chain(conn, drafts, keep, import_id)
        self._insert(conn, rows)
        seq_of = {i: r[0] for i, r in zip(keep, rows, strict=True)}
        result.stored.extend(seq_of.items())
        # a duplicate of a row stored in this same batch points at that row's new seq
        result.duplicates[:] = [
            (i, seq if seq >= 0 else seq_of[-1 - seq]) for i, seq in result.duplicates
        ]
        return result

    def _chain(
        self,
        conn: sa.Connection,
        drafts: Sequence[dict[str, Any]],
        indexes: Iterable[int],
        import_id: int | None,
    ) -> list[tuple[Any, ...]]:
        seq, prev = self.head(conn)
        now = _naive_utc(self.clock.now())
        tail = chain.hash_tail(now, import_id)
        sha = chain.sha256
        rows: list[tuple[Any, ...]] = []
        append = rows.append
        for i in indexes:
            d = drafts[i]
            if len(d) < _DRAFT_SIZE:
                d = {**_EMPTY_DRAFT, **d}
            seq += 1
            origin = d["origin_seq"] or (seq if d["op"] == "furnish" else None)
            content = d["content_hash"]
            h = sha(
                f"{seq}|{prev}|{content}|{tail[0]}|{origin or ''}|{tail[1]}".encode()
            ).hexdigest()
            append((seq, *_head_cols(d), origin, *_body_cols(d), now, import_id, content, prev, h))
            prev = h
        return rows

    def _insert(self, conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if is_sqlite(self.engine):
            conn.exec_driver_sql(_INSERT_SQL, rows)  # type: ignore[arg-type]
            return
        raw = conn.connection.driver_connection
        try:
            with raw.cursor() as cur, cur.copy(_COPY_SQL) as copy:  # type: ignore[union-attr]
                for r in rows:
                    copy.write_row(r)
        except (
            Exception
        ) as e:  # psycopg raises its own UniqueViolation; surface it like SQLAlchemy does
            import psycopg

            if isinstance(e, psycopg.errors.UniqueViolation):
                raise sa.exc.IntegrityError(_COPY_SQL, None, e) from e
            raise

    # ------------------------------------------------------------------ single writes

    def furnish(self, authority_id: str, row: Mapping[str, Any]) -> Outcome:
        """Validate and store one record. Raises InputError (nothing stored) or ConflictError."""
        draft, problems = self.validator(authority_id).validate(row)
        if draft is None:
            raise InputError(problems)
        return self._write_one(draft)

    def _write_one(self, draft: dict[str, Any]) -> Outcome:
        with write_transaction(self.engine) as conn:
            result = self.append(conn, [draft])
        return self._outcome(result)

    @staticmethod
    def _outcome(result: Appended) -> Outcome:
        if result.conflicts:
            raise ConflictError([result.conflicts[0][1]])
        if result.duplicates:
            return Outcome(result.duplicates[0][1], "duplicate")
        return Outcome(result.stored[0][1], "stored")

    def _current(self, conn: sa.Connection, target_seq: int) -> RecordView:
        target = (
            conn.execute(sa.select(entries_t).where(entries_t.c.seq == target_seq))
            .mappings()
            .first()
        )
        if target is None or target["op"] not in RECORD_OPS:
            raise NotFoundError(f"entry {target_seq} is not a record")
        views: dict[int, RecordView] = {}
        for e in conn.execute(
            sa.select(entries_t)
            .where(
                entries_t.c.subject_key == target["subject_key"],
                sa.or_(
                    entries_t.c.origin_seq == target["origin_seq"],
                    entries_t.c.seq == target["origin_seq"],
                ),
            )
            .order_by(entries_t.c.seq)
        ).mappings():
            apply_entry(views, e)
        return views[target["origin_seq"]]

    def _lineage_op(
        self,
        op: str,
        actor: str,
        target_seq: int,
        ref: str,
        reason: str | None,
        build: Callable[[RecordView], dict[str, Any]] | None = None,
    ) -> Outcome:
        if not ref or not ref.strip():
            raise InputError(
                [Problem("ref", "required", ref, f"a reference for this {op} is required")]
            )
        # the check and the write share one transaction under the chain-head lock, so two
        # concurrent retractions cannot both pass the check
        with write_transaction(self.engine) as conn:
            return self._outcome(
                self.append(
                    conn, [self._lineage_draft(conn, op, actor, target_seq, ref, reason, build)]
                )
            )

    def _lineage_draft(
        self,
        conn: sa.Connection,
        op: str,
        actor: str,
        target_seq: int,
        ref: str,
        reason: str | None,
        build: Callable[[RecordView], dict[str, Any]] | None,
    ) -> dict[str, Any]:
        current = self._current(conn, target_seq)
        if current.record_id != target_seq:
            raise InputError(
                [
                    Problem(
                        "target",
                        "superseded",
                        target_seq,
                        f"entry {target_seq} was superseded by entry {current.record_id}; "
                        f"{op} the current version",
                    )
                ]
            )
        if current.state != "active":
            raise InputError(
                [
                    Problem(
                        "target",
                        "ended",
                        target_seq,
                        f"record {current.origin_id} was {current.state}; nothing can follow",
                    )
                ]
            )
        draft = build(current) if build else {}
        draft.update(
            {
                "op": op,
                "authority_id": actor,
                "authority_ref": ref.strip(),
                "target_seq": target_seq,
                "origin_seq": current.origin_id,
                "subject_key": current.subject,
                "reason": reason,
            }
        )
        if op != "correct":
            draft.update({"subject_kind": current.subject_kind, "kind": current.kind})
        return draft

    def _check_actor(
        self, authority_id: str, current_authority: str, op: str, allow_court: bool = False
    ) -> None:
        actor = self.authority(authority_id)
        if actor.authority_id == current_authority or (allow_court and actor.type == "court"):
            return
        raise InputError(
            [
                Problem(
                    "authority",
                    "not-furnisher",
                    authority_id,
                    f"only '{current_authority}', which furnished the record, may {op} it"
                    + (" (or a court)" if allow_court else ""),
                )
            ]
        )

    def correct(
        self, authority_id: str, target_seq: int, ref: str, changes: Mapping[str, Any], reason: str
    ) -> Outcome:
        """Replace a record's content; ``changes`` uses the record field names of a furnished row."""
        if not reason or not reason.strip():
            raise InputError([Problem("reason", "required", reason, "a correction needs a reason")])
        return self._lineage_op(
            "correct",
            authority_id,
            target_seq,
            ref,
            reason.strip(),
            self._correct_builder(authority_id, ref, changes),
        )

    def lineage_draft(
        self,
        conn: sa.Connection,
        op: str,
        actor: str,
        target_seq: int,
        ref: str,
        reason: str | None,
        changes: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The checked draft of one lineage entry, inside the caller's write transaction.

        For writers that append a lineage entry together with other entries (the cases room
        appends ``dispute``/``confirm``/``suspend``/... with its ``action`` entry in one append).
        ``correct``, ``retract`` and ``overturn`` check that ``actor`` may do it, as their
        methods do; the standing ops (``dispute`` ... ``statement``) are the registry's own.
        """
        if op not in (*RECORD_OPS[1:], *END_OPS, *STATE_OPS):
            raise ValueError(f"'{op}' is not a lineage op")
        build: Callable[[RecordView], dict[str, Any]] | None = None
        if op == "correct":
            build = self._correct_builder(actor, ref, changes or {})
        elif op in END_OPS:

            def build(cur: RecordView) -> dict[str, Any]:
                self._check_actor(actor, cur.authority_id, op, op == "overturn")
                return {}

        return self._lineage_draft(conn, op, actor, target_seq, ref, reason, build)

    def _correct_builder(
        self, authority_id: str, ref: str, changes: Mapping[str, Any]
    ) -> Callable[[RecordView], dict[str, Any]]:
        def build(cur: RecordView) -> dict[str, Any]:
            self._check_actor(authority_id, cur.authority_id, "correct")
            row: dict[str, Any] = {
                "ref": ref,
                "subject": cur.subject,
                "subject_name": cur.subject_name,
                "kind": cur.kind,
                "decision_no": cur.decision_no,
                "decision_date": cur.decision_date,
                "severity": cur.severity,
                "amount": None if cur.amount_minor is None else f"{cur.amount_minor / 100:.2f}",
                "legal_basis": cur.legal_basis,
                "attributes": dict(cur.attributes),
            }
            for k, v in changes.items():
                if k.startswith("attr."):
                    row["attributes"][k[5:]] = v
                elif k == "attributes" and isinstance(v, Mapping):
                    row["attributes"].update(v)
                else:
                    row[k] = v
            if ids.parse_key(str(row["subject"])).key != cur.subject:
                raise InputError(
                    [
                        Problem(
                            "subject",
                            "immutable",
                            row["subject"],
                            "a correction cannot move a record to another subject: "
                            "retract it and furnish a new record",
                        )
                    ]
                )
            validator = RecordValidator(
                self.catalogue, self.authority(cur.authority_id), self.today()
            )
            draft, problems = validator.validate(row)
            if draft is None:
                raise InputError(problems)
            draft["authority_id"] = authority_id
            return draft

        return build

    def retract(self, authority_id: str, target_seq: int, ref: str, reason: str) -> Outcome:
        return self._end("retract", authority_id, target_seq, ref, reason, allow_court=False)

    def overturn(self, authority_id: str, target_seq: int, ref: str, reason: str) -> Outcome:
        return self._end("overturn", authority_id, target_seq, ref, reason, allow_court=True)

    def _end(
        self, op: str, authority_id: str, target_seq: int, ref: str, reason: str, allow_court: bool
    ) -> Outcome:
        if not reason or not reason.strip():
            raise InputError([Problem("reason", "required", reason, f"a {op} needs a reason")])

        def build(cur: RecordView) -> dict[str, Any]:
            self._check_actor(authority_id, cur.authority_id, op, allow_court)
            return {}

        return self._lineage_op(op, authority_id, target_seq, ref, reason.strip(), build)

    # ------------------------------------------------------------------ reading

    def entry(self, seq: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(entries_t).where(entries_t.c.seq == seq)).mappings().first()
        if r is None:
            raise NotFoundError(f"no entry {seq}")
        return dict(r)

    def subject_records(
        self, subject: str, *, known_at: dt.datetime | None = None
    ) -> list[RecordView]:
        """Every record lineage about a subject, as the ledger knew it at ``known_at`` (default: now)."""
        key = ids.parse_key(subject).key
        q = sa.select(entries_t).where(entries_t.c.subject_key == key)
        if known_at is not None:
            q = q.where(entries_t.c.recorded_at <= _naive_utc(known_at))
        views: dict[int, RecordView] = {}
        with self.engine.connect() as conn:
            for e in conn.execute(q.order_by(entries_t.c.seq)).mappings():
                apply_entry(views, e)
        return sorted(views.values(), key=lambda v: (v.decision_date, v.origin_id))

    def iter_records(
        self, *, known_at: dt.datetime | None = None, batch: int = 10_000
    ) -> Iterator[RecordView]:
        """Every record lineage in the ledger, in order of first furnishing (streamed).

        Entries that modify a lineage are few; they are read first and folded into the stream of
        ``furnish`` entries, so memory grows with the number of modifications, not of records.
        """
        cut = [] if known_at is None else [entries_t.c.recorded_at <= _naive_utc(known_at)]
        mods: dict[int, list[Mapping[str, Any]]] = {}
        with self.engine.connect() as conn:
            for e in conn.execute(
                sa.select(entries_t)
                .where(entries_t.c.op.notin_(("furnish", "authority")), *cut)
                .order_by(entries_t.c.seq)
            ).mappings():
                mods.setdefault(e["origin_seq"], []).append(dict(e))
        last = 0
        while True:
            with self.engine.connect() as conn:
                rows = (
                    conn.execute(
                        sa.select(entries_t)
                        .where(entries_t.c.op == "furnish", entries_t.c.seq > last, *cut)
                        .order_by(entries_t.c.seq)
                        .limit(batch)
                    )
                    .mappings()
                    .all()
                )
            if not rows:
                return
            for e in rows:
                views: dict[int, RecordView] = {}
                apply_entry(views, e)
                for m in mods.get(e["seq"], ()):
                    apply_entry(views, m)
                yield views[e["seq"]]
            last = rows[-1]["seq"]

    def count(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(entries_t.c.op, sa.func.count()).group_by(entries_t.c.op)
            ).all()
        return {str(op): int(n) for op, n in rows}

    def verify(
        self, progress: Callable[[int], None] | None = None, batch: int = 50_000
    ) -> VerifyReport:
        """Walk the chain from the first entry; name the first entry that does not match."""
        expected_seq, prev = 0, chain.GENESIS
        authorities: dict[str, dict[str, Any]] = {}
        while True:
            with self.engine.connect() as conn:
                rows = (
                    conn.execute(
                        sa.select(entries_t)
                        .where(entries_t.c.seq > expected_seq)
                        .order_by(entries_t.c.seq)
                        .limit(batch)
                    )
                    .mappings()
                    .all()
                )
            if not rows:
                break
            for e in rows:
                expected_seq += 1
                seq = e["seq"]
                if seq != expected_seq:
                    return VerifyReport(
                        False,
                        expected_seq - 1,
                        expected_seq - 1,
                        prev,
                        expected_seq,
                        f"entry {expected_seq} is missing (the next entry is {seq})",
                    )
                if e["prev_hash"] != prev:
                    return VerifyReport(
                        False,
                        seq - 1,
                        seq - 1,
                        prev,
                        seq,
                        f"entry {seq} does not point at entry {seq - 1}'s hash",
                    )
                if chain.content_hash(e) != e["content_hash"]:
                    return VerifyReport(
                        False,
                        seq - 1,
                        seq - 1,
                        prev,
                        seq,
                        f"the content of entry {seq} does not match its hash: "
                        "a column was edited outside socialcredit",
                    )
                h = chain.entry_hash(
                    seq, prev, e["content_hash"], e["recorded_at"], e["origin_seq"], e["import_id"]
                )
                if h != e["entry_hash"]:
                    return VerifyReport(
                        False,
                        seq - 1,
                        seq - 1,
                        prev,
                        seq,
                        f"entry {seq}'s hash does not match its position, time or import",
                    )
                if e["op"] == "authority":
                    authorities[e["authority_id"]] = json.loads(e["attributes"])
                prev = h
            if progress:
                progress(len(rows))
        for a in self.authorities():
            body = authorities.get(a.authority_id)
            if body is None or body["type"] != a.type or set(body["kinds"]) != set(a.kinds):
                return VerifyReport(
                    False,
                    expected_seq,
                    expected_seq,
                    prev,
                    None,
                    f"the authorities table disagrees with the ledger for '{a.authority_id}'",
                )
        if len(authorities) != len(self.authorities()):
            return VerifyReport(
                False,
                expected_seq,
                expected_seq,
                prev,
                None,
                "an authority registered in the ledger is missing from the authorities table",
            )
        return VerifyReport(True, expected_seq, expected_seq, prev)
