"""Portal search: a name and identifier index over every subject, kept in step with the ledger.

The index is the portal's own projection (not part of the ledger's migrated schema): call
:func:`ensure_index` once (the portal does on first use) and :func:`sync` before answering (cheap
when nothing changed: two indexed ``max`` queries).

* ``portal_search`` — one row per subject: kind, latest name, the name normalised for matching
  (NFKC, case-folded, single spaces), whether it is a natural person, and for persons the last day
  they have a public entry (``public_until``, exclusive). Persons are only ever returned while
  ``public_until > today``; organisations' registry data is public and always searchable.
* SQLite: an FTS5 table with the trigram tokenizer (``portal_search_fts``, rowid = ``rid``) answers
  substring queries of three or more characters. PostgreSQL: a ``pg_trgm`` GIN index when the
  extension can be created; otherwise substring search scans (prefix search stays indexed).
* ``portal_search_state`` — two watermarks: the ledger ``seq`` whose names are in, and the
  ``status_changes.change_seq`` whose publicity is in.

Matching: an exact subject key or bare identifier (``cn-uscc``/``cn-rid`` validated, case and
full-width forms normalised) first, then names starting with the query, then names containing it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import threading
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from socialcredit import ids
from socialcredit.ledger.db import is_sqlite
from socialcredit.ledger.schema import entries
from socialcredit.ledger.store import newest_seq
from socialcredit.publish.public import (
    is_public_list,
    mask_subject,
    membership_blocked,
    publish_until,
    subject_is_person,
)
from socialcredit.rulebooks.model import ListDef, Rulebook
from socialcredit.status.schema import status_changes, status_current

__all__ = [
    "SearchHit",
    "ensure_index",
    "normalise_name",
    "person_public_until",
    "rebuild",
    "search",
    "sync",
]

search_metadata = sa.MetaData()

portal_search = sa.Table(
    "portal_search",
    search_metadata,
    sa.Column("rid", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("subject", sa.String(80), nullable=False, unique=True),
    sa.Column("kind", sa.String(32)),
    sa.Column("name", sa.String(200)),
    sa.Column("name_norm", sa.String(200)),
    sa.Column("person", sa.Boolean, nullable=False),
    sa.Column("public_until", sa.Date),
    sa.Index("ix_portal_search_name_norm", "name_norm"),
)

# organisations by name, and persons with a (past or current) public entry by name: a prefix
# query reads only rows that can be shown (see ``ensure_index``; created outside create_all so an
# existing index table gets them too)
_EXTRA_INDEXES = (
    "CREATE INDEX IF NOT EXISTS ix_portal_search_org_name ON portal_search (person, name_norm)",
    "CREATE INDEX IF NOT EXISTS ix_portal_search_public_name ON portal_search (name_norm) "
    "WHERE public_until IS NOT NULL",
)

portal_search_state = sa.Table(
    "portal_search_state",
    search_metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
)

_LOCK = threading.Lock()
_READY: set[str] = set()
_TRGM: dict[str, bool] = {}
_HIGH = "\U0010ffff"


@contextlib.contextmanager
def writing(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A write transaction (SQLite: BEGIN IMMEDIATE, so a reader never has to upgrade its lock)."""
    with engine.connect() as conn:
        if is_sqlite(engine):
            conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn


def normalise_name(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


@dataclass(frozen=True, slots=True)
class SearchHit:
    rid: int
    subject_ref: str  # masked for persons
    name: str | None
    kind: str | None
    person: bool
    subject_key: str  # internal: for the portal to look entries up; never rendered for persons

    @property
    def slug(self) -> str:
        """The entity page's path segment: the code for organisations, an opaque id for persons."""
        return f"p{self.rid}" if self.person else self.subject_key


# ---------------------------------------------------------------------- schema


def ensure_index(engine: sa.Engine) -> None:
    """Create the search tables if missing (idempotent, safe to call on every start)."""
    url = str(engine.url)
    if url in _READY:
        return
    with _LOCK:
        with writing(engine) as conn:
            search_metadata.create_all(conn, checkfirst=True)
            for ddl in _EXTRA_INDEXES:
                conn.exec_driver_sql(ddl)
            if is_sqlite(engine):
                conn.exec_driver_sql(
                    "CREATE VIRTUAL TABLE IF NOT EXISTS portal_search_fts "
                    "USING fts5(name_norm, tokenize='trigram')"
                )
                _TRGM[url] = True
        if not is_sqlite(engine):
            try:
                with engine.begin() as conn:
                    conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                    conn.exec_driver_sql(
                        "CREATE INDEX IF NOT EXISTS ix_portal_search_trgm ON portal_search "
                        "USING gin (name_norm gin_trgm_ops)"
                    )
                _TRGM[url] = True
            except sa.exc.DBAPIError:
                _TRGM[url] = False
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    "CREATE INDEX IF NOT EXISTS ix_portal_search_prefix ON portal_search "
                    "(name_norm text_pattern_ops)"
                )
        _READY.add(url)


