"""Rulebook tests, OpenFisca-style: ``rulebooks/<name>/tests/*.yaml``.

A test file is a YAML list of cases::

    - name: a defaulter who refuses to perform is listed and spending-restricted
      as_of: 2025-01-01
      subject: cn-rid:11010519491231002X     # optional (this is the default)
      subject_kind: person                   # optional: default from the identifier scheme
      records:
        - {kind: court.judgment-defaulter, decision_date: 2024-06-01, severity: serious,
           amount: 1200.50, attributes: {ground: able-but-refuses, case_no: A}}
          # optional per record: id (default 1, 2, ...), in_force (default true),
          # decision_no and authority (shown by explanations, not read by rules)
      expect:
        lists: {spc-defaulters: true, samr-serious: false}   # listed or not
        since: {spc-defaulters: 2024-06-01}
        until: {spc-defaulters: null}            # null = no fixed end
        pending: {spc-defaulters: 2024-06-11}    # listing decided, effective that day (grace)
        points: {tax-credit: 100}                # null = not scored (no consent)
        grades: {tax-credit: A}
        measures: [travel.flights]               # each must be active
        no_measures: [procurement.exclusion]     # each must be absent
        next_change: 2026-06-01

Records are checked against the catalogue (the kind exists, severity and amount fit it, attributes
coerce) so that a typo in a test fails loudly with file:line instead of silently matching nothing.
Lists, schemes and measures named in ``expect`` must exist too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from socialcredit import ids
from socialcredit.catalog import Catalogue, load_catalogue
from socialcredit.engine.records import Rec
from socialcredit.engine.reference import Status, evaluate
from socialcredit.rulebooks.loader import (
    Path_,
    RulebookError,
    line_of,
    load_folder,
    locate,
    read_yaml,
)
from socialcredit.rulebooks.model import Rulebook
from socialcredit.subjects import SUBJECT_KINDS

__all__ = ["DEFAULT_SUBJECT", "TestResult", "find_test_files", "run_tests"]

DEFAULT_SUBJECT = "cn-rid:11010519491231002X"

CASE_KEYS = ("name", "description", "as_of", "subject", "subject_kind", "records", "expect")
RECORD_KEYS = (
    "id",
    "kind",
    "decision_date",
    "severity",
    "amount",
    "attributes",
    "in_force",
    "decision_no",
    "authority",
)
EXPECT_KEYS = (
    "lists",
    "since",
    "until",
    "pending",
    "points",
    "grades",
    "measures",
    "no_measures",
    "next_change",
)


@dataclass(frozen=True)
class TestResult:
    """The outcome of one test case (or of a run that could not start)."""

    __test__ = False  # not a pytest class

    name: str
    file: str
    line: int | None
    passed: bool
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "line": self.line,
            "passed": self.passed,
            "failures": list(self.failures),
        }


def find_test_files(path: str | Path) -> tuple[Path, list[Path]]:
    """The rulebook folder and the test files to run for ``path``.

    ``path`` is a rulebook folder (or its rulebook.yaml, or a shipped rulebook's name), a
    ``tests/`` folder, or a single test file inside a rulebook's ``tests/`` folder.
    """
    p = Path(path)
    if p.is_file() and p.suffix in (".yaml", ".yml") and p.name != "rulebook.yaml":
        return p.parent.parent, [p]
    if p.is_dir() and p.name == "tests" and (p.parent / "rulebook.yaml").is_file():
        p = p.parent
    folder = locate(path if not p.is_dir() else p)
    tests = folder / "tests"
    files = sorted([*tests.glob("*.yaml"), *tests.glob("*.yml")]) if tests.is_dir() else []
    return folder, files


def run_tests(path: str | Path, catalogue: Catalogue | None = None) -> list[TestResult]:
    """Run a rulebook's YAML tests. A rulebook with no tests, or one that does not load, fails."""
    try:
        folder, files = find_test_files(path)
        rulebook = load_folder(folder).rulebook
    except RulebookError as e:
        first = e.issues[0] if e.issues else None
        return [
            TestResult(
                "(rulebook does not load)",
                first.file if first else str(path),
                first.line if first else None,
                False,
                [str(i) for i in e.issues],
            )
        ]
    if not files:
        return [
            TestResult(
                "no tests",
                str(folder / "tests"),
                None,
                False,
                [
                    f"no tests: rulebook {rulebook.ref} has no tests/*.yaml — every rulebook needs tests"
                ],
            )
        ]
    cat = catalogue or load_catalogue()
    out: list[TestResult] = []
    for file in files:
        out.extend(run_file(file, rulebook, cat))
    return out


def run_file(file: Path, rulebook: Rulebook, catalogue: Catalogue) -> list[TestResult]:
    try:
        data, lines = read_yaml(file)
    except RulebookError as e:
        return [
            TestResult(
                "(test file does not parse)",
                str(file),
                e.issues[0].line,
                False,
                [str(i) for i in e.issues],
            )
        ]
    if not isinstance(data, list) or not data:
        return [
            TestResult(
                "(test file)",
                str(file),
                1,
                False,
                [f"{file}:1: a test file is a non-empty list of cases (- name: ..., as_of: ...)"],
            )
        ]
    return [_Case(file, lines, n, case, rulebook, catalogue).run() for n, case in enumerate(data)]


# ---------------------------------------------------------------- one case


def _fmt(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}" if v == v else "nan"
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v)


