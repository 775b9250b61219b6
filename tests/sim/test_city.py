"""The demo city's generator: deterministic, valid identifiers, every record valid, plausible rates."""

from __future__ import annotations

import collections
import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socialcredit import ids
from socialcredit.catalog import load_catalogue
from socialcredit.ledger.validate import Authority, RecordValidator
from socialcredit.sim.city import City, CityConfig, generate_city

TODAY = dt.date(2026, 11, 24)


@pytest.fixture(scope="module")
def city() -> City:
    return generate_city(CityConfig(people=3000, companies=600, seed=11), TODAY, load_catalogue())


def _fingerprint(c: City) -> tuple[object, ...]:
    return (c.people, c.organisations, c.records, c.lineage, c.featured)


def test_same_seed_same_city_other_seed_other_city() -> None:
    cat = load_catalogue()
    cfg = CityConfig(people=300, companies=80, seed=5)
    a, b = generate_city(cfg, TODAY, cat), generate_city(cfg, TODAY, cat)
    assert _fingerprint(a) == _fingerprint(b)
    c = generate_city(CityConfig(people=300, companies=80, seed=6), TODAY, cat)
    assert [p.key for p in c.people] != [p.key for p in a.people]
    assert c.records != a.records


def test_identifiers_are_valid_and_match_the_person(city: City) -> None:
    keys = [p.key for p in city.people] + [o.key for o in city.organisations]
    assert len(set(keys)) == len(keys), "identifiers are unique"
    for p in city.people:
        ident = ids.parse_key(p.key)
        facts = ids.describe(ident)
        assert ident.key == p.key
        assert facts["sex"] == p.sex
        assert facts["birth_date"] == p.birth_date.isoformat()
        age = (TODAY - p.birth_date).days / 365.25
        assert 18 <= age <= 81, p
        assert p.name.split()[0][0].isupper()
    for o in city.organisations:
        ident = ids.parse_key(o.key)
        assert ident.scheme == "cn-uscc" and ident.subject_kind == o.kind, o
    kinds = collections.Counter(o.kind for o in city.organisations)
    assert kinds["government-organ"] >= 1 and kinds["public-institution"] >= 1
    assert kinds["enterprise"] > kinds["individual-business"] > 0


def test_every_record_passes_the_validator(city: City) -> None:
    cat = load_catalogue()
    for spec in city.authorities:
        # accredited only for what the catalogue lets its type furnish, never a protected kind
        for k in spec.kinds:
            kind = cat.record_kinds[k]
            assert spec.type in kind.furnisher_types and kind.charter is None
        validator = RecordValidator(
            cat, Authority(spec.id, spec.name, spec.type, frozenset(spec.kinds)), TODAY
        )
        refs = set()
        for row in city.records.get(spec.id, []):
            draft, problems = validator.validate(row)
            assert not problems, (spec.id, row, problems)
            assert draft is not None
            assert city.start <= dt.date.fromisoformat(row["decision_date"]) <= TODAY
            assert row["ref"] not in refs, f"{spec.id} reuses ref {row['ref']}"
            refs.add(row["ref"])
    targets = {(a, r["ref"]) for a, rows in city.records.items() for r in rows}
    for op in city.lineage:
        assert (op.furnisher, op.target_ref) in targets, op
        assert op.reason.strip()
    assert {op.op for op in city.lineage} >= {"retract", "correct", "overturn"}