# ---------------------------------------------------------------------- publicity of persons


def person_public_until(
    status: Mapping[str, Any], lists: Mapping[str, ListDef], today: dt.date
) -> dt.date | None:
    """The last day (exclusive) a subject has a public entry in one status JSON, if any today."""
    best: dt.date | None = None
    for m in status.get("memberships", ()):
        lst = lists.get(m["list"])
        if lst is None or membership_blocked(m):
            continue
        since = dt.date.fromisoformat(m["since"])
        end = publish_until(lst, since)
        if end is None:
            continue
        if m.get("until"):
            end = min(end, dt.date.fromisoformat(m["until"]))
        if since <= today < end and (best is None or end > best):
            best = end
    return best


def _lists_by_rulebook(rulebooks: Iterable[Rulebook]) -> dict[str, dict[str, ListDef]]:
    return {rb.id: {lst.id: lst for lst in rb.lists if is_public_list(lst)} for rb in rulebooks}


def _public_until_for(
    conn: sa.Connection, subjects: Sequence[str], rulebooks: Sequence[Rulebook], today: dt.date
) -> dict[str, dt.date | None]:
    lists = _lists_by_rulebook(rulebooks)
    out: dict[str, dt.date | None] = dict.fromkeys(subjects)
    for i in range(0, len(subjects), 500):
        chunk = subjects[i : i + 500]
        for row in conn.execute(
            sa.select(
                status_current.c.subject, status_current.c.rulebook_id, status_current.c.status
            ).where(status_current.c.subject.in_(chunk))
        ):
            by_list = lists.get(row.rulebook_id)
            if not by_list:
                continue
            end = person_public_until(orjson.loads(row.status), by_list, today)
            prev = out.get(row.subject)
            if end is not None and (prev is None or end > prev):
                out[row.subject] = end
    return out


# ---------------------------------------------------------------------- keeping in step


def _state(conn: sa.Connection) -> dict[str, int]:
    return {r.name: int(r.seq) for r in conn.execute(sa.select(portal_search_state))}


def _set_state(conn: sa.Connection, name: str, seq: int) -> None:
    n = conn.execute(
        portal_search_state.update().where(portal_search_state.c.name == name).values(seq=seq)
    ).rowcount
    if not n:
        conn.execute(portal_search_state.insert().values(name=name, seq=seq))


