"""What is public: the single source of truth for the portal, open data, feeds and reports.

A list membership is public on a day when

* its list has a publicity period (``publicity.period`` in the rulebook; a list without one is
  never published),
* the membership is in force that day (``since <= today < until``; a pending listing in its grace
  period is not a membership yet),
* it is not held back by a human review gate (a listing still *proposed*, *pending* or *halted*
  is not in force for publication), and
* ``today < publish_until`` where ``publish_until = since + period`` (calendar arithmetic).

Personal identifiers are masked whenever the list's ``publicity.mask_person_identifiers`` says so
(the default): a citizen identity number keeps its first and last four characters
(``cn-rid:1101**********002X``). Organisation codes stay whole (registry data is public).
Only the fields the list's ``publicity.fields`` names are published.

Everything is read from ``status_current`` (the materialised status) and the ledger's entries; no
other table is needed, so the function works on any registry the status service keeps current.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa

from socialcredit import ids
from socialcredit.ledger.schema import entries
from socialcredit.ledger.store import RecordView, apply_entry
from socialcredit.rulebooks.durations import add
from socialcredit.rulebooks.model import ListDef, Rulebook, dur
from socialcredit.status.schema import status_current
from socialcredit.subjects import ORGANISATION_KINDS

__all__ = [
    "BLOCKING_REVIEW_STATES",
    "PublicEntry",
    "PublicRecord",
    "is_public",
    "is_public_list",
    "mask_subject",
    "membership_blocked",
    "public_entries",
    "public_lists",
    "publish_until",
    "subject_is_person",
]

# A review gate on a membership (added to the status JSON by the cases room) in one of these
# states keeps the listing off every public surface.
BLOCKING_REVIEW_STATES = frozenset(
    {"proposed", "pending", "pending-review", "awaiting-review", "in-review", "halted", "rejected"}
)

_CHUNK = 500


def subject_is_person(key: str, kind: str | None = None) -> bool:
    """Whether a subject is (or must be treated as) a natural person.

    The kind recorded by the furnishing authority decides; without one, a ``cn-rid`` key is a
    person, a ``cn-uscc`` key an organisation and any other key is treated as a person (the safe
    side: its identifier is masked).
    """
    if kind is not None:
        return kind not in ORGANISATION_KINDS
    scheme = key.partition(":")[0].lower()
    return scheme != "cn-uscc"


def mask_subject(key: str, kind: str | None = None) -> str:
    """A subject key with a person's identifier masked: ``cn-rid:1101**********002X``.

    Organisation codes (``cn-uscc``, or any scheme when ``kind`` is an organisation kind) are
    returned whole. A key that does not parse is masked from its normalised form.
    """
    scheme, sep, value = key.partition(":")
    if not sep:
        return ids.mask("generic", key)
    if not subject_is_person(key, kind):
        return key
    try:
        return f"{scheme}:{ids.mask(scheme, value)}"
    except ids.IdError:  # an unknown scheme: star it as a generic identifier
        return f"{scheme}:{ids.mask('generic', value)}"


def publish_until(lst: ListDef, since: dt.date) -> dt.date | None:
    """The first day a membership starting ``since`` is no longer published (None: never public)."""
    if lst.publicity is None or lst.publicity.period is None:
        return None
    period = dur(lst.publicity.period)
    if period is None:
        return None
    return add(since, period)


def is_public_list(lst: ListDef) -> bool:
    return lst.publicity is not None and lst.publicity.period is not None


def public_lists(rulebooks: Iterable[Rulebook]) -> list[tuple[Rulebook, ListDef]]:
    """Every (rulebook, list) whose memberships are published, in rulebook order."""
    return [(rb, lst) for rb in rulebooks for lst in rb.lists if is_public_list(lst)]


def membership_blocked(membership: Mapping[str, Any]) -> bool:
    """Whether a review gate holds a membership back (proposed / pending / halted)."""
    gate = membership.get("review")
    if gate is None:
        gate = membership.get("state")
    if isinstance(gate, Mapping):
        gate = gate.get("state") or gate.get("status")
    if gate is None:
        return False
    return str(gate) in BLOCKING_REVIEW_STATES


@dataclass(frozen=True)
class PublicRecord:
    """One record behind a public entry: only the published fields, identifiers masked."""

    record_id: int
    fields: dict[str, Any]
    disputed: bool = False
    statements: tuple[str, ...] = ()


@dataclass(frozen=True)
class PublicEntry:
    """One published list membership."""

    subject_ref: str  # the subject key, a person's identifier masked
    subject_name: str | None
    subject_kind: str | None
    rulebook_id: str
    rulebook_ref: str
    list_id: str
    list_title: str
    list_type: str
    since: dt.date
    until: dt.date | None  # end of the membership (exclusive); None: until removed
    publish_until: dt.date  # first day it is no longer published (exclusive)
    legal_basis: str
    fields: dict[str, Any]  # the published fields of the latest basis record
    record_ids: tuple[int, ...]
    records: tuple[PublicRecord, ...] = field(default=())
    authority: str = ""
    masked: bool = True  # whether personal identifiers were masked
    subject_key: str = field(default="", repr=False, compare=False)  # internal: never render

    @property
    def disputed(self) -> bool:
        return any(r.disputed for r in self.records)

    def as_dict(self) -> dict[str, Any]:
        """The public JSON form (without the internal subject key)."""
        return {
            "subject": self.subject_ref,
            "subject_name": self.subject_name,
            "subject_kind": self.subject_kind,
            "rulebook": self.rulebook_ref,
            "rulebook_id": self.rulebook_id,
            "list": self.list_id,
            "list_title": self.list_title,
            "list_type": self.list_type,
            "authority": self.authority,
            "since": self.since.isoformat(),
            "until": self.until.isoformat() if self.until else None,
            "publish_until": self.publish_until.isoformat(),
            "legal_basis": self.legal_basis,
            "fields": self.fields,
            "record_ids": list(self.record_ids),
            "records": [
                {
                    "record_id": r.record_id,
                    "fields": r.fields,
                    "disputed": r.disputed,
                    "statements": list(r.statements),
                }
                for r in self.records
            ],
            "disputed": self.disputed,
        }


def is_public(entry: PublicEntry, today: dt.date) -> bool:
    """Whether a public entry is still to be shown on ``today``."""
    if entry.since > today:
        return False
    if entry.until is not None and today >= entry.until:
        return False
    return today < entry.publish_until


def _published_fields(
    v: RecordView, wanted: Sequence[str], mask: bool, person: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in wanted:
        if name == "subject":
            out[name] = mask_subject(v.subject, v.subject_kind) if mask and person else v.subject
        elif name == "subject_name":
            out[name] = v.subject_name
        elif name in ("kind", "decision_no", "severity", "legal_basis", "authority_id"):
            out[name] = getattr(v, name)
        elif name == "decision_date":
            out[name] = v.decision_date.isoformat()
        elif name == "amount":
            out[name] = v.amount
        elif name.startswith("attributes."):
            key = name.split(".", 1)[1]
            if key in v.attributes:
                out[name] = v.attributes[key]
        # anything else is not a record field: nothing is published for it
    return out


def _load_records(conn: sa.Connection, subjects: Sequence[str]) -> dict[str, dict[int, RecordView]]:
    """{subject: {record id (current content): view}} for a chunk of subjects."""
    by_origin: dict[str, dict[int, RecordView]] = {s: {} for s in subjects}
    for e in conn.execute(
        sa.select(entries)
        .where(entries.c.subject_key.in_(subjects), entries.c.op != "action")
        .order_by(entries.c.seq)
    ).mappings():
        apply_entry(by_origin[e["subject_key"]], e)
    out: dict[str, dict[int, RecordView]] = {}
    for s, views in by_origin.items():
        d: dict[int, RecordView] = {}
        for v in views.values():
            d[v.record_id] = v
            d.setdefault(v.origin_id, v)
        out[s] = d
    return out


def _subject_name(views: Mapping[int, RecordView]) -> str | None:
    best: tuple[int, str] | None = None
    for v in views.values():
        if v.subject_name and (best is None or v.record_id > best[0]):
            best = (v.record_id, v.subject_name)
    return best[1] if best else None


def public_entries(
    engine: sa.Engine,
    rulebooks: Sequence[Rulebook],
    today: dt.date,
    *,
    subject: str | None = None,
    list_id: str | None = None,
    rulebook_id: str | None = None,
) -> Iterator[PublicEntry]:
    """Every membership that is public on ``today`` (see the module docstring).

    Ordered by rulebook, then subject. ``subject`` is a full subject key (not a masked one).
    """
    books = {rb.id: rb for rb in rulebooks if rulebook_id is None or rb.id == rulebook_id}
    wanted: dict[tuple[str, str], ListDef] = {
        (rb.id, lst.id): lst
        for rb in books.values()
        for lst in rb.lists
        if is_public_list(lst) and (list_id is None or lst.id == list_id)
    }
    if not wanted:
        return
    rb_ids = sorted({rb for rb, _ in wanted})
    q = sa.select(
        status_current.c.subject,
        status_current.c.rulebook_id,
        status_current.c.rulebook_ref,
        status_current.c.status,
    ).where(status_current.c.rulebook_id.in_(rb_ids))
    if subject is not None:
        q = q.where(status_current.c.subject == subject)
    if list_id is not None:
        q = q.where(status_current.c.status.contains(f'"list":"{list_id}"'))
    else:
        q = q.where(status_current.c.status.contains('"memberships":[{'))
    q = q.order_by(status_current.c.rulebook_id, status_current.c.subject)
    with engine.connect() as conn:
        batch: list[tuple[str, str, str, dict[str, Any]]] = []
        for row in conn.execute(q).yield_per(_CHUNK):
            st = orjson.loads(row.status)
            candidates = [
                m
                for m in st.get("memberships", ())
                if (row.rulebook_id, m["list"]) in wanted and not membership_blocked(m)
            ]
            if not candidates:
                continue
            st["memberships"] = candidates
            batch.append((row.subject, row.rulebook_id, row.rulebook_ref, st))
            if len(batch) >= _CHUNK:
                yield from _emit(engine, batch, wanted, today)
                batch = []
        if batch:
            yield from _emit(engine, batch, wanted, today)


def _emit(
    engine: sa.Engine,
    batch: list[tuple[str, str, str, dict[str, Any]]],
    wanted: Mapping[tuple[str, str], ListDef],
    today: dt.date,
) -> Iterator[PublicEntry]:
    # candidates first (cheap date checks), then the records of those that remain
    todo: list[
        tuple[str, str, str, dict[str, Any], ListDef, dt.date, dt.date | None, dt.date, str | None]
    ] = []
    for subject, rb_id, rb_ref, st in batch:
        for m in st["memberships"]:
            lst = wanted[(rb_id, m["list"])]
            since = dt.date.fromisoformat(m["since"])
            until = dt.date.fromisoformat(m["until"]) if m.get("until") else None
            pub = publish_until(lst, since)
            if pub is None or since > today or today >= pub:
                continue
            if until is not None and today >= until:
                continue
            todo.append((subject, rb_id, rb_ref, m, lst, since, until, pub, st.get("subject_kind")))
    if not todo:
        return
    subjects = sorted({t[0] for t in todo})
    with engine.connect() as conn:
        records: dict[str, dict[int, RecordView]] = {}
        for i in range(0, len(subjects), _CHUNK):
            records.update(_load_records(conn, subjects[i : i + _CHUNK]))
    for subject, rb_id, rb_ref, m, lst, since, until, pub, st_kind in todo:
        views = records.get(subject, {})
        kind = st_kind or next((v.subject_kind for v in views.values() if v.subject_kind), None)
        person = subject_is_person(subject, kind)
        assert lst.publicity is not None
        mask = lst.publicity.mask_person_identifiers
        wanted_fields = list(lst.publicity.fields)
        basis = tuple(int(b) for b in m.get("basis", ()))
        recs: list[PublicRecord] = []
        for rid in basis:
            v = views.get(rid)
            if v is None:
                continue
            recs.append(
                PublicRecord(
                    rid,
                    _published_fields(v, wanted_fields, mask, person),
                    v.disputed,
                    tuple(v.statements),
                )
            )
        name = _subject_name(views)
        if person and "subject_name" not in wanted_fields:
            name = None
        yield PublicEntry(
            subject_ref=mask_subject(subject, kind) if (mask and person) else subject,
            subject_name=name,
            subject_kind=kind,
            rulebook_id=rb_id,
            rulebook_ref=rb_ref,
            list_id=lst.id,
            list_title=lst.title,
            list_type=lst.type,
            since=since,
            until=until,
            publish_until=pub,
            legal_basis=" ".join(lst.legal_basis.split()),
            fields=recs[-1].fields if recs else {},
            record_ids=basis,
            records=tuple(recs),
            authority=lst.authority,
            masked=mask and person,
            subject_key=subject,
        )
