"""The rulebook linter: the charter, references, grades, sources, durations; file:line for each."""

from __future__ import annotations

from pathlib import Path

import pytest

from socialcredit.rulebooks.lint import LINT_RULES, lint, lint_path, lint_warnings, parameters
from socialcredit.rulebooks.loader import load_folder, locate
from tests.rulebooks.helpers import CLEAN, CLEAN_DIR, by_rule, line, mutate, one, write

PETITIONING_RULE = (
    "    grades:\n      order: [A, B, C, D]",
    "      - id: petitioning\n"
    "        description: petitioning above the county level\n"
    "        when: {kinds: [history.petitioning]}\n"
    "        points: -50\n"
    "    grades:\n      order: [A, B, C, D]",
)


def test_the_clean_fixture_has_no_issues() -> None:
    assert lint_path(CLEAN_DIR) == []
    assert lint_warnings(load_folder(CLEAN_DIR)) == []


# ---------------------------------------------------------------- the charter


def test_a_live_rulebook_may_not_score_petitioning(tmp_path: Path) -> None:
    text = mutate(PETITIONING_RULE)
    issues = lint_path(write(tmp_path, text))
    issue = one(issues, "charter-protected")
    assert issue.file == str(tmp_path / "rb" / "rulebook.yaml")
    assert issue.line == line(text, "history.petitioning")
    assert "art. 2" in issue.message and "(petition)" in issue.message
    assert "'history.petitioning'" in issue.message and "historical: true" in issue.message
    assert issue.path == "schemes[civic].rules[petitioning].when.kinds[0]"
    assert len(issues) == 1, issues


def test_a_historical_rulebook_may(tmp_path: Path) -> None:
    text = mutate(PETITIONING_RULE, ('version: "1"', 'version: "1"\nhistorical: true'))
    assert lint_path(write(tmp_path, text)) == []


def test_protected_kinds_are_refused_wherever_they_are_read(tmp_path: Path) -> None:
    text = mutate(
        (
            "      conditions: [credit.commitment]",
            "      conditions: [history.births-beyond-quota]",
        ),
        ("  - id: civic\n", "  - id: civic\n    consent_kind: history.internet-defamation\n"),
    )
    issues = by_rule(lint_path(write(tmp_path, text)), "charter-protected")
    assert {(i.line, i.message.split(":")[0]) for i in issues} == {
        (line(text, "history.births-beyond-quota"), "Charter art. 2 (reproduction)"),
        (line(text, "history.internet-defamation"), "Charter art. 2 (political-expression)"),
    }


def test_an_adverse_list_must_expire(tmp_path: Path) -> None:
    text = mutate(
        ("        term: {length: 6m}\n", ""),
    )
    issues = lint_path(write(tmp_path, text))
    assert one(issues, "count-needs-term").line == line(text, "- id: three-in-a-year")
    issue = one(issues, "charter-no-expiry")
    assert "art. 5" in issue.message and "three-in-a-year" in issue.message
    assert issue.path == "lists[utility-arrears].entry[three-in-a-year].term"
    # a removal trigger or a repair gate is enough; a historical rulebook is not checked
    hist = mutate(
        ("        term: {length: 6m}\n", ""), ('version: "1"', 'version: "1"\nhistorical: true')
    )
    assert by_rule(lint_path(write(tmp_path, hist, "h")), "charter-no-expiry") == []
    red = mutate(("        term: {length: 6m}\n", ""), ("type: key-attention", "type: red"))
    assert by_rule(lint_path(write(tmp_path, red, "r")), "charter-no-expiry") == []


def test_a_scheme_that_takes_points_away_must_restore(tmp_path: Path) -> None:
    text = mutate(("    restore_after: 2y\n", "    restore_after: 0d\n"))
    issue = one(lint_path(write(tmp_path, text)), "charter-no-expiry")
    assert issue.line == line(text, "restore_after: 0d")
    assert "late-utility" in issue.message


