"""The engine's view of a record: only what rules may read, with canonical attribute text."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def canon(v: Any) -> str | None:
    """Attribute values compare as canonical text, the same way on every backend."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


@dataclass(frozen=True, slots=True)
class Rec:
    record_id: int
    subject: str
    subject_kind: str | None
    kind: str
    decision_date: dt.date
    severity: str | None = None
    amount_minor: int | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    in_force: bool = True

    def attr(self, name: str) -> str | None:
        return canon(self.attributes.get(name))

    def number(self, name: str) -> float | None:
        v = self.attributes.get(name)
        if isinstance(v, bool) or v is None:
            return None
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Rec:
        """From a snapshot row (``socialcredit export``) or a ``RecordView.as_dict()``."""
        attrs = row.get("attributes") or {}
        if isinstance(attrs, str):
            attrs = json.loads(attrs)
        d = row["decision_date"]
        if isinstance(d, str):
            d = dt.date.fromisoformat(d)
        amount = row.get("amount_minor")
        if amount is None and row.get("amount") is not None:
            amount = round(float(row["amount"]) * 100)
        in_force = row.get("in_force")
        if in_force is None:
            in_force = row.get("state", "active") == "active" and not row.get("suspended", False)
        return cls(
            record_id=int(row["record_id"]),
            subject=str(row["subject"]),
            subject_kind=row.get("subject_kind"),
            kind=str(row["kind"]),
            decision_date=d,
            severity=row.get("severity"),
            amount_minor=None if amount is None else int(amount),
            attributes=attrs,
            in_force=bool(in_force),
        )
