"""Relying parties: who may ask eligibility questions, and about which measure domains.

A relying party has a type from the catalogue (airline, bank, procurement office ...) and a set of
domains that is a subset of that type's domains. It may only ask about measures in its domains
(invariant 5): an airline learns whether a subject may fly, never whether they may borrow.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from socialcredit.catalog import Catalogue
from socialcredit.errors import InputError, NotFoundError, Problem
from socialcredit.status.db import naive_utc
from socialcredit.status.schema import party_usage, relying_parties


@dataclass(frozen=True, slots=True)
class Party:
    party_id: str
    name: str
    type: str
    domains: frozenset[str]
    daily_limit: int | None = None  # answers a day (UTC), all its keys together; None: no limit
    rate_limit: int | None = None  # answers a second on average, all keys and workers together

    def as_dict(self) -> dict[str, object]:
        return {
            "party_id": self.party_id,
            "name": self.name,
            "type": self.type,
            "domains": sorted(self.domains),
            "daily_limit": self.daily_limit,
            "rate_limit": self.rate_limit,
        }


def valid_id(value: str) -> bool:
    return 0 < len(value) <= 64 and all(c.isalnum() or c in "-_." for c in value)


def add_party(
    engine: sa.Engine,
    catalogue: Catalogue,
    now: dt.datetime,
    party_id: str,
    name: str,
    type: str,
    domains: Sequence[str] = (),
) -> Party:
    """Register a relying party, or change its name, type or domains (its limits stay: see
    :func:`set_limits`). No domains: all of its type's."""
    problems: list[Problem] = []
    if not valid_id(party_id):
        problems.append(
            Problem("party_id", "format", party_id, "must be 1-64 letters, digits, '-', '_' or '.'")
        )
    if not name or not name.strip():
        problems.append(Problem("name", "required", name, "the relying party's name is required"))
    rp_type = catalogue.relying_party_types.get(type)
    if rp_type is None:
        problems.append(
            Problem(
                "type",
                "unknown-relying-party-type",
                type,
                f"'{type}' is not a relying-party type in the catalogue "
                f"(known: {', '.join(sorted(catalogue.relying_party_types))})",
            )
        )
    chosen = sorted(set(domains)) if domains else (sorted(rp_type.domains) if rp_type else [])
    if rp_type is not None:
        for d in chosen:
            if d not in rp_type.domains:
                problems.append(
                    Problem(
                        "domains",
                        "not-in-type",
                        d,
                        f"a relying party of type '{type}' may only ask about "
                        f"{', '.join(rp_type.domains)}",
                    )
                )
    if problems:
        raise InputError(problems)
    stamp = naive_utc(now)
    clean = name.strip()
    row = {"name": clean, "type": type, "domains": json.dumps(chosen), "updated_at": stamp}
    with engine.begin() as conn:
        updated = conn.execute(
            relying_parties.update().where(relying_parties.c.party_id == party_id).values(**row)
        ).rowcount
        if not updated:
            conn.execute(
                relying_parties.insert().values(party_id=party_id, created_at=stamp, **row)
            )
    return get_party(engine, party_id)


def parse_limit(text: str, field: str) -> int | None:
    """A limit as given on the command line: a whole number of answers, or ``none``."""
    value = text.strip().lower()
    if value in ("none", "unlimited"):
        return None
    if not (value.isascii() and value.isdigit()):
        raise InputError([Problem(field, "format", text, "a whole number of answers, or 'none'")])
    return int(value)


_LEAST = {"daily_limit": 0, "rate_limit": 1}  # 0 a day stops a party; 0 a second never lifts
_MOST = 10**18  # within a 64-bit column


def set_limits(
    engine: sa.Engine, party_id: str, now: dt.datetime, limits: Mapping[str, int | None]
) -> Party:
    """Set some of a party's limits together, all or none if any is refused: ``daily_limit``,
    the answers it may be given a day (UTC), and ``rate_limit``, a second on average, over all its
    keys (and the server's workers); ``None`` lifts one. Every worker applies them within a
    second (:mod:`~socialcredit.status.quotas`)."""
    problems = [
        Problem(column, f"min:{_LEAST[column]}", value, f"cannot be less than {_LEAST[column]}")
        for column, value in limits.items()
        if value is not None and value < _LEAST[column]
    ] + [
        Problem(column, f"max:{_MOST}", value, f"cannot be more than {_MOST:,}")
        for column, value in limits.items()
        if value is not None and value > _MOST
    ]
    if problems:
        raise InputError(problems)
    with engine.begin() as conn:
        updated = conn.execute(
            relying_parties.update()
            .where(relying_parties.c.party_id == party_id)
            .values({**limits, "updated_at": naive_utc(now)})
        ).rowcount
    if not updated:
        raise NotFoundError(f"no relying party '{party_id}' is registered")
    return get_party(engine, party_id)


def _party(r: Sequence[Any]) -> Party:
    return Party(
        str(r[0]),
        str(r[1]),
        str(r[2]),
        frozenset(json.loads(r[3])),
        None if r[4] is None else int(r[4]),
        None if r[5] is None else int(r[5]),
    )


_COLS = (
    relying_parties.c.party_id,
    relying_parties.c.name,
    relying_parties.c.type,
    relying_parties.c.domains,
    relying_parties.c.daily_limit,
    relying_parties.c.rate_limit,
)


def get_party(engine: sa.Engine, party_id: str) -> Party:
    with engine.connect() as conn:
        r = conn.execute(sa.select(*_COLS).where(relying_parties.c.party_id == party_id)).first()
    if r is None:
        raise NotFoundError(f"no relying party '{party_id}' is registered")
    return _party(r)


def list_parties(engine: sa.Engine) -> list[Party]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*_COLS).order_by(relying_parties.c.party_id)).all()
    return [_party(r) for r in rows]


def usage(
    engine: sa.Engine, day: dt.date, party_ids: Iterable[str] | None = None
) -> dict[str, int]:
    """The answers each relying party was given on ``day`` (UTC), as committed; parties given
    none are absent. ``party_ids``: only these."""
    q = sa.select(party_usage.c.party_id, party_usage.c.answers).where(party_usage.c.day == day)
    if party_ids is not None:
        wanted = list(party_ids)
        if not wanted:
            return {}
        q = q.where(party_usage.c.party_id.in_(wanted))
    with engine.connect() as conn:
        return {str(p): int(n) for p, n in conn.execute(q)}


def usage_history(
    engine: sa.Engine, party_id: str, days: int, today: dt.date
) -> list[tuple[dt.date, int]]:
    """The party's answers per day over the ``days`` days up to ``today``, oldest first, days
    without answers included (0)."""
    first = today - dt.timedelta(days=days - 1)
    with engine.connect() as conn:
        got = {
            d: int(n)
            for d, n in conn.execute(
                sa.select(party_usage.c.day, party_usage.c.answers).where(
                    party_usage.c.party_id == party_id,
                    party_usage.c.day >= first,
                    party_usage.c.day <= today,
                )
            )
        }
    return [(d, got.get(d, 0)) for d in (first + dt.timedelta(days=i) for i in range(days))]
