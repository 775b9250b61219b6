"""The shipped catalogue (catalogs/*.yaml) loads and says what the reference says."""

from __future__ import annotations

from pathlib import Path

import pytest

from socialcredit.catalog import (
    CATEGORIES,
    DOMAINS,
    PROTECTED_CATEGORIES,
    Catalogue,
    load_catalogue,
    shipped_catalog_dir,
)
from socialcredit.subjects import SUBJECT_KINDS

REQUIRED_KINDS = {
    "court.judgment-defaulter",
    "court.spending-restriction",
    "court.obligation-performed",
    "admin.penalty",
    "admin.licence",
    "market.abnormal-operations",
    "market.abnormal-operations-cured",
    "market.serious-violation-listing",
    "tax.late-filing",
    "tax.late-payment",
    "tax.arrears",
    "tax.evasion",
    "tax.invoice-fraud",
    "tax.refund-fraud",
    "tax.abnormal-household",
    "tax.obstruction",
    "tax.credit-rating",
    "customs.credit-result",
    "customs.smuggling",
    "customs.violation",
    "environment.credit-result",
    "environment.violation",
    "commerce.contract-breach",
    "finance.loan-arrears",
    "finance.credit-card-overdue",
    "finance.private-lending-breach",
    "finance.illegal-fundraising",
    "commerce.pyramid-or-fraud",
    "commerce.counterfeit",
    "utility.late-payment",
    "utility.theft",
    "utility.equipment-damage",
    "utility.heating-tampering",
    "traffic.violation",
    "transport.aviation-offence",
    "transport.rail-offence",
    "honour.commendation",
    "honour.heroic-act",
    "civil.volunteering",
    "health.blood-donation",
    "credit.commitment",
    "credit.repair-training",
    "history.births-beyond-quota",
    "history.petitioning",
    "history.anti-government-posting",
    "history.internet-defamation",
}

# Art. 3 of the 2015 SPC provisions: nine items, some split into several measures.
SPENDING_RESTRICTIONS = {
    1: {"travel.flights", "travel.soft-sleeper", "travel.ship-upper-class"},
    2: {"consumption.star-hotels", "consumption.nightclubs-golf"},
    3: {"housing.real-estate-purchase", "housing.luxury-renovation"},
    4: {"business.high-end-office-rent"},
    5: {"consumption.non-essential-vehicle"},
    6: {"consumption.leisure-travel"},
    7: {"education.high-fee-private-school"},
    8: {"finance.high-premium-insurance"},
    9: {"travel.g-trains"},
}

REQUIRED_MEASURES = set().union(*SPENDING_RESTRICTIONS.values()) | {
    "procurement.exclusion",
    "finance.bond-issuance-restriction",
    "finance.loan-restriction",
    "finance.credit-card-restriction",
    "employment.legal-representative-ban",
    "employment.financial-executive-ban",
    "employment.civil-service-hiring",
    "licensing.market-entry-restriction",
    "subsidy.withheld",
    "honour.withheld",
    "inspection.increased",
    "tax.invoice-limit",
    "customs.inspection-increased",
    "publicity.list-publication",
    "travel.flight-ban-aviation-offence",
    "travel.rail-ban-rail-offence",
    "licensing.green-channel",
    "inspection.reduced",
    "tax.invoices-on-demand",
    "finance.bank-tax-loan",
    "customs.inspection-reduced",
    "procurement.preference",
    "public-services.deposit-free",
    "utility.heating-discount",
    "public-services.transport-card",
}

REQUIRED_AUTHORITY_TYPES = {
    "court",
    "tax",
    "market-regulation",
    "customs",
    "environment",
    "traffic-police",
    "civil-aviation",
    "railway",
    "utility",
    "bank",
    "civil-affairs",
    "health",
    "people-government",
    "credit-office",
    "family-planning",
    "letters-and-visits",
    "public-security-internet",
}
HISTORY_AUTHORITY_TYPES = {"family-planning", "letters-and-visits", "public-security-internet"}

REQUIRED_RELYING_PARTY_TYPES = {
    "airline",
    "railway",
    "hotel",
    "bank",
    "insurer",
    "procurement-office",
    "market-registry",
    "public-employer",
    "school",
    "real-estate-registry",
    "tax-office",
    "customs-office",
    "utility-company",
    "public-service",
    "travel-agency",
}


@pytest.fixture(scope="module")
def cat() -> Catalogue:
    return load_catalogue()


