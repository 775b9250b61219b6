"""Calendar arithmetic for the batch plan, the same on every backend.

Adding a duration follows :func:`socialcredit.rulebooks.durations.add` exactly: calendar months
first, clamped to the end of the month (2024-01-31 + 1m = 2024-02-29), then days. Backends differ:

* DuckDB, PostgreSQL and Spark (3.0 and later) clamp ``date + INTERVAL 'n months'`` the same
  way (checked by the tests), so they use native interval arithmetic (``native``);
* SQLite's ``date(d, '+1 month')`` overflows instead (2024-01-31 -> 2024-03-02), so months are
  added with integer year/month arithmetic and a days-in-month expression, and days through
  ``julianday`` (``sqlite``);
* any other backend gets the integer month arithmetic and native day intervals (``civil``) until
  its own interval arithmetic has been checked.

The argument of :func:`add` should be a column (or a cheap expression): the integer path reads
it several times.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import ibis.expr.types as ir

Months = Any  # an int, or an Ibis integer expression


@ibis.udf.scalar.builtin(name="julianday")  # type: ignore[untyped-decorator]
def _julianday(d: dt.date) -> float:  # type: ignore[empty-body]
    """SQLite: the Julian day number of a date."""


@ibis.udf.scalar.builtin(name="date")  # type: ignore[untyped-decorator]
def _sqlite_date(jd: float) -> dt.date:  # type: ignore[empty-body]
    """SQLite: the ISO date of a Julian day number."""


def _zero(months: Months) -> bool:
    return isinstance(months, int) and months == 0


def days_in_month(y: Any, m: Any) -> ir.IntegerValue:
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    return ibis.cases(
        (m == 2, ibis.cases((leap, 29), else_=28)),
        (m.isin([4, 6, 9, 11]), 30),
        else_=31,
    )


def _civil_months(d: ir.DateValue, months: Months) -> ir.DateValue:
    y = d.year().cast("int64")
    m = d.month().cast("int64")
    day = d.day().cast("int64")
    ym = y * 12 + (m - 1) + months
    y2 = ym // 12
    m2 = ym % 12 + 1
    dim = days_in_month(y2, m2)
    d2 = ibis.cases((day > dim, dim), else_=day)
    return ibis.date(y2, m2, d2)


class DateMath:
    """``add(date, months, days)`` for one backend."""

    def __init__(self, backend: str):
        self.mode = {
            "duckdb": "native",
            "postgres": "native",
            "pyspark": "native",
            "sqlite": "sqlite",
        }.get(backend, "civil")

    def add(self, d: ir.DateValue, months: Months = 0, days: int = 0) -> ir.DateValue:
        out = d
        if not _zero(months):
            if self.mode == "native":
                iv = (
                    ibis.interval(months=months)
                    if isinstance(months, int)
                    else months.as_interval("M")
                )
                out = (out + iv).cast("date")
            else:
                out = _civil_months(out, months)
        if days:
            if self.mode == "sqlite":
                out = _sqlite_date(_julianday(out) + days)
            else:
                out = (out + ibis.interval(days=days)).cast("date")
        return out

    def add_columns(self, t: ir.Table, outs: dict[str, tuple[str, int | str, int]]) -> ir.Table:
        """Add a date column per ``outs`` item: ``name -> (date column, months, days)``.

        ``months`` is an int or the name of an integer column. The integer path runs in three
        projections so that no expression reads another expression many times over.
        """
        if self.mode == "native":
            return t.mutate(
                **{
                    o: self.add(t[src], t[mo] if isinstance(mo, str) else mo, days)
                    for o, (src, mo, days) in outs.items()
                }
            )
        monthly = {o: v for o, v in outs.items() if not _zero(v[1])}
        if monthly:
            t = t.mutate(
                **{
                    f"_{o}_ym": t[src].year().cast("int64") * 12
                    + (t[src].month().cast("int64") - 1)
                    + (t[mo] if isinstance(mo, str) else mo)
                    for o, (src, mo, _) in monthly.items()
                }
            )
            t = t.mutate(
                **{
                    k: v
                    for o in monthly
                    for k, v in (
                        (f"_{o}_y", t[f"_{o}_ym"] // 12),
                        (f"_{o}_m", t[f"_{o}_ym"] % 12 + 1),
                    )
                }
            )
            cols = {}
            for o, (src, _, _) in monthly.items():
                y, m, day = t[f"_{o}_y"], t[f"_{o}_m"], t[src].day().cast("int64")
                dim = days_in_month(y, m)
                cols[f"_{o}_md"] = ibis.date(y, m, ibis.cases((day > dim, dim), else_=day))
            t = t.mutate(**cols)
        final = {}
        for o, (src, _, days) in outs.items():
            d = t[f"_{o}_md"] if o in monthly else t[src]
            final[o] = self.add(d, 0, days) if days else d
        t = t.mutate(**final)
        return t.drop(*[f"_{o}_{s}" for o in monthly for s in ("ym", "y", "m", "md")])


def least(a: ir.Value, b: ir.Value) -> ir.Value:
    """The smaller of two nullable values, NULL only when both are (same on every backend)."""
    return ibis.cases((a.isnull(), b), (b.isnull(), a), (a <= b, a), else_=b)
