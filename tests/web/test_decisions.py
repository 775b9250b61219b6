"""The decision log: one row per answer, written before the answer; subjects see theirs; under
concurrent load nothing is lost and nothing fails."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from socialcredit.client import ProviderClient, RelyingPartyClient, SubjectClient
from socialcredit.decision_ids import decode_id
from socialcredit.ids import random_rid
from socialcredit.status.decisions import count_decisions, projection_lag
from socialcredit.status.retention import Retention
from socialcredit.web import create_app
from tests.status.helpers import defaulter, late
from tests.web.conftest import A, B, C, Registry, live_server


def test_every_check_leaves_exactly_one_decision_row(
    client: TestClient, registry: Registry
) -> None:
    client.post(
        "/v1/records", json=defaulter("d1", A, "2025-06-01"), headers=registry.headers("court")
    )
    rng = random.Random(7)
    subjects = [A, B, C, *(f"cn-rid:{random_rid(rng)}" for _ in range(50))]
    checks = [{"subject": rng.choice(subjects), "measure": "travel.flights"} for _ in range(500)]
    r = client.post(
        "/v1/checks",
        json={"purpose": "bulk", "checks": checks},
        headers=registry.headers("airline"),
    )
    assert r.status_code == 200
    results = r.json()["results"]
    rows = registry.decisions()
    assert len(rows) == len(results) == 500
    by_id = {row["decision_id"]: row for row in rows}
    for res in results:
        row = by_id[decode_id(res["decision_id"])]
        assert (row["subject"], row["measure"], row["decision"], row["reason"]) == (
            res["subject"],
            res["measure"],
            res["decision"],
            res["reason"],
        )
        assert row["party_id"] == "air-1" and row["purpose"] == "bulk"
        assert row["key_id"] == registry.key_ids["airline"]
        assert row["rulebooks"] == "t-status@1"
    assert Counter(r["decision"] for r in results)["deny"] == sum(c["subject"] == A for c in checks)


def test_the_writer_process_projects_the_log_in_place_of_a_thread(
    client: TestClient, registry: Registry
) -> None:
    """As ``serve`` runs: the decision log's writer process projects the answers behind it, and
    the server has no projector thread of its own (which would hold the write turn while waiting
    for the interpreter lock)."""
    rt = client.app.state.rt  # type: ignore[attr-defined]
    assert rt.log.child_pid is not None
    assert rt._projector is None
    r = client.post(
        "/v1/checks",
        json={"purpose": "p", "measure": "travel.flights", "subjects": [A, B, C] * 100},
        headers=registry.headers("airline"),
    )
    assert r.status_code == 200
    deadline = time.monotonic() + 60
    while (lag := projection_lag(rt.engine)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert lag == 0
    assert count_decisions(rt.engine) == 300


def test_subject_sees_exactly_the_decisions_about_them(
    client: TestClient, registry: Registry
) -> None:
    pairs = [(A, "air"), (B, "air"), (A, "bank"), (B, "bank"), (A, "air")]
    for s, who in pairs:
        measure = "travel.flights" if who == "air" else "finance.loan-restriction"
        party = "airline" if who == "air" else "bank"
        client.post(
            "/v1/checks",
            json={"purpose": f"{who} purpose", "checks": [{"subject": s, "measure": measure}]},
            headers=registry.headers(party),
        )
    a = client.get("/v1/me/decisions", headers=registry.headers("subject_a")).json()["items"]
    b = client.get("/v1/me/decisions", headers=registry.headers("subject_b")).json()["items"]
    assert [d["subject"] for d in a] == [A, A, A] and [d["subject"] for d in b] == [B, B]
    assert [d["party_name"] for d in a] == ["Test Air", "Test Bank", "Test Air"]
    assert [d["purpose"] for d in b] == ["bank purpose", "air purpose"]
    assert {d["decision_id"] for d in a}.isdisjoint({d["decision_id"] for d in b})
    all_ids = {decode_id(d["decision_id"]) for d in a + b}
    assert all_ids == {row["decision_id"] for row in registry.decisions()}


def test_decisions_are_deleted_after_the_retention_period_and_subjects_are_told(
    registry: Registry,
) -> None:
    """With a period of 6 months, a subject's listing says so (and since when nothing is kept),
    and the projector deletes the answers once they are older: the subject's listing, the
    auditor's and the whole file then show only the newer ones."""
    app = create_app(
        registry.db, registry.clock, poll_interval=0.01, decision_retention=Retention(6)
    )
    with TestClient(app) as client:
        rt = client.app.state.rt  # type: ignore[attr-defined]
        first = registry.clock.now()

        def check(purpose: str) -> None:
            r = client.post(
                "/v1/checks",
                json={"purpose": purpose, "checks": [{"subject": A, "measure": "travel.flights"}]},
                headers=registry.headers("airline"),
            )
            assert r.status_code == 200

        def mine() -> dict[str, Any]:
            r = client.get("/v1/me/decisions", headers=registry.headers("subject_a"))
            assert r.status_code == 200
            return dict(r.json())

        check("boarding in January")
        page = mine()
        assert [d["purpose"] for d in page["items"]] == ["boarding in January"]
        assert page["retention"] == {
            "months": 6,
            "deleted_before": "2025-07-15T09:30:00Z",
            "note": "Each decision is deleted 6 months after it was made.",
        }
        registry.clock.set(first + dt.timedelta(days=200))  # past 6 months for the first
        check("boarding in August")
        deadline = time.monotonic() + 60
        while len(mine()["items"]) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [d["purpose"] for d in mine()["items"]] == ["boarding in August"]
        assert rt.projector.purged == 1
        audit = client.get(f"/v1/subjects/{A}/decisions", headers=registry.headers("auditor"))
        assert [d["purpose"] for d in audit.json()["items"]] == ["boarding in August"]
        assert audit.json()["retention"]["months"] == 6
        file = client.get("/v1/me/file", headers=registry.headers("subject_a")).json()
        assert [d["purpose"] for d in file["decisions"]] == ["boarding in August"]
        assert file["decision_retention"]["deleted_before"] == "2026-02-03T09:30:00Z"
        client.post("/login", data={"token": registry.keys["subject_a"]})
        page_text = client.get("/me/checks").text  # the portal's "who checked me"
        assert "Each decision is deleted 6 months after it was made." in page_text
        assert "Decisions made before 2026-02-03T09:30:00Z are no longer kept." in page_text
        assert "boarding in August" in page_text and "boarding in January" not in page_text