def test_an_incentive_only_scheme_never_brings_a_sanction(tmp_path: Path) -> None:
    text = mutate(
        ("    subjects: [person]\n", "    subjects: [person]\n    incentive_only: true\n"),
        (
            "        measures: [public-services.deposit-free]",
            "        measures: [public-services.deposit-free]\n"
            "      - when: {scheme: civic, grades: [D]}\n"
            "        measures: [travel.flights]",
        ),
    )
    issues = lint_path(write(tmp_path, text))
    issue = one(issues, "charter-incentive-only")
    assert issue.line == line(text, "measures: [travel.flights]")
    assert "a low score is never a ground for a sanction" in issue.message
    assert issue.path == "memoranda[spending].bindings[2].measures[0]"
    # rewards are fine
    ok = mutate(("    subjects: [person]\n", "    subjects: [person]\n    incentive_only: true\n"))
    assert lint_path(write(tmp_path, ok, "ok")) == []


# ---------------------------------------------------------------- the catalogue


@pytest.mark.parametrize(
    ("old", "new", "rule", "needle", "words"),
    [
        (
            "kinds: [civil.volunteering]",
            "kinds: [civil.volunteerin]",
            "unknown-kind",
            "civil.volunteerin]",
            "did you mean civil.volunteering",
        ),
        (
            "conditions: [credit.commitment]",
            "conditions: [credit.comitment]",
            "unknown-kind",
            "credit.comitment",
            "unknown record kind",
        ),
        (
            "measures: [travel.flights, consumption.star-hotels]",
            "measures: [travel.flight, consumption.star-hotels]",
            "unknown-measure",
            "travel.flight,",
            "did you mean travel.flights",
        ),
        (
            "attributes: {ground: [able-but-refuses]}",
            "attributes: {grnd: [able-but-refuses]}",
            "unknown-attribute",
            "grnd",
            "not an attribute of record kind court.judgment-defaulter",
        ),
        (
            "match_attributes: [case_no]",
            "match_attributes: [case_number]",
            "unknown-attribute",
            "case_number",
            "court.obligation-performed",
        ),
        (
            "extend_by_attribute: extension_years",
            "extend_by_attribute: extension_year",
            "unknown-attribute",
            "extension_year,",
            "extension_year",
        ),
        (
            "        points: -5\n",
            "        points: -5\n        once_per: cycle\n",
            "unknown-attribute",
            "once_per: cycle",
            "utility.late-payment",
        ),
        (
            "attributes: {ground: [able-but-refuses]}",
            "attributes: {ground: [able-but-refused]}",
            "attribute-value",
            "able-but-refused",
            "must be one of",
        ),
        (
            "from_attribute: {attribute: hours}",
            "from_attribute: {attribute: period}",
            "attribute-type",
            "attribute: period",
            "string, not a number",
        ),
        (
            "when: {kinds: [utility.late-payment]}\n        points",
            "when: {kinds: [utility.late-payment], severity: [serious]}\n        points",
            "unknown-severity",
            "severity: [serious]",
            "'serious'",
        ),
        (
            "weights: {minor: 1, general: 3}",
            "weights: {minor: 1, serious: 3}",
            "unknown-severity",
            "weights:",
            "'serious'",
        ),
        (
            "when: {kinds: [civil.volunteering]}",
            "when: {kinds: [civil.volunteering], amount_at_least: 10}",
            "no-amount",
            "amount_at_least: 10",
            "carries no amount",
        ),
    ],
)
def test_catalogue_references(
    tmp_path: Path, old: str, new: str, rule: str, needle: str, words: str
) -> None:
    text = mutate((old, new))
    issues = by_rule(lint_path(write(tmp_path, text)), rule)
    assert issues
    assert {i.line for i in issues} == {line(text, needle)}
    assert any(words in i.message for i in issues)


def test_match_attributes_must_exist_on_both_records(tmp_path: Path) -> None:
    text = mutate(("match_attributes: [case_no]", "match_attributes: [case_number]"))
    issues = by_rule(lint_path(write(tmp_path, text)), "unknown-attribute")
    assert {i.line for i in issues} == {line(text, "case_number")}
    assert ["court.obligation-performed" in i.message for i in issues] == [True, False]
    assert "court.judgment-defaulter" in issues[1].message


# ---------------------------------------------------------------- references