def test_shipped_catalogue_loads_from_the_checkout(cat: Catalogue) -> None:
    folder = shipped_catalog_dir()
    assert (folder / "national.yaml").is_file()
    assert cat.version
    assert all(Path(f).parent == folder for f in cat.files)
    assert load_catalogue() is cat  # the default load is cached


def test_loading_the_folder_explicitly_gives_the_same_content(cat: Catalogue) -> None:
    again = load_catalogue([shipped_catalog_dir()])
    assert again is not cat
    assert again.record_kinds == cat.record_kinds
    assert again.measures == cat.measures


def test_required_ids_are_present(cat: Catalogue) -> None:
    assert set(cat.record_kinds) >= REQUIRED_KINDS, REQUIRED_KINDS - set(cat.record_kinds)
    assert set(cat.measures) >= REQUIRED_MEASURES, REQUIRED_MEASURES - set(cat.measures)
    assert set(cat.authority_types) >= REQUIRED_AUTHORITY_TYPES
    assert set(cat.relying_party_types) >= REQUIRED_RELYING_PARTY_TYPES


def test_every_entry_has_a_source_with_a_confidence_tag(cat: Catalogue) -> None:
    for entry in [*cat.record_kinds.values(), *cat.measures.values()]:
        assert entry.source.confidence in ("P", "S", "W", "U"), entry.id
        assert len(entry.source.ref) > 10, entry.id
        assert entry.legal_basis.strip(), entry.id
        assert entry.description.strip(), entry.id


def test_unverified_entries_are_few_and_say_so(cat: Catalogue) -> None:
    unverified = [k.id for k in cat.record_kinds.values() if k.source.confidence == "U"]
    unverified += [m.id for m in cat.measures.values() if m.source.confidence == "U"]
    assert unverified == ["history.anti-government-posting"]


def test_protected_kinds(cat: Catalogue) -> None:
    assert cat.protected_kinds() == {
        "history.births-beyond-quota": "reproduction",
        "history.petitioning": "petition",
        "history.internet-defamation": "political-expression",
        "history.anti-government-posting": "political-expression",
    }
    for kind_id, category in cat.protected_kinds().items():
        kind = cat.kind(kind_id)
        assert category in PROTECTED_CATEGORIES
        assert kind.category == "historical"
        assert kind.disclosure == "restricted"
        assert set(kind.furnisher_types) <= HISTORY_AUTHORITY_TYPES


def test_historical_category_and_authorities_only_serve_protected_kinds(cat: Catalogue) -> None:
    for kind in cat.record_kinds.values():
        assert (kind.category == "historical") == (kind.charter is not None), kind.id
        if set(kind.furnisher_types) & HISTORY_AUTHORITY_TYPES:
            assert kind.charter is not None, kind.id


def test_protected_category_texts_name_the_charter_article() -> None:
    assert set(PROTECTED_CATEGORIES) == {
        "political-expression",
        "petition",
        "religion",
        "ethnicity",
        "reproduction",
        "journalism",
        "association",
    }
    assert all(text.startswith("Charter art. 2: ") for text in PROTECTED_CATEGORIES.values())


def test_judgment_defaulter_has_the_six_2017_grounds(cat: Catalogue) -> None:
    kind = cat.kind("court.judgment-defaulter")
    ground = kind.attributes["ground"]
    assert ground.type == "enum" and ground.required
    assert ground.values == [
        "able-but-refuses",
        "obstructs-enforcement",
        "evades-enforcement",
        "asset-report-violation",
        "spending-order-violation",
        "settlement-refused",
    ]
    assert kind.severities == ["serious"]
    assert kind.amount == "optional"
    assert kind.attributes["case_no"].required
    ext = kind.attributes["extension_years"]
    assert (ext.type, ext.minimum, ext.maximum) == ("integer", 0, 3)
    assert kind.source.confidence == "P"


def test_deletion_has_the_seven_art_10_triggers(cat: Catalogue) -> None:
    trigger = cat.kind("court.obligation-performed").attributes["trigger"]
    assert trigger.values is not None and len(trigger.values) == 7
    assert cat.kind("court.obligation-performed").severities == []


def test_the_nine_spending_restriction_families_are_present(cat: Catalogue) -> None:
    assert len(SPENDING_RESTRICTIONS) == 9
    for item, ids in SPENDING_RESTRICTIONS.items():
        for measure_id in ids:
            m = cat.measure(measure_id)
            assert m.type == "sanction"
            assert "Fa Shi (2015) No. 17" in m.legal_basis, measure_id
            assert f"item {item}" in m.description, measure_id
    assert cat.measure("travel.flights").domain == "travel"
    assert "any cabin" in cat.measure("travel.flights").title