def _upsert(conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert or update subjects (by key), in bulk; keeps the FTS table in step on SQLite."""
    if not rows:
        return
    keys = [r["subject"] for r in rows]
    existing = {
        r.subject: (r.rid, r.name, r.kind)
        for r in conn.execute(
            sa.select(
                portal_search.c.rid,
                portal_search.c.subject,
                portal_search.c.name,
                portal_search.c.kind,
            ).where(portal_search.c.subject.in_(keys))
        )
    }
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for r in rows:
        old = existing.get(r["subject"])
        name = r.get("name") or (old[1] if old else None)
        kind = r.get("kind") or (old[2] if old else None)
        values = {
            "kind": kind,
            "name": name,
            "name_norm": normalise_name(name) if name else None,
            "person": subject_is_person(r["subject"], kind),
            "public_until": r.get("public_until"),
        }
        if old is None:
            inserts.append({"subject": r["subject"], **values})
        else:
            updates.append({"b_rid": old[0], **values})
    if inserts:
        conn.execute(portal_search.insert(), inserts)
    if updates:
        conn.execute(_UPDATE, updates)
    if conn.engine.dialect.name != "sqlite":
        return
    rids = dict(
        conn.execute(
            sa.select(portal_search.c.subject, portal_search.c.rid).where(
                portal_search.c.subject.in_(keys)
            )
        ).all()
    )
    conn.exec_driver_sql(
        "DELETE FROM portal_search_fts WHERE rowid = ?", [(rids[k],) for k in keys]
    )
    fts = [(rids[r["subject"]], r["name_norm"]) for r in inserts if r["name_norm"]]
    fts += [(u["b_rid"], u["name_norm"]) for u in updates if u["name_norm"]]
    if fts:
        conn.exec_driver_sql("INSERT INTO portal_search_fts (rowid, name_norm) VALUES (?, ?)", fts)


_UPDATE = (
    portal_search.update()
    .where(portal_search.c.rid == sa.bindparam("b_rid"))
    .values(
        kind=sa.bindparam("kind"),
        name=sa.bindparam("name"),
        name_norm=sa.bindparam("name_norm"),
        person=sa.bindparam("person"),
        public_until=sa.bindparam("public_until"),
    )
)


def sync(
    engine: sa.Engine, rulebooks: Sequence[Rulebook], today: dt.date, *, batch: int = 5000
) -> int:
    """Bring the index up to the ledger and the status. Returns the subjects (re)indexed."""
    ensure_index(engine)
    done = 0
    with _LOCK:
        while True:
            with engine.connect() as conn:
                state = _state(conn)
                wm = state.get("ledger", 0)
                cwm = state.get("changes", 0)
                head = newest_seq(conn)
                chead = conn.execute(sa.select(sa.func.max(status_changes.c.change_seq))).scalar()
                chead = int(chead or 0)
                if head <= wm and chead <= cwm:
                    return done
                names: dict[str, dict[str, Any]] = {}
                last = wm
                for e in conn.execute(
                    sa.select(
                        entries.c.seq,
                        entries.c.subject_key,
                        entries.c.subject_kind,
                        entries.c.subject_name,
                    )
                    .where(entries.c.seq > wm)
                    .order_by(entries.c.seq)
                    .limit(batch)
                ):
                    last = e.seq
                    if e.subject_key is None:
                        continue
                    d = names.setdefault(e.subject_key, {"subject": e.subject_key})
                    if e.subject_name:
                        d["name"] = e.subject_name
                    if e.subject_kind:
                        d["kind"] = e.subject_kind
                changed: set[str] = set()
                new_cwm = cwm
                everything = False
                for c in conn.execute(
                    sa.select(status_changes.c.change_seq, status_changes.c.subject)
                    .where(status_changes.c.change_seq > cwm)
                    .order_by(status_changes.c.change_seq)
                    .limit(batch)
                ):
                    new_cwm = c.change_seq
                    if c.subject is None:
                        everything = True
                    else:
                        changed.add(c.subject)
                if everything:  # a rebuild: every person's publicity again
                    changed.update(
                        s
                        for (s,) in conn.execute(
                            sa.select(portal_search.c.subject).where(
                                portal_search.c.person.is_(True)
                            )
                        )
                    )
                todo = sorted(set(names) | changed)
                pub = _public_until_for(conn, todo, rulebooks, today)
            rows = []
            for s in todo:
                d = names.get(s, {"subject": s})
                d["public_until"] = pub.get(s)
                rows.append(d)
            with writing(engine) as conn:
                for i in range(0, len(rows), 500):
                    _upsert(conn, rows[i : i + 500])
                _set_state(conn, "ledger", last)
                _set_state(conn, "changes", new_cwm)
            done += len(rows)


def rebuild(engine: sa.Engine, rulebooks: Sequence[Rulebook], today: dt.date) -> int:
    """Forget the index and build it again from the ledger and the status."""
    ensure_index(engine)
    with _LOCK, writing(engine) as conn:
        conn.execute(portal_search.delete())
        conn.execute(portal_search_state.delete())
        if is_sqlite(engine):
            conn.exec_driver_sql("DELETE FROM portal_search_fts")
    return sync(engine, rulebooks, today)


# ---------------------------------------------------------------------- querying


def _exact_keys(q: str) -> list[str]:
    """Subject keys the query could be exactly (validated identifiers only)."""
    text = q.strip()
    out: list[str] = []
    if ":" in text:
        with contextlib.suppress(ids.IdError):
            out.append(ids.parse_key(text).key)
        return out
    for scheme in ("cn-uscc", "cn-rid"):
        try:
            out.append(ids.parse(scheme, text).key)
        except ids.IdError:
            continue
    return out


def _hit(r: Any) -> SearchHit:
    person = bool(r.person)
    return SearchHit(
        rid=int(r.rid),
        subject_ref=mask_subject(r.subject, r.kind) if person else r.subject,
        name=r.name,
        kind=r.kind,
        person=person,
        subject_key=r.subject,
    )


@functools.lru_cache(maxsize=8)
def _statements(limit: int) -> tuple[Any, Any, Any]:
    """The search queries, built once (SQLAlchemy then reuses their compiled form)."""
    t = portal_search
    cols = (t.c.rid, t.c.subject, t.c.kind, t.c.name, t.c.person, t.c.name_norm)
    today = sa.bindparam("today", type_=sa.Date)
    lo, hi = sa.bindparam("lo", type_=sa.String), sa.bindparam("hi", type_=sa.String)
    exact = sa.select(*cols).where(
        t.c.subject.in_(sa.bindparam("keys", expanding=True)),
        sa.or_(t.c.person.is_(False), t.c.public_until > today),
    )
    orgs = (
        sa.select(*cols)
        .where(t.c.person.is_(False), t.c.name_norm >= lo, t.c.name_norm < hi)
        .order_by(t.c.person, t.c.name_norm)  # index order: nothing is sorted
        .limit(limit)
    )
    persons = (
        sa.select(*cols)
        .where(
            t.c.public_until.is_not(None),
            t.c.public_until > today,
            t.c.name_norm >= lo,
            t.c.name_norm < hi,
        )
        .order_by(t.c.name_norm)
        .limit(limit)
    )
    return exact, orgs, persons


def search(engine: sa.Engine, q: str, today: dt.date, *, limit: int = 20) -> list[SearchHit]:
    """Subjects matching ``q``: exact identifier, then name prefix, then name substring."""
    ensure_index(engine)
    hits: list[SearchHit] = []
    seen: set[int] = set()

    def add(rows: Iterable[Any]) -> None:
        for r in rows:
            if r.rid not in seen and len(hits) < limit:
                seen.add(r.rid)
                hits.append(_hit(r))

    norm = normalise_name(q)
    if not norm:
        return []
    exact, orgs_q, persons_q = _statements(limit)
    with engine.connect() as conn:
        keys = _exact_keys(q)
        if keys:
            add(conn.execute(exact, {"keys": keys, "today": today}))
            if hits:  # an identifier: names are not searched for it
                return hits
        params = {"lo": norm, "hi": norm + _HIGH, "today": today}
        orgs = conn.execute(orgs_q, params).all()
        persons = conn.execute(persons_q, params).all()
        add(sorted([*orgs, *persons], key=lambda r: (r.name_norm, r.rid)))
        if len(hits) < limit and len(norm) >= 3:
            add(
                sorted(
                    _substring(conn, norm, today, limit * 2), key=lambda r: (r.name or "", r.rid)
                )
            )
    return hits


_FTS_QUERY = sa.text(
    "SELECT s.rid, s.subject, s.kind, s.name, s.person FROM portal_search_fts f "
    "JOIN portal_search s ON s.rid = f.rowid "
    "WHERE portal_search_fts MATCH :q "
    "AND (s.person = 0 OR s.public_until > :today) "
    "LIMIT :n"  # no ORDER BY: a common trigram must not sort the whole table
)


def _substring(conn: sa.Connection, norm: str, today: dt.date, limit: int) -> list[Any]:
    t = portal_search
    if conn.engine.dialect.name == "sqlite":
        phrase = '"' + norm.replace('"', '""') + '"'
        return list(conn.execute(_FTS_QUERY, {"q": phrase, "today": today, "n": limit}))
    like = "%" + norm.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return list(
        conn.execute(
            sa.select(t.c.rid, t.c.subject, t.c.kind, t.c.name, t.c.person)
            .where(
                t.c.name_norm.like(like, escape="\\"),
                sa.or_(t.c.person.is_(False), t.c.public_until > today),
            )
            .order_by(t.c.name_norm)
            .limit(limit)
        )
    )


def by_rid(engine: sa.Engine, rid: int) -> SearchHit | None:
    ensure_index(engine)
    t = portal_search
    with engine.connect() as conn:
        r = conn.execute(
            sa.select(t.c.rid, t.c.subject, t.c.kind, t.c.name, t.c.person).where(t.c.rid == rid)
        ).first()
    return _hit(r) if r else None


def by_subject(engine: sa.Engine, subject: str) -> SearchHit | None:
    ensure_index(engine)
    t = portal_search
    with engine.connect() as conn:
        r = conn.execute(
            sa.select(t.c.rid, t.c.subject, t.c.kind, t.c.name, t.c.person).where(
                t.c.subject == subject
            )
        ).first()
    return _hit(r) if r else None