@pytest.mark.parametrize(
    ("old", "new", "rule", "needle", "words"),
    [
        (
            "{list: defaulters}",
            "{list: defaulter}",
            "unknown-list",
            "list: defaulter}",
            "defaulter",
        ),
        (
            "{scheme: civic, grades: [A]}",
            "{scheme: civics, grades: [A]}",
            "unknown-scheme",
            "scheme: civics",
            "did you mean civic",
        ),
        (
            "{scheme: civic, grades: [A]}",
            "{scheme: civic, grades: [AA]}",
            "unknown-grade",
            "grades: [AA]",
            "no grade 'AA'",
        ),
        ("at_best: C", "at_best: E", "unknown-grade", "at_best: E", "not in the scheme's order"),
        ("id: late-utility", "id: volunteering", "duplicate-id", "- id: volunteering", "twice"),
        ("order: [A, B, C, D]", "order: [A, B, C, D, A]", "duplicate-grade", "order:", "twice"),
        (
            "{grade: B, min: 990}",
            "{grade: A, min: 990}",
            "duplicate-grade",
            "{grade: A, min: 990}",
            "two bands",
        ),
    ],
)
def test_references(tmp_path: Path, old: str, new: str, rule: str, needle: str, words: str) -> None:
    text = mutate((old, new))
    issue = one(lint_path(write(tmp_path, text)), rule)
    assert issue.line == line(text, needle, 2 if rule == "duplicate-id" else 1)
    assert words in issue.message


LIST_RULES = """
  - id: combined-a
    title: A
    type: warning
    authority: x
    legal_basis: y
    source: test
    confidence: S
    entry:
      - id: via-b
        lists: {any_of: [combined-b, defaulters], at_least: 1}
  - id: combined-b
    title: B
    type: warning
    authority: x
    legal_basis: y
    source: test
    confidence: S
    entry:
      - id: via-a
        lists: {any_of: [combined-a, nowhere], at_least: 3}
schemes:
"""


def test_lists_rules(tmp_path: Path) -> None:
    text = mutate(("schemes:\n", LIST_RULES))
    issues = lint_path(write(tmp_path, text))
    cycle = one(issues, "list-cycle")
    assert "combined-a -> combined-b -> combined-a" in cycle.message
    assert cycle.line == line(text, "lists: {any_of: [combined-b")
    assert one(issues, "unknown-list").line == line(text, "nowhere")
    assert one(issues, "lists-at-least").line == line(text, "at_least: 3}")


# ---------------------------------------------------------------- grades


@pytest.mark.parametrize(
    ("pairs", "rule", "needle", "words"),
    [
        (
            [("{grade: A, min: 1030}", "{grade: A, min: 980}")],
            "band-order",
            "{grade: B, min: 990}",
            "the best grade must have the highest min",
        ),
        (  # a problem with a block value points at its key
            [("{grade: D, min: null}", "{grade: D, min: 800}")],
            "band-bottom",
            "      bands:",
            "no bottom",
        ),
        (
            [("{grade: C, min: 900}", "{grade: C, min: null}")],
            "band-bottom",
            "{grade: D, min: null}",
            "more than one bottom band",
        ),
        (
            [("{grade: C, min: 900}", "{grade: C, min: 990}")],
            "band-overlap",
            "{grade: C, min: 990}",
            "both start at 990",
        ),
        (
            [("{grade: C, min: 900}", "{grade: C, min: 0}")],
            "band-unreachable",
            "{grade: C, min: 0}",
            "D can never be reached",
        ),
        (
            [("{grade: A, min: 1030}", "{grade: A, min: 1300}")],
            "band-unreachable",
            "{grade: A, min: 1300}",
            "max is 1200",
        ),
        ([("    base: 1000\n", "    base: 1500\n")], "scheme-range", "base: 1500", "outside"),
    ],
)
def test_grade_bands(
    tmp_path: Path, pairs: list[tuple[str, str]], rule: str, needle: str, words: str
) -> None:
    text = mutate(*pairs)
    issue = one(lint_path(write(tmp_path, text)), rule)
    assert issue.line == line(text, needle)
    assert words in issue.message


# ---------------------------------------------------------------- sources and durations


