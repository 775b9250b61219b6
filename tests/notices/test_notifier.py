"""The notifier: specific notices from the ledger and the status history, written exactly once
(across restarts, concurrent notifiers and a transaction that fails half-way)."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from socialcredit.cases.delivery import set_contact
from socialcredit.cases.notices import LEDGER_STREAM, STATUS_STREAM, Notifier, list_notices
from socialcredit.cases.notices_schema import notice_deliveries, notices
from socialcredit.clock import FixedClock
from socialcredit.ledger import Ledger
from socialcredit.ledger.db import is_sqlite
from socialcredit.status.service import StatusService
from tests.status.helpers import (
    PEOPLE,
    defaulter,
    late,
    performed,
    setup_authorities,
    write_rulebook,
)

A, B, C = PEOPLE


def inbox(led: Ledger, subject: str, kind: str | None = None) -> list[dict[str, Any]]:
    return list(reversed(list_notices(led.engine, subject=subject, kind=kind)))


def all_rows(led: Ledger) -> list[dict[str, Any]]:
    with led.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(notices).order_by("notice_id")).mappings()]


def test_record_added_states_conduct_basis_consequences_deadline_and_how(
    reg: tuple[Ledger, StatusService],
) -> None:
    led, svc = reg
    seq = led.furnish("court-1", defaulter("d1", A, "2026-01-10")).seq
    svc.catch_up()
    Notifier(led).run()
    [n] = inbox(led, A, "record-added")
    body = n["body"]
    assert f"record #{seq}" in body["conduct"]
    assert "decision D-d1 of 2026-01-10" in body["conduct"]
    assert "Test Court (court-1)" in body["conduct"]
    assert any("Fa Shi (2013) No. 17" in x for x in body["legal_basis"])  # the record's basis
    assert any("Test basis for the defaulter list" in x for x in body["legal_basis"])
    assert any("Test memorandum basis" in x for x in body["legal_basis"])
    assert any(
        "listed on 'Defaulters' (defaulters) since 2026-01-10" in x for x in body["consequences"]
    )
    assert any("travel.flights" in x for x in body["consequences"])
    assert body["deadline"]["date"] == "2026-02-14"  # 30 days from 2026-01-15 (no rulebook key)
    actions = [h["action"] for h in body["how_to_respond"]]
    assert any(f"object to record #{seq}" in a for a in actions)
    assert any(
        h["api"] and h["api"].startswith("POST /v1/me/objections") for h in body["how_to_respond"]
    )
    assert body["links"]["record"] == seq and body["links"]["rulebooks"] == ["t-status@1"]
    assert n["title"] in body["text"] and "How to respond:" in body["text"]
    # the status stream: listed at once (no grace under this rule)
    [listed] = inbox(led, A, "listed")
    assert "since 2026-01-10" in listed["title"]
    assert any("travel.flights" in x for x in listed["body"]["consequences"])


def test_intent_to_list_names_the_grace_end_then_listed_then_removed(
    reg: tuple[Ledger, StatusService], clock: FixedClock
) -> None:
    led, svc = reg
    n = Notifier(led)
    seq = led.furnish(
        "court-1", defaulter("d1", A, "2026-01-12", ground="obstructs-enforcement", case="K7")
    ).seq
    svc.catch_up()
    n.run()
    [intent] = inbox(led, A, "intent-to-list")
    assert intent["title"] == "Notice of intent to list you on 'Defaulters' from 2026-01-19"
    body = intent["body"]
    assert body["deadline"]["date"] == "2026-01-19"  # 2026-01-12 + 7 days of grace
    assert "takes effect" in body["deadline"]["meaning"]
    assert body["links"]["grace_end"] == "2026-01-19" and body["links"]["records"] == [seq]
    assert any("from 2026-01-19 measure No air travel" in x for x in body["consequences"])
    # how to avoid it: the removal trigger of the list, for this case number
    assert any(
        "court.obligation-performed" in h["action"] and "K7" in h["action"]
        for h in body["how_to_respond"]
    )
    assert not inbox(led, A, "listed")
    # the record-added notice asks for an objection before the listing takes effect
    [added] = inbox(led, A, "record-added")
    assert added["body"]["deadline"]["date"] == "2026-01-19"
    # the grace ends: the sweep lists the subject, the notifier says so
    clock.set("2026-01-19T08:00:00")
    svc.sweep()
    n.run()
    [listed] = inbox(led, A, "listed")
    assert "since 2026-01-19" in listed["title"]
    assert any("until 2027-01-19" in x for x in listed["body"]["consequences"])
    # the obligation is performed: removed
    clock.set("2026-02-02T08:00:00")
    led.furnish("court-1", performed("p1", A, "2026-02-01", case="K7"))
    svc.catch_up()
    n.run()
    [removed] = inbox(led, A, "removed")
    assert "Defaulters" in removed["title"]
    assert any(
        "travel.flights" in x and "no longer applies" in x for x in removed["body"]["consequences"]
    )
    assert [x["kind"] for x in inbox(led, A)] == [
        "record-added",
        "intent-to-list",
        "listed",
        "record-added",
        "removed",
    ]


def test_exactly_once_across_restarts(db_url: str, clock: FixedClock, tmp_path: Path) -> None:
    with Ledger.open(db_url, clock=clock) as led:
        setup_authorities(led)
        svc = StatusService(led)
        svc.activate(write_rulebook(tmp_path / "rb"))
        led.furnish("court-1", defaulter("d1", A, "2026-01-10"))
        led.furnish("water-1", late("w1", B, "2026-01-02"))
        svc.catch_up()
        first = Notifier(led, batch=1)
        first.run(max_batches=5)  # 4 authorities, then A's record: stops half-way
        partial = len(all_rows(led))
        assert partial > 0
    with Ledger.open(db_url, clock=clock) as led:  # a new process
        Notifier(led).run()
        after = all_rows(led)
        assert len(after) > partial
        Notifier(led).run()  # and again: nothing new
        again = all_rows(led)
        assert [r["notice_id"] for r in again] == [r["notice_id"] for r in after]
        assert len({r["dedupe_key"] for r in again}) == len(again)
        kinds = Counter((r["recipient"], r["kind"]) for r in again)
        assert kinds[(A, "record-added")] == 1 and kinds[(A, "listed")] == 1
        assert kinds[(B, "record-added")] == 1
        wm = Notifier(led).watermarks()
        assert wm[LEDGER_STREAM] == led.head()[0]


def _install_failing_trigger(led: Ledger) -> None:
    with led.engine.begin() as conn:
        if is_sqlite(led.engine):
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_boom BEFORE INSERT ON notice_deliveries "
                "WHEN NEW.target = 'boom@example.org' "
                "BEGIN SELECT RAISE(ABORT, 'deliveries to boom are refused'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_boom() RETURNS trigger AS $$ BEGIN "
                "IF NEW.target = 'boom@example.org' THEN "
                "RAISE EXCEPTION 'deliveries to boom are refused'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_boom BEFORE INSERT ON notice_deliveries "
                "FOR EACH ROW EXECUTE FUNCTION refuse_boom()"
            )


def _drop_failing_trigger(led: Ledger) -> None:
    with led.engine.begin() as conn:
        if is_sqlite(led.engine):
            conn.exec_driver_sql("DROP TRIGGER refuse_boom")
        else:
            conn.exec_driver_sql("DROP TRIGGER refuse_boom ON notice_deliveries")
            conn.exec_driver_sql("DROP FUNCTION refuse_boom()")


def test_a_write_that_fails_half_way_leaves_nothing_and_is_redone_once(
    reg: tuple[Ledger, StatusService],
) -> None:
    led, svc = reg
    set_contact(led.engine, led.clock, A, email="a@example.org")
    set_contact(led.engine, led.clock, B, email="boom@example.org")
    led.furnish("court-1", defaulter("d1", A, "2026-01-10"))
    led.furnish("water-1", late("w1", B, "2026-01-02"))
    led.furnish("water-1", late("w2", C, "2026-01-03"))
    svc.catch_up()
    _install_failing_trigger(led)
    n = Notifier(led)
    with pytest.raises(sa.exc.DBAPIError):
        n.run()
    # the notice for A was inserted before B's delivery failed: all of it was rolled back
    assert all_rows(led) == []
    assert n.watermarks() == {LEDGER_STREAM: 0, STATUS_STREAM: 0}
    _drop_failing_trigger(led)
    Notifier(led).run()
    rows = all_rows(led)
    assert Counter(r["kind"] for r in rows if r["kind"] == "record-added") == {"record-added": 3}
    with led.engine.connect() as conn:
        targets = sorted(r[0] for r in conn.execute(sa.select(notice_deliveries.c.target)))
    # A: record-added + listed; B: record-added (one late payment lists nobody)
    assert targets == ["a@example.org", "a@example.org", "boom@example.org"]
    Notifier(led).run()
    assert len(all_rows(led)) == len(rows)


def test_concurrent_notifiers_write_each_notice_once(reg: tuple[Ledger, StatusService]) -> None:
    led, svc = reg
    for i in range(12):
        led.furnish("water-1", late(f"w{i}", PEOPLE[i % 3], f"2026-01-{i + 1:02d}"))
    svc.catch_up()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            Notifier(led, batch=3).run()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    rows = all_rows(led)
    assert Counter(r["kind"] for r in rows)["record-added"] == 12
    assert len({r["dedupe_key"] for r in rows}) == len(rows)


def test_objection_case_is_noticed_with_its_deadline(reg: tuple[Ledger, StatusService]) -> None:
    objections = pytest.importorskip("socialcredit.cases.objections")
    led, svc = reg
    seq = led.furnish("court-1", defaulter("d1", A, "2026-01-10")).seq
    svc.catch_up()
    case = objections.open_objection(led, svc.rulebooks, A, seq, "I paid in full on 2026-01-05")
    svc.catch_up()
    Notifier(led).run()
    [opened] = inbox(led, A, "case-opened")
    body = opened["body"]
    due = str(case["deadline"])[:10]
    assert body["deadline"]["date"] == due == "2026-02-14"  # 30 days (objection_response)
    assert f"record #{seq}" in opened["title"]
    assert any("disputed" in x and due in x for x in body["consequences"])
    assert body["links"]["case"] == case["case_id"]


def test_missed_deadline_suspends_and_tells_the_subject_and_who_relied(
    reg: tuple[Ledger, StatusService], clock: FixedClock
) -> None:
    sweep = pytest.importorskip("socialcredit.cases.sweep")
    objections = pytest.importorskip("socialcredit.cases.objections")
    from socialcredit.decision_ids import encode_id
    from socialcredit.status.decisions import DecisionLog
    from socialcredit.status.parties import add_party

    led, svc = reg
    add_party(led.engine, led.catalogue, clock.now(), "air-1", "Test Air", "airline")
    seq = led.furnish("court-1", defaulter("d1", A, "2026-01-10")).seq
    svc.catch_up()
    case = objections.open_objection(led, svc.rulebooks, A, seq, "not me")
    clock.advance(days=1)
    basis = f'{{"records": [{seq}]}}'
    row = (clock.now().replace(tzinfo=None), "air-1", "k1", "boarding", A, "travel.flights")
    [during] = DecisionLog(led.engine).write([(*row, "deny", "restricted-by-list", basis, "t")])
    clock.set("2026-02-16T08:00:00")  # the objection_response deadline 2026-02-14 has passed
    sweep.sweep(svc)
    svc.catch_up()
    Notifier(led).run()
    [missed] = inbox(led, A, "deadline-missed")
    assert str(case["deadline"])[:10] in missed["title"]
    assert any("suspended" in c for c in missed["body"]["consequences"])
    [suspended] = inbox(led, A, "record-suspended")
    assert suspended["body"]["links"]["notified_parties"] == ["air-1"]
    [told] = list_notices(led.engine, party="air-1")
    assert told["body"]["decision_ids"] == [encode_id(during)]
    assert "suspended" in told["title"]
    [removed] = inbox(led, A, "removed")
    assert f"record #{seq} is suspended" in removed["body"]["conduct"]


def test_answered_objection_tells_the_outcome(reg: tuple[Ledger, StatusService]) -> None:
    objections = pytest.importorskip("socialcredit.cases.objections")
    led, svc = reg
    seq = led.furnish("court-1", defaulter("d1", A, "2026-01-10")).seq
    svc.catch_up()
    case = objections.open_objection(led, svc.rulebooks, A, seq, "I paid on 2026-01-05")
    objections.answer_objection(led, case["case_id"], "court-1", "retract", "payment confirmed")
    svc.catch_up()
    Notifier(led).run()
    [opened] = inbox(led, A, "case-opened")
    assert "Grounds given: I paid on 2026-01-05" in opened["body"]["conduct"]
    [answered] = inbox(led, A, "case-answered")
    assert answered["title"] == f"Objection case {case['case_id']} was answered: retracted"
    assert f"record #{seq} is now retracted" in answered["body"]["consequences"][0]
    assert any("on no list" in c for c in answered["body"]["consequences"])
    kinds = [n["kind"] for n in inbox(led, A)]
    assert {"record-retracted", "case-answered", "removed"} <= set(kinds)
    assert kinds.count("removed") == 1 and kinds.count("record-retracted") == 1


def test_baseline_notices_only_what_happens_afterwards(reg: tuple[Ledger, StatusService]) -> None:
    from socialcredit.cases.notices import baseline

    led, svc = reg
    led.furnish("court-1", defaulter("d1", A, "2026-01-10"))
    svc.catch_up()
    heads = baseline(led.engine)
    assert heads[LEDGER_STREAM] == led.head()[0] and heads[STATUS_STREAM] > 0
    seq = led.furnish("water-1", late("w1", B, "2026-01-02")).seq
    svc.catch_up()
    Notifier(led).run()
    assert [(r["recipient"], r["kind"], r["source_seq"]) for r in all_rows(led)] == [
        (B, "record-added", seq)
    ]


def test_an_obligation_fulfilled_in_the_grace_period_withdraws_the_intent(
    reg: tuple[Ledger, StatusService], clock: FixedClock
) -> None:
    led, svc = reg
    n = Notifier(led)
    led.furnish("court-1", defaulter("d1", A, "2026-01-12", ground="evades-enforcement", case="K8"))
    svc.catch_up()
    n.run()
    assert [x["kind"] for x in inbox(led, A)] == ["record-added", "intent-to-list"]
    clock.set("2026-01-16T10:00:00")
    led.furnish("court-1", performed("p1", A, "2026-01-16", case="K8"))
    svc.catch_up()
    n.run()
    [gone] = inbox(led, A, "intent-withdrawn")
    assert gone["title"] == "The intended listing on 'Defaulters' from 2026-01-19 will not happen"
    assert "removal trigger" in gone["body"]["conduct"]
    clock.set("2026-01-20T10:00:00")  # the day the listing would have taken effect has passed
    svc.sweep()
    n.run()
    assert not inbox(led, A, "listed")
