"""Loader refusals: each names the file, the entry and the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from socialcredit.catalog import CatalogueError, load_catalogue

SOURCE = {"ref": "domain-facts §3; test", "confidence": "P"}


def base() -> dict[str, Any]:
    return {
        "version": "test-1",
        "authority_types": [
            {"id": "court", "title": "Court", "description": "A court."},
            {"id": "tax", "title": "Tax", "description": "A tax bureau."},
        ],
        "relying_party_types": [
            {"id": "airline", "title": "Airline", "domains": ["travel"]},
        ],
        "record_kinds": [
            {
                "id": "court.listing",
                "title": "Listing",
                "description": "A listing.",
                "category": "judicial",
                "subject_kinds": ["person", "enterprise"],
                "severities": ["serious"],
                "furnisher_types": ["court"],
                "disclosure": "public",
                "amount": "optional",
                "amount_meaning": "amount owed",
                "attributes": {
                    "ground": {
                        "type": "enum",
                        "required": True,
                        "values": ["a", "b"],
                        "description": "Why.",
                    },
                    "years": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": 3,
                        "description": "Extension.",
                    },
                },
                "legal_basis": "Some provisions, Art. 1",
                "source": SOURCE,
            }
        ],
        "measures": [
            {
                "id": "travel.flights",
                "title": "No flights",
                "description": "No flights.",
                "type": "sanction",
                "domain": "travel",
                "legal_basis": "Some provisions, Art. 3",
                "relying_party_types": ["airline"],
                "source": SOURCE,
            }
        ],
    }


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def refused(paths: list[Path]) -> CatalogueError:
    with pytest.raises(CatalogueError) as info:
        load_catalogue(paths)
    return info.value


def messages(err: CatalogueError) -> list[str]:
    return [p.message for p in err.problems]


def test_the_minimal_catalogue_loads(tmp_path: Path) -> None:
    cat = load_catalogue([write(tmp_path / "a.yaml", base())])
    assert cat.version == "test-1"
    assert list(cat.record_kinds) == ["court.listing"]
    assert cat.kind("court.listing").attributes["years"].maximum == 3
    assert cat.protected_kinds() == {}


def test_a_folder_loads_its_yaml_files_in_name_order(tmp_path: Path) -> None:
    doc = base()
    extra = {"version": "local-2", "authority_types": [doc["authority_types"].pop()]}
    write(tmp_path / "a.yaml", doc)
    write(tmp_path / "b.yaml", extra)
    cat = load_catalogue([tmp_path])
    assert set(cat.authority_types) == {"court", "tax"}
    assert cat.version == "test-1+local-2"


def test_duplicate_id_across_files(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml", base())
    second = {"record_kinds": copy.deepcopy(base()["record_kinds"])}
    b = write(tmp_path / "b.yaml", second)
    err = refused([a, b])
    assert messages(err) == [
        f"{b}: record kind 'court.listing', field 'id': duplicate id: already defined in {a}"
    ]
    assert err.problems[0].field == "record_kinds[court.listing].id"
    assert err.problems[0].rule == "duplicate-id"
    assert str(b) in str(err) and "court.listing" in str(err)


def test_duplicate_id_within_one_file(tmp_path: Path) -> None:
    doc = base()
    doc["measures"].append(copy.deepcopy(doc["measures"][0]))
    path = write(tmp_path / "a.yaml", doc)
    assert messages(refused([path])) == [
        f"{path}: measure 'travel.flights', field 'id': duplicate id: already defined in {path}"
    ]


def test_unknown_furnisher_type(tmp_path: Path) -> None:
    doc = base()
    doc["record_kinds"][0]["furnisher_types"] = ["tax", "cour"]
    path = write(tmp_path / "a.yaml", doc)
    err = refused([path])
    assert messages(err) == [
        f"{path}: record kind 'court.listing', field 'furnisher_types.1': unknown authority type "
        "'cour': the catalogue has no such authority type; did you mean court?"
    ]
    assert err.problems[0].rule == "unknown-authority-type"
    assert err.problems[0].value == "cour"


def test_unknown_relying_party_type(tmp_path: Path) -> None:
    doc = base()
    doc["measures"][0]["relying_party_types"] = ["airlines"]
    path = write(tmp_path / "a.yaml", doc)
    assert messages(refused([path])) == [
        f"{path}: measure 'travel.flights', field 'relying_party_types.0': unknown relying-party "
        "type 'airlines': the catalogue has no such relying-party type; did you mean airline?"
    ]


def test_enum_without_values(tmp_path: Path) -> None:
    doc = base()
    del doc["record_kinds"][0]["attributes"]["ground"]["values"]
    path = write(tmp_path / "a.yaml", doc)
    assert messages(refused([path])) == [
        f"{path}: record kind 'court.listing', field 'attributes.ground.values': "
        "an enum attribute must list its allowed values"
    ]


def test_values_on_a_non_enum_attribute(tmp_path: Path) -> None:
    doc = base()
    doc["record_kinds"][0]["attributes"]["years"]["values"] = ["1", "2"]
    path = write(tmp_path / "a.yaml", doc)
    assert messages(refused([path])) == [
        f"{path}: record kind 'court.listing', field 'attributes.years.values': "
        "only enum attributes have values (this one is integer)"
    ]


def test_bounds_on_a_non_numeric_attribute(tmp_path: Path) -> None:
    doc = base()
    doc["record_kinds"][0]["attributes"]["ground"]["minimum"] = 1
    path = write(tmp_path / "a.yaml", doc)
    assert messages(refused([path])) == [
        f"{path}: record kind 'court.listing', field 'attributes.ground.minimum': "
        "only integer and number attributes have bounds (this one is enum)"
    ]


def test_unknown_charter_category(tmp_path: Path) -> None:
    doc = base()
    kind = doc["record_kinds"][0]
    kind["category"] = "historical"
    kind["charter"] = "politics"
    path = write(tmp_path / "a.yaml", doc)
    msgs = messages(refused([path]))
    assert len(msgs) == 1
    assert msgs[0].startswith(
        f"{path}: record kind 'court.listing', field 'charter': unknown charter category "
        "'politics'; known categories: political-expression, petition, religion"
    )


def test_charter_kind_must_be_historical(tmp_path: Path) -> None:
    doc = base()
    doc["record_kinds"][0]["charter"] = "petition"
    path = write(tmp_path / "a.yaml", doc)
    assert messages(refused([path])) == [
        f"{path}: record kind 'court.listing', field 'charter': a charter-protected kind "
        "(charter: petition) must have category 'historical', not 'judicial'"
    ]


def test_a_historical_charter_kind_loads(tmp_path: Path) -> None:
    doc = base()
    doc["record_kinds"][0].update(category="historical", charter="petition")
    cat = load_catalogue([write(tmp_path / "a.yaml", doc)])
    assert cat.protected_kinds() == {"court.listing": "petition"}


def test_typo_in_a_field_name(tmp_path: Path) -> None:
    doc = base()
    kind = doc["record_kinds"][0]
    kind["severites"] = kind.pop("severities")
    path = write(tmp_path / "a.yaml", doc)
    err = refused([path])
    msgs = messages(err)
    assert msgs[0] == (
        f"{path}: record kind 'court.listing', field 'severities': this field is required"
    )
    assert msgs[1].startswith(
        f"{path}: record kind 'court.listing', field 'severites': unknown field 'severites' "
        "(a typo?); allowed fields: id, title, description, category,"
    )
    assert [p.rule for p in err.problems] == ["required", "unknown-field"]


def test_typo_in_a_nested_field_name(tmp_path: Path) -> None:
    doc = base()
    doc["record_kinds"][0]["attributes"]["years"]["maximun"] = 3
    path = write(tmp_path / "a.yaml", doc)
    (msg,) = messages(refused([path]))
    assert msg == (
        f"{path}: record kind 'court.listing', field 'attributes.years.maximun': unknown field "
        "'maximun' (a typo?); allowed fields: type, required, values, minimum, maximum, "
        "description"
    )


def test_unknown_measure_domain(tmp_path: Path) -> None:
    doc = base()
    doc["measures"][0]["domain"] = "aviation"
    path = write(tmp_path / "a.yaml", doc)
    (msg,) = messages(refused([path]))
    assert msg.startswith(
        f"{path}: measure 'travel.flights', field 'domain': unknown domain 'aviation'; "
        "known domains: travel, consumption"
    )


def test_unknown_relying_party_domain(tmp_path: Path) -> None:
    doc = base()
    doc["relying_party_types"][0]["domains"] = ["travel", "flights"]
    path = write(tmp_path / "a.yaml", doc)
    (msg,) = messages(refused([path]))
    assert msg.startswith(
        f"{path}: relying-party type 'airline', field 'domains': unknown domain(s) flights; "
        "known domains: travel"
    )


def test_measure_outside_its_relying_parties_domains(tmp_path: Path) -> None:
    doc = base()
    doc["measures"][0]["domain"] = "finance"
    path = write(tmp_path / "a.yaml", doc)
    (msg,) = messages(refused([path]))
    assert msg == (
        f"{path}: measure 'travel.flights', field 'relying_party_types': none of the "
        "relying-party types airline works in the measure's domain 'finance', so none of them "
        "could be told the decision"
    )


def test_unknown_category_and_subject_kind(tmp_path: Path) -> None:
    doc = base()
    doc["record_kinds"][0]["category"] = "judicial-ruling"
    doc["record_kinds"][0]["subject_kinds"] = ["person", "company"]
    path = write(tmp_path / "a.yaml", doc)
    msgs = messages(refused([path]))
    assert msgs[0].startswith(
        f"{path}: record kind 'court.listing', field 'category': unknown category "
        "'judicial-ruling'; known categories: registration, judicial,"
    )
    assert msgs[1].startswith(f"{path}: record kind 'court.listing', field 'subject_kinds.1': ")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    doc = base()
    doc["record_kinds"][0]["furnisher_types"] = ["nobody"]
    doc["record_kinds"][0]["disclosure"] = "secret"
    doc["measures"][0]["type"] = "penalty"
    path = write(tmp_path / "a.yaml", doc)
    err = refused([path])
    fields = [p.field for p in err.problems]
    assert fields == [
        "record_kinds[court.listing].disclosure",
        "measures[travel.flights].type",
    ]  # the furnisher check runs only on kinds that validated
    assert "catalogue refused (2 problem(s))" in str(err)


def test_entry_without_an_id_is_named_by_position(tmp_path: Path) -> None:
    doc = base()
    del doc["measures"][0]["id"]
    path = write(tmp_path / "a.yaml", doc)
    assert messages(refused([path])) == [
        f"{path}: measure '#1', field 'id': this field is required"
    ]


def test_bad_ids(tmp_path: Path) -> None:
    doc = base()
    doc["record_kinds"][0]["id"] = "Court Listing"
    path = write(tmp_path / "a.yaml", doc)
    (msg,) = messages(refused([path]))
    assert msg.startswith(f"{path}: record kind 'Court Listing', field 'id': ids are lower-case")


def test_amount_meaning_goes_with_amount(tmp_path: Path) -> None:
    doc = base()
    del doc["record_kinds"][0]["amount_meaning"]
    path = write(tmp_path / "a.yaml", doc)
    assert messages(refused([path])) == [
        f"{path}: record kind 'court.listing', field 'amount_meaning': say what the amount "
        "means when a kind carries an amount"
    ]


def test_unknown_top_level_key_and_bad_yaml(tmp_path: Path) -> None:
    doc = base()
    doc["record_kind"] = []
    a = write(tmp_path / "a.yaml", doc)
    b = tmp_path / "b.yaml"
    b.write_text("record_kinds: [\n", encoding="utf-8")
    msgs = messages(refused([a, b]))
    assert msgs[0].startswith(f"{a}: field 'record_kind': unknown top-level key 'record_kind'")
    assert msgs[1].startswith(f"{b}: not valid YAML:")


def test_x_keys_may_hold_anchors(tmp_path: Path) -> None:
    doc = base()
    doc["record_kinds"][0]["subject_kinds"] = "PLACEHOLDER"
    text = yaml.safe_dump(doc, sort_keys=False)
    assert "subject_kinds: PLACEHOLDER" in text
    text = "x-kinds:\n  people: &people [person]\n" + text.replace(
        "subject_kinds: PLACEHOLDER", "subject_kinds: *people"
    )
    path = tmp_path / "a.yaml"
    path.write_text(text, encoding="utf-8")
    cat = load_catalogue([path])
    assert cat.kind("court.listing").subject_kinds == ["person"]


def test_no_files(tmp_path: Path) -> None:
    assert messages(refused([tmp_path])) == ["(no files): no catalogue files to load"]
