"""The shipped rulebooks: they load, keep the charter, agree with the catalogue, and pass their cases.

Each rulebook folder under ``rulebooks/`` holds ``tests/*.yaml``: a list of cases, each with
``name``, ``as_of``, optional ``subject`` (default a person), ``records`` and ``expect``. This
module runs every case through the reference evaluator, one test id per case, and checks that
every rule reads only kinds, attributes, severities and measures the catalogue defines.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from socialcredit.catalog import Catalogue, load_catalogue
from socialcredit.engine.records import Rec
from socialcredit.engine.reference import Status, evaluate
from socialcredit.ids import parse_key
from socialcredit.rulebooks import Rulebook, load
from socialcredit.rulebooks.loader import load_calendar
from socialcredit.rulebooks.model import Match, Param

ROOT = Path(__file__).resolve().parents[2] / "rulebooks"
DEFAULT_SUBJECT = "cn-rid:11010519491231002X"
SHIPPED = (
    "cn-national",
    "cn-sd-rongcheng",
    "cn-js-suining-2010",
    "cn-fj-xiamen-bailu",
    "de-faer",
    "cn-driving-12",
)
MIN_CASES = {"cn-national": 6}
CASE_KEYS = {"name", "as_of", "subject", "records", "expect"}
RECORD_KEYS = {"kind", "decision_date", "severity", "amount", "attributes", "id", "in_force"}
EXPECT_KEYS = {
    "lists",
    "since",
    "until",
    "pending",
    "points",
    "grades",
    "measures",
    "no_measures",
    "next_change",
}
DURATION = re.compile(r"^(?:\d+(?:wd|y|m|d))+$")


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def _rulebook(name: str) -> Rulebook:
    return load(ROOT / name)


def _case_files(name: str) -> list[Path]:
    return sorted((ROOT / name / "tests").glob("*.yaml"))


def _cases() -> Iterator[Any]:
    for name in SHIPPED:
        for file in _case_files(name):
            for case in yaml.safe_load(file.read_text(encoding="utf-8")) or []:
                yield pytest.param(name, case, id=f"{name}/{file.stem}/{case.get('name')}")


def _date(v: Any) -> dt.date | None:
    if v is None:
        return None
    return v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v))


def build_records(case: dict[str, Any], catalogue: Catalogue) -> tuple[str, str | None, list[Rec]]:
    """The case's records as engine records, checked against the catalogue."""
    subject = str(case.get("subject") or DEFAULT_SUBJECT)
    kind = parse_key(subject).subject_kind
    recs = []
    for n, raw in enumerate(case.get("records") or [], start=1):
        unknown = set(raw) - RECORD_KEYS
        assert not unknown, f"record {n}: unknown keys {sorted(unknown)}"
        rk = catalogue.kind(raw["kind"])
        attrs = dict(raw.get("attributes") or {})
        _, problems = rk.coerce_attributes(attrs)
        assert not problems, f"record {n} ({rk.id}): {[p.message for p in problems]}"
        for problem in (rk.check_severity(raw.get("severity")), rk.check_amount(raw.get("amount"))):
            assert problem is None, f"record {n} ({rk.id}): {problem.message}"
        assert kind in rk.subject_kinds, f"record {n}: a {kind} cannot have a {rk.id} record"
        amount = raw.get("amount")
        recs.append(
            Rec(
                record_id=int(raw.get("id", n)),
                subject=subject,
                subject_kind=kind,
                kind=rk.id,
                decision_date=_date(raw["decision_date"]),  # type: ignore[arg-type]
                severity=raw.get("severity"),
                amount_minor=None if amount is None else round(float(amount) * 100),
                attributes=attrs,
                in_force=bool(raw.get("in_force", True)),
            )
        )
    return subject, kind, recs


