"""Record attributes for the batch plan: canonical text and numbers, read from the JSON text.

The reference evaluator compares attribute values as :func:`socialcredit.engine.records.canon`
text (``true``/``false``, integral floats as integers, other floats as Python's ``repr``) and
reads numbers as :meth:`Rec.number` does (``float()`` of a number or a numeric string, never of a
bool). Backends disagree on what their JSON functions return, so each one gets a small dialect
that yields, per attribute, ``(json type, text)`` in a common vocabulary; the canonical text and
the number are then built from those with portable Ibis expressions.

Common vocabulary of types: ``str``, ``int``, ``real``, ``bool``, ``null``, ``other`` (arrays and
objects; their text is minified JSON, which never equals Python's ``repr`` of a list or dict).

The work is done in three projections (raw JSON reads, then type and text, then canonical text
and number), so each expression reads columns of the previous one: inlining them into each other
makes SQL that grows with every reference. Adding a backend means adding one dialect.

Spark has no JSON type function: its JSON is parsed once per row into a ``VARIANT``
(``PREPARE``), whose type names play the part of ``json_type`` and whose ``variant_get(..,
'string')`` gives the text (doubles in Java's notation, turned into Python's).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ibis
import ibis.expr.types as ir

# --------------------------------------------------------------------------- builtins


@ibis.udf.scalar.builtin(name="json_type")  # type: ignore[untyped-decorator]
def _json_type(j: str, path: str) -> str:  # type: ignore[empty-body]
    """DuckDB and SQLite: the JSON type of the value at ``path``."""


@ibis.udf.scalar.builtin(name="json_extract_string")  # type: ignore[untyped-decorator]
def _duck_extract_string(j: str, path: str) -> str:  # type: ignore[empty-body]
    """DuckDB: the value at ``path`` as text (strings unquoted)."""


@ibis.udf.scalar.builtin(name="json_extract_scalar")  # type: ignore[untyped-decorator]
def _sqlite_extract(j: str, path: str) -> str:  # type: ignore[empty-body]
    """SQLite ``->>`` (sqlglot's spelling): the SQL value at ``path`` (strings unquoted)."""


@ibis.udf.scalar.builtin(name="json_extract")  # type: ignore[untyped-decorator]
def _sqlite_extract2(j: str, p1: str, p2: str) -> str:  # type: ignore[empty-body]
    """SQLite: the values at two paths as a JSON array; numbers keep their original text."""


@ibis.udf.scalar.builtin(name="json_typeof")  # type: ignore[untyped-decorator]
def _pg_typeof(j: str) -> str:  # type: ignore[empty-body]
    """PostgreSQL: the JSON type of a ``json`` value."""


@ibis.udf.scalar.builtin(name="json_extract_path")  # type: ignore[untyped-decorator]
def _pg_path(j: str, key: str) -> str:  # type: ignore[empty-body]
    """PostgreSQL: the ``json`` value under ``key``."""


@ibis.udf.scalar.builtin(name="json_extract_path_text")  # type: ignore[untyped-decorator]
def _pg_path_text(j: str, key: str) -> str:  # type: ignore[empty-body]
    """PostgreSQL: the value under ``key`` as text (numbers keep their original text)."""


@ibis.udf.scalar.builtin(name="json")  # type: ignore[untyped-decorator]
def _pg_json(j: str) -> str:  # type: ignore[empty-body]
    """PostgreSQL: text to ``json`` (keeps the original text of numbers)."""


@ibis.udf.scalar.builtin(name="try_parse_json")  # type: ignore[untyped-decorator]
def _spark_parse(j: str) -> str:  # type: ignore[empty-body]
    """Spark: JSON text to a ``VARIANT`` (typed as text for Ibis; only ever read, never stored).

    (Not ``parse_json``: sqlglot writes that as its bare argument for Spark. The ledger only holds
    valid JSON, so the ``try_`` never matters there.)"""


@ibis.udf.scalar.builtin(name="variant_get")  # type: ignore[untyped-decorator]
def _spark_get(v: str, path: str) -> str:  # type: ignore[empty-body]
    """Spark: the ``VARIANT`` at ``path`` (``NULL`` when missing, a variant null for JSON null)."""


@ibis.udf.scalar.builtin(name="variant_get")  # type: ignore[untyped-decorator]
def _spark_get_as(v: str, path: str, typ: str) -> str:  # type: ignore[empty-body]
    """Spark: the value at ``path`` cast to ``typ`` (as ``'string'``: strings unquoted, decimals
    positional, doubles in Java's notation, objects and arrays as minified JSON)."""


@ibis.udf.scalar.builtin(name="schema_of_variant")  # type: ignore[untyped-decorator]
def _spark_schema(v: str) -> str:  # type: ignore[empty-body]
    """Spark: the type of a ``VARIANT`` (``STRING``, ``BIGINT``, ``DECIMAL(p,s)``, ``DOUBLE``,
    ``BOOLEAN``, ``OBJECT<...>``, ``ARRAY<...>``, ``VOID`` for JSON null)."""


def _path(name: str) -> str:
    if '"' in name or "\\" in name:
        raise ValueError(f"attribute name {name!r} cannot be read by the batch plan")
    return f'$."{name}"'


def _s(x: Any) -> ir.StringValue:
    return ibis.literal(x, "string")


_NULL = ibis.null("string")

# --------------------------------------------------------------------------- dialects
#
# raw(t, json column, i, name) -> columns of the first projection
# typed(t, i) -> (type, text) from those columns


def _duck_raw(j: ir.StringValue, i: int, name: str) -> dict[str, ir.Value]:
    p = _path(name)
    return {f"_j{i}": _json_type(j, p), f"_s{i}": _duck_extract_string(j, p)}


def _duck_typed(t: ir.Table, i: int) -> tuple[ir.StringValue, ir.StringValue]:
    jt, text = t[f"_j{i}"], t[f"_s{i}"]
    kind = ibis.cases(
        (jt == "VARCHAR", _s("str")),
        (jt.isin(["BIGINT", "UBIGINT"]), _s("int")),
        (jt == "DOUBLE", _s("real")),
        (jt == "BOOLEAN", _s("bool")),
        (jt.isin(["OBJECT", "ARRAY"]), _s("other")),
        else_=_s("null"),
    )
    # DuckDB re-renders doubles: bring the non-integral ones back to Python's repr
    return kind, ibis.cases((jt == "DOUBLE", _duck_float_repr(text)), else_=text)


def _duck_float_repr(t: ir.StringValue) -> ir.StringValue:
    """DuckDB's rendering of a double -> Python's ``repr`` (for the non-integral ones).

    DuckDB writes shortest round-trip digits like Python does, but positionally down to about
    1e-6 (``0.00001``) and then with a bare exponent (``1e-7``); Python switches to exponent form
    below 1e-4 and pads the exponent to two digits (``1e-05``, ``1e-07``). Integral values are
    left alone: the canonical text of those comes from the number.
    """
    mant = t.re_extract(r"^(-?[0-9.]+)[eE]", 1)
    esign = t.re_extract(r"[eE]([-+]?)", 1)
    edigits = t.re_extract(r"[eE][-+]?0*([0-9]+)$", 1)
    from_exp = (
        mant + "e" + ibis.cases((esign == "-", _s("-")), else_=_s("+")) + edigits.lpad(2, "0")
    )
    # positional with four or more zeros after the point: -0.0000037 -> -3.7e-06
    sign = ibis.cases((t.startswith("-"), _s("-")), else_=_s(""))
    zeros = t.re_extract(r"^-?0\.(0*)[1-9]", 1)
    digits = t.re_extract(r"^-?0\.0*([1-9][0-9]*)$", 1)
    rest = digits.substr(1)
    small = (
        sign
        + digits.substr(0, 1)
        + ibis.cases((rest.length() > 0, "." + rest), else_=_s(""))
        + "e-"
        + (zeros.length() + 1).cast("string").lpad(2, "0")
    )
    return ibis.cases(
        (t.re_search("[eE]"), from_exp),
        (t.re_search(r"^-?0\.0000"), small),
        else_=t,
    )


def _sqlite_raw(j: ir.StringValue, i: int, name: str) -> dict[str, ir.Value]:
    p = _path(name)
    return {
        f"_j{i}": _json_type(j, p),
        f"_p{i}": _sqlite_extract2(j, p, p),  # "[tok,tok]": numbers keep their original text
        f"_s{i}": _sqlite_extract(j, p).cast("string"),
    }


def _sqlite_typed(t: ir.Table, i: int) -> tuple[ir.StringValue, ir.StringValue]:
    jt, pair = t[f"_j{i}"], t[f"_p{i}"]
    kind = ibis.cases(
        (jt == "text", _s("str")),
        (jt == "integer", _s("int")),
        (jt == "real", _s("real")),
        (jt.isin(["true", "false"]), _s("bool")),
        (jt.isin(["object", "array"]), _s("other")),
        else_=_s("null"),
    )
    text = ibis.cases(
        (jt.isin(["integer", "real"]), pair.substr(1, pair.find(",") - 1)),
        (jt == "true", _s("true")),
        (jt == "false", _s("false")),
        else_=t[f"_s{i}"],
    )
    return kind, text


def _pg_raw(j: ir.StringValue, i: int, name: str) -> dict[str, ir.Value]:
    js = _pg_json(j)
    return {f"_j{i}": _pg_typeof(_pg_path(js, name)), f"_s{i}": _pg_path_text(js, name)}


def _pg_typed(t: ir.Table, i: int) -> tuple[ir.StringValue, ir.StringValue]:
    jt, text = t[f"_j{i}"], t[f"_s{i}"]
    kind = ibis.cases(
        (jt == "string", _s("str")),
        ((jt == "number") & text.re_search("[.eE]"), _s("real")),
        (jt == "number", _s("int")),
        (jt == "boolean", _s("bool")),
        (jt.isin(["object", "array"]), _s("other")),
        else_=_s("null"),
    )
    return kind, text


def _spark_raw(v: ir.StringValue, i: int, name: str) -> dict[str, ir.Value]:
    p = f'$["{_path(name)[3:-1]}"]'  # Spark's variant paths: $["name"] (checked by _path)
    text = _spark_get_as(v, p, "string")
    # the parts of Java's d.dddE[-]n for _java_float_repr, as columns: inlined, they make
    # expressions so large that Spark spends seconds analysing them
    return {
        f"_j{i}": _spark_schema(_spark_get(v, p)),
        f"_s{i}": text,
        f"_pe{i}": text.re_extract(r"E(-?[0-9]+)$", 1).try_cast("int64"),
        f"_pd{i}": text.re_extract(r"^-?([0-9.]+)E", 1).replace(".", "").re_replace("0+$", ""),
    }


def _spark_typed(t: ir.Table, i: int) -> tuple[ir.StringValue, ir.StringValue]:
    jt, text = t[f"_j{i}"], t[f"_s{i}"]
    # JSON numbers become BIGINT, DECIMAL(p,s) when they fit exactly (no exponent), else DOUBLE
    integral = (jt == "BIGINT") | jt.re_search(r"^DECIMAL\([0-9]+,0\)$")
    kind = ibis.cases(
        (jt == "STRING", _s("str")),
        (integral, _s("int")),
        ((jt == "DOUBLE") | jt.startswith("DECIMAL"), _s("real")),
        (jt == "BOOLEAN", _s("bool")),
        (jt.startswith("OBJECT") | jt.startswith("ARRAY"), _s("other")),
        else_=_s("null"),
    )
    out = ibis.cases(
        (jt == "DOUBLE", _java_float_repr(text, t[f"_pe{i}"], t[f"_pd{i}"])),
        # a decimal keeps the JSON's digits: drop trailing zeros of the fraction (1.50 -> 1.5)
        (jt.startswith("DECIMAL") & ~integral, text.re_replace("0+$", "")),
        else_=text,
    )
    return kind, out


def _java_float_repr(
    t: ir.StringValue, e: ir.IntegerValue, digits: ir.StringValue
) -> ir.StringValue:
    """Java's rendering of a double (``Double.toString``) -> Python's ``repr``.

    Java writes positionally for 1e-3 <= |x| < 1e7 (as Python does there) and otherwise
    ``d.dddE[-]n`` (``1.0E-5``, ``1.23456785E7``); Python writes positionally for
    1e-4 <= |x| < 1e16 and otherwise ``d.ddde±nn`` (``1e-05``, ``1.5e+300``). Integral values
    are left alone: the canonical text of those comes from the number. ``e`` is the exponent
    and ``digits`` the significant digits (no point, no trailing zeros) of the ``E`` form.
    """
    sign = ibis.cases((t.startswith("-"), _s("-")), else_=_s(""))
    n = digits.length()
    rest = digits.substr(1)
    small = sign + "0." + _s("0").repeat(-e - 1) + digits  # 1e-4 <= |x| < 1e-3
    large = sign + digits.substr(0, e + 1) + "." + digits.substr(e + 1)  # 1e7 <= |x| < 1e16
    sci = (
        sign
        + digits.substr(0, 1)
        + ibis.cases((n > 1, "." + rest), else_=_s(""))
        + "e"
        + ibis.cases((e < 0, _s("-")), else_=_s("+"))
        + e.abs().cast("string").lpad(2, "0")
    )
    return ibis.cases(
        (~t.contains("E"), t),
        ((e >= -4) & (e < 0), small),
        ((e >= 0) & (e < 16) & (n > e + 1), large),
        else_=sci,
    )


DIALECTS: dict[str, tuple[Any, Any]] = {
    "duckdb": (_duck_raw, _duck_typed),
    "sqlite": (_sqlite_raw, _sqlite_typed),
    "postgres": (_pg_raw, _pg_typed),
    "pyspark": (_spark_raw, _spark_typed),
}
# backends whose JSON is parsed once per row before the attributes are read
PREPARE: dict[str, Any] = {"pyspark": _spark_parse}

_NUMERIC = r"^ *[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)? *$"
_INT64_LIMIT = 9.2e18


def parse_attributes(
    t: ir.Table, source: str, names: Sequence[str], numbers: set[str], backend: str
) -> ir.Table:
    """Add ``a{i}`` (canonical text, as ``Rec.attr``) for each attribute name, and ``x{i}``
    (its number, as ``Rec.number``) for those in ``numbers``; drop the ``source`` column."""
    if not names:
        return t.drop(source)
    try:
        raw, typed = DIALECTS[backend]
    except KeyError:
        raise ValueError(
            f"the batch plan cannot read JSON attributes on the '{backend}' backend yet "
            f"(known: {', '.join(DIALECTS)})"
        ) from None
    n = len(names)
    if backend in PREPARE:
        t = t.mutate(**{source: PREPARE[backend](t[source])})
    t = t.mutate(
        **{k: v for i, name in enumerate(names) for k, v in raw(t[source], i, name).items()}
    )
    t = t.drop(source)
    cols: dict[str, ir.Value] = {}
    for i in range(n):
        kind, text = typed(t, i)
        cols[f"_k{i}"] = kind
        cols[f"_t{i}"] = text
    temps = [c for c in t.columns if c.startswith(("_j", "_s", "_p"))]
    t = t.mutate(**cols).drop(*temps)
    cols = {}
    for i, name in enumerate(names):
        kind, text = t[f"_k{i}"], t[f"_t{i}"]
        # casts only ever see numeric text (or NULL), so no backend can raise on them
        x = ibis.cases((kind.isin(["int", "real"]), text), else_=_NULL).cast("float64")
        # (a CASE, not AND: PostgreSQL may evaluate AND's operands in any order, and FLOOR is
        # cast to BIGINT, which overflows past 2**63)
        integral = ibis.cases((x.abs() < _INT64_LIMIT, x.floor() == x), else_=False)
        cols[f"a{i}"] = ibis.cases(
            (kind == "null", _NULL),
            ((kind == "real") & integral, x.cast("int64").cast("string")),
            else_=text,
        )
        if name in numbers:
            numeric_str = ibis.cases(
                ((kind == "str") & text.re_search(_NUMERIC), text.strip()), else_=_NULL
            ).cast("float64")
            cols[f"x{i}"] = ibis.cases((kind.isin(["int", "real"]), x), else_=numeric_str)
    return t.mutate(**cols).drop(*[f"_{c}{i}" for i in range(n) for c in "kt"])
