"""The decision log is written one row per request and projected per answer behind it.

Whatever the interleaving of logged requests and projection rounds (of any chunk size), a reader
lists exactly the answers given about a subject, newest first, with every column as answered; the
projection is exact on SQLite and PostgreSQL; ids continue above decisions logged row by row
before the change (migration 0006).
"""

from __future__ import annotations

import datetime as dt
import pickle
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from socialcredit.cases.propagation import affected_decisions
from socialcredit.decision_ids import decode_id, encode_id
from socialcredit.ledger import Ledger
from socialcredit.status.decisions import (
    BUSY_ROWS,
    IDLE_ROWS,
    IDLE_WAIT,
    Columns,
    DecisionLog,
    ProjectionLag,
    Projector,
    Row,
    count_decisions,
    list_decisions,
    project_decisions,
    projection_lag,
)
from socialcredit.status.schema import decision_requests, decisions

SUBJECTS = [f"cn-rid:11010519491231{n:03d}X" for n in range(5)]
AT = dt.datetime(2026, 1, 15, 9, 30)
BASIS = '{"legal_basis":"法释〔2017〕7号","records":[3,4]}'


def _row(subject: str, i: int, basis: str | None = None, request: int | None = None) -> Row:
    """The i-th answer; answers of one ``request`` share its time and purpose, so the log keeps
    them as one request (one row of ``decision_requests``)."""
    deny = basis is not None
    at = i if request is None else request
    return (
        AT + dt.timedelta(microseconds=at),
        "air-1",
        "k1",
        f"purpose {at}",
        subject,
        "travel.flights",
        "deny" if deny else "allow",
        "restricted-by-list" if deny else "no-restriction",
        basis,
        "r@1",
    )


class Truth:
    """What was answered, as the log was handed it."""

    def __init__(self) -> None:
        self.rows: dict[int, Row] = {}

    def log(self, log: DecisionLog, rows: list[Row]) -> None:
        ids = log.write(rows)
        assert len(ids) == len(rows) and len(set(ids)) == len(ids)
        assert not set(ids) & set(self.rows)
        self.rows.update(zip(ids, rows, strict=True))

    def about(self, subject: str | None) -> list[int]:
        return sorted(
            (i for i, r in self.rows.items() if subject is None or r[4] == subject), reverse=True
        )

    def listed(self, subject: str | None) -> list[tuple[Any, ...]]:
        """What list_decisions must give for ``subject`` (None: all), newest first."""
        return [
            (
                encode_id(i),
                self.rows[i][0].isoformat(timespec="microseconds") + "Z",
                *self.rows[i][1:2],
                self.rows[i][3],
                *self.rows[i][4:8],
                orjson.loads(self.rows[i][8]) if self.rows[i][8] else None,
                self.rows[i][9].split(","),
            )
            for i in self.about(subject)
        ]


def _listed_rows(engine: sa.Engine, subject: str) -> list[tuple[Any, ...]]:
    keys = ("decision_id", "at", "party", "purpose", "subject", "measure", "decision", "reason")
    return [
        (*(d[k] for k in keys), d["basis"], d["rulebooks"])
        for d in list_decisions(engine, subject=subject, limit=10_000)
    ]


def _paged(engine: sa.Engine, limit: int, party: str | None = None) -> list[tuple[Any, ...]]:
    """Every decision, newest first, read a page of ``limit`` at a time with the cursor."""
    keys = ("decision_id", "at", "party", "purpose", "subject", "measure", "decision", "reason")
    out: list[tuple[Any, ...]] = []
    before = None
    while True:
        page = list_decisions(engine, party=party, before=before, limit=limit)
        assert len(page) <= limit
        out += [(*(d[k] for k in keys), d["basis"], d["rulebooks"]) for d in page]
        if len(page) < limit:
            return out
        before = decode_id(page[-1]["decision_id"])


def _listed(engine: sa.Engine, subject: str) -> list[int]:
    return [
        decode_id(d["decision_id"]) for d in list_decisions(engine, subject=subject, limit=10_000)
    ]


def _stored(engine: sa.Engine) -> dict[int, tuple[Any, ...]]:
    with engine.connect() as conn:
        return {
            r[0]: tuple(r[1:])
            for r in conn.execute(
                sa.select(
                    decisions.c.decision_id,
                    decisions.c.at,
                    decisions.c.party_id,
                    decisions.c.key_id,
                    decisions.c.purpose,
                    decisions.c.subject,
                    decisions.c.measure,
                    decisions.c.decision,
                    decisions.c.reason,
                    decisions.c.basis,
                    decisions.c.rulebooks,
                )
            )
        }


OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("log"),
            st.lists(
                st.tuples(st.sampled_from(SUBJECTS), st.sampled_from([None, BASIS])),
                min_size=1,
                max_size=12,
            ),
        ),
        st.tuples(st.just("project"), st.integers(1, 7)),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None)