def check_expectations(status: Status, expect: dict[str, Any]) -> list[str]:
    """Every expectation that does not hold, as a readable line."""
    bad: list[str] = []
    for list_id, want in (expect.get("lists") or {}).items():
        got = status.membership(list_id) is not None
        if got != bool(want):
            bad.append(f"lists.{list_id}: expected {want}, got {got}")
    for key in ("since", "until"):
        for list_id, want in (expect.get(key) or {}).items():
            m = status.membership(list_id)
            if m is None:
                bad.append(f"{key}.{list_id}: not a member")
                continue
            got = getattr(m, key)
            if got != _date(want):
                bad.append(f"{key}.{list_id}: expected {want}, got {got}")
    for list_id, want in (expect.get("pending") or {}).items():
        dates = [p.effective for p in status.pending if p.list_id == list_id]
        got = min(dates) if dates else None
        if got != _date(want):
            bad.append(f"pending.{list_id}: expected {want}, got {got}")
    for scheme_id, want in (expect.get("points") or {}).items():
        res = status.scheme(scheme_id)
        if res is None:
            bad.append(f"points.{scheme_id}: the scheme was not evaluated for this subject")
        elif (res.points is None) != (want is None) or (
            want is not None and abs(res.points - float(want)) > 1e-9  # type: ignore[operator]
        ):
            bad.append(f"points.{scheme_id}: expected {want}, got {res.points}")
    for scheme_id, want in (expect.get("grades") or {}).items():
        res = status.scheme(scheme_id)
        got = None if res is None else res.grade
        if got != want:
            bad.append(f"grades.{scheme_id}: expected {want}, got {got}")
    have = status.measure_ids()
    bad += [f"measures: {m} is not active" for m in expect.get("measures") or [] if m not in have]
    bad += [f"no_measures: {m} is active" for m in expect.get("no_measures") or [] if m in have]
    if "next_change" in expect and status.next_change != _date(expect["next_change"]):
        bad.append(f"next_change: expected {expect['next_change']}, got {status.next_change}")
    return bad


# ---------------------------------------------------------------- the cases


@pytest.mark.parametrize(("name", "case"), list(_cases()))
def test_case(name: str, case: dict[str, Any], catalogue: Catalogue) -> None:
    unknown = set(case) - CASE_KEYS
    assert not unknown, f"unknown case keys {sorted(unknown)}"
    expect = case.get("expect") or {}
    assert expect, "a case must expect something"
    assert not set(expect) - EXPECT_KEYS, f"unknown expect keys {sorted(set(expect) - EXPECT_KEYS)}"
    rb = _rulebook(name)
    subject, kind, recs = build_records(case, catalogue)
    status = evaluate(rb, recs, _date(case["as_of"]), subject=subject, subject_kind=kind)  # type: ignore[arg-type]
    bad = check_expectations(status, expect)
    assert not bad, "\n".join(bad) + "\n\nstatus: " + repr(status.as_dict())


@pytest.mark.parametrize("name", SHIPPED)
def test_enough_cases(name: str) -> None:
    n = sum(len(yaml.safe_load(f.read_text(encoding="utf-8")) or []) for f in _case_files(name))
    assert n >= MIN_CASES.get(name, 4), f"{name} has {n} test cases"


# ---------------------------------------------------------------- the rulebooks themselves


def test_every_shipped_folder_is_known() -> None:
    folders = {p.name for p in ROOT.iterdir() if (p / "rulebook.yaml").is_file()}
    assert set(SHIPPED) <= folders


@pytest.mark.parametrize("name", SHIPPED)
def test_loads_with_sources(name: str) -> None:
    rb = _rulebook(name)
    assert rb.id == name
    assert (ROOT / name / "SOURCES.md").is_file()
    load_calendar(rb.procedure.calendar)
    unsourced = _unsourced(rb, covered=False, path=name)
    assert not unsourced, "numbers or durations without source and confidence:\n" + "\n".join(
        unsourced
    )


def _unsourced(obj: Any, *, covered: bool, path: str) -> list[str]:
    """Paths of numbers and durations that neither they nor an enclosing object source."""
    if isinstance(obj, Param):
        return []
    if isinstance(obj, BaseModel):
        fields = type(obj).model_fields
        if "source" in fields and "confidence" in fields:
            here = getattr(obj, "source", None) is not None
            here = here and getattr(obj, "confidence", None) is not None
            covered = covered or here
        out = []
        for f in fields:
            if f in ("source", "confidence", "version", "id"):
                continue
            out += _unsourced(getattr(obj, f), covered=covered, path=f"{path}.{f}")
        return out
    if isinstance(obj, dict):
        return [
            x for k, v in obj.items() for x in _unsourced(v, covered=covered, path=f"{path}.{k}")
        ]
    if isinstance(obj, list | tuple):
        return [
            x
            for i, v in enumerate(obj)
            for x in _unsourced(v, covered=covered, path=f"{path}[{i}]")
        ]
    is_number = isinstance(obj, int | float) and not isinstance(obj, bool)
    is_duration = isinstance(obj, str) and DURATION.match(obj) is not None
    return [path] if (is_number or is_duration) and not covered else []