def test_every_number_needs_a_source(tmp_path: Path) -> None:
    text = mutate(
        ("        source: test rules art. 3\n        confidence: S\n", ""),
        ("    source: FaGaiCaiJin (2016) No. 141\n", ""),
    )
    issues = by_rule(lint_path(write(tmp_path, text)), "unsourced")
    where = {i.path: i.line for i in issues}
    assert where["lists[utility-arrears].entry[three-in-a-year].count.at_least"] == line(
        text, "at_least: 3"
    )
    assert where["lists[utility-arrears].entry[three-in-a-year].term.length"] == line(
        text, "term: {length: 6m}"
    )
    assert where["memoranda[spending]"] == line(text, "- id: spending")
    assert len(issues) == 6  # weights x2, at_least, within, term.length, the memorandum


def test_a_param_carries_its_own_source(tmp_path: Path) -> None:
    text = mutate(
        ("        source: test rules art. 3\n        confidence: S\n", ""),
        (
            "        term: {length: 6m}",
            "        term: {length: {value: 6m, source: art. 3, confidence: P}}",
        ),
        (
            "          at_least: 3\n",
            "          at_least: {value: 3, source: art. 3, confidence: P}\n",
        ),
        (
            "          within: 1y\n",
            "          within: {value: 1y, source: art. 3, confidence: P}\n",
        ),
        (
            "{minor: 1, general: 3}",
            "{minor: {value: 1, source: a, confidence: S}, general: {value: 3, source: a, confidence: S}}",
        ),
    )
    assert lint_path(write(tmp_path, text)) == []


def test_a_source_without_confidence_does_not_cover(tmp_path: Path) -> None:
    text = mutate(("    confidence: S\n    rules:", "    rules:"))
    issues = by_rule(lint_path(write(tmp_path, text)), "unsourced")
    assert issues and all("no confidence tag" in i.message for i in issues)


@pytest.mark.parametrize(
    ("old", "new", "rule", "needle"),
    [
        ("grace: 10d", "grace: 10 days", "bad-duration", "grace: 10 days"),
        ("grace: 10d", "grace: 10wd", "working-days", "grace: 10wd"),
        (
            "    restore_after: 2y\n",
            "    restore_after: 2wd\n",
            "working-days",
            "restore_after: 2wd",
        ),
        ("points: -5", "points: {value: lots, source: x, confidence: U}", "bad-number", "lots"),
        (
            "effective: {from: 2020-01-01}",
            "effective: {from: 2020-01-01, to: 2019-12-31}",
            "effective-range",
            "effective:",
        ),
    ],
)
def test_durations_numbers_dates(
    tmp_path: Path, old: str, new: str, rule: str, needle: str
) -> None:
    text = mutate((old, new))
    issue = one(lint_path(write(tmp_path, text)), rule)
    assert issue.line == line(text, needle)


def test_working_days_are_fine_for_procedure(tmp_path: Path) -> None:
    # the clean fixture has removal.within 3wd and procedure.deadlines 15wd
    assert "3wd" in CLEAN and "15wd" in CLEAN
    assert lint_path(CLEAN_DIR) == []


def test_parameters_report_their_source() -> None:
    params = {p.where: p for p in parameters(load_folder(CLEAN_DIR).rulebook)}
    p = params["procedure.deadlines.objection_response"]
    assert (p.value, p.source, p.confidence, p.own) == (
        "15wd",
        "SPC correction procedure",
        "W",
        True,
    )
    p = params["lists[defaulters].entry[refuses].term.length"]
    assert p.covered_by == "lists[defaulters]" and p.confidence == "P" and not p.own


def test_rule_names_are_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "rulebooks.md").read_text(encoding="utf-8")
    missing = [r for r in LINT_RULES if f"`{r}`" not in doc]
    assert not missing, missing


# ---------------------------------------------------------------- extends: where issues point


BASE = CLEAN.replace("id: test-clean", "id: test-base")
CHILD = """id: test-child
title: A child rulebook
jurisdiction: test-city
version: "1"
effective: {from: 2021-01-01}
extends: base
overrides:
  lists[defaulters].entry[refuses].term.length: 3wd
  schemes[civic].grades.bands: [{grade: A, min: 1030}, {grade: D, min: null}, {grade: E, min: null}]
lists:
  - id: city-list
    title: City list
    type: black
    authority: city
    legal_basis: city rules
    entry:
      - id: fines
        when: {kinds: [admin.penalty], severity: [serious]}
        term: {length: 1y}
"""


