"""`audit verify` finds edits made behind the program's back, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from socialcredit.ledger import Ledger

from .helpers import PERSON, setup_authorities, utility_row


def _fill(ledger: Ledger, n: int = 6) -> list[int]:
    setup_authorities(ledger)
    return [ledger.furnish("water-1", utility_row(f"W{i}")).seq for i in range(n)]


def _tamper(ledger: Ledger, sql: str) -> None:
    # a raw connection, as someone with the database file or a psql prompt would use
    with ledger.engine.connect() as conn:
        conn.exec_driver_sql(sql)
        conn.commit()


def test_untouched_chain_verifies(ledger: Ledger) -> None:
    seqs = _fill(ledger)
    report = ledger.verify()
    assert report.ok and report.entries == seqs[-1] and report.head_seq == seqs[-1]
    assert report.head_hash == ledger.head()[1]


def test_edited_column_is_named(ledger: Ledger) -> None:
    seqs = _fill(ledger)
    target = seqs[2]
    _tamper(ledger, f"UPDATE entries SET amount_minor = 1 WHERE seq = {target}")
    report = ledger.verify()
    assert not report.ok
    assert report.first_bad_seq == target
    assert "content" in (report.reason or "")
    assert report.entries == target - 1  # intact up to the entry before


def test_rehashed_content_still_breaks_the_chain(ledger: Ledger) -> None:
    seqs = _fill(ledger)
    target = seqs[1]
    from socialcredit.ledger import chain
    from socialcredit.ledger.schema import entries

    with ledger.engine.connect() as conn:
        row = dict(conn.execute(sa.select(entries).where(entries.c.seq == target)).mappings().one())
    row["amount_minor"] = 5
    forged = chain.content_hash(row)
    _tamper(
        ledger,
        f"UPDATE entries SET amount_minor = 5, content_hash = '{forged}' WHERE seq = {target}",
    )
    report = ledger.verify()
    assert not report.ok and report.first_bad_seq == target and "hash" in (report.reason or "")


def test_deleted_entry_is_named(ledger: Ledger) -> None:
    seqs = _fill(ledger)
    _tamper(ledger, f"DELETE FROM entries WHERE seq = {seqs[3]}")
    report = ledger.verify()
    assert not report.ok and report.first_bad_seq == seqs[3] and "missing" in (report.reason or "")


def test_edited_time_is_detected(ledger: Ledger) -> None:
    seqs = _fill(ledger)
    _tamper(ledger, f"UPDATE entries SET recorded_at = '2020-01-01 00:00:00' WHERE seq = {seqs[0]}")
    report = ledger.verify()
    assert not report.ok and report.first_bad_seq == seqs[0]


def test_edited_accreditation_is_detected(ledger: Ledger) -> None:
    _fill(ledger, 1)
    _tamper(
        ledger,
        """UPDATE authorities SET kinds = '["utility.late-payment", "court.judgment-defaulter"]'
                       WHERE authority_id = 'water-1'""",
    )
    report = ledger.verify()
    assert not report.ok and "water-1" in (report.reason or "")


def test_subject_file_unaffected_by_verify(ledger: Ledger) -> None:
    _fill(ledger, 2)
    assert len(ledger.subject_records(PERSON)) == 2
