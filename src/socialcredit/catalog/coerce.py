"""Per-attribute converters for record attributes, compiled once per record kind.

This is the import hot path: every furnished row goes through :meth:`RecordKind.coerce_attributes`.
Each attribute spec is compiled into one small closure that takes a raw value (a CSV string or a
JSON / Parquet native) and returns either the coerced JSON-native value or a :class:`Bad` marker.
Returning a marker instead of raising keeps the happy path free of ``try`` blocks and the sad path
cheap; one ``type(result) is Bad`` test tells the two apart.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from socialcredit.catalog.model import AttributeSpec

Converter = Callable[[Any], Any]


class Bad:
    """A conversion outcome that is not a value.

    ``rule is None`` means *missing* (an empty or blank string): the attribute is dropped from the
    output and only matters if it is required. Otherwise ``rule`` and ``message`` describe the
    problem.
    """

    __slots__ = ("message", "rule")

    def __init__(self, rule: str | None, message: str) -> None:
        self.rule = rule
        self.message = message

    def __repr__(self) -> str:
        return f"Bad({self.rule!r}, {self.message!r})"


MISSING: Final = Bad(None, "missing")

_BOOL_WORDS: Final[dict[str, bool]] = {
    "true": True,
    "false": False,
    "yes": True,
    "no": False,
    "1": True,
    "0": False,
}
_MIDNIGHT: Final = time(0, 0)


def fmt_bound(x: float) -> str:
    """Render a bound without a trailing ``.0`` when it is whole (``0`` not ``0.0``)."""
    return str(int(x)) if float(x).is_integer() else repr(x)


def _int_from_str(s: str) -> int | None:
    if "_" in s or not s.isascii():  # int() accepts "1_000" and non-ASCII digits; we do not
        return None
    try:
        return int(s)
    except ValueError:
        pass
    try:
        f = float(s)
    except ValueError:
        return None
    if f.is_integer():  # False for inf and nan
        return int(f)
    return None


def _as_int(v: Any) -> int | None:
    t = type(v)
    if t is int:
        return v  # type: ignore[no-any-return]
    if t is str:
        return _int_from_str(v.strip())
    if t is bool:
        return None
    if isinstance(v, float):
        return int(v) if v.is_integer() else None
    if isinstance(v, Decimal):
        return int(v) if v.is_finite() and v == v.to_integral_value() else None
    index = getattr(type(v), "__index__", None)  # numpy integers and friends
    if index is not None:
        return operator.index(v)
    return None


def _as_number(v: Any) -> int | float | None:
    t = type(v)
    if t is int or t is float:
        return v if t is int or math.isfinite(v) else None  # type: ignore[no-any-return]
    if t is str:
        s = v.strip()
        if "_" in s or not s.isascii():
            return None
        try:
            return int(s)
        except ValueError:
            pass
        try:
            f = float(s)
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    if t is bool:
        return None
    if isinstance(v, float | Decimal):
        f = float(v)
        return f if math.isfinite(f) else None
    index = getattr(type(v), "__index__", None)
    if index is not None:
        return operator.index(v)
    return None


def _as_date(v: Any) -> str | None:
    t = type(v)
    if t is str:
        s: str = v.strip()
        if len(s) != 10 or s[4] != "-" or s[7] != "-" or not s.isascii():
            return None
        try:
            date.fromisoformat(s)
        except ValueError:
            return None
        return s
    if t is date:
        return v.isoformat()  # type: ignore[no-any-return]
    if isinstance(v, datetime):
        if v.tzinfo is None and v.time() == _MIDNIGHT:
            return v.date().isoformat()
        return None
    if isinstance(v, date):
        return v.isoformat()
    return None


def _as_bool(v: Any) -> bool | None:
    t = type(v)
    if t is bool:
        return v  # type: ignore[no-any-return]
    if t is str:
        return _BOOL_WORDS.get(v.strip().lower())
    if t is int and (v == 0 or v == 1):
        return bool(v)
    return None


def compile_converter(kind_id: str, name: str, spec: AttributeSpec) -> Converter:
    """Build the converter for attribute ``name`` of record kind ``kind_id``."""
    where = f"attribute '{name}' of a {kind_id} record"
    kind_type = spec.type

    if kind_type == "string":
        bad_string = Bad("type:string", f"{where} must be text")

        def conv_string(v: Any) -> Any:
            t = type(v)
            if t is str:
                s = v.strip()
                return s if s else MISSING
            if t is bool or isinstance(v, bool | dict | list | tuple | set | bytes):
                return bad_string
            return str(v)

        return conv_string

    if kind_type == "enum":
        values = tuple(spec.values or ())
        allowed = frozenset(values)
        bad_enum = Bad("enum", f"{where} must be one of: {', '.join(values)}")

        def conv_enum(v: Any) -> Any:
            if type(v) is str:
                s = v.strip()
                if s in allowed:
                    return s
                return bad_enum if s else MISSING
            return bad_enum

        return conv_enum

    if kind_type == "boolean":
        bad_bool = Bad("type:boolean", f"{where} must be true or false (or yes/no, 1/0)")
        words = _BOOL_WORDS

        def conv_bool(v: Any) -> Any:
            t = type(v)
            if t is str:
                b = words.get(v.strip().lower())
                if b is None:
                    return MISSING if not v.strip() else bad_bool
                return b
            if t is bool:
                return v
            b = _as_bool(v)
            return bad_bool if b is None else b

        return conv_bool

    if kind_type == "date":
        bad_date = Bad("type:date", f"{where} must be a date written YYYY-MM-DD")

        def conv_date(v: Any) -> Any:
            d = _as_date(v)
            if d is None:
                return MISSING if type(v) is str and not v.strip() else bad_date
            return d

        return conv_date

    # integer / number, optionally bounded. The common cases (an int, or a string holding an
    # int) are handled inline; everything else goes through the general parser.
    if kind_type == "integer":
        parse: Callable[[Any], int | float | None] = _as_int
        bad_type = Bad("type:integer", f"{where} must be a whole number")
    else:
        parse = _as_number
        bad_type = Bad("type:number", f"{where} must be a number")
    lo, hi = spec.minimum, spec.maximum
    low = -math.inf if lo is None else lo
    high = math.inf if hi is None else hi
    bad_low = Bad("minimum", f"{where} must be at least {fmt_bound(low)}")
    bad_high = Bad("maximum", f"{where} must be at most {fmt_bound(high)}")

    def conv_num(v: Any) -> Any:
        t = type(v)
        n: Any
        if t is int:
            n = v
        elif t is str and v.isdigit() and v.isascii():  # "12": no sign, spaces or dots
            n = int(v)
        else:
            n = parse(v)
            if n is None:
                return MISSING if t is str and not v.strip() else bad_type
        if n < low:
            return bad_low
        if n > high:
            return bad_high
        return n

    return conv_num
