"""The hash chain over ``entries``.

``content_hash`` covers what was furnished (so the same authority reference with the same content
is recognised as a duplicate, whenever it arrives); ``entry_hash`` covers the entry's place in the
ledger: its sequence number, the previous entry's hash, the content hash, when it was recorded and
which import brought it. Editing any column of any entry, deleting an entry or reordering entries
breaks the chain at that entry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

GENESIS = "0" * 64

CONTENT_FIELDS = (
    "op",
    "authority_id",
    "authority_ref",
    "target_seq",
    "subject_key",
    "subject_kind",
    "subject_name",
    "kind",
    "decision_no",
    "decision_date",
    "severity",
    "amount_minor",
    "legal_basis",
    "attributes",
    "reason",
)

sha256 = _sha256 = hashlib.sha256


def content_hash(entry: Mapping[Any, Any]) -> str:
    """SHA-256 of the content fields as a compact JSON array (dates as ISO text, UTF-8)."""
    get = entry.get
    return _sha256(orjson.dumps([get(f) for f in CONTENT_FIELDS])).hexdigest()


def stamp(recorded_at: dt.datetime) -> str:
    return recorded_at.isoformat(timespec="microseconds")


def entry_hash(
    seq: int,
    prev_hash: str,
    content: str,
    recorded_at: dt.datetime,
    origin_seq: int | None,
    import_id: int | None,
) -> str:
    when, imp = hash_tail(recorded_at, import_id)
    return _sha256(
        f"{seq}|{prev_hash}|{content}|{when}|{origin_seq or ''}|{imp}".encode()
    ).hexdigest()


def hash_tail(recorded_at: dt.datetime, import_id: int | None) -> tuple[str, str]:
    """The parts of an entry hash shared by a whole batch (one timestamp, one import)."""
    return stamp(recorded_at), "" if import_id is None else str(import_id)


def furnish_content_hash(authority_id: str, prepared: Sequence[Any]) -> str:
    """:func:`content_hash` of a ``furnish`` entry given as a prepared row.

    ``prepared`` holds the furnished fields in ``socialcredit.ledger.validate.PREPARED_FIELDS``
    order (``authority_ref`` to ``attributes``); the result is the same hash as
    ``content_hash`` of the equivalent draft (a date as ISO text hashes like the date).
    """
    return _sha256(
        orjson.dumps(["furnish", authority_id, prepared[0], None, *prepared[1:], None])
    ).hexdigest()
