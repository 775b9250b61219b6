"""The decision log's subject index is built in bulk behind the log; readers never miss a decision.

Whatever the interleaving of logged answers and indexing rounds (of any chunk size), listing a
subject's decisions gives exactly the decisions whose row names that subject, newest first, and
correction propagation finds the same ones.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from socialcredit.cases.propagation import affected_decisions
from socialcredit.ledger import Ledger
from socialcredit.status.decisions import (
    DecisionLog,
    Row,
    decode_id,
    index_decisions,
    index_lag,
    list_decisions,
)
from socialcredit.status.schema import decision_index_mark, decision_subjects, decisions

SUBJECTS = [f"cn-rid:11010519491231{n:03d}X" for n in range(5)]
AT = dt.datetime(2026, 1, 15, 9, 30)


def _row(subject: str, i: int) -> Row:
    return (
        AT,
        "air-1",
        "k1",
        f"p{i}",
        subject,
        "travel.flights",
        "allow",
        "no-restriction",
        None,
        "r@1",
    )


def _truth(engine: sa.Engine, subject: str) -> list[int]:
    with engine.connect() as conn:
        return [
            r[0]
            for r in conn.execute(
                sa.select(decisions.c.decision_id)
                .where(decisions.c.subject == subject)
                .order_by(decisions.c.decision_id.desc())
            )
        ]


def _listed(engine: sa.Engine, subject: str) -> list[int]:
    return [
        decode_id(d["decision_id"]) for d in list_decisions(engine, subject=subject, limit=10_000)
    ]


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("log"), st.lists(st.sampled_from(SUBJECTS), min_size=1, max_size=12)),
        st.tuples(st.just("index"), st.integers(1, 7)),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None)
@given(OPS)
def test_any_interleaving_of_answers_and_indexing_lists_exactly_the_truth(ops: list) -> None:
    with tempfile.TemporaryDirectory() as tmp, Ledger.open(str(Path(tmp) / "l.db")) as led:
        log = DecisionLog(led.engine)  # not started: commits inline
        n = 0
        for op, arg in ops:
            if op == "log":
                log.write([_row(s, n + i) for i, s in enumerate(arg)])
                n += len(arg)
            else:
                index_decisions(led.engine, max_rows=arg, rounds=1)
            for s in SUBJECTS:
                assert _listed(led.engine, s) == _truth(led.engine, s)
        index_decisions(led.engine, max_rows=3)
        assert index_lag(led.engine) == 0
        with led.engine.connect() as conn:
            indexed = conn.execute(sa.select(sa.func.count()).select_from(decision_subjects))
            assert indexed.scalar() == n
        for s in SUBJECTS:
            assert _listed(led.engine, s) == _truth(led.engine, s)


def test_index_on_both_databases_and_propagation_sees_the_tail(db_url: str) -> None:
    with Ledger.open(db_url) as led:
        log = DecisionLog(led.engine)
        log.write([_row(s, i) for i, s in enumerate(SUBJECTS * 3)])
        assert index_lag(led.engine) == 15
        assert index_decisions(led.engine, max_rows=4) == 15  # four chunks of <= 4
        assert index_lag(led.engine) == 0
        log.write([_row(SUBJECTS[0], 99)])  # above the mark: only in the tail
        assert index_lag(led.engine) == 1
        for s in SUBJECTS:
            assert _listed(led.engine, s) == _truth(led.engine, s)
        with led.engine.connect() as conn:
            found = affected_decisions(conn, SUBJECTS[0], AT, AT + dt.timedelta(seconds=1))
            mark = conn.execute(sa.select(decision_index_mark.c.upto)).scalar()
        assert [d["decision_id"] for d in found] == sorted(_truth(led.engine, SUBJECTS[0]))
        assert max(d["decision_id"] for d in found) > mark  # the tail counted
        assert index_decisions(led.engine) == 1
        assert index_decisions(led.engine) == 0


@pytest.mark.parametrize("rows", [0, 7])
def test_the_migration_indexes_what_is_already_logged(tmp_path: Path, rows: int) -> None:
    """A ledger at revision 0005 with decisions: after upgrading, every decision is indexed."""
    from alembic import command

    from socialcredit.ledger.db import _alembic_config, make_engine, write_transaction

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with write_transaction(engine) as conn:
        command.upgrade(_alembic_config(conn), "0005")
    with engine.begin() as conn:
        for i in range(rows):
            conn.execute(
                sa.text(
                    "INSERT INTO decisions (decision_id, at, party_id, key_id, purpose, subject, "
                    "measure, decision, reason, basis, rulebooks) VALUES "
                    "(:i, :at, 'air-1', 'k', 'p', :s, 'travel.flights', 'allow', 'x', NULL, 'r')"
                ),
                {"i": i + 1, "at": AT, "s": SUBJECTS[i % 2]},
            )
    with write_transaction(engine) as conn:
        command.upgrade(_alembic_config(conn), "head")
    assert index_lag(engine) == 0
    for s in SUBJECTS:
        assert _listed(engine, s) == _truth(engine, s)
    assert len(_truth(engine, SUBJECTS[0])) == (rows + 1) // 2
    engine.dispose()
