"""Turning one furnished row into a draft entry, or into the exact list of what is wrong with it.

A row is a mapping from field name to value, as read from CSV (all strings), NDJSON or Parquet
(native values) or the API. Kind-specific attributes come either as an ``attributes`` mapping (or a
JSON object in a string) or as flat ``attr.NAME`` columns.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from socialcredit import ids
from socialcredit.catalog import Catalogue, RecordKind
from socialcredit.errors import Problem

RECORD_FIELDS = (
    "ref",
    "subject",
    "subject_scheme",
    "subject_id",
    "subject_name",
    "subject_kind",
    "kind",
    "decision_no",
    "decision_date",
    "severity",
    "amount",
    "legal_basis",
    "attributes",
)
_KNOWN = frozenset(RECORD_FIELDS)
ATTR_PREFIX = "attr."
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode


@dataclass(frozen=True, slots=True)
class Authority:
    authority_id: str
    name: str
    type: str
    kinds: frozenset[str]


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _text(v: Any) -> str:
    return v.strip() if isinstance(v, str) else str(v)


def parse_amount(value: Any) -> int:
    """Money in major units (yuan) to minor units (fen). Raises ValueError with a reason."""
    if isinstance(value, str):
        m = _AMOUNT.fullmatch(value)
        if m is not None:  # the common case, without Decimal
            return int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))
    if isinstance(value, bool):
        raise ValueError("is not a number")
    try:
        d = Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise ValueError("is not a number") from None
    if not d.is_finite():
        raise ValueError("is not a finite number")
    if d < 0:
        raise ValueError("must not be negative")
    if d >= _AMOUNT_LIMIT:  # (the ledger stores 64-bit minor units; the hash chain needs them)
        raise ValueError("is too large: at most 15 digits before the decimal point")
    minor = d * 100
    if minor != minor.to_integral_value():
        raise ValueError("has more than two decimal places")
    return int(minor)


def parse_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return dt.date.fromisoformat(value.strip())
    raise ValueError("not a date")


_AMOUNT = re.compile(r"(\d{1,15})(?:\.(\d{1,2}))?")
_AMOUNT_LIMIT = 10**15  # yuan: what the common-case pattern above allows
_CACHE_MAX = 100_000  # bounded memo tables keep memory constant on any file size

# What a valid furnished row becomes, in ``entries`` column order (see :meth:`RecordValidator.plan`)
PREPARED_FIELDS = (
    "authority_ref",
    "subject_key",
    "subject_kind",
    "subject_name",
    "kind",
    "decision_no",
    "decision_date",  # ISO text, YYYY-MM-DD
    "severity",
    "amount_minor",
    "legal_basis",
    "attributes",
)
Prepared = tuple[Any, ...]
Plan = Callable[[Sequence[Any]], Prepared | None]
# what the few-valued columns of a row come to: kind id, severity, legal basis, subject kind given,
# attributes (JSON text), subject kinds allowed, amount use
_Common = tuple[str, str | None, str, str | None, str | None, frozenset[str], str]


def prepare(draft: Mapping[str, Any]) -> Prepared:
    """The prepared form (:data:`PREPARED_FIELDS`) of a draft returned by ``validate``."""
    date = draft["decision_date"]
    return (
        draft["authority_ref"],
        draft["subject_key"],
        draft["subject_kind"],
        draft["subject_name"],
        draft["kind"],
        draft["decision_no"],
        date.isoformat() if isinstance(date, dt.date) else date,
        draft["severity"],
        draft["amount_minor"],
        draft["legal_basis"],
        draft["attributes"],
    )


class RecordValidator:
    """Validates furnished rows for one authority against the catalogue, as of ``today``.

    Subjects, kinds and attribute sets repeat across rows, so their checks are memoised in bounded
    tables; the result for a row never depends on what was seen before.
    """

    def __init__(self, catalogue: Catalogue, authority: Authority, today: dt.date):
        self.catalogue = catalogue
        self.authority = authority
        self.today = today
        self._subjects: dict[str, ids.Identifier | Problem] = {}
        self._kinds: dict[str, RecordKind | Problem] = {}
        self._attrs: dict[tuple[Any, ...], tuple[str | None, list[Problem]]] = {}

    def subject(self, row: Mapping[str, Any], problems: list[Problem]) -> ids.Identifier | None:
        key = row.get("subject")
        if not _blank(key):
            text = key.strip() if isinstance(key, str) else str(key)
            hit = self._subjects.get(text)
            if hit is None:
                try:
                    hit = ids.parse_key(text)
                except ids.IdError as e:
                    hit = replace(e.problem("subject"), value=key)
                if len(self._subjects) >= _CACHE_MAX:
                    self._subjects.clear()
                self._subjects[text] = hit
            if isinstance(hit, Problem):  # memoised with the first raw value seen: use this row's
                problems.append(hit if hit.value is key else replace(hit, value=key))
                return None
            return hit
        scheme, value = row.get("subject_scheme"), row.get("subject_id")
        if _blank(scheme) or _blank(value):
            problems.append(
                Problem(
                    "subject",
                    "required",
                    key,
                    "a subject is required: give 'subject' as SCHEME:VALUE "
                    "(or 'subject_scheme' and 'subject_id')",
                )
            )
            return None
        try:
            return ids.parse(_text(scheme), _text(value))
        except ids.IdError as e:
            problems.append(replace(e.problem("subject"), value=value))
            return None

    def kind(self, row: Mapping[str, Any], problems: list[Problem]) -> RecordKind | None:
        raw = row.get("kind")
        if _blank(raw):
            problems.append(Problem("kind", "required", raw, "a record kind is required"))
            return None
        kind_id = _text(raw)
        hit = self._kinds.get(kind_id)
        if hit is None:
            hit = self._kind(kind_id, raw)
            self._kinds[kind_id] = hit
        if isinstance(hit, Problem):  # memoised with the first raw value seen: use this row's
            if hit.rule == "unknown-kind" and hit.value is not raw:
                hit = replace(hit, value=raw)
            problems.append(hit)
            return None
        return hit

    def _kind(self, kind_id: str, raw: Any) -> RecordKind | Problem:
        kind = self.catalogue.record_kinds.get(kind_id)
        if kind is None:
            return Problem(
                "kind", "unknown-kind", raw, f"'{kind_id}' is not a record kind in the catalogue"
            )
        a = self.authority
        if kind_id not in a.kinds or a.type not in kind.furnisher_types:
            return Problem(
                "kind",
                "not-accredited",
                kind_id,
                f"authority '{a.authority_id}' ({a.type}) is not accredited to furnish '{kind_id}'",
            )
        return kind

    def attributes(self, kind: RecordKind, raw: dict[str, Any]) -> tuple[str | None, list[Problem]]:
        """Coerce attributes to canonical JSON text (memoised on the raw values)."""
        try:
            key: tuple[Any, ...] | None = (kind.id, *raw.items())
            for v in raw.values():
                if v.__class__ is not str:  # 1, 1.0 and True are equal keys: tell them apart
                    key = (*key, *[v.__class__ for v in raw.values()])  # type: ignore[misc]
                    break
            hit = self._attrs.get(key)  # type: ignore[arg-type]
        except TypeError:  # unhashable values (lists from JSON): no memo
            key, hit = None, None
        if hit is None:
            coerced, problems = kind.coerce_attributes(raw)
            hit = (_dumps(coerced) if coerced and not problems else None, problems)
            if key is not None:
                if len(self._attrs) >= _CACHE_MAX:
                    self._attrs.clear()
                self._attrs[key] = hit
        return hit

    # ------------------------------------------------------------------ the fast path

    def plan(self, columns: Sequence[str]) -> Plan | None:
        """A fast checker for rows given as values in ``columns`` order (a CSV header, say).

        The checker returns the prepared row (:data:`PREPARED_FIELDS`) when the row is valid and
        of the common shape: text values (or ``None``; a date may be a ``datetime.date``), the
        subject as ``SCHEME:VALUE`` or scheme + id, attributes as ``attr.NAME`` columns and no
        nested ``attributes``. Otherwise it returns ``None`` and the caller runs :meth:`validate`,
        which gives the verdict and every problem. So the fast path never accepts a row that
        :meth:`validate` refuses, and what it returns equals ``prepare(validate(row)[0])``
        (``tests/ledger/test_fast_validate.py`` holds it to that).

        Speed comes from memo tables of what passed, keyed on the raw values: subjects, dates,
        and the few-valued columns together (kind, severity, legal basis, subject kind and the
        attributes, checked once per combination). Failures are not memoised: they go to
        :meth:`validate`, which names them.

        Returns ``None`` when no fast path fits the columns (unknown or repeated names, or a
        required column missing): every row then goes through :meth:`validate`.
        """
        cols = list(columns)
        if len(set(cols)) != len(cols):
            return None
        for c in cols:
            if c not in _KNOWN and not c.startswith(ATTR_PREFIX):
                return None
        where = {c: i for i, c in enumerate(cols)}
        if not {"ref", "kind", "decision_no", "decision_date"} <= where.keys():
            return None
        if "subject" not in where and not {"subject_scheme", "subject_id"} <= where.keys():
            return None
        i_ref, i_dno, i_date = (where[c] for c in ("ref", "decision_no", "decision_date"))
        i_subject, i_scheme, i_id, i_name, i_amount = (
            where.get(c)
            for c in ("subject", "subject_scheme", "subject_id", "subject_name", "amount")
        )
        # the few-valued columns, checked once per combination of raw values
        group = tuple(
            where.get(c) for c in ("kind", "severity", "legal_basis", "subject_kind", "attributes")
        )
        attr_names = tuple(c[len(ATTR_PREFIX) :] for c in cols if c.startswith(ATTR_PREFIX))
        picked = [
            i for i in (*group, *(where[ATTR_PREFIX + n] for n in attr_names)) if i is not None
        ]
        pick: Callable[[Sequence[Any]], Any] = operator.itemgetter(*picked)
        if len(picked) == 1:
            one = pick
            pick = lambda v: (one(v),)  # noqa: E731 - itemgetter of one index gives no tuple
        slot = {i: k for k, i in enumerate(picked)}
        s_kind, s_sev, s_basis, s_skind, s_nested = (None if i is None else slot[i] for i in group)
        s_attrs = len(picked) - len(attr_names)
        today = self.today
        subjects: dict[Any, tuple[str, str | None]] = {}
        dates: dict[str, str] = {}
        groups: dict[Any, _Common] = {}
        str_ = str
        date_ = dt.date
        fromiso = dt.date.fromisoformat

        def identify(v: Sequence[Any]) -> tuple[str, str | None] | None:
            if i_subject is not None:
                raw = v[i_subject]
                if raw.__class__ is str_:
                    text = raw.strip()
                    if text:
                        hit = subjects.get(text)
                        if hit is None:
                            try:
                                ident = ids.parse_key(text)
                            except ids.IdError:
                                return None
                            hit = (ident.key, ident.subject_kind)
                            if len(subjects) >= _CACHE_MAX:
                                subjects.clear()
                            subjects[text] = hit
                        return hit
                elif raw is not None:
                    return None
            if i_scheme is None or i_id is None:
                return None
            scheme, value = v[i_scheme], v[i_id]
            if scheme.__class__ is not str_ or value.__class__ is not str_:
                return None
            pair = (scheme.strip(), value.strip())
            hit = subjects.get(pair)
            if hit is None:
                if not pair[0] or not pair[1]:
                    return None
                try:
                    ident = ids.parse(*pair)
                except ids.IdError:
                    return None
                hit = (ident.key, ident.subject_kind)
                if len(subjects) >= _CACHE_MAX:
                    subjects.clear()
                subjects[pair] = hit
            return hit

        def combine(
            key: tuple[Any, ...],
        ) -> _Common | None:
            """Check a combination of the few-valued columns: (kind id, severity, legal basis,
            the subject kind given or None, attributes as JSON, subject kinds allowed, amount
            use)."""
            for value in key:
                if value is not None and value.__class__ is not str_:
                    return None
            raw = None if s_kind is None else key[s_kind]
            if raw is None or not raw.strip():
                return None
            kind = self._kinds.get(raw.strip()) or self._kind(raw.strip(), raw)
            if isinstance(kind, Problem):
                return None
            raw = None if s_sev is None else key[s_sev]
            severity = None if raw is None or not raw.strip() else raw.strip().lower()
            if kind.check_severity(severity) is not None:
                return None
            raw = None if s_basis is None else key[s_basis]
            basis = kind.legal_basis if raw is None or not raw.strip() else raw.strip()
            raw = None if s_skind is None else key[s_skind]
            given = None if raw is None or not raw.strip() else raw.strip()
            if s_nested is not None and not _blank(key[s_nested]):
                return None
            given_attrs = {
                name: value
                for name, value in zip(attr_names, key[s_attrs:], strict=True)
                if not _blank(value)
            }
            attributes, problems = self.attributes(kind, given_attrs)
            if problems:
                return None
            allowed = frozenset(kind.subject_kinds)
            return kind.id, severity, basis, given, attributes, allowed, kind.amount

        def check(v: Sequence[Any]) -> Prepared | None:
            ref = v[i_ref]
            if ref.__class__ is not str_:
                return None
            ref = ref.strip()
            if not ref or len(ref) > 128:
                return None
            subject = identify(v)
            if subject is None:
                return None
            key = pick(v)
            try:
                common = groups.get(key)
            except TypeError:  # an unhashable value (a list, say)
                return None
            if common is None:
                common = combine(key)
                if common is None:
                    return None
                if len(groups) >= _CACHE_MAX:
                    groups.clear()
                groups[key] = common
            kind_id, severity, basis, subject_kind, attributes, allowed, amount_use = common
            if subject_kind is None:
                subject_kind = subject[1]
            elif subject[1] is not None and subject_kind != subject[1]:
                return None
            if subject_kind not in allowed:  # (None is never allowed)
                return None
            decision_no = v[i_dno]
            if decision_no.__class__ is not str_:
                return None
            decision_no = decision_no.strip()
            if not decision_no:
                return None
            raw = v[i_date]
            if raw.__class__ is str_:
                date = dates.get(raw)
                if date is None:
                    try:
                        day = fromiso(raw.strip())
                    except ValueError:
                        return None
                    if day > today:
                        return None
                    date = day.isoformat()
                    if len(dates) >= _CACHE_MAX:
                        dates.clear()
                    dates[raw] = date
            elif raw.__class__ is date_:
                if raw > today:
                    return None
                date = raw.isoformat()
            else:
                return None
            raw = None if i_amount is None else v[i_amount]
            amount: int | None = None
            if raw is None or (raw.__class__ is str_ and not raw.strip()):
                if amount_use == "required":
                    return None
            elif raw.__class__ is str_ and amount_use != "none":
                whole, dot, cents = raw.partition(".")  # parse_amount's common case, faster
                if (
                    whole.isdecimal()
                    and len(whole) <= 15
                    and (not dot or (cents.isdecimal() and len(cents) <= 2))
                ):
                    amount = int(whole) * 100 + (int(cents.ljust(2, "0")) if dot else 0)
                else:
                    try:
                        amount = parse_amount(raw)
                    except ValueError:
                        return None
            else:
                return None
            name = None if i_name is None else v[i_name]
            if name is not None:
                if name.__class__ is not str_:
                    return None
                name = name.strip()[:200] or None
            return (
                ref,
                subject[0],
                subject_kind,
                name,
                kind_id,
                decision_no,
                date,
                severity,
                amount,
                basis,
                attributes,
            )

        return check

    def validate(self, row: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[Problem]]:
        """Return (draft entry, []) or (None, problems). ``row`` numbers are added by the caller."""
        problems: list[Problem] = []
        attrs_raw: dict[str, Any] = {}
        for name, value in row.items():
            if name in _KNOWN:
                continue
            if name.startswith(ATTR_PREFIX):
                if not _blank(value):
                    attrs_raw[name[5:]] = value
            else:
                problems.append(
                    Problem(name, "unknown-field", value, f"'{name}' is not a record field")
                )
        nested = row.get("attributes")
        if not _blank(nested):
            if isinstance(nested, str):
                try:
                    nested = json.loads(nested)
                except json.JSONDecodeError as e:
                    problems.append(
                        Problem(
                            "attributes", "malformed-json", nested, f"is not valid JSON: {e.msg}"
                        )
                    )
                    nested = {}
            if isinstance(nested, Mapping):
                for k, v in nested.items():
                    if k in attrs_raw:
                        problems.append(
                            Problem(
                                f"attributes.{k}",
                                "duplicate-field",
                                v,
                                f"'{k}' is given both as 'attr.{k}' and inside 'attributes'",
                            )
                        )
                    attrs_raw[k] = v
            else:
                problems.append(
                    Problem("attributes", "type:object", nested, "must be an object of attributes")
                )

        ref = row.get("ref")
        if _blank(ref):
            problems.append(
                Problem(
                    "ref",
                    "required",
                    ref,
                    "the authority's own reference for this record is required",
                )
            )
        else:
            ref = _text(ref)
            if len(ref) > 128:
                problems.append(Problem("ref", "too-long", ref, "must be at most 128 characters"))

        ident = self.subject(row, problems)
        kind = self.kind(row, problems)

        subject_kind: str | None = None
        if ident is not None:
            given = row.get("subject_kind")
            subject_kind = ident.subject_kind
            if not _blank(given):
                g = _text(given)
                if subject_kind is not None and g != subject_kind:
                    problems.append(
                        Problem(
                            "subject_kind",
                            "mismatch",
                            given,
                            f"the identifier {ident.key} belongs to a {subject_kind}, not a {g}",
                        )
                    )
                subject_kind = g
            if subject_kind is None:
                problems.append(
                    Problem(
                        "subject_kind",
                        "required",
                        given,
                        f"scheme '{ident.scheme}' does not tell the kind of subject: give subject_kind",
                    )
                )
            elif kind is not None and subject_kind not in kind.subject_kinds:
                problems.append(
                    Problem(
                        "subject_kind",
                        "not-allowed",
                        subject_kind,
                        f"'{kind.id}' cannot be furnished about a {subject_kind} "
                        f"(allowed: {', '.join(kind.subject_kinds)})",
                    )
                )

        decision_no = row.get("decision_no")
        if _blank(decision_no):
            problems.append(
                Problem(
                    "decision_no",
                    "required",
                    decision_no,
                    "the decision (document) number is required",
                )
            )

        raw_date = row.get("decision_date")
        decision_date: dt.date | None = None
        if _blank(raw_date):
            problems.append(
                Problem("decision_date", "required", raw_date, "the decision date is required")
            )
        else:
            try:
                decision_date = parse_date(raw_date)
            except (ValueError, TypeError):
                problems.append(
                    Problem(
                        "decision_date", "type:date", raw_date, "is not a date in YYYY-MM-DD form"
                    )
                )
            else:
                if decision_date > self.today:
                    problems.append(
                        Problem(
                            "decision_date",
                            "future-date",
                            raw_date,
                            f"is after today ({self.today.isoformat()}): "
                            "a decision cannot be furnished before it is made",
                        )
                    )

        severity = row.get("severity")
        sev: str | None = None if _blank(severity) else _text(severity).lower()
        amount_minor: int | None = None
        raw_amount = row.get("amount")
        attributes: str | None = None
        if kind is not None:
            for found in (
                kind.check_severity(sev),
                kind.check_amount(None if _blank(raw_amount) else raw_amount),
            ):
                if found is not None:
                    problems.append(
                        found if found.field != "severity" else replace(found, value=severity)
                    )
            if not _blank(raw_amount) and kind.amount != "none":
                try:
                    amount_minor = parse_amount(raw_amount)
                except ValueError as e:
                    problems.append(Problem("amount", "type:amount", raw_amount, f"{e}"))
            attributes, attr_problems = self.attributes(kind, attrs_raw)
            problems.extend(attr_problems)

        if problems:
            return None, problems
        assert ident is not None and kind is not None
        subject_name = row.get("subject_name")
        legal_basis = row.get("legal_basis")
        return {
            "op": "furnish",
            "authority_id": self.authority.authority_id,
            "authority_ref": ref,
            "target_seq": None,
            "subject_key": ident.key,
            "subject_kind": subject_kind,
            "subject_name": None if _blank(subject_name) else _text(subject_name)[:200],
            "kind": kind.id,
            "decision_no": _text(decision_no),
            "decision_date": decision_date,
            "severity": sev,
            "amount_minor": amount_minor,
            "legal_basis": kind.legal_basis if _blank(legal_basis) else _text(legal_basis),
            "attributes": attributes,
            "reason": None,
        }, []