def test_access_log_entries_are_deleted_after_their_period_and_subjects_are_told(
    registry: Registry,
) -> None:
    """With an access-log period of 6 months, the subject's file and the portal's "who read your
    file" say so, and list the staff reads about them until the projector deletes those older."""
    app = create_app(
        registry.db, registry.clock, poll_interval=0.01, access_log_retention=Retention(6)
    )
    with TestClient(app) as client:
        first = registry.clock.now()

        def read() -> None:  # an officer reads the subject's data (logged)
            r = client.get(f"/v1/subjects/{A}", headers=registry.headers("officer"))
            assert r.status_code == 200

        def reads() -> list[str]:
            file = client.get("/v1/me/file", headers=registry.headers("subject_a")).json()
            return [a["at"] for a in file["access_log"] if a["rule"] == "read"]

        read()
        file = client.get("/v1/me/file", headers=registry.headers("subject_a")).json()
        assert file["access_log_retention"] == {
            "months": 6,
            "deleted_before": "2025-07-15T09:30:00Z",
            "note": "Each access-log entry is deleted 6 months after it was made.",
        }
        assert len(reads()) == 1
        client.post("/login", data={"token": registry.keys["subject_a"]})
        page = client.get("/me/checks").text
        assert "Who read your file" in page and f"GET /v1/subjects/{A}" in page
        assert "Each access-log entry is deleted 6 months after it was made." in page
        registry.clock.set(first + dt.timedelta(days=200))
        read()
        deadline = time.monotonic() + 60
        while len(reads()) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        (kept,) = reads()
        assert kept.startswith("2026-08-03")
        assert client.app.state.rt.projector.purged_access >= 1  # type: ignore[attr-defined]
        client.post("/login", data={"token": registry.keys["subject_a"]})  # a new session
        page = client.get("/me/checks").text
        assert "Entries made before 2026-02-03T09:30:00Z are no longer kept." in page