def _matches(rb: Rulebook) -> Iterator[tuple[str, Match]]:
    for lst in rb.lists:
        for e in lst.entry:
            if e.when is not None:
                yield f"lists[{lst.id}].entry[{e.id}]", e.when
            if e.count is not None:
                yield f"lists[{lst.id}].entry[{e.id}].count", e.count.when
        for r in lst.removal:
            yield f"lists[{lst.id}].removal[{r.id}]", r.when
    for s in rb.schemes:
        for pr in s.rules:
            yield f"schemes[{s.id}].rules[{pr.id}]", pr.when
        for lim in s.grades.limits if s.grades else []:
            yield f"schemes[{s.id}].grades.limits[{lim.id}]", lim.when


def _attr_problem(catalogue: Catalogue, kind_id: str, name: str, value: Any) -> str | None:
    rk = catalogue.kind(kind_id)
    if name not in rk.attributes:
        return f"{kind_id} has no attribute '{name}'"
    _, problems = rk.coerce_attributes({name: value})
    real = [p for p in problems if p.field == f"attributes.{name}" and p.rule != "required"]
    return f"{kind_id}.{name}={value!r}: {real[0].message}" if real else None


@pytest.mark.parametrize("name", SHIPPED)
def test_agrees_with_catalogue(name: str, catalogue: Catalogue) -> None:
    rb = _rulebook(name)
    bad: list[str] = []
    for where, m in _matches(rb):
        for k in m.kinds:
            if k not in catalogue.record_kinds:
                bad.append(f"{where}: unknown record kind {k}")
                continue
            rk = catalogue.kind(k)
            for sev in m.severity or []:
                if sev not in rk.severities:
                    bad.append(f"{where}: {k} has no severity {sev}")
            for attr, values in (m.attributes or {}).items():
                bad += [
                    f"{where}: {p}" for v in values if (p := _attr_problem(catalogue, k, attr, v))
                ]
            if (
                m.amount_at_least is not None or m.amount_below is not None
            ) and rk.amount == "none":
                bad.append(f"{where}: {k} carries no amount")
    for lst in rb.lists:
        entry_kinds = [k for e in lst.entry if e.when for k in e.when.kinds]
        for e in lst.entry:
            attr = e.term.extend_by_attribute
            if attr and e.when:
                bad += [
                    f"{lst.id}.{e.id}: {k} lacks {attr}"
                    for k in e.when.kinds
                    if attr not in catalogue.kind(k).attributes
                ]
        for r in lst.removal:
            for a in r.match_attributes:
                for k in [*r.when.kinds, *entry_kinds]:
                    if a not in catalogue.kind(k).attributes:
                        bad.append(f"{lst.id}.removal[{r.id}]: {k} has no attribute {a}")
        for k in lst.repair.conditions if lst.repair else []:
            if k not in catalogue.record_kinds:
                bad.append(f"{lst.id}.repair: unknown record kind {k}")
    for s in rb.schemes:
        if s.consent_kind and s.consent_kind not in catalogue.record_kinds:
            bad.append(f"{s.id}: unknown consent kind {s.consent_kind}")
        for pr in s.rules:
            for attr in (pr.once_per, pr.from_attribute.attribute if pr.from_attribute else None):
                if attr:
                    bad += [
                        f"{s.id}.{pr.id}: {k} lacks {attr}"
                        for k in pr.when.kinds
                        if attr not in catalogue.kind(k).attributes
                    ]
        if s.grades:
            used = {b.grade for b in s.grades.bands} | {li.at_best for li in s.grades.limits}
            if used - set(s.grades.order):
                bad.append(f"{s.id}: grades {sorted(used - set(s.grades.order))} not in order")
    lists = {x.id for x in rb.lists}
    schemes = {s.id: s for s in rb.schemes}
    for memo in rb.memoranda:
        for b in memo.bindings:
            bad += [
                f"{memo.id}: unknown measure {m}" for m in b.measures if m not in catalogue.measures
            ]
            if b.when.list_ and b.when.list_ not in lists:
                bad.append(f"{memo.id}: unknown list {b.when.list_}")
            if b.when.scheme:
                s = schemes.get(b.when.scheme)
                if s is None or not s.grades or set(b.when.grades or []) - set(s.grades.order):
                    bad.append(f"{memo.id}: binding to unknown scheme or grade {b.when}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("name", SHIPPED)
def test_live_rulebooks_keep_the_charter(name: str, catalogue: Catalogue) -> None:
    rb = _rulebook(name)
    protected = catalogue.protected_kinds()
    read = rb.read_kinds()
    if rb.historical:
        return
    bad = {k: (protected[k], read[k]) for k in read if k in protected}
    assert not bad, f"live rulebook {name} reads charter-protected kinds: {bad}"


def test_suining_is_historical_and_reads_what_it_used() -> None:
    rb = _rulebook("cn-js-suining-2010")
    assert rb.historical is True
    assert rb.jurisdiction.startswith("CN-JS")  # Jiangsu, not Sichuan (domain-facts §9 item 1)
    read = rb.read_kinds()
    assert "history.births-beyond-quota" in read
    assert "history.petitioning" in read


def test_incentive_only_schemes_bind_no_sanction(catalogue: Catalogue) -> None:
    for name in SHIPPED:
        rb = _rulebook(name)
        incentive_only = {s.id for s in rb.schemes if s.incentive_only}
        for memo in rb.memoranda:
            for b in memo.bindings:
                if b.when.scheme in incentive_only:
                    sanctions = [m for m in b.measures if catalogue.measure(m).type == "sanction"]
                    assert not sanctions, f"{name}/{memo.id} binds sanctions {sanctions}"


def test_rongcheng_binds_only_rewards_to_its_grades(catalogue: Catalogue) -> None:
    rb = _rulebook("cn-sd-rongcheng")
    own = {s.id for s in rb.schemes} - {s.id for s in _rulebook("cn-national").schemes}
    assert own, "Rongcheng adds its own scheme"
    for memo in rb.memoranda:
        for b in memo.bindings:
            if b.when.scheme in own:
                assert all(catalogue.measure(m).type == "reward" for m in b.measures), memo.id


def test_rongcheng_extends_the_national_base() -> None:
    national, city = _rulebook("cn-national"), _rulebook("cn-sd-rongcheng")
    assert {x.id for x in national.lists} <= {x.id for x in city.lists}
    assert {x.id for x in national.memoranda} <= {x.id for x in city.memoranda}
    assert city.procedure.calendar == "cn"
    assert set(national.procedure.deadlines) <= set(city.procedure.deadlines)


# ---------------------------------------------------------------- calendars


@pytest.mark.parametrize(
    ("calendar", "day", "working"),
    [
        ("cn", "2025-01-01", False),  # New Year's Day
        ("cn", "2025-01-26", True),  # Sunday made a working day (Spring Festival)
        ("cn", "2025-01-28", False),  # Spring Festival eve
        ("cn", "2025-10-08", False),  # National Day + Mid-Autumn, 8 days
        ("cn", "2025-10-11", True),  # Saturday made a working day
        ("cn", "2026-01-04", True),  # Sunday made a working day (New Year)
        ("cn", "2026-02-23", False),  # Spring Festival, 9 days
        ("cn", "2026-02-24", True),
        ("cn", "2026-09-20", True),  # Sunday made a working day (National Day)
        ("cn", "2026-10-07", False),
        ("de", "2025-04-18", False),  # Good Friday
        ("de", "2025-06-09", False),  # Whit Monday
        ("de", "2026-05-14", False),  # Ascension
        ("de", "2026-10-05", True),  # the Monday after German Unity Day (a Saturday)
        ("de", "2026-12-28", True),
    ],
)
def test_calendars(calendar: str, day: str, working: bool) -> None:
    cal = load_calendar(calendar)
    assert cal.is_working_day(dt.date.fromisoformat(day)) is working
    assert cal.covers == (2025, 2026)


def test_three_working_days_over_national_day() -> None:
    cal = load_calendar("cn")
    # A deletion trigger decided on Tuesday 30 Sep 2025: 1-8 Oct are holidays, Thu 9 and Fri 10
    # Oct are working days, and Saturday 11 Oct is a make-up working day: the third one.
    assert cal.add_working_days(dt.date(2025, 9, 30), 3) == dt.date(2025, 10, 11)
