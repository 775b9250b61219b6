"""The YAML test runner: passing and failing cases, typos caught with file:line."""

from __future__ import annotations

import shutil
from pathlib import Path

from socialcredit.rulebooks.testing import run_tests
from tests.rulebooks.helpers import CLEAN, CLEAN_DIR, line, write

DEFAULTER = (
    "    - {kind: court.judgment-defaulter, decision_date: 2024-06-01, severity: serious, "
    "attributes: {ground: able-but-refuses, case_no: A}}\n"
)


def with_tests(tmp_path: Path, text: str) -> Path:
    folder = write(tmp_path, CLEAN)
    (folder / "tests").mkdir()
    (folder / "tests" / "cases.yaml").write_text(text, encoding="utf-8")
    return folder


def test_the_clean_fixture_passes() -> None:
    results = run_tests(CLEAN_DIR)
    assert len(results) == 6
    assert all(r.passed for r in results), [r.failures for r in results]
    first = next(r for r in results if r.name.startswith("a defaulter"))
    assert first.file.endswith("defaulters.yaml") and first.line == 1


def test_a_failing_case_says_expected_and_got(tmp_path: Path) -> None:
    text = (
        "- name: passes\n  as_of: 2025-01-01\n  records:\n" + DEFAULTER + "  expect:\n"
        "    lists: {defaulters: true}\n"
        "- name: fails\n  as_of: 2025-01-01\n  records:\n" + DEFAULTER + "  expect:\n"
        "    lists: {defaulters: false}\n"
        "    since: {defaulters: 2024-06-01}\n"
        "    until: {defaulters: null}\n"
        "    points: {civic: 999}\n"
        "    grades: {civic: A}\n"
        "    measures: [public-services.deposit-free]\n"
        "    no_measures: [travel.flights]\n"
        "    next_change: 2026-01-01\n"
    )
    folder = with_tests(tmp_path, text)
    ok, bad = run_tests(folder)
    assert ok.passed and ok.name == "passes" and ok.failures == []
    assert not bad.passed and bad.name == "fails" and bad.line == line(text, "- name: fails")
    file = str(folder / "tests" / "cases.yaml")
    got = [f.removeprefix(file + ":").split(": ", 1) for f in bad.failures]
    messages = dict((m, int(n)) for n, m in got)
    assert messages == {
        "lists.defaulters: expected not listed, got listed": line(
            text, "lists: {defaulters: false}"
        ),
        "since.defaulters: expected 2024-06-01, got 2024-06-11": line(text, "since:"),
        "until.defaulters: expected null, got 2026-06-11": line(text, "until:"),
        "points.civic: expected 999, got 1000": line(text, "points:"),
        "grades.civic: expected A, got C": line(text, "grades:"),
        "measures: expected public-services.deposit-free to be active, got not active "
        "(active: consumption.star-hotels, travel.flights)": line(text, "public-services"),
        "no_measures: expected travel.flights to be absent, got active "
        "(active: consumption.star-hotels, travel.flights)": line(text, "no_measures"),
        "next_change: expected 2026-01-01, got 2025-06-01": line(text, "next_change"),
    }


def test_a_typo_in_a_record_kind_fails_with_file_and_line(tmp_path: Path) -> None:
    text = (
        "- name: typo\n  as_of: 2025-01-01\n  records:\n"
        + DEFAULTER
        + "    - {kind: court.obligation-preformed, decision_date: 2024-09-01}\n"
        "  expect:\n    lists: {defaulters: false}\n"
    )
    folder = with_tests(tmp_path, text)
    [result] = run_tests(folder)
    assert not result.passed
    [failure] = result.failures
    file = folder / "tests" / "cases.yaml"
    assert failure.startswith(f"{file}:{line(text, 'preformed')}: records[1].kind: ")
    assert "unknown record kind 'court.obligation-preformed'" in failure
    assert "did you mean court.obligation-performed" in failure


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    text = (
        "- name: several mistakes\n  as_of: 2025-01-01\n  subject: cn-rid:110105194912310021\n"
        "  records:\n"
        "    - {kind: court.judgment-defaulter, decision_date: 2024-06-01, severity: minor, "
        "attributes: {ground: able-but-refused, case_no: A}}\n"
        "  expect:\n    lists: {defaulter: true}\n    pints: {civic: 1}\n"
    )
    [result] = run_tests(with_tests(tmp_path, text))
    joined = "\n".join(result.failures)
    assert "subject" in joined and "check" in joined.lower()
    assert "records[0].severity" in joined
    assert "records[0].attributes.ground" in joined and "must be one of" in joined


def test_unknown_expectations_are_failures(tmp_path: Path) -> None:
    text = (
        "- name: unknown names\n  as_of: 2025-01-01\n  records: []\n"
        "  expect:\n    lists: {defaulter: true}\n    pints: {civic: 1}\n"
        "    measures: [travel.flight]\n"
    )
    [result] = run_tests(with_tests(tmp_path, text))
    joined = "\n".join(result.failures)
    assert "has no list 'defaulter'" in joined
    assert "unknown key 'pints'" in joined
    assert "unknown measure 'travel.flight'" in joined


def test_a_rulebook_without_tests_fails(tmp_path: Path) -> None:
    [result] = run_tests(write(tmp_path, CLEAN))
    assert not result.passed and result.name == "no tests"
    assert "no tests" in result.failures[0]


def test_a_single_test_file_can_be_run(tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(CLEAN_DIR, folder)
    results = run_tests(folder / "tests" / "civic.yaml")
    assert len(results) == 3 and all(r.passed for r in results)