@given(OPS)
def test_any_interleaving_of_answers_and_projection_reads_exactly_what_was_answered(
    ops: list[Any],
) -> None:
    with tempfile.TemporaryDirectory() as tmp, Ledger.open(str(Path(tmp) / "l.db")) as led:
        # not started: commits inline; a request of more than 4 answers takes several rows
        log = DecisionLog(led.engine, row_answers=4)
        truth = Truth()
        lagging = ProjectionLag(led.engine)  # reads what changed since it last asked
        n = 0
        for op, arg in ops:
            if op == "log":
                truth.log(log, [_row(s, n + i, b, request=n) for i, (s, b) in enumerate(arg)])
                n += len(arg)
            else:
                project_decisions(led.engine, max_rows=arg, rounds=1)
            lag = projection_lag(led.engine)
            assert lagging() == lag == n - len(_stored(led.engine))
            for s in SUBJECTS:  # whatever the projection has reached, the same answers
                assert _listed_rows(led.engine, s) == truth.listed(s)
            # every decision, a page at a time (pages cut through requests), and the count
            assert _paged(led.engine, 3) == truth.listed(None)
            assert _paged(led.engine, 100, party="air-1") == truth.listed(None)
            assert _paged(led.engine, 2, party="someone-else") == []
            assert count_decisions(led.engine) == n
            assert projection_lag(led.engine) == lag  # reading projected nothing
        project_decisions(led.engine)
        assert projection_lag(led.engine) == 0 == lagging()
        assert _stored(led.engine) == {i: tuple(r) for i, r in truth.rows.items()}
        for s in SUBJECTS:
            assert _listed_rows(led.engine, s) == truth.listed(s)


def test_the_projection_is_exact_on_both_databases(db_url: str) -> None:
    with Ledger.open(db_url) as led:
        log = DecisionLog(led.engine)
        truth = Truth()
        for k in range(4):  # four requests of 5, 1, 5, 1 answers
            rows = [
                _row(s, 10 * k + i, BASIS if i % 2 else None, request=10 * k)
                for i, s in enumerate(SUBJECTS)
            ]
            truth.log(log, rows if k % 2 == 0 else rows[:1])
        assert projection_lag(led.engine) == 12
        for s in SUBJECTS:  # read from the log alone
            assert _listed_rows(led.engine, s) == truth.listed(s)
        with led.engine.connect() as conn:
            found = affected_decisions(conn, SUBJECTS[1], AT, AT + dt.timedelta(seconds=1))
        assert [d["decision_id"] for d in found] == sorted(truth.about(SUBJECTS[1]))
        assert _paged(led.engine, 4) == truth.listed(None)
        assert count_decisions(led.engine) == 12
        assert project_decisions(led.engine, max_rows=5, rounds=1) == 5
        assert projection_lag(led.engine) == 7
        for s in SUBJECTS:  # from the projection and the log together
            assert _listed_rows(led.engine, s) == truth.listed(s)
        assert _paged(led.engine, 4) == truth.listed(None)
        assert _paged(led.engine, 3, party="air-1") == truth.listed(None)
        assert count_decisions(led.engine) == 12
        assert project_decisions(led.engine, max_rows=5) == 7  # chunks end on a request
        assert project_decisions(led.engine) == 0
        assert _stored(led.engine) == {i: tuple(r) for i, r in truth.rows.items()}
        for s in SUBJECTS:
            assert _listed(led.engine, s) == truth.about(s)
        with led.engine.connect() as conn:
            found = affected_decisions(conn, SUBJECTS[1], AT, AT + dt.timedelta(seconds=1))
        assert [d["decision_id"] for d in found] == sorted(truth.about(SUBJECTS[1]))
        assert {d["basis"] for d in found} == {BASIS}


@pytest.mark.parametrize("rows", [0, 7])
def test_the_migration_keeps_decisions_logged_row_by_row(tmp_path: Path, rows: int) -> None:
    """A ledger at revision 0005 with decisions: after upgrading they are indexed, and new
    answers get larger ids and are listed with them."""
    from alembic import command

    from socialcredit.ledger.db import _alembic_config, make_engine, write_transaction

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with write_transaction(engine) as conn:
        command.upgrade(_alembic_config(conn), "0005")
    legacy = 1 << 62
    with engine.begin() as conn:
        for i in range(rows):
            conn.execute(
                sa.text(
                    "INSERT INTO decisions (decision_id, at, party_id, key_id, purpose, subject, "
                    "measure, decision, reason, basis, rulebooks) VALUES "
                    "(:i, :at, 'air-1', 'k', 'p', :s, 'travel.flights', 'allow', 'x', NULL, 'r')"
                ),
                {"i": legacy + i, "at": AT, "s": SUBJECTS[i % 2]},
            )
    with write_transaction(engine) as conn:
        command.upgrade(_alembic_config(conn), "head")
    assert projection_lag(engine) == 0
    before = {s: _listed(engine, s) for s in SUBJECTS}
    assert len(before[SUBJECTS[0]]) == (rows + 1) // 2
    new = DecisionLog(engine).write([_row(SUBJECTS[0], 1)])
    assert new[0] > (legacy + rows - 1 if rows else 0)
    assert _listed(engine, SUBJECTS[0]) == [new[0], *before[SUBJECTS[0]]]
    engine.dispose()