def test_without_a_period_decisions_are_kept_and_subjects_are_told(
    client: TestClient, registry: Registry
) -> None:
    page = client.get("/v1/me/decisions", headers=registry.headers("subject_a")).json()
    assert page["retention"] == {
        "months": None,
        "deleted_before": None,
        "note": "Decisions are kept without a time limit.",
    }
    file = client.get("/v1/me/file", headers=registry.headers("subject_a")).json()
    assert (
        file["access_log_retention"]["note"] == "Access-log entries are kept without a time limit."
    )


def _refuse_log_writes(registry: Registry, on: bool) -> None:
    """A decision log that cannot be written: the database itself refuses the insert."""
    engine = registry.engine()
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON decision_requests "
                "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
                if on
                else "DROP TRIGGER refuse"
            )
        elif on:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON decision_requests "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        else:
            conn.exec_driver_sql("DROP TRIGGER refuse ON decision_requests")
            conn.exec_driver_sql("DROP FUNCTION refuse()")
    engine.dispose()


def test_no_answer_leaves_without_its_record(client: TestClient, registry: Registry) -> None:
    """The log's writer (a process of its own, as under ``serve``) cannot commit: the check is
    refused, and once the database takes writes again the next check is answered and logged."""
    check = {"purpose": "p", "checks": [{"subject": A, "measure": "travel.flights"}]}
    _refuse_log_writes(registry, True)
    try:
        r = client.post("/v1/checks", json=check, headers=registry.headers("airline"))
    finally:
        _refuse_log_writes(registry, False)
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert "results" not in r.json() and "nothing was answered" in r.json()["detail"]
    assert registry.decisions() == []
    again = client.post("/v1/checks", json=check, headers=registry.headers("airline"))
    assert again.status_code == 200
    [logged] = registry.decisions()
    assert logged["decision_id"] == decode_id(again.json()["results"][0]["decision_id"])


def test_concurrent_checks_and_writes_lose_nothing(registry: Registry) -> None:
    """Threads hammer /v1/checks (single and batch) and /v1/records over loopback for a few
    seconds; afterwards every answer has exactly its decision row, and nothing failed."""
    app = create_app(registry.db, registry.clock, poll_interval=0.01, log_process=True)
    rng = random.Random(11)
    subjects = [A, B, C, *(f"cn-rid:{random_rid(rng)}" for _ in range(30))]
    answers: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()

    with live_server(app) as url:
        stop = time.monotonic() + 3.0  # from when the server is up (its start is not counted)

        def checker(n: int) -> None:
            r = random.Random(n)
            with RelyingPartyClient(url, registry.keys["airline"], retries=0) as rp:
                while time.monotonic() < stop:
                    k = r.choice((1, 1, 1, 25))
                    try:
                        res = rp.check_many(
                            [(r.choice(subjects), "travel.flights") for _ in range(k)],
                            purpose="load",
                        )
                    except Exception as e:
                        with lock:
                            errors.append(repr(e))
                        continue
                    with lock:
                        answers.extend(x["decision_id"] for x in res)

        def writer(n: int) -> None:
            i = 0
            with ProviderClient(url, registry.keys["water"], retries=0) as p:
                while time.monotonic() < stop:
                    i += 1
                    try:
                        p.furnish(late(f"w{n}-{i}", subjects[i % len(subjects)], "2025-12-01"))
                    except Exception as e:
                        with lock:
                            errors.append(repr(e))

        threads = [threading.Thread(target=checker, args=(i,)) for i in range(4)]
        threads += [threading.Thread(target=writer, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        with SubjectClient(url, registry.keys["subject_a"]) as me:
            mine = me.all_decisions()
    assert errors == []
    assert len(answers) > 50
    rows = registry.decisions()
    assert len(rows) == len(answers) == len(set(answers))
    assert {decode_id(a) for a in answers} == {r["decision_id"] for r in rows}
    assert len(mine) == sum(r["subject"] == A for r in rows)


@pytest.mark.parametrize("status", [503, 429])
def test_client_retries_transient_failures(status: int) -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] < 3:
            return httpx.Response(
                status, json={"title": "busy", "detail": "later"}, headers={"Retry-After": "0"}
            )
        return httpx.Response(200, json={"purpose": "p", "results": [{"decision": "allow"}]})

    with RelyingPartyClient("http://127.0.0.1", "k", transport=httpx.MockTransport(handler)) as rp:
        assert rp.check(A, "travel.flights", purpose="p") == {"decision": "allow"}
    assert calls["n"] == 3
