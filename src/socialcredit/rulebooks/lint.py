"""The rulebook linter: the checks a schema cannot make, and the charter.

``lint(loaded, catalogue)`` returns every problem in a loaded rulebook as an :class:`Issue` naming
file:line, a readable path (``lists[spc-defaulters].entry[other].term``), a stable rule name and a
message. Every issue is an error; :func:`lint_warnings` returns the softer findings separately.

Rules (stable names, documented in ``docs/rulebooks.md``):

=========================  ==========================================================================
``unknown-kind``           a Match, ``consent_kind`` or ``repair.conditions`` names no catalogue kind
``unknown-measure``        a memorandum binds a measure the catalogue does not have
``unknown-attribute``      an attribute a rule reads is not an attribute of (every) kind it matches
``attribute-value``        a value in ``Match.attributes`` is not allowed for that attribute
``attribute-type``         ``from_attribute`` / ``extend_by_attribute`` reads a non-numeric attribute
``unknown-severity``       a severity (or a count weight) that none of the matched kinds carries
``no-amount``              an amount condition or brackets on a kind that carries no amount
``unknown-list``           a binding or a ``lists`` rule names a list the rulebook does not have
``unknown-scheme``         a binding names a scheme the rulebook does not have
``unknown-grade``          a grade (binding, band, limit) that is not in the scheme's ``order``
``duplicate-id``           two lists, schemes, memoranda, rules, removals or limits share an id
``duplicate-grade``        a grade repeated in ``order`` or in the bands
``list-cycle``             lists whose ``lists`` rules depend on each other in a circle
``lists-at-least``         a ``lists`` rule that needs more lists than it names
``band-order``             bands not ordered: the best grade has the highest min (or, in a demerit
                           scheme whose bottom band is the best grade, mins rise as grades worsen)
``band-bottom``            not exactly one bottom band (``min: null``)
``band-overlap``           two bands with the same min
``band-unreachable``       a band no score can reach
``scheme-range``           ``min`` above ``max``, or ``base`` outside them
``unsourced``              a number or duration with neither an enclosing source+confidence nor its own
``bad-number``             a parameter whose value is not a number
``bad-duration``           a duration that does not parse
``working-days``           working days (``wd``) outside ``removal.within`` and ``procedure.deadlines``
``count-needs-term``       a count-mode entry rule without ``term.length``
``effective-range``        ``effective.to`` not after ``effective.from``
``charter-protected``      art. 2: a live rulebook reads a charter-protected record kind
``charter-no-expiry``      art. 5: an adverse outcome in a live rulebook that never expires
``charter-incentive-only`` art. 5: a sanction bound to an incentive-only scheme
=========================  ==========================================================================

Historical rulebooks (``historical: true``) skip the charter rules and get all the others.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from socialcredit.catalog import PROTECTED_CATEGORIES, Catalogue, RecordKind, load_catalogue
from socialcredit.rulebooks.durations import Duration
from socialcredit.rulebooks.loader import (
    Issue,
    Loaded,
    Path_,
    RulebookError,
    line_of,
    load_folder,
    locate,
    pretty_path,
    read_yaml,
)
from socialcredit.rulebooks.model import (
    STANDARD_DEADLINES,
    EntryRule,
    ListDef,
    Match,
    Param,
    PointsRule,
    Rulebook,
    Scheme,
    Sourced,
    num,
)

__all__ = [
    "LINT_RULES",
    "Parameter",
    "lint",
    "lint_path",
    "lint_warnings",
    "parameters",
]

LINT_RULES: tuple[str, ...] = (
    "unknown-kind",
    "unknown-measure",
    "unknown-attribute",
    "attribute-value",
    "attribute-type",
    "unknown-severity",
    "no-amount",
    "unknown-list",
    "unknown-scheme",
    "unknown-grade",
    "duplicate-id",
    "duplicate-grade",
    "list-cycle",
    "lists-at-least",
    "band-order",
    "band-bottom",
    "band-overlap",
    "band-unreachable",
    "scheme-range",
    "unsourced",
    "bad-number",
    "bad-duration",
    "working-days",
    "count-needs-term",
    "effective-range",
    "charter-protected",
    "charter-no-expiry",
    "charter-incentive-only",
)
"""Every rule name :func:`lint` can return (the loader adds ``yaml``, ``schema``, ``not-found``,
``unknown-override``, ``duplicate-id`` and ``cycle``)."""

# ---------------------------------------------------------------- where things are written

_Sem = tuple[Any, ...]  # a path where list elements with an id are ("id", ID)
_SEG = re.compile(r"([A-Za-z_][\w-]*)(?:\[([^\]]+)\])?")


def _parse_dotted(dotted: str) -> _Sem | None:
    out: list[Any] = []
    for part in dotted.split("."):
        m = _SEG.fullmatch(part)
        if m is None:
            return None
        out.append(m.group(1))
        if m.group(2) is not None:
            out.append(("id", m.group(2), 0))
    return tuple(out)


def _walk_raw(raw: Any, sem: _Sem) -> tuple[tuple[str | int, ...], int]:
    """Follow ``sem`` through raw YAML data: the raw path found and how many segments matched."""
    cur: Any = raw
    out: list[str | int] = []
    for i, s in enumerate(sem):
        if isinstance(s, tuple):
            if not isinstance(cur, list):
                return tuple(out), i
            same = [
                j
                for j, x in enumerate(cur)
                if isinstance(x, dict) and str(x.get("id")) == str(s[1])
            ]
            if len(same) <= s[2]:
                return tuple(out), i
            idx = same[s[2]]
            out.append(idx)
            cur = cur[idx]
        elif isinstance(s, int):
            if not isinstance(cur, list) or not 0 <= s < len(cur):
                return tuple(out), i
            out.append(s)
            cur = cur[s]
        else:
            if not isinstance(cur, dict) or s not in cur:
                return tuple(out), i
            out.append(s)
            cur = cur[s]
    return tuple(out), len(sem)


@dataclass(frozen=True)
class _Source:
    """One file of the extends chain: the child first, then its base, and so on."""

    file: str
    lines: dict[Path_, int]
    raw: dict[str, Any]


def _base_folder(folder: Path, parent: str) -> Path | str:
    # the loader's rule: a sibling folder first, else a path or a shipped rulebook's name
    return (
        folder.parent / parent if (folder.parent / parent / "rulebook.yaml").is_file() else parent
    )


class Locator:
    """Maps a path in the resolved rulebook to the file and line it was written on.

    Merged content from a base rulebook points at the base's file; content changed by an override
    points at the override; anything else that cannot be placed points at the child's ``extends``.
    """

    def __init__(self, loaded: Loaded):
        self.loaded = loaded
        self.merged: dict[str, Any] = loaded.rulebook.model_dump(by_alias=True, mode="json")
        self.chain: list[_Source] = [_Source(str(loaded.file), loaded.lines, loaded.raw)]
        folder, raw, seen = loaded.folder, loaded.raw, {str(loaded.file)}
        while isinstance(raw, dict) and raw.get("extends"):
            try:
                base = locate(_base_folder(folder, str(raw["extends"])))
                file = base / "rulebook.yaml"
                if str(file) in seen:
                    break
                seen.add(str(file))
                data, lines = read_yaml(file)
            except (RulebookError, OSError):
                break
            if not isinstance(data, dict):
                break
            self.chain.append(_Source(str(file), lines, data))
            folder, raw = base, data

    def pretty(self, path: Path_) -> str:
        return pretty_path(self.merged, path) or "(top)"

    def _semantic(self, path: Path_) -> _Sem:
        out: list[Any] = []
        cur: Any = self.merged
        for part in path:
            if isinstance(part, int) and isinstance(cur, list) and 0 <= part < len(cur):
                item = cur[part]
                ident = item.get("id") if isinstance(item, dict) else None
                if ident is None:
                    out.append(part)
                else:  # the n-th element with this id (ids should be unique; the linter says so)
                    nth = sum(1 for x in cur[:part] if isinstance(x, dict) and x.get("id") == ident)
                    out.append(("id", str(ident), nth))
                cur = item
            else:
                out.append(part)
                cur = cur.get(part) if isinstance(cur, dict) else None
        return tuple(out)

    @staticmethod
    def _owned(sem: _Sem, depth: int) -> bool:
        """Whether a walk that stopped at ``depth`` still means this file wrote the thing."""
        if depth == 0:
            return False
        if sem[0] in ("lists", "schemes", "memoranda") and depth < 2:
            return False
        return not (
            sem[0] == "procedure"
            and (depth < 2 or (len(sem) > 2 and sem[1] == "deadlines" and depth < 3))
        )

    def find(self, path: Path_) -> tuple[str, int | None]:
        sem = self._semantic(path)
        for src in self.chain:
            overrides = src.raw.get("overrides")
            if isinstance(overrides, dict):
                for key, value in overrides.items():
                    ksem = _parse_dotted(str(key))
                    if ksem is None or sem[: len(ksem)] != ksem:
                        continue
                    rest, _ = _walk_raw(value, sem[len(ksem) :])
                    return src.file, line_of(src.lines, ("overrides", key, *rest))
            raw_path, depth = _walk_raw(src.raw, sem)
            if self._owned(sem, depth):
                return src.file, line_of(src.lines, raw_path)
        child = self.chain[0]
        if "extends" in child.raw:
            return child.file, line_of(child.lines, ("extends",))
        return child.file, line_of(child.lines, ())


# ---------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Parameter:
    """One number or duration in a rulebook, with the source that covers it."""

    path: Path_
    where: str  # the readable path
    value: Any  # as written (a Param's value for a Param)
    is_duration: bool
    working_days_ok: bool
    source: str | None
    confidence: str | None
    own: bool  # True: a {value, source, confidence} Param; False: covered by an enclosing object
    covered_by: str | None  # the readable path of the enclosing sourced object, if any

    @property
    def sourced(self) -> bool:
        return self.source is not None and self.confidence is not None


Chain = tuple[tuple[Path_, Sourced], ...]
_Value = tuple[Path_, Any, bool, bool, Chain]


def _iter_values(rb: Rulebook) -> Iterator[_Value]:
    """(path, value, is_duration, wd_ok, enclosing sourced objects innermost last) for every number."""

    def match(p: Path_, m: Match, chain: Chain) -> Iterator[_Value]:
        for f in ("amount_at_least", "amount_below"):
            v = getattr(m, f)
            if v is not None:
                yield (*p, f), v, False, False, chain

    for i, lst in enumerate(rb.lists):
        lp: Path_ = ("lists", i)
        lc: Chain = ((lp, lst),)
        for j, e in enumerate(lst.entry):
            ep: Path_ = (*lp, "entry", j)
            ec: Chain = (*lc, (ep, e))
            if e.when is not None:
                yield from match((*ep, "when"), e.when, ec)
            if e.count is not None:
                cp: Path_ = (*ep, "count")
                yield from match((*cp, "when"), e.count.when, ec)
                for sev, w in (e.count.weights or {}).items():
                    yield (*cp, "weights", sev), w, False, False, ec
                yield (*cp, "at_least"), e.count.at_least, False, False, ec
                yield (*cp, "within"), e.count.within, True, False, ec
            if e.lists is not None:
                yield (*ep, "lists", "at_least"), e.lists.at_least, False, False, ec
            if e.grace is not None:
                yield (*ep, "grace"), e.grace, True, False, ec
            tp: Path_ = (*ep, "term")
            tc: Chain = (*ec, (tp, e.term))
            if e.term.length is not None:
                yield (*tp, "length"), e.term.length, True, False, tc
            if e.term.max is not None:
                yield (*tp, "max"), e.term.max, True, False, tc
        for k, rm in enumerate(lst.removal):
            rp: Path_ = (*lp, "removal", k)
            rc: Chain = (*lc, (rp, rm))
            yield from match((*rp, "when"), rm.when, rc)
            if rm.within is not None:
                yield (*rp, "within"), rm.within, True, True, rc
        if lst.repair is not None:
            pp: Path_ = (*lp, "repair")
            yield (*pp, "minimum"), lst.repair.minimum, True, False, (*lc, (pp, lst.repair))
        if lst.publicity is not None and lst.publicity.period is not None:
            up: Path_ = (*lp, "publicity")
            yield (*up, "period"), lst.publicity.period, True, False, (*lc, (up, lst.publicity))
    for i, s in enumerate(rb.schemes):
        sp: Path_ = ("schemes", i)
        sc: Chain = ((sp, s),)
        yield (*sp, "base"), s.base, False, False, sc
        for f in ("min", "max"):
            v = getattr(s, f)
            if v is not None:
                yield (*sp, f), v, False, False, sc
        yield (*sp, "restore_after"), s.restore_after, True, False, sc
        for j, pr in enumerate(s.rules):
            pp = (*sp, "rules", j)
            pc: Chain = (*sc, (pp, pr))
            yield from match((*pp, "when"), pr.when, pc)
            if pr.points is not None:
                yield (*pp, "points"), pr.points, False, False, pc
            for n, b in enumerate(pr.brackets or []):
                yield (*pp, "brackets", n, "amount_at_least"), b.amount_at_least, False, False, pc
                yield (*pp, "brackets", n, "points"), b.points, False, False, pc
            if pr.from_attribute is not None and "factor" in pr.from_attribute.model_fields_set:
                f_ = pr.from_attribute.factor
                if isinstance(f_, Param) or f_ != 1:
                    yield (*pp, "from_attribute", "factor"), f_, False, False, pc
            if pr.restore_after is not None:
                yield (*pp, "restore_after"), pr.restore_after, True, False, pc
            if pr.cap is not None:
                yield (*pp, "cap", "total"), pr.cap.total, False, False, pc
        if s.grades is not None:
            gp: Path_ = (*sp, "grades")
            gc: Chain = (*sc, (gp, s.grades))
            for n, band in enumerate(s.grades.bands):
                if band.min is not None:
                    yield (*gp, "bands", n, "min"), band.min, False, False, gc
            for n, lim in enumerate(s.grades.limits):
                mp: Path_ = (*gp, "limits", n)
                mc: Chain = (*gc, (mp, lim))
                yield from match((*mp, "when"), lim.when, mc)
                yield (*mp, "for"), lim.for_, True, False, mc
    pc2: Chain = ((("procedure",), rb.procedure),)
    for name, d in rb.procedure.deadlines.items():
        yield ("procedure", "deadlines", name), d, True, True, pc2


def parameters(rb: Rulebook) -> list[Parameter]:
    """Every number and duration in ``rb`` with the source and confidence that cover it."""
    merged = rb.model_dump(by_alias=True, mode="json")
    out = []
    for path, value, is_dur, wd_ok, chain in _iter_values(rb):
        if isinstance(value, Param):
            out.append(
                Parameter(
                    path,
                    pretty_path(merged, path),
                    value.value,
                    is_dur,
                    wd_ok,
                    value.source,
                    value.confidence,
                    True,
                    None,
                )
            )
            continue
        cover = next(
            (
                (p, s)
                for p, s in reversed(chain)
                if s.source is not None and s.confidence is not None
            ),
            None,
        )
        partial = next(((p, s) for p, s in reversed(chain) if s.source is not None), None)
        use = cover or partial
        out.append(
            Parameter(
                path,
                pretty_path(merged, path),
                value,
                is_dur,
                wd_ok,
                use[1].source if use else None,
                use[1].confidence if use else None,
                False,
                pretty_path(merged, use[0]) if use else None,
            )
        )
    return out


# ---------------------------------------------------------------- the linter


def _close(wanted: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(wanted, list(known), n=3)
    return f"; did you mean {', '.join(close)}?" if close else ""


def _dur_of(value: Any) -> Duration | None:
    v = value.value if isinstance(value, Param) else value
    if isinstance(v, bool) or not isinstance(v, str | int):
        return None
    try:
        return Duration.parse(v)
    except ValueError:
        return None


def _positive(d: Duration | None) -> bool:
    return d is not None and (d.months > 0 or d.days > 0 or d.working_days > 0)


def _article(category: str) -> str:
    m = re.search(r"art\.\s*\d+", PROTECTED_CATEGORIES.get(category, ""))
    return m.group(0) if m else "art. 2"


class _Linter:
    def __init__(self, loaded: Loaded, catalogue: Catalogue):
        self.rb = loaded.rulebook
        self.cat = catalogue
        self.loc = Locator(loaded)
        self.issues: list[Issue] = []
        # kind -> paths of the Match (or field) that reads it
        self.reads: dict[str, list[Path_]] = {}

    def add(self, path: Path_, rule: str, message: str) -> None:
        file, line = self.loc.find(path)
        self.issues.append(Issue(file, line, self.loc.pretty(path), rule, message))

    def run(self) -> list[Issue]:
        self.duplicates()
        self.effective()
        self.lists()
        self.schemes()
        self.memoranda()
        self.values()
        if not self.rb.historical:
            self.charter()
        seen: set[Issue] = set()
        out = []
        for i in self.issues:
            if i not in seen:
                seen.add(i)
                out.append(i)
        return out

    # -- record kinds and their attributes ----------------------------------------------------

    def kind_ref(self, path: Path_, kind: str) -> RecordKind | None:
        self.reads.setdefault(kind, []).append(path)
        k = self.cat.record_kinds.get(kind)
        if k is None:
            self.add(
                path,
                "unknown-kind",
                f"unknown record kind '{kind}': the catalogue has no such kind"
                + _close(kind, list(self.cat.record_kinds)),
            )
        return k

    def match(self, path: Path_, m: Match) -> list[RecordKind]:
        known: list[RecordKind] = []
        for n, kind in enumerate(m.kinds):
            k = self.kind_ref((*path, "kinds", n), kind)
            if k is not None:
                known.append(k)
        if m.severity is not None:
            for n, sev in enumerate(m.severity):
                if known and not any(sev in k.severities for k in known):
                    self.add(
                        (*path, "severity", n),
                        "unknown-severity",
                        f"no matched kind carries severity '{sev}' ("
                        + "; ".join(f"{k.id}: {', '.join(k.severities) or 'none'}" for k in known)
                        + ")",
                    )
            for k in known:
                if not k.severities:
                    self.add(
                        (*path, "severity"),
                        "unknown-severity",
                        f"record kind {k.id} carries no severity, so with 'severity' set this "
                        "rule never matches it",
                    )
        for name, values in (m.attributes or {}).items():
            for k in known:
                if name not in k.attributes:
                    self.no_attribute((*path, "attributes", name), name, k)
                    continue
                for n, v in enumerate(values):
                    _, problems = k.coerce_attributes({name: v})
                    for p in problems:
                        if p.field == f"attributes.{name}" and p.rule != "required":
                            self.add(
                                (*path, "attributes", name, n),
                                "attribute-value",
                                f"{v!r} can never match: {p.message}",
                            )
        if m.amount_at_least is not None or m.amount_below is not None:
            f = "amount_at_least" if m.amount_at_least is not None else "amount_below"
            for k in known:
                if k.amount == "none":
                    self.add(
                        (*path, f),
                        "no-amount",
                        f"record kind {k.id} carries no amount, so an amount condition never "
                        "matches it",
                    )
        return known

    def no_attribute(self, path: Path_, name: str, k: RecordKind) -> None:
        self.add(
            path,
            "unknown-attribute",
            f"'{name}' is not an attribute of record kind {k.id} (its attributes: "
            f"{', '.join(k.attributes) or 'none'})" + _close(name, list(k.attributes)),
        )

    def attribute(
        self, path: Path_, name: str, kinds: list[RecordKind], *, numeric: bool = False
    ) -> None:
        for k in kinds:
            spec = k.attributes.get(name)
            if spec is None:
                self.no_attribute(path, name, k)
            elif numeric and spec.type not in ("integer", "number"):
                self.add(
                    path,
                    "attribute-type",
                    f"'{name}' of record kind {k.id} is {spec.type}, not a number",
                )

    # -- ids ------------------------------------------------------------------------------------

    def _dupes(self, path: Path_, ids: list[str], what: str) -> None:
        seen: set[str] = set()
        for n, i in enumerate(ids):
            if i in seen:
                self.add((*path, n), "duplicate-id", f"{what} '{i}' is defined twice")
            seen.add(i)

    def duplicates(self) -> None:
        rb = self.rb
        self._dupes(("lists",), [x.id for x in rb.lists], "list")
        self._dupes(("schemes",), [x.id for x in rb.schemes], "scheme")
        self._dupes(("memoranda",), [x.id for x in rb.memoranda], "memorandum")
        for i, lst in enumerate(rb.lists):
            self._dupes(("lists", i, "entry"), [e.id for e in lst.entry], "entry rule")
            self._dupes(("lists", i, "removal"), [r.id for r in lst.removal], "removal")
        for i, s in enumerate(rb.schemes):
            self._dupes(("schemes", i, "rules"), [r.id for r in s.rules], "points rule")
            if s.grades:
                self._dupes(
                    ("schemes", i, "grades", "limits"), [x.id for x in s.grades.limits], "limit"
                )

    def effective(self) -> None:
        e = self.rb.effective
        if e.to is not None and e.to <= e.from_:
            self.add(
                ("effective", "to"),
                "effective-range",
                f"effective.to ({e.to}) must be after effective.from ({e.from_})",
            )

    # -- lists ----------------------------------------------------------------------------------

    def lists(self) -> None:
        ids = [x.id for x in self.rb.lists]
        for i, lst in enumerate(self.rb.lists):
            lp: Path_ = ("lists", i)
            entry_kinds: list[RecordKind] = []
            for j, e in enumerate(lst.entry):
                self.entry((*lp, "entry", j), e, ids, entry_kinds)
            for k, rm in enumerate(lst.removal):
                rp: Path_ = ("lists", i, "removal", k)
                kinds = self.match((*rp, "when"), rm.when)
                for n, a in enumerate(rm.match_attributes):
                    self.attribute((*rp, "match_attributes", n), a, kinds)
                    self.attribute((*rp, "match_attributes", n), a, entry_kinds)
            if lst.repair is not None:
                for n, kind in enumerate(lst.repair.conditions):
                    self.kind_ref((*lp, "repair", "conditions", n), kind)
        self.cycles()

    def entry(self, ep: Path_, e: EntryRule, list_ids: list[str], acc: list[RecordKind]) -> None:
        kinds: list[RecordKind] = []
        if e.when is not None:
            kinds = self.match((*ep, "when"), e.when)
            acc.extend(k for k in kinds if k not in acc)
        if e.count is not None:
            kinds = self.match((*ep, "count", "when"), e.count.when)
            for sev in e.count.weights or {}:
                if kinds and not any(sev in k.severities for k in kinds):
                    self.add(
                        (*ep, "count", "weights", sev),
                        "unknown-severity",
                        f"a weight for severity '{sev}', which none of the counted kinds carries",
                    )
            if e.term.length is None:
                self.add(
                    (*ep, "term"),
                    "count-needs-term",
                    f"count rule '{e.id}' lists the subject for term.length from each trigger: "
                    "give it a term length",
                )
        if e.lists is not None:
            for n, dep in enumerate(e.lists.any_of):
                if dep not in list_ids:
                    self.add(
                        (*ep, "lists", "any_of", n),
                        "unknown-list",
                        f"no list '{dep}' in this rulebook" + _close(dep, list_ids),
                    )
            if e.lists.at_least > len(set(e.lists.any_of)):
                self.add(
                    (*ep, "lists", "at_least"),
                    "lists-at-least",
                    f"needs {e.lists.at_least} lists but names only {len(set(e.lists.any_of))}: "
                    "it can never hold",
                )
        if e.term.extend_by_attribute is not None:
            path = (*ep, "term", "extend_by_attribute")
            if e.mode == "each":
                self.attribute(path, e.term.extend_by_attribute, kinds, numeric=True)
            else:
                self.add(
                    path,
                    "unknown-attribute",
                    f"a {e.mode}-mode rule has no single record to read "
                    f"'{e.term.extend_by_attribute}' from: only 'when' rules extend by attribute",
                )

    def cycles(self) -> None:
        by_id = {x.id: (n, x) for n, x in enumerate(self.rb.lists)}
        deps: dict[str, list[str]] = {
            x.id: [d for e in x.entry if e.lists for d in e.lists.any_of if d in by_id]
            for x in self.rb.lists
        }
        reported: set[frozenset[str]] = set()
        finished: set[str] = set()  # every path from here explored: no new circle through it

        def visit(node: str, stack: list[str]) -> None:
            if node in finished:
                return
            if node in stack:
                cyc = [*stack[stack.index(node) :], node]
                key = frozenset(cyc)
                if key not in reported:
                    reported.add(key)
                    start = cyc[0]
                    n, lst = by_id[start]
                    j = next(
                        j for j, e in enumerate(lst.entry) if e.lists and cyc[1] in e.lists.any_of
                    )
                    self.add(
                        ("lists", n, "entry", j, "lists"),
                        "list-cycle",
                        f"lists depend on each other in a circle: {' -> '.join(cyc)}",
                    )
                return
            for d in deps[node]:
                visit(d, [*stack, node])
            finished.add(node)

        for x in self.rb.lists:
            visit(x.id, [])

    # -- schemes --------------------------------------------------------------------------------

    def schemes(self) -> None:
        for i, s in enumerate(self.rb.schemes):
            sp: Path_ = ("schemes", i)
            if s.consent_kind is not None:
                self.kind_ref((*sp, "consent_kind"), s.consent_kind)
            for j, pr in enumerate(s.rules):
                rp: Path_ = (*sp, "rules", j)
                kinds = self.match((*rp, "when"), pr.when)
                if pr.once_per is not None:
                    self.attribute((*rp, "once_per"), pr.once_per, kinds)
                if pr.from_attribute is not None:
                    self.attribute(
                        (*rp, "from_attribute", "attribute"),
                        pr.from_attribute.attribute,
                        kinds,
                        numeric=True,
                    )
                if pr.brackets is not None:
                    for k in kinds:
                        if k.amount == "none":
                            self.add(
                                (*rp, "brackets"),
                                "no-amount",
                                f"record kind {k.id} carries no amount, so brackets by amount "
                                "never score it",
                            )
            self.range(sp, s)
            if s.grades is not None:
                self.grades(sp, s)

    def range(self, sp: Path_, s: Scheme) -> None:
        lo, hi, base = self._num(s.min), self._num(s.max), self._num(s.base)
        if lo is not None and hi is not None and lo > hi:
            self.add((*sp, "max"), "scheme-range", f"max {hi:g} is below min {lo:g}")
        elif base is not None and (
            (lo is not None and base < lo) or (hi is not None and base > hi)
        ):
            self.add(
                (*sp, "base"),
                "scheme-range",
                f"base {base:g} is outside the scheme's range "
                f"[{'' if lo is None else f'{lo:g}'}, {'' if hi is None else f'{hi:g}'}]",
            )

    @staticmethod
    def _num(x: Any) -> float | None:
        try:
            return num(x)
        except (TypeError, ValueError):
            return None

    def grades(self, sp: Path_, s: Scheme) -> None:
        g = s.grades
        assert g is not None
        gp: Path_ = (*sp, "grades")
        order = g.order
        seen: set[str] = set()
        for n, grade in enumerate(order):
            if grade in seen:
                self.add((*gp, "order", n), "duplicate-grade", f"grade '{grade}' is listed twice")
            seen.add(grade)
        rank = {grade: n for n, grade in reversed(list(enumerate(order)))}
        banded: dict[str, int] = {}
        bottoms = []
        for n, b in enumerate(g.bands):
            bp: Path_ = (*gp, "bands", n)
            if b.grade not in rank:
                self.add(
                    (*bp, "grade"),
                    "unknown-grade",
                    f"grade '{b.grade}' is not in the scheme's order ({', '.join(order)})",
                )
            if b.grade in banded:
                self.add(
                    (*bp, "grade"),
                    "duplicate-grade",
                    f"grade '{b.grade}' has two bands: the one with the lower min can never be "
                    "reached",
                )
            banded.setdefault(b.grade, n)
            if b.min is None:
                bottoms.append(n)
        if not bottoms:
            self.add(
                (*gp, "bands"),
                "band-bottom",
                "no bottom band: give the worst banded grade 'min: null' so every score gets a grade",
            )
        for n in bottoms[1:]:
            self.add(
                (*gp, "bands", n, "min"),
                "band-bottom",
                f"more than one bottom band (min: null): '{g.bands[bottoms[0]].grade}' and "
                f"'{g.bands[n].grade}'",
            )
        for n, lim in enumerate(g.limits):
            if lim.at_best not in rank:
                self.add(
                    (*gp, "limits", n, "at_best"),
                    "unknown-grade",
                    f"grade '{lim.at_best}' is not in the scheme's order ({', '.join(order)})",
                )
        # bands in order of their grade, best first: mins must strictly decrease
        mins: dict[int, float | None] = {n: self._num(b.min) for n, b in enumerate(g.bands)}
        by_min: dict[float, int] = {}
        for n, m in mins.items():
            if m is None:
                continue
            if m in by_min:
                self.add(
                    (*gp, "bands", n, "min"),
                    "band-overlap",
                    f"bands '{g.bands[by_min[m]].grade}' and '{g.bands[n].grade}' both start at "
                    f"{m:g}",
                )
            else:
                by_min[m] = n
        ranked = sorted(
            (n for n, b in enumerate(g.bands) if b.grade in rank and banded.get(b.grade) == n),
            key=lambda n: rank[g.bands[n].grade],
        )
        # merit schemes (more points is better): the bottom band is the worst grade and mins fall
        # along `order`; demerit schemes (points count against you, as driving-licence points):
        # the bottom band is the best grade and mins rise along `order`
        bottom = [pos for pos, n in enumerate(ranked) if mins[n] is None]
        if len(bottom) == 1 and 0 < bottom[0] < len(ranked) - 1:
            n = ranked[bottom[0]]
            self.add(
                (*gp, "bands", n, "min"),
                "band-order",
                f"'{g.bands[n].grade}' is the bottom band (min: null) but it is neither the worst "
                "nor the best banded grade: the bottom band must be the worst grade (or, in a "
                "demerit scheme, the best)",
            )
            return self.reachable(sp, s, mins)
        valued = [n for n in ranked if mins[n] is not None]
        if bottom:
            demerit = bottom[0] == 0 and len(ranked) > 1
        else:
            first = [mins[n] for n in valued[:2]]
            demerit = len(first) == 2 and (first[0] or 0.0) < (first[1] or 0.0)
        for hi_n, lo_n in itertools.pairwise(valued):
            ma, mb = mins[hi_n] or 0.0, mins[lo_n] or 0.0
            better, worse = g.bands[hi_n].grade, g.bands[lo_n].grade
            if not demerit and mb > ma:
                self.add(
                    (*gp, "bands", lo_n, "min"),
                    "band-order",
                    f"'{worse}' needs {mb:g} but the better grade '{better}' needs only {ma:g}: "
                    "the best grade must have the highest min",
                )
            elif demerit and mb < ma:
                self.add(
                    (*gp, "bands", lo_n, "min"),
                    "band-order",
                    f"'{worse}' starts at {mb:g} but the better grade '{better}' starts at "
                    f"{ma:g}: in a demerit scheme (the bottom band is the best grade) mins must "
                    "rise as grades get worse",
                )
        self.reachable(sp, s, mins)

    def reachable(self, sp: Path_, s: Scheme, mins: dict[int, float | None]) -> None:
        g = s.grades
        assert g is not None
        lo, hi = self._num(s.min), self._num(s.max)
        gp: Path_ = (*sp, "grades", "bands")
        # the evaluator: bands by min, highest first; the first the points reach is the band
        order = sorted(mins, key=lambda n: (mins[n] is None, -(mins[n] or 0.0)))
        for pos, n in enumerate(order):
            m = mins[n]
            if m is not None and hi is not None and m > hi:
                self.add(
                    (*gp, n, "min"),
                    "band-unreachable",
                    f"band '{g.bands[n].grade}' needs {m:g} but the scheme's max is {hi:g}: no "
                    "score reaches it",
                )
            if lo is not None and m is not None and m <= lo:
                below = [g.bands[x].grade for x in order[pos + 1 :]]
                if below:
                    self.add(
                        (*gp, n, "min"),
                        "band-unreachable",
                        f"band '{g.bands[n].grade}' starts at {m:g}, at or below the scheme's "
                        f"min {lo:g}: every score reaches it, so {', '.join(below)} can never be "
                        "reached",
                    )
                break

    # -- memoranda ------------------------------------------------------------------------------

    def memoranda(self) -> None:
        list_ids = [x.id for x in self.rb.lists]
        schemes = {x.id: x for x in self.rb.schemes}
        for i, memo in enumerate(self.rb.memoranda):
            mp: Path_ = ("memoranda", i)
            if memo.source is None:
                self.add(
                    mp,
                    "unsourced",
                    f"memorandum '{memo.id}' has no source: name the document it comes from",
                )
            for j, b in enumerate(memo.bindings):
                bp: Path_ = (*mp, "bindings", j)
                if b.when.list_ is not None and b.when.list_ not in list_ids:
                    self.add(
                        (*bp, "when", "list"),
                        "unknown-list",
                        f"no list '{b.when.list_}' in this rulebook"
                        + _close(b.when.list_, list_ids),
                    )
                if b.when.scheme is not None:
                    s = schemes.get(b.when.scheme)
                    if s is None:
                        self.add(
                            (*bp, "when", "scheme"),
                            "unknown-scheme",
                            f"no scheme '{b.when.scheme}' in this rulebook"
                            + _close(b.when.scheme, list(schemes)),
                        )
                    else:
                        order = s.grades.order if s.grades else []
                        for n, grade in enumerate(b.when.grades or []):
                            if grade not in order:
                                self.add(
                                    (*bp, "when", "grades", n),
                                    "unknown-grade",
                                    f"scheme '{s.id}' has no grade '{grade}'"
                                    + (f" (its grades: {', '.join(order)})" if order else ""),
                                )
                for n, mid in enumerate(b.measures):
                    if mid not in self.cat.measures:
                        self.add(
                            (*bp, "measures", n),
                            "unknown-measure",
                            f"unknown measure '{mid}': the catalogue has no such measure"
                            + _close(mid, list(self.cat.measures)),
                        )

    # -- numbers, durations, sources ------------------------------------------------------------

    def values(self) -> None:
        for p in parameters(self.rb):
            path = p.path
            if not p.sourced and not p.own:
                where = p.covered_by
                hint = (
                    f"{where} has a source but no confidence tag (P, S, W or U)"
                    if where is not None
                    else "give the enclosing object 'source' and 'confidence'"
                )
                shown = p.value
                self.add(
                    path,
                    "unsourced",
                    f"{shown} has no source: {hint}, or write "
                    f"{{value: {shown}, source: ..., confidence: P|S|W|U}}",
                )
            if p.is_duration:
                d = _dur_of(p.value)
                if d is None:
                    self.add(
                        path,
                        "bad-duration",
                        f"'{p.value}' is not a duration: use e.g. 180d, 6m, 2y, 2y6m or 3wd",
                    )
                elif d.working_days and not p.working_days_ok:
                    self.add(
                        path,
                        "working-days",
                        f"'{p.value}' counts working days: they are only for procedural deadlines "
                        "(removal.within, procedure.deadlines), never in status evaluation",
                    )
            else:
                v = p.value
                if isinstance(v, bool) or not isinstance(v, int | float):
                    try:
                        float(v)
                    except (TypeError, ValueError):
                        self.add(path, "bad-number", f"{v!r} is not a number")

    # -- the charter ----------------------------------------------------------------------------

    def charter(self) -> None:
        rb = self.rb
        protected = self.cat.protected_kinds()
        # art. 2: protected conduct is never scored or listed by a live rulebook
        declared = rb.read_kinds()
        for kind in sorted(set(declared) | set(self.reads)):
            category = protected.get(kind)
            if category is None:
                continue
            message = (
                f"Charter {_article(category)} ({category}): a live rulebook may not read "
                f"'{kind}' — protected conduct is never scored or listed; mark the rulebook "
                "historical: true to run it only in the simulator"
            )
            paths = self.reads.get(kind, [])
            for path in paths:
                self.add(path, "charter-protected", message)
            if not paths:  # pragma: no cover - read_kinds and the linter walk the same rules
                for where in declared[kind]:
                    self.issues.append(
                        Issue(self.loc.chain[0].file, None, where, "charter-protected", message)
                    )
        # art. 5: every adverse outcome expires
        for i, lst in enumerate(rb.lists):
            self.list_expires(i, lst)
        for i, s in enumerate(rb.schemes):
            sp: Path_ = ("schemes", i)
            demerit = self._demerit(s)
            harm = "adds demerit points" if demerit else "takes points away"
            adverse = [
                (j, pr) for j, pr in enumerate(s.rules) if self._adverse(pr, demerit=demerit)
            ]
            if adverse and not _positive(_dur_of(s.restore_after)):
                self.add(
                    (*sp, "restore_after"),
                    "charter-no-expiry",
                    f"Charter art. 5: scheme '{s.id}' {harm} (rules "
                    f"{', '.join(pr.id for _, pr in adverse)}), so its restore_after must be "
                    "longer than zero",
                )
            for j, pr in adverse:
                if pr.restore_after is not None and not _positive(_dur_of(pr.restore_after)):
                    self.add(
                        (*sp, "rules", j, "restore_after"),
                        "charter-no-expiry",
                        f"Charter art. 5: rule '{pr.id}' {harm}, so its restore_after must be "
                        "longer than zero",
                    )
            for n, lim in enumerate(s.grades.limits if s.grades else []):
                if not _positive(_dur_of(lim.for_)):
                    self.add(
                        (*sp, "grades", "limits", n, "for"),
                        "charter-no-expiry",
                        f"Charter art. 5: limit '{lim.id}' must last a positive time",
                    )
        # art. 5: a low score is never a ground for a sanction in an incentive-only scheme
        incentive = {s.id for s in rb.schemes if s.incentive_only}
        for i, memo in enumerate(rb.memoranda):
            for j, b in enumerate(memo.bindings):
                if b.when.scheme not in incentive:
                    continue
                for n, mid in enumerate(b.measures):
                    measure = self.cat.measures.get(mid)
                    if measure is not None and measure.type == "sanction":
                        self.add(
                            ("memoranda", i, "bindings", j, "measures", n),
                            "charter-incentive-only",
                            f"Charter art. 5: scheme '{b.when.scheme}' is incentive-only, so it "
                            f"may not bring the sanction '{mid}' — a low score is never a ground "
                            "for a sanction",
                        )

    def _demerit(self, s: Scheme) -> bool:
        """A demerit scheme: its bottom band (min: null) is its best grade (points count against)."""
        g = s.grades
        if g is None or len(g.bands) < 2:
            return False
        banded = [b.grade for b in g.bands]
        best = next((x for x in g.order if x in banded), None)
        return any(b.min is None and b.grade == best for b in g.bands)

    def _adverse(self, pr: PointsRule, *, demerit: bool) -> bool:
        """Whether a rule can harm: take points away (merit) or add them (demerit). Attribute
        values are read as magnitudes, so ``from_attribute`` harms by the sign of its factor."""
        if pr.points is not None:
            values = [self._num(pr.points)]
        elif pr.brackets is not None:
            values = [self._num(b.points) for b in pr.brackets]
        else:
            assert pr.from_attribute is not None
            values = [self._num(pr.from_attribute.factor)]
        return any(v is None or (v > 0 if demerit else v < 0) for v in values)

    def list_expires(self, i: int, lst: ListDef) -> None:
        if not lst.adverse or lst.removal or lst.repair is not None:
            return
        for j, e in enumerate(lst.entry):
            if e.mode == "lists":
                continue  # holds only while the lists it depends on hold
            if e.term.length is None:
                self.add(
                    ("lists", i, "entry", j, "term"),
                    "charter-no-expiry",
                    f"Charter art. 5: entry rule '{e.id}' of the {lst.type} list '{lst.id}' has "
                    "no term length and the list has no removal trigger or repair gate, so the "
                    "listing never ends: give it term.length, a removal trigger or a repair gate",
                )


def lint(loaded: Loaded, catalogue: Catalogue | None = None) -> list[Issue]:
    """Every error in a loaded rulebook (an empty list: clean). See the module docstring."""
    return _Linter(loaded, catalogue or load_catalogue()).run()


def lint_path(path: str | Path, catalogue: Catalogue | None = None) -> list[Issue]:
    """Load the rulebook at ``path`` (folder, rulebook.yaml or shipped name) and lint it."""
    try:
        loaded = load_folder(path)
    except RulebookError as e:
        return list(e.issues)
    return lint(loaded, catalogue)


def lint_warnings(loaded: Loaded, catalogue: Catalogue | None = None) -> list[Issue]:
    """Findings that are not errors: unverified sources, adverse lists without human review,
    and removal triggers that cannot end a count-mode listing (removal ends ``when`` entries only).

    Rules: ``unverified-source``, ``no-review``, ``removal-ignored``, ``deadline-name`` (a
    procedure deadline named almost like a standard key the cases room reads — a likely typo,
    which would silently fall back to the due-process default).
    """
    del catalogue  # not needed yet; kept for a stable signature
    loc = Locator(loaded)
    rb = loaded.rulebook
    out: list[Issue] = []

    def add(path: Path_, rule: str, message: str) -> None:
        file, line = loc.find(path)
        out.append(Issue(file, line, loc.pretty(path), rule, message))

    for p in parameters(rb):
        if p.confidence == "U":
            add(
                p.path, "unverified-source", f"{p.value} rests on an unverified source ({p.source})"
            )
    for name in rb.procedure.deadlines:
        if name in STANDARD_DEADLINES:
            continue
        close = difflib.get_close_matches(name, list(STANDARD_DEADLINES), n=1, cutoff=0.8)
        if close:
            add(
                ("procedure", "deadlines", name),
                "deadline-name",
                f"'{name}' is not a standard deadline; did you mean '{close[0]}'? "
                "(standard keys are read by the cases room; others are informational)",
            )
    for i, lst in enumerate(rb.lists):
        if lst.adverse and lst.review is not None and not lst.review.required:
            add(
                ("lists", i, "review", "required"),
                "no-review",
                f"adverse list '{lst.id}' lists without a human confirming each listing",
            )
        if lst.removal:
            for j, e in enumerate(lst.entry):
                if e.mode != "each":
                    add(
                        ("lists", i, "entry", j),
                        "removal-ignored",
                        f"removal triggers end only 'when' entries; {e.mode}-mode rule '{e.id}' "
                        "ends at its term",
                    )
    return out