def test_issues_in_an_extending_rulebook_point_at_the_right_file(tmp_path: Path) -> None:
    base = write(tmp_path, BASE.replace("grace: 10d", "grace: 10 days"), "base")
    child = write(tmp_path, CHILD, "child")
    issues = lint(load_folder(child))
    base_file, child_file = str(base / "rulebook.yaml"), str(child / "rulebook.yaml")
    bad = one(issues, "bad-duration")  # written in the base
    assert (bad.file, bad.line) == (
        base_file,
        line(base.joinpath("rulebook.yaml").read_text(), "grace:"),
    )
    wd = one(issues, "working-days")  # written by the child's override
    assert (wd.file, wd.line) == (child_file, line(CHILD, "term.length: 3wd"))
    bottom = one(issues, "band-bottom")  # inside an overriding value
    assert (bottom.file, bottom.line) == (child_file, line(CHILD, "schemes[civic].grades.bands"))
    unsourced = one(issues, "unsourced")  # the child's own list
    assert (unsourced.file, unsourced.line) == (child_file, line(CHILD, "term: {length: 1y}"))


DEMERIT = """
  - id: demerit
    title: Demerit points
    subjects: [person]
    base: 0
    min: 0
    restore_after: 2y6m
    source: a demerit register
    confidence: S
    rules:
      - id: offence
        when: {kinds: [traffic.violation]}
        from_attribute: {attribute: points}
    grades:
      order: [clear, admonition, warning, withdrawal]
      bands:
        - {grade: withdrawal, min: 8}
        - {grade: warning, min: 6}
        - {grade: admonition, min: 4}
        - {grade: clear}
memoranda:
"""


def test_a_demerit_scheme_has_its_bottom_band_as_the_best_grade(tmp_path: Path) -> None:
    text = mutate(("memoranda:\n", DEMERIT))
    assert lint_path(write(tmp_path, text)) == []
    bad = mutate(
        ("memoranda:\n", DEMERIT.replace("{grade: warning, min: 6}", "{grade: warning, min: 9}"))
    )
    issue = one(lint_path(write(tmp_path, bad, "bad")), "band-order")
    assert issue.line == line(bad, "{grade: withdrawal, min: 8}")
    assert "demerit" in issue.message
    middle = mutate(
        (
            "memoranda:\n",
            DEMERIT.replace("{grade: admonition, min: 4}", "{grade: admonition}").replace(
                "{grade: clear}", "{grade: clear, min: 0}"
            ),
        )
    )
    issue = one(lint_path(write(tmp_path, middle, "middle")), "band-order")
    assert "neither the worst nor the best" in issue.message


def test_demerit_points_must_expire_too(tmp_path: Path) -> None:
    text = mutate(("memoranda:\n", DEMERIT.replace("restore_after: 2y6m", "restore_after: 0d")))
    issue = one(lint_path(write(tmp_path, text)), "charter-no-expiry")
    assert "adds demerit points (rules offence)" in issue.message
    assert issue.line == line(text, "restore_after: 0d")


def test_the_first_example_in_the_docs_is_clean(tmp_path: Path) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "rulebooks.md").read_text(encoding="utf-8")
    section = doc.split("## A first rulebook", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert lint_path(write(tmp_path, example)) == []


def test_the_shipped_suining_rulebook_would_be_refused_if_it_were_live(tmp_path: Path) -> None:
    text = (locate("cn-js-suining-2010") / "rulebook.yaml").read_text(encoding="utf-8")
    assert "historical: true" in text
    assert lint_path(locate("cn-js-suining-2010")) == []
    live = text.replace("historical: true", "historical: false", 1)
    issues = by_rule(lint_path(write(tmp_path, live)), "charter-protected")
    assert issues and all("Charter art. 2" in i.message for i in issues)
    assert any("'history.births-beyond-quota'" in i.message for i in issues)
