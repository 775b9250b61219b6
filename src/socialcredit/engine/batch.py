"""The batch plan: a rulebook compiled once into a relational plan over a whole population.

:func:`compile_plan` reads a rulebook (no data) and :meth:`Plan.run` evaluates every subject of a
record snapshot as of one day, with Ibis, on whatever backend holds the records (DuckDB over a
Parquet snapshot, SQLite or PostgreSQL over the ledger). The result is, table by table, exactly
what :func:`socialcredit.engine.reference.evaluate` gives subject by subject; the property test in
``tests/engine`` holds the two together.

How the reference's semantics become relations (``reference.py`` is the definition):

* Subjects: the population (every subject, its kind: the largest non-empty ``subject_kind`` of
  its records) keys subjects by ``subject``: on DuckDB the 64-bit hash of the text, computed from
  each record's own text (no join of records with the population), unless two subjects' hashes
  collide; elsewhere the text. Names are joined back in the output only.
* ``R``: the records rules may read (``in_force``, decided on or before the as-of day, of a kind
  some rule reads), with each attribute the rulebook reads parsed once into canonical text
  (``canon``) and a number (``Rec.number``) (``batch_json``). Durations are added as
  ``durations.add`` does, clamping month ends, on every backend (``batch_dates``). A list's or
  scheme's subject kinds are tested on its own rows (a join with the population's keys), and not
  at all when every subject present is of those kinds.
* ``add(d, duration) > as_of`` (restoration, limits, terms ended by the as-of day) is
  ``d >= first`` for a first day found by bisection (``_first_after``: ``add`` is non-decreasing
  in ``d``), so filters need no date arithmetic; entries and count windows whose term ended
  before the as-of day are dropped before the joins that read them.
* ``each`` entry rules: one interval per matching record; the term's end from the start (grace
  added), extended by ``extend_by_attribute`` years and capped by ``max``; each removal rule is a
  join on the subject (and ``match_attributes``) keeping the earliest removal decided on or after
  the entry.
* ``count`` entry rules: a self-join of the matching records within the subject, ``r2`` counting
  for ``r1`` when ``r2 <= r1 < r2 + within``; ``r1`` triggers when the weights reach ``at_least``.
* Intervals fold into active (``start <= as_of < end``) and pending (``start > as_of``).
* ``lists`` entry rules read the memberships of earlier lists; lists are evaluated in dependency
  levels, each level materialised. The k-th smallest since and the k-th latest until (open ends
  latest) are row numbers over the dependency memberships.
* Schemes: the first matching points rule is one CASE per value, in rule order; restoration
  and the cycle are filters; ``once_per`` keeps row number 0 by (decision date, record id); caps
  clip per rule id and calendar year (or overall); bands are a CASE in the reference's order;
  limits are the worst ``order`` rank among active limits.
* Lists of record ids, rule ids and list ids are built in Arrow from long (one row per element)
  tables, so no backend needs array types.

Every intermediate stage is written to a temporary table, its SQL flattened into CTEs first (SQLite
refuses SQL nested more than about 20 subqueries deep), and dropped at the end of the run.

Entry points: :func:`compile_plan` and :meth:`Plan.run` (any Ibis table in the snapshot shape),
:func:`records_table` (a Parquet snapshot, or the ledger's ``entries`` folded relationally by
``batch_ledger``) and :func:`evaluate_population` (``engine="duckdb"`` over a Parquet snapshot,
``engine="sql"`` over the ledger database, SQLite or PostgreSQL, ``engine="spark"`` over a Parquet
snapshot in a SparkSession, ``batch_spark``). Only :func:`connect` knows the engines; the JSON and
date dialects are chosen by the backend's name, and on Spark stages are checkpointed temporary
views instead of temporary tables.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import ibis
import ibis.expr.datatypes as dt_
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc
import sqlglot.expressions as sge

from socialcredit.engine.batch_dates import DateMath, least
from socialcredit.engine.batch_json import parse_attributes
from socialcredit.engine.records import canon
from socialcredit.engine.reference import cycle_bounds, list_order
from socialcredit.rulebooks.durations import Duration
from socialcredit.rulebooks.durations import add as add_duration
from socialcredit.rulebooks.model import Match, PointsRule, Rulebook, Scheme, dur, num

__all__ = [
    "BatchResult",
    "Plan",
    "compile_plan",
    "evaluate_population",
    "records_table",
]

# --------------------------------------------------------------------------- result

_DATE = pa.date32()
_IDS = pa.list_(pa.int64())
_STRS = pa.list_(pa.string())

MEMBERSHIP_SCHEMA = pa.schema(
    [
        ("subject", pa.string()),
        ("list", pa.string()),
        ("since", _DATE),
        ("until", _DATE),
        ("basis", _IDS),
        ("rules", _STRS),
        ("via", _STRS),
        ("repair_from", _DATE),
    ]
)
PENDING_SCHEMA = pa.schema(
    [
        ("subject", pa.string()),
        ("list", pa.string()),
        ("effective", _DATE),
        ("rule", pa.string()),
        ("basis", _IDS),
    ]
)
SCHEME_SCHEMA = pa.schema(
    [
        ("subject", pa.string()),
        ("scheme", pa.string()),
        ("points", pa.float64()),
        ("grade", pa.string()),
        ("band_grade", pa.string()),
        ("consent", pa.bool_()),
        ("next_change", _DATE),
    ]
)
MEASURE_SCHEMA = pa.schema(
    [
        ("subject", pa.string()),
        ("measure", pa.string()),
        ("memorandum", pa.string()),
        ("via", pa.string()),
        ("basis", _IDS),
    ]
)
NEXT_CHANGE_SCHEMA = pa.schema([("subject", pa.string()), ("next_change", _DATE)])


@dataclass(frozen=True)
class BatchResult:
    """The status of every subject, one Arrow table per part of ``reference.Status``.

    Lists (``basis``, ``rules``, ``via``) are sorted; rows are sorted by subject, then list or
    scheme position in the rulebook (memberships, schemes), or as the reference sorts measures.
    """

    memberships: pa.Table
    pending: pa.Table
    schemes: pa.Table
    measures: pa.Table
    next_change: pa.Table


# --------------------------------------------------------------------------- compiled rulebook


@dataclass(frozen=True)
class _Match:
    kinds: tuple[str, ...]
    severity: tuple[str, ...] | None
    attributes: tuple[tuple[str, tuple[str, ...]], ...]
    lo: int | None  # amount_minor >= lo
    hi: int | None  # amount_minor < hi

    @classmethod
    def of(cls, m: Match) -> _Match:
        lo, hi = num(m.amount_at_least), num(m.amount_below)
        return cls(
            tuple(m.kinds),
            None if m.severity is None else tuple(m.severity),
            tuple(
                (name, tuple(sorted({str(canon(v)) for v in values})))
                for name, values in (m.attributes or {}).items()
            ),
            None if lo is None else round(lo * 100),
            None if hi is None else round(hi * 100),
        )

    def names(self) -> set[str]:
        return {n for n, _ in self.attributes}

    def pred(self, t: ir.Table, col: Callable[[str], str]) -> ir.BooleanValue:
        c: ir.BooleanValue = t.kind.isin(list(self.kinds))
        if self.severity is not None:
            c &= t.sev.isin(list(self.severity)) if self.severity else ibis.literal(False)
        for name, values in self.attributes:
            v = t[col(name)]
            c &= v.isin(list(values)) if values else ibis.literal(False)
        if self.lo is not None or self.hi is not None:
            c &= t.amt.notnull()
            if self.lo is not None:
                c &= t.amt >= self.lo
            if self.hi is not None:
                c &= t.amt < self.hi
        return c.fill_null(False)


def _dur(x: Any, default: Duration | None = None) -> Duration | None:
    d = dur(x)
    if d is None:
        return default
    if d.working_days:
        raise ValueError(f"'{x}' counts working days: status evaluation uses calendar time only")
    return d


def _kinds_ok(t: ir.Table, kinds: Sequence[str] | None) -> ir.BooleanValue:
    if kinds is None:
        return ibis.literal(True)
    if not kinds:
        return ibis.literal(False)
    return t.skind.isin(list(kinds)).fill_null(False)


@dataclass(frozen=True)
class _Each:
    gr: int
    when: _Match
    grace: Duration
    length: Duration | None
    extend: str | None
    cap: Duration | None


@dataclass(frozen=True)
class _Count:
    gr: int
    when: _Match
    weights: tuple[tuple[str, float], ...] | None
    threshold: float
    within: Duration
    grace: Duration
    length: Duration | None


@dataclass(frozen=True)
class _Lists:
    gr: int
    deps: tuple[int, ...]  # list positions, repeated as often as any_of repeats them
    at_least: int


@dataclass(frozen=True)
class _Removal:
    when: _Match
    match_attributes: tuple[str, ...]


@dataclass
class _List:
    pos: int
    id: str
    subjects: tuple[str, ...] | None
    each: list[_Each] = field(default_factory=list)
    count: list[_Count] = field(default_factory=list)
    lists: list[_Lists] = field(default_factory=list)
    removal: list[_Removal] = field(default_factory=list)
    repair: Duration | None = None
    level: int = 0


@dataclass(frozen=True)
class _PRule:
    idx: int
    key: int  # code of the rule id (rules sharing an id share once_per and caps, as in reference)
    when: _Match
    points: float | None
    brackets: tuple[tuple[int, float], ...] | None  # in the reference's (stable) sorted order
    from_attribute: tuple[str, float] | None
    restore: Duration
    once_per: str | None
    cap_per_year: bool


@dataclass(frozen=True)
class _Limit:
    when: _Match
    for_: Duration
    rank: int


@dataclass
class _Scheme:
    pos: int
    id: str
    subjects: tuple[str, ...]
    base: float
    lo: float | None
    hi: float | None
    consent_kind: str | None
    scheme: Scheme
    rules: list[_PRule]
    caps: dict[int, float]  # rule key -> cap total (of the last rule with that id)
    bands: list[tuple[str, float | None]]  # in the order the reference tries them
    rank: dict[str, int]
    limits: list[_Limit]


@dataclass(frozen=True)
class _Binding:
    memo: str
    measures: tuple[str, ...]
    subjects: tuple[str, ...] | None
    list_pos: int | None  # list binding (None: the list is not in the rulebook)
    scheme_pos: int | None  # scheme binding
    grades: tuple[str, ...]
    is_list: bool
    ref: str  # list id or scheme id as written


# --------------------------------------------------------------------------- running SQL


class _Stages:
    """Materialises stages as temporary tables (their SQL flattened into CTEs) and drops them."""

    def __init__(self, con: Any):
        self.con = con
        self.names: list[str] = []
        self.counter = itertools.count()
        self.tag = ibis.util.gen_name("scb")
        self.spark: Any = None  # Spark keeps stages as checkpointed temporary views
        if con.name == "pyspark":
            from socialcredit.engine.batch_spark import SparkStages

            self.spark = SparkStages(con)

    def sql(self, expr: ir.Table) -> str:
        # Fusing projections is Ibis's costliest rewrite; the databases do it themselves.
        fuse = ibis.options.sql.fuse_selects
        ibis.options.sql.fuse_selects = False
        try:
            tree = self.con.compiler.to_sqlglot(expr)
        finally:
            ibis.options.sql.fuse_selects = fuse
        if self.spark is None:  # Spark analyses nested subqueries faster than many CTEs
            tree = _flatten(tree)
        return str(tree.sql(dialect=self.con.dialect, copy=False))

    def _exec(self, sql: str) -> None:
        cur = self.con.raw_sql(sql)
        # DuckDB returns the connection itself (closing it would close the database)
        if cur is not None and cur is not getattr(self.con, "con", None):
            cur.close()

    def _table(self, name: str, schema: ibis.Schema) -> ir.Table:
        self.names.append(name)
        return ops.DatabaseTable(name, schema=schema, source=self.con).to_expr()

    def stage(self, expr: ir.Table) -> ir.Table:
        """Run ``expr`` into a temporary table and return that table."""
        name = f"{self.tag}_{next(self.counter)}"
        if self.spark is not None:
            self.spark.stage(name, self.sql(expr))
        else:
            self._exec(f'CREATE TEMP TABLE "{name}" AS {self.sql(expr)}')
        return self._table(name, expr.schema())

    def drop(self, table: ir.Table) -> None:
        """Drop a stage before the end of the run."""
        name = table.op().name  # type: ignore[attr-defined]
        self.names.remove(name)
        if self.spark is not None:
            self.spark.drop(name)
        else:
            self._exec(f'DROP TABLE IF EXISTS "{name}"')

    def empty(self, schema: ibis.Schema) -> ir.Table:
        name = f"{self.tag}_{next(self.counter)}"
        if self.spark is not None:
            self.spark.empty(name, schema)
        else:
            self.con.create_table(name, schema=schema, temp=True)
        return self._table(name, schema)

    def fetch(self, expr: ir.Table, order: Sequence[str] = ()) -> pa.Table:
        """Run ``expr`` and return its rows as Arrow, typed by its schema, sorted ascending by the
        ``order`` columns (byte order for text).

        DuckDB sorts in the query (in parallel, and its text order is byte order); the other
        backends' rows are sorted in Arrow (PostgreSQL's text order is its collation's).
        """
        if not order:
            return self._fetch(expr)
        if self.con.name == "duckdb":
            return self._fetch(expr.order_by(list(order)))
        return self._fetch(expr).sort_by([(c, "ascending") for c in order])

    def _fetch(self, expr: ir.Table) -> pa.Table:
        schema = expr.schema().to_pyarrow()
        sql = self.sql(expr)
        if self.con.name in ("duckdb", "pyspark"):
            if self.spark is not None:
                got = self.spark.fetch(sql)
            else:
                got = self.con.con.sql(sql).to_arrow_table()
            return pa.table(
                [got.column(i).cast(f.type) for i, f in enumerate(schema)], schema=schema
            )
        cur = self.con.raw_sql(sql)
        try:
            rows = cur.fetchall()
        finally:
            cur.close()
        cols = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
        return pa.table(
            [_arrow(list(c), f.type) for c, f in zip(cols, schema, strict=True)], schema=schema
        )

    def close(self) -> None:
        for name in reversed(self.names):
            with contextlib.suppress(Exception):  # cleanup is best effort
                if self.spark is not None:
                    self.spark.drop(name)
                else:
                    self._exec(f'DROP TABLE IF EXISTS "{name}"')
        self.names.clear()


def _arrow(values: list[Any], typ: pa.DataType) -> pa.Array:
    """A column fetched through a DB-API cursor as Arrow (SQLite gives dates as text, bools as
    integers)."""
    if pa.types.is_date(typ) and any(isinstance(v, str) for v in values):
        return pa.array(values, pa.string()).cast(typ)
    if pa.types.is_boolean(typ):
        return pa.array([None if v is None else bool(v) for v in values], typ)
    return pa.array(values, typ)


def _flatten(tree: sge.Expression) -> sge.Expression:
    """Lift every derived table (``FROM (SELECT ...)``) into a CTE of the outermost query.

    The query means the same; it only stops nesting, which SQLite's parser limits to about 20
    levels. (sqlglot's ``eliminate_subqueries`` does this too but fails on repeated subqueries.)
    """
    key = "with" if "with" in tree.arg_types else "with_"
    existing = tree.args.get(key)
    if existing is not None:
        tree.set(key, None)
    out: list[sge.CTE] = []
    names = itertools.count()

    def lift(q: sge.Expression) -> None:
        subs = [
            x
            for x in q.walk(prune=lambda x: x is not q and isinstance(x, sge.Subquery))
            if x is not q
            and isinstance(x, sge.Subquery)
            and isinstance(x.parent, (sge.From, sge.Join))
        ]
        for sub in subs:
            body = sub.this
            lift(body)
            name = f"_f{next(names)}"
            out.append(sge.CTE(this=body, alias=sge.TableAlias(this=sge.to_identifier(name))))
            sub.replace(sge.alias_(sge.table_(name), alias=sub.alias or name))

    for cte in existing.expressions if existing is not None else []:
        lift(cte.this)
        out.append(cte)
    lift(tree)
    if out:
        tree.set(key, sge.With(expressions=out))
    return tree


def _first_after(as_of: dt.date, *durs: Duration) -> dt.date | None:
    """The first day ``d`` with ``add(... add(d, durs[0]) ..., durs[-1]) > as_of``
    (``durations.add``), found by bisection: adding a duration that is not negative is
    non-decreasing in the day. None for a negative duration (or near the ends of the calendar).
    """
    if any(d.months < 0 or d.days < 0 or d.working_days for d in durs):
        return None

    def f(day: dt.date) -> dt.date:
        for d in durs:
            day = add_duration(day, d)
        return day

    try:
        lo = as_of - dt.timedelta(days=sum(31 * d.months + d.days + 62 for d in durs))
        hi = as_of + dt.timedelta(days=1)
        if not (f(lo) <= as_of < f(hi)):
            return None
    except (OverflowError, ValueError):
        return None
    a, b = lo.toordinal(), hi.toordinal()  # f(a) <= as_of < f(b)
    while b - a > 1:
        mid = (a + b) // 2
        if f(dt.date.fromordinal(mid)) > as_of:
            b = mid
        else:
            a = mid
    return dt.date.fromordinal(b)


@ibis.udf.scalar.builtin(name="hash")  # type: ignore[untyped-decorator]
def _duck_hash(s: str) -> dt_.UInt64:  # type: ignore[empty-body]
    """DuckDB: the 64-bit hash of a value."""


def _union(tables: Sequence[ir.Table]) -> ir.Table | None:
    if not tables:
        return None
    if len(tables) == 1:
        return tables[0]
    return ibis.union(*tables, distinct=False)


def _lit(v: Any, t: str) -> ir.Value:
    return ibis.literal(v, t)


_INTERVAL = ibis.schema(
    {
        "subject": "string",
        "lp": "int64",
        "gr": "int64",
        "k": "int64",
        "start": "date",
        "end": "date",
    }
)
_PAIR = ibis.schema({"subject": "string", "gr": "int64", "k": "int64", "rid": "int64"})


# --------------------------------------------------------------------------- the plan


class Plan:
    """A rulebook compiled for batch evaluation. Build with :func:`compile_plan`."""

    def __init__(self, rulebook: Rulebook):
        rb = rulebook
        self.rulebook = rb
        for section, items in (("lists", rb.lists), ("schemes", rb.schemes)):
            ids = [x.id for x in items]
            dup = sorted({i for i in ids if ids.count(i) > 1})
            if dup:
                raise ValueError(f"rulebook {rb.id} defines {section} {', '.join(dup)} twice")
        order = list_order(rb)  # raises on circular list rules, as the reference does
        self.list_ids = [lst.id for lst in rb.lists]
        pos = {lid: i for i, lid in enumerate(self.list_ids)}
        self.rule_ids: list[str] = []
        attrs: list[str] = []
        numbers: set[str] = set()
        kinds: set[str] = set()  # every record kind a rule reads

        def need(names: Iterable[str], number: bool = False) -> None:
            for n in names:
                if n not in attrs:
                    attrs.append(n)
                if number:
                    numbers.add(n)

        self.lists: list[_List] = []
        by_pos: dict[int, _List] = {}
        for lst in order:
            cl = _List(pos[lst.id], lst.id, None if lst.subjects is None else tuple(lst.subjects))
            for e in lst.entry:
                gr = len(self.rule_ids)
                self.rule_ids.append(e.id)
                grace = _dur(e.grace, Duration())
                assert grace is not None
                length = _dur(e.term.length)
                if e.mode == "each":
                    assert e.when is not None
                    m = _Match.of(e.when)
                    kinds.update(m.kinds)
                    need(m.names())
                    if e.term.extend_by_attribute and length is not None:
                        need([e.term.extend_by_attribute], number=True)
                    cl.each.append(
                        _Each(
                            gr,
                            m,
                            grace,
                            length,
                            e.term.extend_by_attribute if length is not None else None,
                            _dur(e.term.max) if length is not None else None,
                        )
                    )
                elif e.mode == "count":
                    c = e.count
                    assert c is not None
                    m = _Match.of(c.when)
                    kinds.update(m.kinds)
                    need(m.names())
                    within = _dur(c.within)
                    assert within is not None
                    weights = {k: num(v) or 0.0 for k, v in (c.weights or {}).items()}
                    cl.count.append(
                        _Count(
                            gr,
                            m,
                            tuple(weights.items()) if weights else None,
                            num(c.at_least) or 0.0,
                            within,
                            grace,
                            length,
                        )
                    )
                else:
                    assert e.lists is not None
                    deps = tuple(pos[d] for d in e.lists.any_of if d in pos)
                    cl.lists.append(_Lists(gr, deps, e.lists.at_least))
            for rm in lst.removal:
                m = _Match.of(rm.when)
                kinds.update(m.kinds)
                need(m.names())
                need(rm.match_attributes)
                cl.removal.append(_Removal(m, tuple(rm.match_attributes)))
            if lst.repair is not None:
                cl.repair = _dur(lst.repair.minimum)
            if cl.lists:
                cl.level = 1 + max(
                    (by_pos[d].level for r in cl.lists for d in r.deps if d in by_pos), default=0
                )
            by_pos[cl.pos] = cl
            self.lists.append(cl)
        self.levels = sorted({cl.level for cl in self.lists})

        self.scheme_ids = [s.id for s in rb.schemes]
        self.schemes: list[_Scheme] = []
        for sp, s in enumerate(rb.schemes):
            default = _dur(s.restore_after)
            assert default is not None
            keys: dict[str, int] = {}
            rules: list[_PRule] = []
            for i, r in enumerate(s.rules):
                key = keys.setdefault(r.id, len(keys))
                m = _Match.of(r.when)
                kinds.update(m.kinds)
                need(m.names())
                if r.once_per:
                    need([r.once_per])
                fa = None
                if r.from_attribute is not None:
                    need([r.from_attribute.attribute], number=True)
                    fa = (r.from_attribute.attribute, num(r.from_attribute.factor) or 0.0)
                rules.append(
                    _PRule(
                        i,
                        key,
                        m,
                        num(r.points) if r.points is not None else None,
                        _brackets(r),
                        fa,
                        _dur(r.restore_after, default) or default,
                        r.once_per or None,
                        bool(r.cap and r.cap.per == "year"),
                    )
                )
            caps: dict[int, float] = {}
            last = {r.id: r for r in s.rules}
            for rid, r in last.items():
                if r.cap is not None:
                    caps[keys[rid]] = num(r.cap.total) or 0.0
            bands: list[tuple[str, float | None]] = []
            rank: dict[str, int] = {}
            limits: list[_Limit] = []
            if s.grades:
                srt = sorted(s.grades.bands, key=lambda b: (num(b.min) is None, -(num(b.min) or 0)))
                bands = [(b.grade, num(b.min)) for b in srt]
                rank = {g: i for i, g in enumerate(s.grades.order)}
                for lim in s.grades.limits:
                    if lim.at_best not in rank:
                        raise ValueError(
                            f"scheme {s.id}: limit {lim.id} caps the grade at '{lim.at_best}', "
                            "which is not in grades.order"
                        )
                    m = _Match.of(lim.when)
                    kinds.update(m.kinds)
                    need(m.names())
                    for_ = _dur(lim.for_, Duration())
                    assert for_ is not None
                    limits.append(_Limit(m, for_, rank[lim.at_best]))
            self.schemes.append(
                _Scheme(
                    sp,
                    s.id,
                    tuple(s.subjects),
                    num(s.base) or 0.0,
                    num(s.min),
                    num(s.max),
                    s.consent_kind or None,
                    s,
                    rules,
                    caps,
                    bands,
                    rank,
                    limits,
                )
            )
        spos = {sid: i for i, sid in enumerate(self.scheme_ids)}
        self.bindings: list[_Binding] = []
        for memo in rb.memoranda:
            for b in memo.bindings:
                subj = None if b.subjects is None else tuple(b.subjects)
                if b.when.list_ is not None:
                    self.bindings.append(
                        _Binding(
                            memo.id,
                            tuple(b.measures),
                            subj,
                            pos.get(b.when.list_),
                            None,
                            (),
                            True,
                            b.when.list_,
                        )
                    )
                else:
                    sid = b.when.scheme or ""
                    self.bindings.append(
                        _Binding(
                            memo.id,
                            tuple(b.measures),
                            subj,
                            None,
                            spos.get(sid),
                            tuple(b.when.grades or ()),
                            False,
                            sid,
                        )
                    )
        kinds.update(sc.consent_kind for sc in rb.schemes if sc.consent_kind)
        # measures bound to a scheme's grades: their basis is the records behind the score
        self.grade_measures = any(
            not b.is_list and b.scheme_pos is not None and b.grades for b in self.bindings
        )
        self.attrs = attrs
        self.numbers = numbers
        self.kinds = sorted(kinds)

    # ------------------------------------------------------------------ helpers

    def _a(self, name: str) -> str:
        return f"a{self.attrs.index(name)}"

    def _x(self, name: str) -> str:
        return f"x{self.attrs.index(name)}"

    # ------------------------------------------------------------------ run

    def run(self, records: ir.Table, as_of: dt.date, *, subject_keys: str = "auto") -> BatchResult:
        """Evaluate every subject of ``records`` (the snapshot shape) as of the end of ``as_of``.

        ``subject_keys="text"`` keys subjects by their text on every backend (the default,
        ``"auto"``, hashes them on DuckDB; see ``_Run._population``).
        """
        if subject_keys not in ("auto", "text"):
            raise ValueError(f"subject_keys must be 'auto' or 'text', not {subject_keys!r}")
        con = records.get_backend()
        stages = _Stages(con)
        try:
            return _Run(self, stages, DateMath(con.name), as_of, subject_keys).run(records)
        finally:
            stages.close()


class _Run:
    """One evaluation of a plan: builds the stages, runs them, assembles the result."""

    def __init__(
        self, plan: Plan, stages: _Stages, dm: DateMath, as_of: dt.date, subject_keys: str
    ):
        self.p = plan
        self.subject_keys = subject_keys
        self.stages = stages
        self.dm = dm
        self.as_of = as_of
        self.asof = ibis.literal(as_of, "date")

    def _a(self, name: str) -> str:
        return self.p._a(name)

    def _x(self, name: str) -> str:
        return self.p._x(name)

    # ------------------------------------------------------------------ subjects

    def _population(self, rows: ir.Table) -> ir.Table:
        """Every subject: ``subject`` (its key), ``name`` (its text) and ``skind`` (its kind).

        Stages key subjects by ``subject``. On DuckDB the key is the text's 64-bit hash: it is
        computed from each record's own text, so records need no join with the population, and
        joins and groups on numbers are cheaper than on text. Should two subjects' hashes
        collide (checked here) the key is the text, as it is on every other backend. ``name`` is
        joined back only in the output (:meth:`_named`).
        """
        stages = self.stages
        kind = rows.subject_kind.nullif("")
        named = rows.group_by(name=rows.subject).aggregate(skind=kind.max())
        self.hashed = False
        if stages.con.name == "duckdb" and self.subject_keys == "auto":
            pop = stages.stage(
                named.select(subject=_duck_hash(named.name), name=named.name, skind=named.skind)
            )
            n = stages.fetch(pop.aggregate(n=pop.count(), k=pop.subject.nunique()))
            self.hashed = n["n"][0].as_py() == n["k"][0].as_py()
            if not self.hashed:
                stages.drop(pop)
        if not self.hashed:
            pop = stages.stage(named.select(subject=named.name, skind=named.skind))
        self.pop = pop
        self.key_type = pop.schema()["subject"]
        # the subject kinds present: a rule's subject kinds that include them all filter nothing
        kinds = stages.fetch(pop.select("skind").distinct())["skind"].to_pylist()
        self.present = set(kinds)
        return pop

    def _key(self, subject: ir.StringValue) -> ir.Value:
        """The key of a record's subject (``subject`` is its text)."""
        return _duck_hash(subject) if self.hashed else subject

    def _of_kinds(self, t: ir.Table, kinds: Sequence[str] | None) -> ir.Table:
        """The rows of ``t`` whose subject is of one of ``kinds`` (all rows if ``kinds`` is
        None, or includes every kind present in the population)."""
        if kinds is None or (None not in self.present and self.present <= set(kinds)):
            return t
        pop = self.pop
        ok = pop.filter(_kinds_ok(pop, kinds)).select(_ok=pop.subject)
        return t.join(ok, t.subject == ok._ok).drop("_ok")

    def _keyed(self, schema: ibis.Schema) -> ibis.Schema:
        """``schema`` with ``subject`` of the subject key's type."""
        return ibis.schema({n: self.key_type if n == "subject" else t for n, t in schema.items()})

    def _named(self, t: ir.Table) -> ir.Table:
        """``t`` with the subject's text as ``name`` (``t.subject`` is the key)."""
        if not self.hashed:
            return t.mutate(name=t.subject)
        names = self.pop.select(_nk=self.pop.subject, name=self.pop.name)
        return t.join(names, t.subject == names._nk).drop("_nk")

    def _after(self, d: ir.DateValue, dur: Duration) -> ir.BooleanValue:
        """``add(d, dur) > as_of``: ``d`` on or after the first day that holds for, when the
        duration is not negative (``add`` is then non-decreasing in the day)."""
        first = _first_after(self.as_of, dur)
        if first is None:
            return self.dm.add(d, dur.months, dur.days) > self.asof
        return d >= ibis.literal(first, "date")

    def _live_from(self, grace: Duration, length: Duration | None) -> dt.date | None:
        """The first decision day whose term (``grace`` then ``length``) ends after the as-of
        day; earlier entries have ended (None: no such bound)."""
        return None if length is None else _first_after(self.as_of, grace, length)

    def add(self, t: ir.Table, outs: dict[str, tuple[str, Duration]]) -> ir.Table:
        """Add date columns: ``name -> (date column, duration)``."""
        return self.dm.add_columns(t, {o: (src, d.months, d.days) for o, (src, d) in outs.items()})

    # ------------------------------------------------------------------ the whole run

    def run(self, rows: ir.Table) -> BatchResult:
        p, stages = self.p, self.stages
        con = stages.con

        # ---- population and the records rules read
        pop = self._population(rows)
        # only records of a kind some rule reads (every rule, removal, limit and consent test
        # starts with the record's kind)
        read = rows.kind.isin(p.kinds) if p.kinds else ibis.literal(False)
        live = rows.filter(
            rows.in_force.fill_null(False)
            & (rows.decision_date <= self.asof)
            & read
            & rows.subject.notnull()
        )
        sk = pop.select(_s=pop.subject, skind=pop.skind)
        cols: dict[str, Any] = {
            "rid": live.record_id.cast("int64"),
            "subject": self._key(live.subject),
            "kind": live.kind,
            "sev": live.severity,
            "amt": live.amount_minor.cast("int64"),
            "dd": live.decision_date.cast("date"),
            "_attrs": live.attributes,
        }
        r = parse_attributes(live.select(**cols), "_attrs", p.attrs, p.numbers, con.name)
        rec = stages.stage(r)  # read by every rule: filter, join and parse the JSON once

        # ---- list intervals: count-rule pairs first, then every each/count interval
        counts = [(cl, c) for cl in p.lists for c in cl.count]
        pu = _union([self._count_pairs(rec, cl, c) for cl, c in counts])
        pairs = stages.stage(pu) if pu is not None else None
        ivu = _union(
            [self._each(rec, cl, e) for cl in p.lists for e in cl.each]
            + [self._count(rec, pairs, cl, c) for cl, c in counts if pairs is not None]
        )
        ivs = stages.stage(ivu) if ivu is not None else stages.empty(self._keyed(_INTERVAL))
        # the record ids behind each interval: the entry record (each), the window (count)
        each_grs = [e.gr for cl in p.lists for e in cl.each]
        bparts = []
        if each_grs:
            ie = ivs.filter(ivs.gr.isin(each_grs))
            bparts.append(ie.select("subject", "gr", "k", rid=ie.k))
        if pairs is not None:
            ik = ivs.select(_is=ivs.subject, _ig=ivs.gr, _ik=ivs.k)
            j = pairs.join(ik, [pairs.subject == ik._is, pairs.gr == ik._ig, pairs.k1 == ik._ik])
            bparts.append(j.select(subject=j.subject, gr=j.gr, k=j.k1, rid=j.k2))
        bu = _union(bparts)
        ibasis = stages.stage(bu) if bu is not None else stages.empty(self._keyed(_PAIR))
        if pairs is not None:  # read by nothing below: free its memory before the results
            stages.drop(pairs)
        # an interval that ends before it starts (removed during its grace) never happens
        real = ivs.filter(ivs.end.isnull() | (ivs.end > ivs.start))
        active = real.filter(
            (real.start <= self.asof) & (real.end.isnull() | (real.end > self.asof))
        )
        pend = real.filter(real.start > self.asof)

        # ---- memberships, level by level (lists-mode rules read earlier levels)
        mems: list[ir.Table] = []  # subject, skind, lp, since, until
        mbasis: list[ir.Table] = []  # subject, lp, rid
        mrules: list[ir.Table] = []  # subject, lp, gr
        mvia: list[ir.Table] = []  # subject, lp, dep
        for level in p.levels:
            level_lists = [cl for cl in p.lists if cl.level == level]
            a = active.filter(active.lp.isin([cl.pos for cl in level_lists]))
            ivals = [a.select("subject", "lp", "gr", "start", "end")]
            ak = a.select(_s=a.subject, _gr=a.gr, _k=a.k, _lp=a.lp)
            bj = ibasis.join(ak, [ibasis.subject == ak._s, ibasis.gr == ak._gr, ibasis.k == ak._k])
            basis = [bj.select(subject=bj.subject, lp=bj._lp, rid=bj.rid)]
            vias: list[ir.Table] = []
            prev_m, prev_b = _union(mems), _union(mbasis)
            if prev_m is not None and prev_b is not None:
                for cl in level_lists:
                    for lr in cl.lists:
                        got = self._lists_rule(prev_m, prev_b, cl, lr)
                        if got is not None:
                            ivals.append(got[0])
                            basis.append(got[1])
                            vias.append(got[2])
            iv_all = _union(ivals)
            assert iv_all is not None
            if len(ivals) > 1:  # read twice below: run the lists-mode rules once
                iv_all = stages.stage(iv_all)
            g = iv_all.group_by("subject", "lp").aggregate(
                since=iv_all.start.min(),
                nopen=ibis.cases((iv_all.end.isnull(), 1), else_=0).sum(),
                umax=iv_all.end.max(),
            )
            g = g.join(sk, g.subject == sk._s)
            mems.append(
                stages.stage(
                    g.select(
                        "subject",
                        "skind",
                        "lp",
                        "since",
                        until=ibis.cases((g.nopen > 0, ibis.null("date")), else_=g.umax),
                    )
                )
            )
            b_all = _union(basis)
            assert b_all is not None
            mbasis.append(stages.stage(b_all.distinct()))
            mrules.append(iv_all.select("subject", "lp", "gr"))
            v_all = _union(vias)
            if v_all is not None:
                mvia.append(v_all)

        # ---- schemes
        sr = sbasis = None
        if p.schemes:
            rows_ = [self._scheme_rows(rec, cs) for cs in p.schemes]
            lu = _union([lim for _, lim in rows_ if lim is not None])
            lims = stages.stage(lu) if lu is not None else None
            if p.grade_measures:
                # the counted records are read again below, for the record ids behind a grade
                ku = _union([k for k, _ in rows_])
                assert ku is not None
                kept = stages.stage(ku)
                kepts = [kept.filter(kept.sp == cs.pos) for cs in p.schemes]
            else:  # read once, by the scheme's own totals
                kepts = [k for k, _ in rows_]
            su = _union(
                [
                    self._scheme_result(rec, pop, k, lims, cs)
                    for k, cs in zip(kepts, p.schemes, strict=True)
                ]
            )
            assert su is not None
            sr = stages.stage(su)
            if p.grade_measures:
                # the record ids behind each score (only read for measures bound to a grade)
                sbu = [kept.select("subject", "sp", "rid")]
                if lims is not None:
                    sbu.append(lims.select("subject", "sp", "rid"))
                sbasis = _union(sbu)

        # every rule has read the records: free the largest stage before fetching the results
        stages.drop(rec)

        # ---- fetch and assemble
        mem = _union(mems)
        mb = _union(mbasis)
        memberships, mb_arrow = self._memberships(mem, mb, _union(mrules), _union(mvia))
        return BatchResult(
            memberships,
            self._pending(pend, ibasis),
            self._schemes_out(sr),
            self._measures(mem, mb_arrow, sr, sbasis),
            self._next_change(pop, mem, pend, sr),
        )

    # ------------------------------------------------------------------ lists

    def _each(self, rec: ir.Table, cl: _List, e: _Each) -> ir.Table:
        keep_attrs = sorted({a for rm in cl.removal for a in rm.match_attributes})
        t = rec.filter(e.when.pred(rec, self._a))
        # an entry whose term ended by the as-of day is neither active nor pending (removals
        # and a cap only end terms earlier; an extension by attribute can end them later)
        live = None if e.extend else self._live_from(e.grace, e.length)
        if live is not None:
            t = t.filter(t.dd >= ibis.literal(live, "date"))
        t = self._of_kinds(t, cl.subjects)
        sel: dict[str, Any] = {"subject": t.subject, "k": t.rid, "dd": t.dd}
        for a in keep_attrs:
            sel[self._a(a)] = t[self._a(a)]
        if e.extend:
            sel["xe"] = t[self._x(e.extend)]
        t = t.select(**sel)
        t = self.add(t, {"start": ("dd", e.grace)})
        if e.length is not None:
            ends = {"end": ("start", e.length)}
            if e.cap is not None:
                ends["cap"] = ("start", e.cap)
            t = self.add(t, ends)
            if e.extend:
                # reference: ``if years: end = add_months(end, int(years) * 12)``
                x = t.xe
                trunc = ibis.cases((x >= 0, x.floor()), else_=x.ceil()).cast("int64")
                t = t.mutate(_em=ibis.cases((x.notnull(), trunc), else_=0) * 12)
                t = self.dm.add_columns(t, {"end": ("end", "_em", 0)}).drop("_em")
            if e.cap is not None:
                t = t.mutate(end=least(t.end, t.cap))
        else:
            t = t.mutate(end=ibis.null("date"))
        for i, rm in enumerate(cl.removal):
            x = rec.filter(rm.when.pred(rec, self._a))
            xs = x.select(
                _xs=x.subject,
                _xd=x.dd,
                **{f"_x{self._a(a)}": x[self._a(a)] for a in rm.match_attributes},
            )
            preds = [t.subject == xs._xs, xs._xd >= t.dd]
            for a in rm.match_attributes:
                xa = xs[f"_x{self._a(a)}"]
                preds.append(xa.notnull() & (xa == t[self._a(a)]))
            j = t.join(xs, preds)
            rmin = j.group_by(_rs=j.subject, _rk=j.k).aggregate(**{f"_rm{i}": j._xd.min()})
            t = t.left_join(rmin, [t.subject == rmin._rs, t.k == rmin._rk]).drop("_rs", "_rk")
            t = t.mutate(end=least(t.end, t[f"_rm{i}"])).drop(f"_rm{i}")
        return t.select(
            subject=t.subject,
            lp=_lit(cl.pos, "int64"),
            gr=_lit(e.gr, "int64"),
            k=t.k,
            start=t.start.cast("date"),
            end=t.end.cast("date"),
        )

    def _window(
        self, rec: ir.Table, cl: _List, c: _Count, since: dt.date | None = None
    ) -> ir.Table:
        """The records a count rule counts (decided on or after ``since``, if given)."""
        w = rec.filter(c.when.pred(rec, self._a))
        if since is not None:
            w = w.filter(w.dd >= ibis.literal(since, "date"))
        w = self._of_kinds(w, cl.subjects)
        return w.select("subject", k=w.rid, dd=w.dd, sev=w.sev)

    def _count_pairs(self, rec: ir.Table, cl: _List, c: _Count) -> ir.Table:
        """(subject, gr, k1, k2, w2): record k2 is in the trailing window of record k1, for
        the k1 whose term would not have ended by the as-of day."""
        live = self._live_from(c.grace, c.length)
        # k2 counts for k1 when k2 <= k1 < add(k2, within), so for k1 >= live only the k2 with
        # add(k2, within) >= live can
        early = None if live is None else _first_after(live - dt.timedelta(days=1), c.within)
        w1 = self._window(rec, cl, c, live)
        w = self._window(rec, cl, c, early) if early is not None else self._window(rec, cl, c)
        if c.weights:
            weight: ir.Value = ibis.cases(
                *((w.sev == s, _lit(v, "float64")) for s, v in c.weights),
                else_=_lit(1.0, "float64"),
            )
        else:
            weight = _lit(1.0, "float64")
        w = self.add(w.mutate(_w=weight), {"_e": ("dd", c.within)})
        w2 = w.select(_s2=w.subject, _k2=w.k, _d2=w.dd, _w2=w._w, _e2=w._e)
        j = w1.join(w2, [w1.subject == w2._s2, w2._d2 <= w1.dd, w2._e2 > w1.dd])
        return j.select(
            subject=j.subject, gr=_lit(c.gr, "int64"), k1=j.k, k2=j._k2, w2=j._w2.cast("float64")
        )

    def _count(self, rec: ir.Table, pairs: ir.Table, cl: _List, c: _Count) -> ir.Table:
        w = self._window(rec, cl, c, self._live_from(c.grace, c.length))
        pc_ = pairs.filter(pairs.gr == c.gr)
        tot = pc_.group_by(_ts=pc_.subject, _tk=pc_.k1).aggregate(total=pc_.w2.sum())
        t = w.left_join(tot, [w.subject == tot._ts, w.k == tot._tk])
        t = t.filter(t.total.fill_null(0.0) >= c.threshold)
        t = self.add(t.select("subject", "k", "dd"), {"start": ("dd", c.grace)})
        if c.length is not None:
            t = self.add(t, {"end": ("start", c.length)})
        end = t.end if c.length is not None else ibis.null("date")
        return t.select(
            subject=t.subject,
            lp=_lit(cl.pos, "int64"),
            gr=_lit(c.gr, "int64"),
            k=t.k,
            start=t.start.cast("date"),
            end=end.cast("date"),
        )

    def _lists_rule(
        self, prev_m: ir.Table, prev_b: ir.Table, cl: _List, lr: _Lists
    ) -> tuple[ir.Table, ir.Table, ir.Table] | None:
        if not lr.deps:
            return None
        parts = [
            prev_m.filter(prev_m.lp == dep).select(
                "subject", "skind", dep=prev_m.lp, since=prev_m.since, until=prev_m.until
            )
            for dep in lr.deps
        ]
        dm = _union(parts)
        assert dm is not None
        dm = dm.filter(_kinds_ok(dm, cl.subjects))
        k = lr.at_least
        cnt = dm.group_by(_cs=dm.subject).aggregate(_n=dm.count())
        cnt = cnt.filter(cnt._n >= k)
        r1 = ibis.row_number().over(group_by=dm.subject, order_by=[dm.since])
        s_k = dm.mutate(_r=r1)
        s_k = s_k.filter(s_k._r == k - 1).select(_ss=s_k.subject, _since=s_k.since)
        open_last = ibis.cases((dm.until.isnull(), 1), else_=0)
        r2 = ibis.row_number().over(
            group_by=dm.subject, order_by=[ibis.desc(open_last), ibis.desc(dm.until)]
        )
        u_k = dm.mutate(_r=r2)
        u_k = u_k.filter(u_k._r == k - 1).select(_us=u_k.subject, _until=u_k.until)
        j = cnt.join(s_k, cnt._cs == s_k._ss).join(u_k, cnt._cs == u_k._us)
        li = j.select(
            subject=j._cs,
            lp=_lit(cl.pos, "int64"),
            gr=_lit(lr.gr, "int64"),
            start=j._since.cast("date"),
            end=j._until.cast("date"),
        )
        holds = cnt.select(_hs=cnt._cs)
        dh = dm.join(holds, dm.subject == holds._hs)
        via = dh.select(subject=dh.subject, lp=_lit(cl.pos, "int64"), dep=dh.dep)
        pb = prev_b.filter(prev_b.lp.isin(sorted(set(lr.deps))))
        hs2 = via.select(_vs=via.subject, _vd=via.dep).distinct()
        bj = pb.join(hs2, [pb.subject == hs2._vs, pb.lp == hs2._vd])
        basis = bj.select(subject=bj.subject, lp=_lit(cl.pos, "int64"), rid=bj.rid)
        return li, basis, via

    # ------------------------------------------------------------------ schemes

    def _consenting(self, rec: ir.Table, cs: _Scheme) -> ir.Table | None:
        if not cs.consent_kind:
            return None
        return rec.filter(rec.kind == cs.consent_kind).select(_cs=rec.subject).distinct()

    def _scheme_rows(self, rec: ir.Table, cs: _Scheme) -> tuple[ir.Table, ir.Table | None]:
        """The records a scheme counts (after restoration, the cycle and ``once_per``) and the
        records holding one of its grade limits, for consenting subjects of its kinds."""
        rs = rec
        ok = self._consenting(rec, cs)
        if ok is not None:
            rs = rs.join(ok, rs.subject == ok._cs).drop("_cs")
        bounds = cycle_bounds(cs.scheme, self.as_of)
        t = rs
        if bounds:
            t = t.filter(t.dd >= ibis.literal(bounds[0], "date"))
        rules = cs.rules
        preds = [r.when.pred(t, self._a) for r in rules]

        def first(values: Sequence[ir.Value]) -> ir.Value:
            """The value of the first rule that matches (a CASE tries them in order); rows no
            rule matches are dropped below (``key``), so a value shared by every rule needs no
            CASE."""
            if all(v.equals(values[0]) for v in values[1:]):
                return values[0]
            return ibis.cases(*zip(preds, values, strict=True))

        durs = sorted({r.restore for r in rules})
        # restoration: counted while add(dd, restore) > as_of, i.e. from a first decision day on
        # (add is non-decreasing in the day), so no date arithmetic is needed to filter
        alive = first([self._after(t.dd, r.restore) for r in rules])
        once = [r for r in rules if r.once_per]
        ov: ir.Value = (
            first([t[self._a(r.once_per)] if r.once_per else ibis.null("string") for r in rules])
            if once
            else ibis.null("string")
        )
        year = t.dd.year().cast("int64")
        yr = first([year if r.cap_per_year else _lit(-1, "int64") for r in rules])
        sel: dict[str, ir.Value] = {
            "key": ibis.cases(
                *((p_, _lit(r.key, "int64")) for p_, r in zip(preds, rules, strict=True))
            ),
            "pts": first([self._points(t, r) for r in rules]),
            "alive": alive,
            "ov": ov,
            "yr": yr,
        }
        if len(durs) > 1:
            sel["ri"] = first([_lit(durs.index(r.restore), "int64") for r in rules])
        t = t.select("subject", "rid", "dd", **sel)
        # a rule matched (key), its points are defined and the record is not yet restored
        t = t.filter(t.key.notnull() & t.pts.notnull() & t.alive.fill_null(False))
        t = self.add(t, {f"u{i}": ("dd", d) for i, d in enumerate(durs)})
        until = (
            ibis.cases(*((t.ri == i, t[f"u{i}"]) for i in range(len(durs))))
            if len(durs) > 1
            else t.u0
        )
        t = t.select("subject", "rid", "dd", "pts", "key", "ov", "yr", until=until.cast("date"))
        kept = t
        if once:
            rn = ibis.row_number().over(group_by=[t.subject, t.key, t.ov], order_by=[t.dd, t.rid])
            t = t.mutate(_rn=rn)
            kept = t.filter(t.ov.isnull() | (t._rn == 0))
        kept = kept.select(
            "subject",
            sp=_lit(cs.pos, "int64"),
            rid=kept.rid,
            until=kept.until,
            pts=kept.pts.cast("float64"),
            key=kept.key,
            yr=kept.yr,
        )
        # the subject's kind is the same for all its records: tested on the fewest rows
        kept = self._of_kinds(kept, cs.subjects)
        lims: list[ir.Table] = []
        for lim in cs.limits:
            lt = rs.filter(lim.when.pred(rs, self._a) & self._after(rs.dd, lim.for_))
            lt = self.add(lt.select("subject", "rid", "dd"), {"le": ("dd", lim.for_)})
            lt = lt.select(
                "subject",
                sp=_lit(cs.pos, "int64"),
                rid=lt.rid,
                rank=_lit(lim.rank, "int64"),
                le=lt.le,
            )
            lims.append(self._of_kinds(lt, cs.subjects))
        return kept, _union(lims)

    def _scheme_result(
        self,
        rec: ir.Table,
        pop: ir.Table,
        kept: ir.Table,
        lims_all: ir.Table | None,
        cs: _Scheme,
    ) -> ir.Table:
        """One scheme's result per subject; ``kept`` is the records it counts."""
        people = pop.filter(_kinds_ok(pop, cs.subjects)).select("subject", "skind")
        g = kept.group_by("subject", "key", "yr").aggregate(
            raw=kept.pts.sum(), umin=kept.until.min()
        )
        value: ir.Value = g.raw
        if cs.caps:
            value = ibis.cases(
                *(
                    (
                        g.key == k,
                        ibis.cases(
                            (g.raw.abs() > lim, ibis.cases((g.raw > 0, lim), else_=-lim)),
                            else_=g.raw,
                        ),
                    )
                    for k, lim in cs.caps.items()
                ),
                else_=g.raw,
            )
        g = g.mutate(v=value.cast("float64"))
        tot = g.group_by(_ts=g.subject).aggregate(total=g.v.sum(), kmin=g.umin.min())
        res = people
        consent: ir.Value = ibis.literal(True)
        ok = self._consenting(rec, cs)
        if ok is not None:
            res = res.left_join(ok, res.subject == ok._cs)
            consent = res._cs.notnull()
        res = res.mutate(consent=consent)
        res = res.left_join(tot, res.subject == tot._ts)
        maxrank: ir.Value = ibis.null("int64")
        lmin: ir.Value = ibis.null("date")
        if cs.limits and lims_all is not None:
            lu = lims_all.filter(lims_all.sp == cs.pos)
            la = lu.group_by(_ls=lu.subject).aggregate(maxrank=lu["rank"].max(), lmin=lu.le.min())
            res = res.left_join(la, res.subject == la._ls)
            maxrank, lmin = res.maxrank, res.lmin
        points: ir.Value = _lit(cs.base, "float64") + res.total.fill_null(0.0)
        res = res.select(
            "subject",
            "skind",
            "consent",
            points=points,
            kmin=res.kmin,
            maxrank=maxrank,
            lmin=lmin,
        )
        if cs.lo is not None:
            res = res.mutate(points=ibis.cases((res.points < cs.lo, cs.lo), else_=res.points))
        if cs.hi is not None:
            res = res.mutate(points=ibis.cases((res.points > cs.hi, cs.hi), else_=res.points))
        band: ir.Value = ibis.null("string")
        if cs.bands:
            band = ibis.cases(
                *(
                    (ibis.literal(True) if m is None else res.points >= m, _lit(g_, "string"))
                    for g_, m in cs.bands
                ),
                else_=ibis.null("string"),
            )
        res = res.mutate(band=band)
        grade: ir.Value = res.band
        if cs.limits:
            of_rank = ibis.cases(
                *((res.maxrank == i, _lit(g_, "string")) for g_, i in cs.rank.items()),
                else_=ibis.null("string"),
            )
            branks = [(g_, cs.rank[g_]) for g_ in sorted({b for b, _ in cs.bands}) if g_ in cs.rank]
            brank: ir.Value = (
                ibis.cases(*((res.band == g_, _lit(i, "int64")) for g_, i in branks))
                if branks
                else ibis.null("int64")
            )
            grade = ibis.cases(
                (res.maxrank.isnull(), res.band),
                (res.band.isnull(), of_rank),
                (res.maxrank > brank, of_rank),
                else_=res.band,
            )
        bounds = cycle_bounds(cs.scheme, self.as_of)
        nxt: ir.Value = least(res.kmin, res.lmin)
        if bounds:
            nxt = least(nxt, ibis.literal(bounds[1], "date"))
        c = res.consent
        return res.select(
            subject=res.subject,
            skind=res.skind,
            sp=_lit(cs.pos, "int64"),
            consent=ibis.cases((c, _lit(1, "int64")), else_=_lit(0, "int64")),
            points=ibis.cases((c, res.points), else_=ibis.null("float64")),
            grade=ibis.cases((c, grade), else_=ibis.null("string")),
            band=ibis.cases((c, res.band), else_=ibis.null("string")),
            next=ibis.cases((c, nxt), else_=ibis.null("date")).cast("date"),
        )

    def _points(self, t: ir.Table, r: _PRule) -> ir.Value:
        if r.points is not None:
            return _lit(r.points, "float64")
        if r.brackets is not None:
            if not r.brackets:
                return ibis.null("float64")
            return ibis.cases(
                *((t.amt >= th, _lit(p, "float64")) for th, p in reversed(r.brackets)),
                else_=ibis.null("float64"),
            )
        assert r.from_attribute is not None
        name, factor = r.from_attribute
        return t[self._x(name)] * factor

    # ------------------------------------------------------------------ output

    def _memberships(
        self,
        mem: ir.Table | None,
        basis: ir.Table | None,
        rules: ir.Table | None,
        via: ir.Table | None,
    ) -> tuple[pa.Table, pa.Table | None]:
        """The memberships table, and the long table of their basis (subject, lp, rid)."""
        p, stages = self.p, self.stages
        if mem is None or basis is None or rules is None:
            return MEMBERSHIP_SCHEMA.empty_table(), None
        repairs = {cl.pos: cl.repair for cl in p.lists if cl.repair is not None}
        t = mem.select("subject", "lp", "since", "until")
        rep: ir.Value = ibis.null("date")
        if repairs:
            durs = sorted(set(repairs.values()))
            t = self.add(t, {f"r{i}": ("since", d) for i, d in enumerate(durs)})
            rep = ibis.cases(
                *((t.lp == lp, t[f"r{durs.index(d)}"]) for lp, d in repairs.items()),
                else_=ibis.null("date"),
            )
        t = t.select("subject", "lp", "since", "until", repair_from=rep.cast("date"))
        main = stages.fetch(self._named(t), order=("name", "lp"))
        b = stages.fetch(basis.distinct())
        # rule ids (kind 0) and dependency lists (kind 1) in one query
        names = [rules.select("subject", "lp", kind=_lit(0, "int64"), i=rules.gr)]
        if via is not None:
            names.append(via.select("subject", "lp", kind=_lit(1, "int64"), i=via.dep))
        nu = _union(names)
        assert nu is not None
        nm = stages.fetch(nu.distinct())
        is_rule = pc.equal(nm["kind"], 0)
        ru = nm.filter(is_rule)
        ru = ru.append_column("rule", _take(p.rule_ids, ru["i"]))
        v = nm.filter(pc.invert(is_rule))
        v = v.append_column("via", _take(p.list_ids, v["i"]))
        keys = ["subject", "lp"]
        table = pa.table(
            {
                "subject": main["name"],
                "list": _take(p.list_ids, main["lp"]),
                "since": main["since"],
                "until": main["until"],
                "basis": _lists(main, keys, b, "rid", pa.int64()),
                "rules": _lists(main, keys, ru, "rule", pa.string(), distinct=True),
                "via": _lists(main, keys, v, "via", pa.string(), distinct=True),
                "repair_from": main["repair_from"],
            },
            schema=MEMBERSHIP_SCHEMA,
        )
        return table, b

    def _pending(self, pend: ir.Table, ibasis: ir.Table) -> pa.Table:
        p, stages = self.p, self.stages
        main = stages.fetch(
            self._named(pend.select("subject", "lp", "gr", "k", effective=pend.start))
        )
        if main.num_rows == 0:
            return PENDING_SCHEMA.empty_table()
        pk = pend.select(_ps=pend.subject, _pg=pend.gr, _pk=pend.k)
        j = ibasis.join(pk, [ibasis.subject == pk._ps, ibasis.gr == pk._pg, ibasis.k == pk._pk])
        b = stages.fetch(j.select("subject", "gr", "k", "rid").distinct())
        main = main.append_column("rule", _take(p.rule_ids, main["gr"]))
        main = main.sort_by(
            [
                ("name", "ascending"),
                ("lp", "ascending"),
                ("effective", "ascending"),
                ("rule", "ascending"),
                ("k", "ascending"),
            ]
        )
        return pa.table(
            {
                "subject": main["name"],
                "list": _take(p.list_ids, main["lp"]),
                "effective": main["effective"],
                "rule": main["rule"],
                "basis": _lists(main, ["subject", "gr", "k"], b, "rid", pa.int64()),
            },
            schema=PENDING_SCHEMA,
        )

    def _schemes_out(self, sr: ir.Table | None) -> pa.Table:
        if sr is None:
            return SCHEME_SCHEMA.empty_table()
        t = sr.select("subject", "sp", "points", "grade", "band", "consent", "next")
        main = self.stages.fetch(self._named(t), order=("name", "sp"))
        return pa.table(
            {
                "subject": main["name"],
                "scheme": _take(self.p.scheme_ids, main["sp"]),
                "points": main["points"].cast(pa.float64()),
                "grade": main["grade"],
                "band_grade": main["band"],
                "consent": pc.not_equal(main["consent"], 0),
                "next_change": main["next"],
            },
            schema=SCHEME_SCHEMA,
        )

    def _measures(
        self,
        mem: ir.Table | None,
        mbasis: pa.Table | None,
        sr: ir.Table | None,
        sbasis: ir.Table | None,
    ) -> pa.Table:
        stages = self.stages
        parts: list[ir.Table] = []
        for b in self.p.bindings:
            if b.is_list:
                if mem is None or b.list_pos is None:
                    continue
                src = mem.filter((mem.lp == b.list_pos) & _kinds_ok(mem, b.subjects))
                via: ir.Value = _lit(f"list:{b.ref}", "string")
                kind, spos = 0, src.lp
            else:
                if sr is None or b.scheme_pos is None or not b.grades:
                    continue
                src = sr.filter((sr.sp == b.scheme_pos) & sr.grade.isin(list(b.grades)))
                src = src.filter(_kinds_ok(src, b.subjects))
                via = _lit(f"scheme:{b.ref}:", "string") + src.grade
                kind, spos = 1, src.sp
            for m in b.measures:
                parts.append(
                    src.select(
                        "subject",
                        measure=_lit(m, "string"),
                        memorandum=_lit(b.memo, "string"),
                        via=via,
                        src=_lit(kind, "int64"),
                        spos=spos,
                    )
                )
        u = _union(parts)
        if u is None:
            return MEASURE_SCHEMA.empty_table()
        staged = stages.stage(u.distinct())
        main = stages.fetch(self._named(staged), order=("name", "measure", "memorandum", "via"))
        lb = mbasis.rename_columns({"lp": "spos"}) if mbasis is not None else None
        sbb = None
        if sbasis is not None:
            want = staged.filter(staged.src == 1).select(_ws="subject", _wp="spos").distinct()
            j = sbasis.join(want, [sbasis.subject == want._ws, sbasis.sp == want._wp])
            sbb = stages.fetch(j.select("subject", spos=j.sp, rid=j.rid).distinct())
        keys = ["subject", "spos"]
        basis = pc.if_else(
            pc.equal(main["src"], 0),
            _lists(main, keys, lb, "rid", pa.int64()),
            _lists(main, keys, sbb, "rid", pa.int64()),
        )
        return pa.table(
            {
                "subject": main["name"],
                "measure": main["measure"],
                "memorandum": main["memorandum"],
                "via": main["via"],
                "basis": basis,
            },
            schema=MEASURE_SCHEMA,
        )

    def _next_change(
        self, pop: ir.Table, mem: ir.Table | None, pend: ir.Table, sr: ir.Table | None
    ) -> pa.Table:
        parts = [pend.select("subject", v=pend.start)]
        if mem is not None:
            parts.append(mem.filter(mem.until.notnull()).select("subject", v=mem.until))
        if sr is not None:
            parts.append(sr.filter(sr.next.notnull()).select("subject", v=sr.next))
        u = _union(parts)
        assert u is not None
        g = u.group_by(_ns=u.subject).aggregate(v=u.v.min())
        j = pop.left_join(g, pop.subject == g._ns)
        name = j.name if self.hashed else j.subject
        main = self.stages.fetch(
            j.select(subject=name, next_change=j.v.cast("date")), order=("subject",)
        )
        return pa.table(
            {"subject": main["subject"], "next_change": main["next_change"]},
            schema=NEXT_CHANGE_SCHEMA,
        )


def _brackets(r: PointsRule) -> tuple[tuple[int, float], ...] | None:
    if r.brackets is None:
        return None
    srt = sorted(r.brackets, key=lambda b: num(b.amount_at_least) or 0)
    return tuple((round((num(b.amount_at_least) or 0) * 100), num(b.points) or 0.0) for b in srt)


def _take(values: Sequence[str], idx: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    return pa.array(list(values), pa.string()).take(idx)


def _lists(
    main: pa.Table,
    keys: list[str],
    long: pa.Table | None,
    value: str,
    typ: pa.DataType,
    *,
    distinct: bool = False,
) -> pa.Array:
    """For each row of ``main``, the sorted ``value``s of ``long`` rows with the same keys."""
    n = main.num_rows
    if n == 0:
        return pa.array([], pa.list_(typ))
    if long is None or long.num_rows == 0:
        return pa.ListArray.from_arrays(pa.array([0] * (n + 1), pa.int32()), pa.array([], typ))
    long = long.select([*keys, value])
    if distinct:
        long = long.group_by([*keys, value], use_threads=False).aggregate([])
    long = long.sort_by([(k, "ascending") for k in keys] + [(value, "ascending")])
    g = long.group_by(keys, use_threads=False).aggregate([(value, "list")])
    g = g.append_column("_gi", pa.array(range(g.num_rows), pa.int64()))
    idx = main.select(keys).append_column("_mi", pa.array(range(n), pa.int64()))
    j = idx.join(g.select([*keys, "_gi"]), keys, join_type="left outer")
    j = j.sort_by([("_mi", "ascending")])
    lists = g[f"{value}_list"].combine_chunks() if g.num_rows else pa.array([], pa.list_(typ))
    picked = lists.take(j["_gi"].combine_chunks())
    lengths = pc.fill_null(pc.list_value_length(picked), 0)
    offsets = pa.concat_arrays(
        [pa.array([0], pa.int32()), pc.cumulative_sum(lengths).cast(pa.int32())]
    )
    values = pc.list_flatten(picked)
    return pa.ListArray.from_arrays(offsets, values.cast(typ))


# --------------------------------------------------------------------------- entry points


def compile_plan(rulebook: Rulebook) -> Plan:
    """Compile a rulebook into a batch plan (no data is touched)."""
    return Plan(rulebook)


def _table_or_none(con: Any, name: str) -> ir.Table | None:
    try:
        return con.table(name)
    except Exception:  # the backend's "no such table" errors differ
        return None


def records_table(con: Any, source: Any) -> ir.Table:
    """The record snapshot (``RECORD_SCHEMA``) as an Ibis table on ``con``.

    ``source`` is an Ibis table (used as is); a Parquet file (``.parquet``, read with the
    backend's ``read_parquet``); ``"entries"``, the ledger's own table, folded relationally into
    the snapshot shape; or the name of a snapshot table on ``con``. Anything else (e.g. the path or
    URL of the database ``con`` is connected to) means the ledger's ``entries`` if the database has
    them, else its ``records`` table.
    """
    if isinstance(source, ir.Table):
        return source
    text = str(source)
    if Path(text).suffix.lower() in (".parquet", ".parq", ".pq"):
        return con.read_parquet(text)
    if text != "entries":
        named = _table_or_none(con, text) if text.isidentifier() else None
        if named is not None:
            return named
    entries = _table_or_none(con, "entries")
    if entries is not None:
        from socialcredit.engine.batch_ledger import fold_entries

        return fold_entries(entries)
    records = _table_or_none(con, "records")
    if records is not None and text != "entries":
        return records
    raise ValueError(f"cannot read records from {source!r}: no Parquet file or table of that name")


def connect(engine: str, source: str | Path) -> Any:
    """An Ibis connection for ``engine``; the only backend-specific line of the batch path."""
    if engine == "duckdb":
        # results are sorted by their own ORDER BY, so DuckDB need not keep insertion order
        # (less memory); stages that outgrow memory spill to the system's temporary directory
        # (not DuckDB's default, ``.tmp`` in the working directory). SC_DUCKDB_MEMORY_LIMIT
        # (e.g. ``3GB``) caps DuckDB's memory; its default is 80% of the machine's.
        con = ibis.duckdb.connect()
        con.raw_sql("SET preserve_insertion_order = false")
        spill = Path(tempfile.gettempdir()) / "socialcredit-duckdb"
        con.raw_sql(f"SET temp_directory = '{spill.as_posix()}'")
        limit = os.environ.get("SC_DUCKDB_MEMORY_LIMIT")
        if limit:
            if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", limit.strip(), re.IGNORECASE):
                raise ValueError(
                    f"SC_DUCKDB_MEMORY_LIMIT must be a size such as 3GB or 512MiB, not {limit!r}"
                )
            con.raw_sql(f"SET memory_limit = '{limit.strip()}'")
        return con
    if engine == "sql":
        text = str(source)
        if "://" not in text:
            return ibis.sqlite.connect(text)
        if text.startswith("sqlite:///"):
            return ibis.sqlite.connect(text[len("sqlite:///") :])
        u = urlparse(text)
        if not re.match(r"^postgres(ql)?(\+\w+)?$", u.scheme):
            raise ValueError(f"unsupported database URL scheme '{u.scheme}' (use postgresql://)")
        return ibis.postgres.connect(
            host=u.hostname or "localhost",
            port=u.port or 5432,
            user=unquote(u.username) if u.username else None,
            password=unquote(u.password) if u.password else None,
            database=(u.path or "/").lstrip("/") or None,
        )
    if engine == "spark":
        # the active SparkSession (spark-submit, a cluster) or a local one (batch_spark.session)
        from socialcredit.engine.batch_spark import session

        return ibis.pyspark.connect(session())
    raise ValueError(f"unknown batch engine '{engine}' (use duckdb, sql or spark)")


def evaluate_population(
    rulebook: Rulebook, *, engine: str, source: str | Path, as_of: dt.date
) -> BatchResult:
    """Evaluate every subject: ``engine="duckdb"`` over a Parquet snapshot, ``engine="sql"``
    over the ledger database itself (a SQLite path or a ``postgresql://`` URL), or
    ``engine="spark"`` over a Parquet snapshot in a SparkSession.

    The Spark session stays up for the next call (it takes seconds to start);
    :func:`socialcredit.engine.batch_spark.stop` ends it, as does the end of the process.
    """
    plan = compile_plan(rulebook)
    con = connect(engine, source)
    records = None
    try:
        records = records_table(con, source)
        return plan.run(records, as_of)
    finally:
        if engine == "spark":
            # keep the session; only forget the snapshot's temporary view
            if records is not None and isinstance(records.op(), ops.DatabaseTable):
                with contextlib.suppress(Exception):
                    con._session.catalog.dropTempView(records.op().name)
        else:
            disconnect = getattr(con, "disconnect", None)
            if disconnect is not None:
                disconnect()
