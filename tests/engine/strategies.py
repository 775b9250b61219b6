"""Hypothesis strategies: random populations (snapshot rows) and random rulebooks.

Everything is drawn from small vocabularies so that rules actually fire: five record kinds,
three severities, a few attributes whose values mix strings, integers, integral and fractional
floats, numeric strings and booleans (the canonical-text corner cases), amounts around the rule
thresholds, and decision dates bunched at month ends (where month arithmetic clamps).

Points, weights, factors and caps are dyadic (halves and quarters) so that float sums are exact
in any order: the reference sums in record order, SQL in whatever order it likes.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from hypothesis import strategies as st

from socialcredit.ids import random_rid, random_uscc
from socialcredit.rulebooks.model import Rulebook
from tests.engine.helpers import row

KINDS = ["k.fine", "k.judgment", "k.late", "k.paid", "k.consent"]
SEVERITIES = ["minor", "general", "serious"]
ORG_KINDS = ["enterprise", "government-organ", "social-organisation"]
SUBJECT_KINDS = ["person", *ORG_KINDS]
CASES: list[Any] = ["c1", "c2", "1", 1, 2.0, True, "true", 1.5]
YEARS: list[Any] = [0, 1, 2, 3, 1.5, "2", -1, True, 2.0, "x"]
QUANTITIES: list[Any] = [1, 2.5, -3, "4", 0.25, 0, False, "n/a", 2.0]
CYCLES: list[Any] = ["2023", "2024", 2024, 2023.0]
AMOUNTS: list[int | None] = [None, 0, 4_999, 5_000, 10_000, 10_050, 150_000, 99_999_999]
DURATIONS_SHORT = ["0d", "10d", "1m", "1m15d", "30d"]
DURATIONS_LONG = ["6m", "1y", "18m", "2y", "1y1d", "400d", "1m"]
MEASURES = ["m.travel", "m.loan", "m.reward", "m.inspect"]
GRADES = ["A", "B", "C", "D"]

# ---------------------------------------------------------------------------- populations


@st.composite
def dates(draw: st.DrawFn, lo: int = 2021, hi: int = 2025) -> dt.date:
    y = draw(st.integers(lo, hi))
    m = draw(st.integers(1, 12))
    d = draw(st.sampled_from([1, 2, 15, 28, 29, 30, 31]))
    while True:
        try:
            return dt.date(y, m, d)
        except ValueError:
            d -= 1


_ATTRS: list[tuple[str, list[Any]]] = [
    ("case", CASES),
    ("years", YEARS),
    ("qty", QUANTITIES),
    ("cycle", CYCLES),
]
_DAYS = [1, 2, 15, 28, 29, 30, 31]


def _date(rng: random.Random, lo: int = 2021, hi: int = 2025) -> dt.date:
    y, m, d = rng.randint(lo, hi), rng.randint(1, 12), rng.choice(_DAYS)
    while True:
        try:
            return dt.date(y, m, d)
        except ValueError:
            d -= 1


def _records(rng: random.Random, key: str, kind: str, n: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        attrs = {name: rng.choice(values) for name, values in _ATTRS if rng.random() < 0.5}
        out.append(
            row(
                0,
                key,
                rng.choice(KINDS),
                _date(rng),
                subject_kind=kind,
                severity=rng.choice([None, *SEVERITIES]),
                amount_minor=rng.choice(AMOUNTS),
                attributes=attrs,
                in_force=rng.random() < 0.8,
            )
        )
    return out


@st.composite
def populations(draw: st.DrawFn, max_subjects: int = 30) -> list[dict[str, Any]]:
    """Snapshot rows for 1..max_subjects subjects with valid identifiers.

    Each subject is three draws (its kind, how many records, a seed for their contents), so
    examples are cheap to make and still shrink to fewer subjects and fewer records.
    """
    rows: list[dict[str, Any]] = []
    keys: set[str] = set()
    subjects = draw(
        st.lists(
            st.tuples(st.sampled_from(SUBJECT_KINDS), st.integers(1, 8), st.integers(0, 2**32)),
            min_size=1,
            max_size=max_subjects,
        )
    )
    for kind, n, seed in subjects:
        rng = random.Random(seed)
        key = (
            f"cn-rid:{random_rid(rng)}"
            if kind == "person"
            else f"cn-uscc:{random_uscc(rng, kind=kind)}"  # type: ignore[arg-type]
        )
        if key not in keys:
            keys.add(key)
            rows.extend(_records(rng, key, kind, n))
    # record ids unrelated to dates, so ties on a day are broken by id as the reference does
    rng = random.Random(len(rows))
    for r, rid in zip(rows, rng.sample(range(1, 20 * len(rows) + 1), len(rows)), strict=True):
        r["record_id"] = r["origin_id"] = rid
    return rows


# ---------------------------------------------------------------------------- rulebooks


@st.composite
def matches(draw: st.DrawFn) -> dict[str, Any]:
    m: dict[str, Any] = {
        "kinds": draw(st.lists(st.sampled_from(KINDS[:4]), min_size=1, max_size=2, unique=True))
    }
    if draw(st.integers(0, 3)) == 0:
        m["severity"] = draw(st.lists(st.sampled_from(SEVERITIES), max_size=2, unique=True))
    if draw(st.integers(0, 3)) == 0:
        m["attributes"] = {"case": draw(st.lists(st.sampled_from(CASES), max_size=3))}
    if draw(st.integers(0, 4)) == 0:
        m["amount_at_least"] = draw(st.sampled_from([50, 100.5, 0]))
    if draw(st.integers(0, 4)) == 0:
        m["amount_below"] = draw(st.sampled_from([100, 1500]))
    return m


def _maybe(draw: st.DrawFn, values: list[Any], p_none: int = 2) -> Any:
    return None if draw(st.integers(0, p_none)) == 0 else draw(st.sampled_from(values))


@st.composite
def lists_section(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(0, 4))
    ids = [f"L{i}" for i in range(n)]
    out = []
    for i, lid in enumerate(ids):
        entry = []
        for j in range(draw(st.integers(1, 2))):
            mode = draw(
                st.sampled_from(["each", "each", "count", "lists"] if i else ["each", "count"])
            )
            rule: dict[str, Any] = {"id": f"{lid}e{j}"}
            grace = _maybe(draw, DURATIONS_SHORT)
            if grace:
                rule["grace"] = grace
            term: dict[str, Any] = {}
            if mode == "each":
                rule["when"] = draw(matches())
                length = _maybe(draw, DURATIONS_LONG, 3)
                if length:
                    term["length"] = length
                    if draw(st.booleans()):
                        term["extend_by_attribute"] = "years"
                    cap = _maybe(draw, ["18m", "2y", "3y", "6m"], 1)
                    if cap:
                        term["max"] = cap
            elif mode == "count":
                count: dict[str, Any] = {
                    "when": draw(matches()),
                    "at_least": draw(st.sampled_from([0, 1, 2, 3, 2.5])),
                    "within": draw(st.sampled_from(["0d", "30d", "6m", "1y", "2y"])),
                }
                w = draw(st.integers(0, 3))
                if w == 1:
                    count["weights"] = {}
                elif w >= 2:
                    count["weights"] = draw(
                        st.dictionaries(
                            st.sampled_from(SEVERITIES),
                            st.sampled_from([0, 0.5, 1, 2, 3]),
                            min_size=1,
                        )
                    )
                rule["count"] = count
                length = _maybe(draw, DURATIONS_LONG, 3)
                if length:
                    term["length"] = length
            else:
                pool = [*ids[:i], "L-unknown"]
                deps = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
                rule["lists"] = {"any_of": deps, "at_least": draw(st.integers(1, 3))}
            if term:
                rule["term"] = term
            entry.append(rule)
        lst: dict[str, Any] = {"id": lid, "entry": entry}
        if draw(st.integers(0, 3)) == 0:
            lst["subjects"] = draw(
                st.lists(st.sampled_from(SUBJECT_KINDS), max_size=2, unique=True)
            )
        removal = []
        for j in range(draw(st.integers(0, 2))):
            rm: dict[str, Any] = {"id": f"{lid}r{j}", "when": draw(matches())}
            if draw(st.booleans()):
                rm["match_attributes"] = ["case"]
            removal.append(rm)
        if removal:
            lst["removal"] = removal
        repair = _maybe(draw, ["6m", "1y", "0d", "1m10d"])
        if repair:
            lst["repair"] = {"minimum": repair}
        out.append(lst)
    # lists may name later lists: the rulebook's order is not the dependency order
    return draw(st.permutations(out)) if out else out


@st.composite
def points_rules(draw: st.DrawFn, sid: str) -> list[dict[str, Any]]:
    out = []
    for j in range(draw(st.integers(1, 4))):
        r: dict[str, Any] = {"id": f"{sid}p{j}", "when": draw(matches())}
        src = draw(st.integers(0, 3))
        if src <= 1:
            r["points"] = draw(st.sampled_from([-10, -5, -2.5, 1, 3, 0.5, 0]))
        elif src == 2:
            r["brackets"] = [
                {"amount_at_least": a, "points": p}
                for a, p in draw(
                    st.lists(
                        st.tuples(
                            st.sampled_from([0, 50, 100.5, 1500]),
                            st.sampled_from([-30, -10, -1.5, 2]),
                        ),
                        min_size=1,
                        max_size=3,
                    )
                )
            ]
        else:
            r["from_attribute"] = {
                "attribute": "qty",
                "factor": draw(st.sampled_from([1, 0.5, -2])),
            }
        restore = _maybe(draw, ["3m", "1y", "18m", "1m"])
        if restore:
            r["restore_after"] = restore
        once = _maybe(draw, ["cycle", "case"])
        if once:
            r["once_per"] = once
        if draw(st.integers(0, 2)) == 0:
            r["cap"] = {
                "total": draw(st.sampled_from([5, 7.5, 10, 0])),
                "per": draw(st.sampled_from([None, "year"])),
            }
        out.append(r)
    return out


@st.composite
def schemes_section(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(0, 2))):
        sid = f"S{i}"
        s: dict[str, Any] = {
            "id": sid,
            "title": "A scheme",
            "subjects": draw(st.lists(st.sampled_from(SUBJECT_KINDS), min_size=1, unique=True)),
            "base": draw(st.sampled_from([100, 0, 50.5])),
            "restore_after": draw(st.sampled_from(["1y", "2y", "6m"])),
            "rules": draw(points_rules(sid)),
        }
        if draw(st.integers(0, 2)) == 0:
            s["min"] = draw(st.sampled_from([0, 80, 95.5]))
        if draw(st.integers(0, 2)) == 0:
            s["max"] = draw(st.sampled_from([100, 103, 110]))
        if draw(st.integers(0, 3)) == 0:
            s["consent_kind"] = "k.consent"
        if draw(st.integers(0, 2)) == 0:
            s["cycle"] = {"anchor": draw(st.sampled_from(["01-01", "07-01", "02-29", "12-31"]))}
        if draw(st.integers(0, 3)) > 0:
            order = GRADES[: draw(st.integers(2, 4))]
            bands = [
                {"grade": g, "min": draw(st.sampled_from([110, 100, 95, 90.5, 80, 0]))}
                for g in draw(st.lists(st.sampled_from(order), min_size=1, unique=True))
            ]
            if draw(st.booleans()):
                bands.append({"grade": draw(st.sampled_from(order))})
            limits = [
                {
                    "id": f"{sid}lim{j}",
                    "at_best": draw(st.sampled_from(order)),
                    "when": draw(matches()),
                    "for": draw(st.sampled_from(["6m", "1y", "2y", "1m20d"])),
                }
                for j in range(draw(st.integers(0, 2)))
            ]
            s["grades"] = {"order": order, "bands": draw(st.permutations(bands)), "limits": limits}
        out.append(s)
    return out


@st.composite
def memoranda_section(
    draw: st.DrawFn, lists: list[dict[str, Any]], schemes: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(0, 2))):
        bindings = []
        for _ in range(draw(st.integers(1, 3))):
            b: dict[str, Any] = {
                "measures": draw(st.lists(st.sampled_from(MEASURES), min_size=1, max_size=2))
            }
            if schemes and draw(st.booleans()):
                s = draw(st.sampled_from(schemes))
                b["when"] = {
                    "scheme": s["id"],
                    "grades": draw(st.lists(st.sampled_from(GRADES), min_size=1, max_size=2)),
                }
            else:
                b["when"] = {"list": draw(st.sampled_from([x["id"] for x in lists] + ["L-none"]))}
            if draw(st.integers(0, 2)) == 0:
                b["subjects"] = draw(
                    st.lists(st.sampled_from(SUBJECT_KINDS), max_size=2, unique=True)
                )
            bindings.append(b)
        out.append(
            {"id": f"M{i}", "title": "A memorandum", "legal_basis": "test", "bindings": bindings}
        )
    return out


_LIST_FIELDS = {"title": "A list", "type": "black", "authority": "test", "legal_basis": "test"}


@st.composite
def rulebooks(draw: st.DrawFn) -> Rulebook:
    lists = draw(lists_section())
    schemes = draw(schemes_section())
    memoranda = draw(memoranda_section(lists, schemes))
    doc = {
        "id": "rb-random",
        "title": "A random rulebook",
        "jurisdiction": "test",
        "version": "1",
        "effective": {"from": "2020-01-01"},
        "lists": [{**_LIST_FIELDS, **x} for x in lists],
        "schemes": schemes,
        "memoranda": memoranda,
    }
    return Rulebook.model_validate(doc)


as_of_dates = dates(2021, 2026)