def test_figures_that_are_often_misreported(cat: Catalogue) -> None:
    # all G-train seats, not only first class (domain-facts §9 item 12)
    assert "any seat" in cat.measure("travel.g-trains").description
    # flight ban after aviation offences is one year; rail ban 180 days (§5)
    assert "one year" in cat.measure("travel.flight-ban-aviation-offence").description
    assert "180 days" in cat.measure("travel.rail-ban-rail-offence").description
    # tax grades and thresholds (§2.1)
    rating = cat.kind("tax.credit-rating")
    assert rating.attributes["grade"].values == ["A", "B", "M", "C", "D"]
    assert "100,000 yuan" in cat.kind("tax.evasion").description
    assert "10%" in cat.kind("tax.evasion").description
    # environmental colours (§2.3), customs categories (§2.2)
    assert cat.kind("environment.credit-result").attributes["colour"].values == [
        "green",
        "blue",
        "yellow",
        "red",
        "black",
    ]
    assert cat.kind("customs.credit-result").attributes["grade"].values == [
        "advanced-certified",
        "general",
        "dishonest",
    ]


def test_kinds_are_well_formed(cat: Catalogue) -> None:
    for kind in cat.record_kinds.values():
        assert kind.category in CATEGORIES
        assert set(kind.subject_kinds) <= set(SUBJECT_KINDS)
        assert len(kind.id) <= 64
        assert (kind.amount == "none") == (kind.amount_meaning is None), kind.id
        for name, spec in kind.attributes.items():
            assert (spec.type == "enum") == (spec.values is not None), (kind.id, name)


def test_every_type_is_used(cat: Catalogue) -> None:
    furnishers = {t for k in cat.record_kinds.values() for t in k.furnisher_types}
    assert furnishers == set(cat.authority_types)
    relying = {t for m in cat.measures.values() for t in m.relying_party_types}
    assert relying == set(cat.relying_party_types)
    for authority_type in cat.authority_types:
        assert cat.kinds_furnished_by(authority_type)


def test_every_measure_is_reachable_by_a_relying_party_in_its_domain(cat: Catalogue) -> None:
    for m in cat.measures.values():
        assert m.domain in DOMAINS
        assert any(m.domain in cat.relying_party_types[r].domains for r in m.relying_party_types)
    assert {m.domain for m in cat.measures.values()} == set(DOMAINS)
    assert cat.measures_in_domain("customs")


def test_lookups_fail_with_a_clear_message(cat: Catalogue) -> None:
    with pytest.raises(
        KeyError,
        match=r"unknown record kind 'court\.judgment-defaulters'.*"
        r"did you mean court\.judgment-defaulter",
    ):
        cat.kind("court.judgment-defaulters")
    with pytest.raises(KeyError, match=r"unknown measure 'travel\.flight'"):
        cat.measure("travel.flight")


def test_shipped_kinds_coerce_typical_rows(cat: Catalogue) -> None:
    attrs, problems = cat.kind("court.judgment-defaulter").coerce_attributes(
        {"ground": "evades-enforcement", "case_no": "(2024)京0105执123号", "extension_years": "2"}
    )
    assert problems == []
    assert attrs == {
        "ground": "evades-enforcement",
        "case_no": "(2024)京0105执123号",
        "extension_years": 2,
    }
    attrs, problems = cat.kind("tax.credit-rating").coerce_attributes(
        {"grade": "A", "year": "2024", "score": "93.5"}
    )
    assert (attrs, problems) == ({"grade": "A", "year": 2024, "score": 93.5}, [])


def test_severity_and_amount_checks(cat: Catalogue) -> None:
    penalty = cat.kind("admin.penalty")
    assert penalty.check_severity("general") is None
    bad = penalty.check_severity("grave")
    assert bad is not None and bad.rule == "enum"
    missing = penalty.check_severity(None)
    assert missing is not None and missing.rule == "required"
    honour = cat.kind("honour.commendation")
    assert honour.check_severity(None) is None
    given = honour.check_severity("minor")
    assert given is not None and given.rule == "not-allowed"
    arrears = cat.kind("tax.arrears")
    need = arrears.check_amount(None)
    assert need is not None and need.rule == "required"
    assert arrears.check_amount(1200) is None
    extra = honour.check_amount(10)
    assert extra is not None and extra.rule == "not-allowed"