def test_rates_are_plausible(city: City) -> None:
    by_kind: dict[str, list[dict[str, object]]] = collections.defaultdict(list)
    for _, row in city.rows():
        by_kind[str(row["kind"])].append(row)
    people = {p.key for p in city.people}
    # judgment defaulters: about 1.5 % of adults over six years (df §8)
    defaulters = {
        r["subject"] for r in by_kind["court.judgment-defaulter"] if r["subject"] in people
    }
    assert 0.005 <= len(defaulters) / len(people) <= 0.03
    # every defaulter also gets a spending-restriction order (df §3.1)
    assert len(by_kind["court.spending-restriction"]) == len(by_kind["court.judgment-defaulter"])
    # about a third later perform (70 % do not comply voluntarily, df §8)
    performed = len(by_kind["court.obligation-performed"]) / len(
        by_kind["court.judgment-defaulter"]
    )
    assert 0.1 <= performed <= 0.5
    # tax grades: A ~ 4.89 %, D ~ 7.01 % (df §2.1)
    grades = collections.Counter(r["attributes"]["grade"] for r in by_kind["tax.credit-rating"])  # type: ignore[index]
    total = sum(grades.values())
    assert 0.025 <= grades["A"] / total <= 0.09
    assert 0.03 <= grades["D"] / total <= 0.12
    assert grades["B"] > grades["C"] > 0 and grades["M"] > 0
    # environmental colours: green 13.87 / blue 73.68 / yellow 10.00 / red 2.45 % (df §2.3)
    colours = collections.Counter(
        r["attributes"]["colour"]  # type: ignore[index]
        for r in by_kind["environment.credit-result"]
    )
    n = sum(colours.values())
    assert 0.06 <= colours["green"] / n <= 0.25
    assert 0.6 <= colours["blue"] / n <= 0.85
    assert colours["red"] / n <= 0.07
    # the red side exists, and is smaller than the black side for organisations
    assert by_kind["honour.commendation"] and by_kind["honour.heroic-act"]
    assert by_kind["civil.volunteering"] and by_kind["health.blood-donation"]
    # penalties of all three severities; serious listings follow some heavier penalties
    severities = collections.Counter(r["severity"] for r in by_kind["admin.penalty"])
    assert severities["minor"] > severities["general"] > severities["serious"] > 0
    assert by_kind["market.serious-violation-listing"]
    # most people have some record; traffic tickets are the commonest kind
    with_records = {r["subject"] for _, r in city.rows()} & people
    assert 0.6 <= len(with_records) / len(people) <= 0.98
    commonest = max(by_kind, key=lambda k: len(by_kind[k]))
    assert commonest == "traffic.violation"


def test_featured_subjects_have_the_files_the_demo_promises(city: City) -> None:
    feat = city.featured
    rows = [r for _, r in city.rows()]
    mine = [r for r in rows if r["subject"] == feat["person"]]
    assert {"court.judgment-defaulter", "court.spending-restriction"} <= {r["kind"] for r in mine}
    assert not any(
        r["kind"] == "court.obligation-performed" and r["subject"] == feat["person"] for r in rows
    )
    assert any(r["ref"] == feat["objection"][1] for r in mine)
    company = [r for r in rows if r["subject"] == feat["company"]]
    assert any(
        r["kind"] == "admin.penalty"
        and r["severity"] == "serious"
        and r["attributes"]["heavier_penalty"] is True  # type: ignore[index]
        for r in company
    )
    assert not any(r["kind"] == "market.serious-violation-listing" for r in company)
    repair = [r for r in rows if r["subject"] == feat["repair"]]
    assert {"admin.penalty", "credit.commitment"} <= {r["kind"] for r in repair}
    assert len({feat["person"], feat["officer"], feat["reviewer"], feat["tipster"]}) == 4


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="people"):
        CityConfig(people=3)
    with pytest.raises(ValueError, match="years"):
        CityConfig(years=0)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    people=st.integers(10, 80),
    companies=st.integers(10, 40),
    seed=st.integers(0, 2**32),
    years=st.integers(1, 20),
    today=st.dates(dt.date(2022, 1, 1), dt.date(2035, 12, 31)),
)
def test_any_small_city_is_valid(
    people: int, companies: int, seed: int, years: int, today: dt.date
) -> None:
    cat = load_catalogue()
    city = generate_city(CityConfig(people, companies, seed, years), today, cat)
    featured = {v for v in city.featured.values() if isinstance(v, str)}
    for spec in city.authorities:
        validator = RecordValidator(
            cat, Authority(spec.id, spec.name, spec.type, frozenset(spec.kinds)), today
        )
        for row in city.records.get(spec.id, []):
            assert validator.validate(row)[1] == [], (spec.id, row)
            if row["subject"] not in featured:  # featured files may begin before the window
                assert city.start <= dt.date.fromisoformat(row["decision_date"]) <= today, row
    assert len({p.key for p in city.people}) == people
    assert len({o.key for o in city.organisations}) == companies
