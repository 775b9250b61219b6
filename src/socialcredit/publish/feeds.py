"""The change feed: subjects entering and leaving public lists (Atom 1.0 and JSON Feed 1.1).

Events are derived from ``status_history`` (every change of a subject's status under a rulebook):
between two consecutive statuses of a subject under one rulebook, a membership of a *public* list
(:func:`socialcredit.publish.public.is_public_list`, not held back by a review gate) that appears
is an ``entered`` event and one that disappears a ``left`` event.

An event is shown only while the membership it is about is inside its publicity period
(``since <= today < publish_until``, the same rule as
:func:`socialcredit.publish.public.publish_until`): once the period is over, both its events drop
out of the feed. Subjects are shown as the list publishes them (a person's identifier masked,
a name only if the list publishes names). Item ids carry no identifier.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from xml.sax.saxutils import escape

import orjson
import sqlalchemy as sa

from socialcredit.ledger.schema import entries
from socialcredit.publish.public import (
    is_public_list,
    mask_subject,
    membership_blocked,
    publish_until,
    subject_is_person,
)
from socialcredit.rulebooks.model import ListDef, Rulebook
from socialcredit.status.schema import status_history

MAX_ITEMS = 500


@dataclass(frozen=True)
class FeedItem:
    id: str
    event: str  # entered | left
    subject: str  # as published (masked for persons)
    subject_name: str | None
    subject_kind: str | None
    rulebook: str
    list_id: str
    list_title: str
    list_type: str
    since: dt.date
    on: dt.date  # the day the change took effect in the registry
    published: dt.datetime  # when the registry recorded it
    publish_until: dt.date
    subject_key: str = field(default="", repr=False, compare=False)  # internal: never render

    @property
    def title(self) -> str:
        who = self.subject_name or self.subject
        verb = "entered" if self.event == "entered" else "left"
        return f"{who} {verb} {self.list_title} ({self.list_type} list)"

    def summary(self) -> str:
        if self.event == "entered":
            text = f"{self.subject} is listed on {self.list_title} since {self.since.isoformat()}"
        else:
            text = (
                f"{self.subject} is no longer on {self.list_title} "
                f"(listed since {self.since.isoformat()}) as of {self.on.isoformat()}"
            )
        return (
            f"{text}; rulebook {self.rulebook}; published until {self.publish_until.isoformat()}."
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "subject": self.subject,
            "subject_name": self.subject_name,
            "subject_kind": self.subject_kind,
            "rulebook": self.rulebook,
            "list": self.list_id,
            "list_title": self.list_title,
            "list_type": self.list_type,
            "since": self.since.isoformat(),
            "on": self.on.isoformat(),
            "publish_until": self.publish_until.isoformat(),
        }


def _public_members(status: dict[str, Any], lists: dict[str, ListDef]) -> dict[str, dict[str, Any]]:
    return {
        m["list"]: m
        for m in status.get("memberships", ())
        if m["list"] in lists and not membership_blocked(m)
    }


def _stamp(t: dt.datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def feed_items(
    engine: sa.Engine,
    rulebooks: Sequence[Rulebook],
    today: dt.date,
    *,
    limit: int = MAX_ITEMS,
) -> list[FeedItem]:
    """The newest public-list changes that are still inside their publicity period."""
    out: list[FeedItem] = []
    for rb in rulebooks:
        lists = {lst.id: lst for lst in rb.lists if is_public_list(lst)}
        if not lists:
            continue
        cond = sa.or_(*(status_history.c.status.contains(f'"list":"{i}"') for i in lists))
        with engine.connect() as conn:
            subjects = sorted(
                s
                for (s,) in conn.execute(
                    sa.select(status_history.c.subject)
                    .where(status_history.c.rulebook_id == rb.id, cond)
                    .distinct()
                )
            )
        for i in range(0, len(subjects), 500):
            chunk = subjects[i : i + 500]
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.select(
                        status_history.c.id,
                        status_history.c.subject,
                        status_history.c.from_date,
                        status_history.c.recorded_at,
                        status_history.c.status,
                    )
                    .where(
                        status_history.c.rulebook_id == rb.id,
                        status_history.c.subject.in_(chunk),
                    )
                    .order_by(status_history.c.subject, status_history.c.id)
                ).all()
            prev_subject: str | None = None
            prev: dict[str, dict[str, Any]] = {}
            for hid, subject, from_date, recorded_at, text in rows:
                if subject != prev_subject:
                    prev_subject, prev = subject, {}
                st = orjson.loads(text)
                cur = _public_members(st, lists)
                kind = st.get("subject_kind")
                changes: list[tuple[str, dict[str, Any]]] = []
                for lid, m in cur.items():
                    old = prev.get(lid)
                    if old is None or old["since"] != m["since"]:
                        if old is not None:
                            changes.append(("left", old))
                        changes.append(("entered", m))
                for lid, m in prev.items():
                    if lid not in cur:
                        changes.append(("left", m))
                prev = cur
                for event, m in changes:
                    lst = lists[m["list"]]
                    since = dt.date.fromisoformat(m["since"])
                    until_pub = publish_until(lst, since)
                    if until_pub is None or not (since <= today < until_pub):
                        continue
                    if from_date > today:
                        continue
                    assert lst.publicity is not None
                    person = subject_is_person(subject, kind)
                    masked = lst.publicity.mask_person_identifiers and person
                    name_ok = not person or "subject_name" in lst.publicity.fields
                    out.append(
                        FeedItem(
                            id=f"urn:socialcredit:change:{hid}:{rb.id}:{lst.id}:{event}",
                            event=event,
                            subject=mask_subject(subject, kind) if masked else subject,
                            subject_name="" if name_ok else None,
                            subject_kind=kind,
                            rulebook=rb.ref,
                            list_id=lst.id,
                            list_title=lst.title,
                            list_type=lst.type,
                            since=since,
                            on=from_date,
                            published=recorded_at,
                            publish_until=until_pub,
                            subject_key=subject,
                        )
                    )
    out.sort(key=lambda x: (x.published, x.id), reverse=True)
    return _with_names(engine, out[:limit])


def _with_names(engine: sa.Engine, items: list[FeedItem]) -> list[FeedItem]:
    """Fill in the latest recorded name where the list publishes names (marked with "")."""
    wanted = sorted({it.subject_key for it in items if it.subject_name == ""})
    names: dict[str, str] = {}
    for i in range(0, len(wanted), 500):
        with engine.connect() as conn:
            for subject, name in conn.execute(
                sa.select(entries.c.subject_key, entries.c.subject_name)
                .where(
                    entries.c.subject_key.in_(wanted[i : i + 500]),
                    entries.c.subject_name.is_not(None),
                )
                .order_by(entries.c.seq)
            ):
                names[subject] = name
    return [
        replace(it, subject_name=names.get(it.subject_key)) if it.subject_name == "" else it
        for it in items
    ]


def json_feed(
    items: Sequence[FeedItem], *, registry: str, base_url: str, generated_at: dt.datetime
) -> dict[str, Any]:
    base = base_url.rstrip("/")
    return {
        "version": "https://jsonfeed.org/version/1.1",
        "title": f"{registry}: changes to the public lists",
        "home_page_url": f"{base}/",
        "feed_url": f"{base}/feeds/changes.json",
        "description": (
            "Subjects entering and leaving the public lists, while each listing is inside its "
            "publicity period. Licence: see /open-data/datapackage.json."
        ),
        "authors": [{"name": registry}],
        "language": "en",
        "items": [
            {
                "id": it.id,
                "title": it.title,
                "content_text": it.summary(),
                "date_published": _stamp(it.published),
                "tags": [it.event, it.list_type, it.list_id],
                "_socialcredit": it.as_dict(),
            }
            for it in items
        ],
        "_socialcredit": {"generated_at": _stamp(generated_at)},
    }


def atom_feed(
    items: Sequence[FeedItem], *, registry: str, base_url: str, generated_at: dt.datetime
) -> bytes:
    base = base_url.rstrip("/")
    updated = _stamp(max((it.published for it in items), default=generated_at))
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        f"  <id>{escape(base)}/feeds/changes.atom</id>",
        f"  <title>{escape(registry)}: changes to the public lists</title>",
        f"  <updated>{updated}</updated>",
        f'  <link rel="self" type="application/atom+xml" href="{escape(base)}/feeds/changes.atom"/>',
        f'  <link rel="alternate" type="application/feed+json" href="{escape(base)}/feeds/changes.json"/>',
        f"  <author><name>{escape(registry)}</name></author>",
        f"  <rights>See {escape(base)}/open-data/datapackage.json for the licence</rights>",
    ]
    for it in items:
        parts += [
            "  <entry>",
            f"    <id>{escape(it.id)}</id>",
            f"    <title>{escape(it.title)}</title>",
            f"    <updated>{_stamp(it.published)}</updated>",
            f"    <published>{_stamp(it.published)}</published>",
            f'    <category term="{escape(it.event)}"/>',
            f'    <category term="{escape(it.list_id)}" label="{escape(it.list_title)}"/>',
            f'    <summary type="text">{escape(it.summary())}</summary>',
            "  </entry>",
        ]
    parts.append("</feed>")
    return ("\n".join(parts) + "\n").encode()
