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
from collections.abc import Mapping
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

_sha256 = hashlib.sha256


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
    text = f"{seq}|{prev_hash}|{content}|{stamp(recorded_at)}|{origin_seq or ''}|{import_id or ''}"
    return _sha256(text.encode()).hexdigest()