def test_a_batch_takes_a_log_row_per_hundred_answers_and_a_busy_round_projects_one(
    db_url: str,
) -> None:
    """250 answers of one request: three rows of the log (100, 100, 50 answers) with the ids its
    caller was given, so a projection transaction while answers flow carries 100 answers, not the
    whole batch; readers see every answer wherever the projection stands."""
    with Ledger.open(db_url) as led:
        log = DecisionLog(led.engine)
        truth = Truth()
        rows = [
            _row(SUBJECTS[i % 5], i, BASIS if i % 7 == 0 else None, request=0) for i in range(250)
        ]
        truth.log(log, rows)
        first = min(truth.rows)
        with led.engine.connect() as conn:
            logged = conn.execute(
                sa.select(decision_requests.c.first_id, decision_requests.c.n).order_by(
                    decision_requests.c.first_id
                )
            ).all()
        assert [tuple(r) for r in logged] == [(first, 100), (first + 100, 100), (first + 200, 50)]
        assert sorted(truth.rows) == list(range(first, first + 250))
        assert project_decisions(led.engine, max_rows=BUSY_ROWS, rounds=1) == 100
        assert projection_lag(led.engine) == 150
        for s in SUBJECTS:
            assert _listed_rows(led.engine, s) == truth.listed(s)
        assert _paged(led.engine, 30) == truth.listed(None)
        assert count_decisions(led.engine) == 250
        assert project_decisions(led.engine) == 150
        assert _stored(led.engine) == {i: tuple(r) for i, r in truth.rows.items()}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=6), min_size=1, max_size=30
    ),
    st.integers(1, 7),
    st.data(),
)
def test_a_columnar_check_hands_the_log_the_rows_it_answered(
    subjects: list[str], size: int, data: st.DataObject
) -> None:
    """Whatever the subjects (quotes, control characters, a newline of their own included), the
    columns a columnar check hands over, through the pickle to the writer process, expand to its
    answers in order, and their JSON rows of ``size`` answers hold exactly those answers."""
    positions = data.draw(st.sets(st.integers(0, len(subjects) - 1)))
    hits = [(i, "deny", "restricted-by-list", BASIS) for i in sorted(positions)]
    handed = pickle.loads(pickle.dumps(Columns.of(subjects, "m", "allow", "none", hits)))
    expected = [
        [
            s,
            "m",
            *(("deny", "restricted-by-list", BASIS) if i in positions else ("allow", "none", None)),
        ]
        for i, s in enumerate(subjects)
    ]
    assert len(handed) == len(subjects)
    assert handed.rows() == expected
    chunks = list(handed.json_rows(size))
    assert [(k, n) for k, n, _ in chunks] == [
        (k, min(size, len(subjects) - k)) for k in range(0, len(subjects), size)
    ]
    assert [row for _, _, text in chunks for row in orjson.loads(text)] == expected


def test_the_projector_keeps_out_of_the_way_while_answers_or_writes_come_in(
    tmp_path: Path,
) -> None:
    """A step projects 2,000 answers when its activity count did not move since the step before;
    while it moves, nothing, unless more than ``busy_backlog`` answers are behind, and then one
    log row (100 answers)."""
    with Ledger.open(str(tmp_path / "p.db")) as led:
        DecisionLog(led.engine).write([_row(SUBJECTS[i % 5], i, request=0) for i in range(3000)])
        activity = [0]
        projector = Projector(led.engine, lambda: activity[0], busy_backlog=2_500)
        activity[0] += 1  # answers or writes came in: 3,000 behind, above the bound
        projector.step()
        assert projection_lag(led.engine) == 3000 - BUSY_ROWS
        activity[0] += 1  # still coming in: 2,900 behind
        projector.step()
        assert projection_lag(led.engine) == 3000 - 2 * BUSY_ROWS
        projector.step()  # quiet since the step before
        assert projection_lag(led.engine) == 3000 - 2 * BUSY_ROWS - IDLE_ROWS
        activity[0] += 1  # 800 behind, below the bound: it waits
        assert projector.step() == IDLE_WAIT
        assert projection_lag(led.engine) == 800
        projector.step()
        assert projection_lag(led.engine) == 0
        assert projector.step() == IDLE_WAIT  # nothing left
        # it reads the backlog at every step, quiet or not, so that no read has to cover a long
        # catch-up: that read held a writer process's commits for ~200 ms at 1,000,000 subjects
        assert projector.lag._seen is not None and projector.lag._seen[2] == 0


def test_a_projector_step_that_fails_is_logged_and_followed_by_a_pause(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """In the writer process an exception out of a step would end the process: a step that
    fails (here, reading what came in) logs it and asks for the usual pause."""
    with Ledger.open(str(tmp_path / "f.db")) as led:
        projector = Projector(led.engine, lambda: 0)

        def unreadable() -> int:
            raise sa.exc.OperationalError("SELECT max(seq)", None, Exception("disk I/O error"))

        projector.activity = unreadable
        assert projector.step() == IDLE_WAIT
        assert "decision projection" in caplog.text and "disk I/O error" in caplog.text