class _Bad(Exception):
    pass


class _Case:
    def __init__(
        self,
        file: Path,
        lines: dict[Path_, int],
        n: int,
        case: Any,
        rulebook: Rulebook,
        catalogue: Catalogue,
    ):
        self.file, self.lines, self.n, self.case = file, lines, n, case
        self.rb, self.cat = rulebook, catalogue
        self.failures: list[str] = []

    def at(self, *path: str | int) -> str:
        line = line_of(self.lines, (self.n, *path))
        return f"{self.file}:{line}" if line else str(self.file)

    def fail(self, path: tuple[str | int, ...], message: str) -> None:
        self.failures.append(f"{self.at(*path)}: {message}")

    def run(self) -> TestResult:
        case = self.case
        line = line_of(self.lines, (self.n,))
        if not isinstance(case, dict):
            return TestResult(
                f"case {self.n + 1}",
                str(self.file),
                line,
                False,
                [f"{self.at()}: a test case is a mapping with name, as_of, records and expect"],
            )
        name = str(case.get("name") or f"case {self.n + 1}")
        try:
            status = self.evaluate(case)
        except _Bad:
            status = None
        if status is not None:
            self.check(case.get("expect"), status)
        return TestResult(name, str(self.file), line, not self.failures, self.failures)

    # -- input ----------------------------------------------------------------------------------

    def date(self, path: tuple[str | int, ...], v: Any, what: str) -> dt.date | None:
        if isinstance(v, dt.datetime):
            return v.date()
        if isinstance(v, dt.date):
            return v
        if isinstance(v, str):
            try:
                return dt.date.fromisoformat(v.strip())
            except ValueError:
                pass
        self.fail(path, f"{what} must be a date written YYYY-MM-DD, not {v!r}")
        return None

    def unknown_keys(
        self, path: tuple[str | int, ...], d: Mapping[str, Any], allowed: Sequence[str], what: str
    ) -> None:
        for k in d:
            if k not in allowed:
                self.fail(
                    (*path, k), f"unknown key '{k}' in {what} (allowed: {', '.join(allowed)})"
                )

    def evaluate(self, case: dict[str, Any]) -> Status | None:
        self.unknown_keys((), case, CASE_KEYS, "a test case")
        if "name" not in case:
            self.fail((), "a test case needs a name")
        as_of = None
        if "as_of" not in case:
            self.fail((), "a test case needs as_of (the day the status is evaluated)")
        else:
            as_of = self.date(("as_of",), case["as_of"], "as_of")
        subject = str(case.get("subject") or DEFAULT_SUBJECT)
        kind: str | None = None
        try:
            ident = ids.parse_key(subject)
            subject, kind = ident.key, ident.subject_kind
        except ids.IdError as e:
            self.fail(("subject",), f"subject {subject!r}: {e.message}")
        if case.get("subject_kind") is not None:
            kind = str(case["subject_kind"])
            if kind not in SUBJECT_KINDS:
                self.fail(
                    ("subject_kind",),
                    f"unknown subject kind {kind!r} (one of {', '.join(SUBJECT_KINDS)})",
                )
        records = case.get("records") or []
        if not isinstance(records, list):
            self.fail(("records",), "records is a list of records")
            records = []
        recs: list[Rec] = []
        seen_ids: set[int] = set()
        for i, row in enumerate(records):
            rec = self.record(i, row, subject, kind)
            if rec is not None:
                if rec.record_id in seen_ids:
                    self.fail(("records", i, "id"), f"record id {rec.record_id} is used twice")
                seen_ids.add(rec.record_id)
                recs.append(rec)
        expect = case.get("expect")
        if expect is None:
            self.fail((), "a test case needs expect (what the status must be)")
        elif not isinstance(expect, dict):
            self.fail(("expect",), "expect is a mapping (lists, points, grades, measures, ...)")
        if self.failures or as_of is None:
            raise _Bad
        try:
            return evaluate(self.rb, recs, as_of, subject=subject, subject_kind=kind)
        except Exception as e:  # the evaluator refusing the rulebook is a test failure
            self.fail((), f"evaluation failed: {type(e).__name__}: {e}")
            raise _Bad from e

    def record(self, i: int, row: Any, subject: str, subject_kind: str | None) -> Rec | None:
        p: tuple[str | int, ...] = ("records", i)
        if not isinstance(row, dict):
            self.fail(p, "a record is a mapping (kind, decision_date, ...)")
            return None
        before = len(self.failures)
        self.unknown_keys(p, row, RECORD_KEYS, "a record")
        kind_id = row.get("kind")
        kind = self.cat.record_kinds.get(str(kind_id)) if kind_id is not None else None
        if kind_id is None:
            self.fail(p, f"records[{i}] needs a kind")
        elif kind is None:
            try:
                self.cat.kind(str(kind_id))
            except KeyError as e:
                self.fail((*p, "kind"), f"records[{i}].kind: {e.args[0]}")
        if "decision_date" not in row:
            self.fail(p, f"records[{i}] needs a decision_date")
            decided = None
        else:
            decided = self.date(
                (*p, "decision_date"), row["decision_date"], f"records[{i}].decision_date"
            )
        severity = row.get("severity")
        amount = row.get("amount")
        attrs: dict[str, Any] = {}
        if kind is not None:
            prob = kind.check_severity(None if severity is None else str(severity))
            if prob is not None:
                self.fail((*p, "severity"), f"records[{i}].severity: {prob.message}")
            prob = kind.check_amount(amount)
            if prob is not None:
                self.fail((*p, "amount"), f"records[{i}].amount: {prob.message}")
            raw_attrs = row.get("attributes") or {}
            if not isinstance(raw_attrs, dict):
                self.fail((*p, "attributes"), f"records[{i}].attributes is a mapping")
            else:
                attrs, problems = kind.coerce_attributes(raw_attrs)
                for pr in problems:
                    name = pr.field.removeprefix("attributes.")
                    where = (*p, "attributes", name) if name in raw_attrs else (*p, "attributes")
                    self.fail(where, f"records[{i}].{pr.field}: {pr.message}")
        minor = None
        if amount is not None:
            try:
                minor = int((Decimal(str(amount)) * 100).to_integral_value())
            except InvalidOperation:
                self.fail((*p, "amount"), f"records[{i}].amount must be a number, not {amount!r}")
        rid = row.get("id", i + 1)
        if isinstance(rid, bool) or not isinstance(rid, int):
            self.fail((*p, "id"), f"records[{i}].id must be a whole number")
            rid = i + 1
        in_force = row.get("in_force", True)
        if not isinstance(in_force, bool):
            self.fail((*p, "in_force"), f"records[{i}].in_force must be true or false")
        if len(self.failures) > before or decided is None or kind is None:
            return None
        return Rec(
            record_id=rid,
            subject=subject,
            subject_kind=subject_kind,
            kind=kind.id,
            decision_date=decided,
            severity=None if severity is None else str(severity),
            amount_minor=minor,
            attributes=attrs,
            in_force=bool(in_force),
        )

    # -- expectations ---------------------------------------------------------------------------

    def mapping(self, expect: dict[str, Any], key: str) -> dict[str, Any]:
        v = expect.get(key)
        if v is None:
            return {}
        if not isinstance(v, dict):
            self.fail(("expect", key), f"expect.{key} is a mapping of ids to values")
            return {}
        return v

    def known_list(self, key: str, list_id: str) -> bool:
        if any(x.id == list_id for x in self.rb.lists):
            return True
        self.fail(
            ("expect", key, list_id),
            f"expect.{key}: rulebook {self.rb.ref} has no list '{list_id}' "
            f"(lists: {', '.join(x.id for x in self.rb.lists) or 'none'})",
        )
        return False

    def known_scheme(self, key: str, scheme_id: str) -> bool:
        if any(x.id == scheme_id for x in self.rb.schemes):
            return True
        self.fail(
            ("expect", key, scheme_id),
            f"expect.{key}: rulebook {self.rb.ref} has no scheme '{scheme_id}' "
            f"(schemes: {', '.join(x.id for x in self.rb.schemes) or 'none'})",
        )
        return False

    def expected_date(self, key: str, ident: str, v: Any) -> tuple[bool, dt.date | None]:
        if v is None:
            return True, None
        d = self.date(
            ("expect", key, ident), v, f"expect.{key}.{ident}" if ident else f"expect.{key}"
        )
        return d is not None, d

    def check(self, expect: Any, st: Status) -> None:
        if not isinstance(expect, dict):
            return
        self.unknown_keys(("expect",), expect, EXPECT_KEYS, "expect")

        def differ(key: str, ident: str | None, exp: Any, got: Any) -> None:
            label = f"{key}.{ident}" if ident is not None else key
            path = ("expect", key, ident) if ident is not None else ("expect", key)
            self.fail(path, f"{label}: expected {_fmt(exp)}, got {_fmt(got)}")

        for list_id, want in self.mapping(expect, "lists").items():
            if not self.known_list("lists", list_id):
                continue
            if not isinstance(want, bool):
                self.fail(("expect", "lists", list_id), f"expect.lists.{list_id} is true or false")
                continue
            got = st.membership(list_id) is not None
            if got != want:
                self.fail(
                    ("expect", "lists", list_id),
                    f"lists.{list_id}: expected {'listed' if want else 'not listed'}, got "
                    f"{'listed' if got else 'not listed'}",
                )
        for key in ("since", "until"):
            for list_id, want in self.mapping(expect, key).items():
                if not self.known_list(key, list_id):
                    continue
                ok, d = self.expected_date(key, list_id, want)
                if not ok:
                    continue
                m = st.membership(list_id)
                if m is None:
                    differ(key, list_id, d, "not listed")
                elif getattr(m, key) != d:
                    differ(key, list_id, d, getattr(m, key))
        for list_id, want in self.mapping(expect, "pending").items():
            if not self.known_list("pending", list_id):
                continue
            ok, d = self.expected_date("pending", list_id, want)
            if not ok:
                continue
            got_dates = sorted({p.effective for p in st.pending if p.list_id == list_id})
            shown = ", ".join(x.isoformat() for x in got_dates) or "nothing pending"
            if (d is None and got_dates) or (d is not None and d not in got_dates):
                differ("pending", list_id, d if d is not None else "nothing pending", shown)
        for scheme_id, want in self.mapping(expect, "points").items():
            if not self.known_scheme("points", scheme_id):
                continue
            res = st.scheme(scheme_id)
            got_points = res.points if res is not None else None
            if want is not None and (isinstance(want, bool) or not isinstance(want, int | float)):
                self.fail(
                    ("expect", "points", scheme_id),
                    f"expect.points.{scheme_id} is a number or null",
                )
                continue
            if (want is None) != (got_points is None) or (
                want is not None and got_points is not None and abs(float(want) - got_points) > 1e-9
            ):
                differ(
                    "points", scheme_id, want, "not scored" if got_points is None else got_points
                )
        for scheme_id, want in self.mapping(expect, "grades").items():
            if not self.known_scheme("grades", scheme_id):
                continue
            res = st.scheme(scheme_id)
            got_grade = res.grade if res is not None else None
            if (None if want is None else str(want)) != got_grade:
                differ("grades", scheme_id, want, got_grade)
        active = st.measure_ids()
        for key, want_active in (("measures", True), ("no_measures", False)):
            wanted = expect.get(key)
            if wanted is None:
                continue
            if not isinstance(wanted, list):
                self.fail(("expect", key), f"expect.{key} is a list of measure ids")
                continue
            for n, mid in enumerate(wanted):
                if str(mid) not in self.cat.measures:
                    try:
                        self.cat.measure(str(mid))
                    except KeyError as e:
                        self.fail(("expect", key, n), f"expect.{key}: {e.args[0]}")
                    continue
                if (str(mid) in active) != want_active:
                    self.fail(
                        ("expect", key, n),
                        f"{key}: expected {mid} to be {'active' if want_active else 'absent'}, got "
                        f"{'active' if str(mid) in active else 'not active'} "
                        f"(active: {', '.join(sorted(active)) or 'none'})",
                    )
        if "next_change" in expect:
            ok, d = self.expected_date("next_change", "", expect["next_change"])
            if ok and st.next_change != d:
                differ("next_change", None, d, st.next_change)
