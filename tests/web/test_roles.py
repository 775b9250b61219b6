"""Each role can do what it should and nothing else; every refusal is problem+json and logged."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from socialcredit.web.keys import revoke_key
from tests.status.helpers import arrears, defaulter, late
from tests.web.conftest import A, B, C, Registry

PROBLEM = "application/problem+json"


def check(
    c: TestClient, reg: Registry, who: str, *pairs: tuple[str, str], purpose: str = "test"
) -> Any:
    return c.post(
        "/v1/checks",
        json={"purpose": purpose, "checks": [{"subject": s, "measure": m} for s, m in pairs]},
        headers=reg.headers(who),
    )


def assert_problem(r: Any, status: int, slug: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["type"].endswith("/" + slug)
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def logged(reg: Registry, rule: str) -> list[dict[str, Any]]:
    return [row for row in reg.access() if row["rule"] == rule]


# ---------------------------------------------------------------------- providers


def test_provider_furnishes_idempotently_and_the_change_is_visible(
    client: TestClient, registry: Registry
) -> None:
    assert (
        check(client, registry, "airline", (A, "travel.flights")).json()["results"][0]["decision"]
        == "allow"
    )
    r = client.post(
        "/v1/records", json=defaulter("d1", A, "2025-06-01"), headers=registry.headers("court")
    )
    assert r.status_code == 201 and r.json()["status"] == "stored"
    again = client.post(
        "/v1/records", json=defaulter("d1", A, "2025-06-01"), headers=registry.headers("court")
    )
    assert again.status_code == 200 and again.json() == {
        "seq": r.json()["seq"],
        "status": "duplicate",
    }
    # visible at once: the write path catches the status up and refreshes the index
    res = check(client, registry, "airline", (A, "travel.flights")).json()["results"][0]
    assert res["decision"] == "deny" and res["reason"] == "restricted-by-list"
    assert res["basis"] == {
        "rulebook": "t-status@1",
        "memorandum": "m-defaulters",
        "via": "list:defaulters",
        "legal_basis": "Test memorandum basis",
        "records": [r.json()["seq"]],
    }
    conflict = client.post(
        "/v1/records",
        json=defaulter("d1", A, "2025-06-02"),
        headers=registry.headers("court"),
    )
    body = assert_problem(conflict, 409, "conflict")
    assert body["problems"][0]["rule"] == "conflict"


def test_provider_batch_is_all_or_nothing(client: TestClient, registry: Registry) -> None:
    rows = [late("w1", A, "2025-10-01"), late("w2", A, "2025-11-01"), late("w3", B, "2025-11-01")]
    bad = [*rows, {**late("w4", B, "2025-11-01"), "decision_date": "2099-01-01"}]
    body = assert_problem(
        client.post("/v1/records:batch", json={"records": bad}, headers=registry.headers("water")),
        422,
        "invalid-input",
    )
    assert body["problems"] == [
        {
            "field": "records[3].decision_date",
            "rule": "future-date",
            "value": "2099-01-01",
            "message": body["problems"][0]["message"],
            "row": None,
        }
    ]
    assert registry.decisions() == []
    ok = client.post("/v1/records:batch", json={"records": rows}, headers=registry.headers("water"))
    assert ok.status_code == 200 and ok.json()["stored"] == 3
    again = client.post(
        "/v1/records:batch", json={"records": rows}, headers=registry.headers("water")
    )
    assert again.json()["duplicates"] == 3 and again.json()["stored"] == 0
    res = check(client, registry, "airline", (A, "travel.flights")).json()["results"]
    assert res[0]["decision"] == "allow"  # late payers are not barred from flying ...
    assert len(logged(registry, "invalid-input")) == 1


def test_provider_cannot_furnish_kinds_it_is_not_accredited_for(
    client: TestClient, registry: Registry
) -> None:
    body = assert_problem(
        client.post(
            "/v1/records", json=arrears("t1", A, "2025-06-01"), headers=registry.headers("court")
        ),
        403,
        "forbidden",
    )
    assert body["problems"][0]["rule"] == "not-accredited"
    assert body["problems"][0]["field"] == "kind"
    [row] = logged(registry, "not-accredited")
    assert row["key_id"] == registry.key_ids["court"] and row["status"] == 403


def test_provider_lineage_ops_are_idempotent_and_scoped(
    client: TestClient, registry: Registry
) -> None:
    seq = client.post(
        "/v1/records", json=late("w1", A, "2025-06-01"), headers=registry.headers("water")
    ).json()["seq"]
    other = client.post(
        f"/v1/records/{seq}:retract",
        json={"ref": "x1", "reason": "not ours"},
        headers=registry.headers("court"),
    )
    assert_problem(other, 403, "forbidden")
    done = client.post(
        f"/v1/records/{seq}:correct",
        json={"ref": "c1", "reason": "typo", "changes": {"decision_date": "2025-06-02"}},
        headers=registry.headers("water"),
    )
    assert done.status_code == 201
    retry = client.post(
        f"/v1/records/{seq}:correct",
        json={"ref": "c1", "reason": "typo", "changes": {"decision_date": "2025-06-02"}},
        headers=registry.headers("water"),
    )
    assert retry.status_code == 200 and retry.json() == {
        "seq": done.json()["seq"],
        "status": "duplicate",
    }
    new = done.json()["seq"]
    gone = client.post(
        f"/v1/records/{new}:overturn",
        json={"ref": "o1", "reason": "appeal"},
        headers=registry.headers("court"),
    )
    assert gone.status_code == 201  # a court may overturn any record
    missing = client.post(
        "/v1/records/99999:retract",
        json={"ref": "x9", "reason": "?"},
        headers=registry.headers("water"),
    )
    assert_problem(missing, 404, "not-found")


def test_provider_cannot_check_or_read(client: TestClient, registry: Registry) -> None:
    assert_problem(check(client, registry, "court", (A, "travel.flights")), 403, "forbidden")
    assert_problem(client.get("/v1/me", headers=registry.headers("court")), 403, "forbidden")
    assert_problem(
        client.get(f"/v1/subjects/{A}", headers=registry.headers("court")), 403, "forbidden"
    )
    assert len(logged(registry, "role")) == 3


# ---------------------------------------------------------------------- relying parties


def test_relying_party_answers_and_never_learns_more(
    client: TestClient, registry: Registry
) -> None:
    client.post(
        "/v1/records", json=defaulter("d1", A, "2025-06-01"), headers=registry.headers("court")
    )
    r = check(
        client,
        registry,
        "airline",
        (A, "travel.flights"),
        (B, "travel.flights"),
        ("cn-rid:11010119900307651X", "travel.flights"),
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    known, clean, unknown = r.json()["results"]
    assert known["decision"] == "deny"
    # a known clean subject and one the registry never heard of get the same answer
    strip = {"decision_id"}
    assert (
        {k: v for k, v in clean.items() if k not in strip | {"subject"}}
        == {k: v for k, v in unknown.items() if k not in strip | {"subject"}}
        == {"measure": "travel.flights", "decision": "allow", "reason": "no-restriction"}
    )
    assert set(known) == {"subject", "measure", "decision", "reason", "basis", "decision_id"}
    assert len({x["decision_id"] for x in (known, clean, unknown)}) == 3


def test_relying_party_outside_its_domain_is_refused_and_logged(
    client: TestClient, registry: Registry
) -> None:
    r = check(client, registry, "airline", (A, "travel.flights"), (A, "finance.loan-restriction"))
    body = assert_problem(r, 403, "forbidden")
    assert body["problems"] == [
        {
            "field": "checks[1].measure",
            "rule": "outside-domain",
            "value": "finance.loan-restriction",
            "message": "'finance.loan-restriction' is a finance measure",
            "row": None,
        }
    ]
    assert "results" not in body
    rows = registry.decisions()
    assert [(d["decision"], d["reason"]) for d in rows] == [
        ("refused", "request-refused"),
        ("refused", "measure-outside-domain"),
    ]
    [row] = logged(registry, "outside-domain")
    assert row["key_id"] == registry.key_ids["airline"]


def test_reward_measures_are_granted_or_standard(client: TestClient, registry: Registry) -> None:
    from socialcredit.ledger import Ledger
    from tests.status.helpers import commendation

    # grade A comes from a commendation, furnished straight into the ledger (another process)

    with Ledger.open(registry.db, clock=registry.clock) as led:
        led.furnish("gov-1", commendation("h1", A, "2025-12-01"))
    client.app.state.rt.tick(maintenance=True)  # type: ignore[attr-defined]
    res = check(client, registry, "inspector", (A, "inspection.reduced"), (B, "inspection.reduced"))
    a, b = res.json()["results"]
    assert (a["decision"], a["reason"]) == ("grant", "reward-by-grade")
    assert a["basis"]["via"] == "scheme:points:A"
    assert (b["decision"], b["reason"]) == ("standard", "no-reward")


def test_check_input_is_validated_exactly(client: TestClient, registry: Registry) -> None:
    body = assert_problem(
        client.post(
            "/v1/checks",
            json={
                "checks": [{"subject": "cn-rid:110105194912310021", "measure": "travel.flight"}],
                "x": 1,
            },
            headers=registry.headers("airline"),
        ),
        422,
        "invalid-input",
    )
    assert [(p["field"], p["rule"]) for p in body["problems"]] == [
        ("x", "unknown-field"),
        ("purpose", "required"),
        ("checks[0].subject", "check-character"),
        ("checks[0].measure", "unknown-measure"),
    ]
    bad = client.post(
        "/v1/checks",
        content=b"{nope",
        headers={**registry.headers("airline"), "content-type": "application/json"},
    )
    assert_problem(bad, 400, "malformed-json")
    assert registry.decisions() == []


def test_relying_party_cannot_read_files(client: TestClient, registry: Registry) -> None:
    assert_problem(client.get("/v1/me", headers=registry.headers("airline")), 403, "forbidden")
    assert_problem(
        client.get(f"/v1/subjects/{A}/decisions", headers=registry.headers("airline")),
        403,
        "forbidden",
    )
    assert_problem(
        client.get("/v1/decisions", headers=registry.headers("airline")), 403, "forbidden"
    )


# ---------------------------------------------------------------------- subjects and staff


def test_subject_reads_own_file_with_explanations(client: TestClient, registry: Registry) -> None:
    client.post(
        "/v1/records", json=defaulter("d1", A, "2025-06-01"), headers=registry.headers("court")
    )
    me = client.get("/v1/me", headers=registry.headers("subject_a"))
    assert me.status_code == 200
    doc = me.json()
    assert doc["subject"] == A and len(doc["records"]) == 1
    [status] = doc["status"]
    assert status["rulebook"] == "t-status@1"
    assert status["explanation"]["memberships"][0]["list"] == "defaulters"
    assert doc["history"][0]["status"]["memberships"][0]["list"] == "defaulters"
    same = client.get(f"/v1/subjects/{A}", headers=registry.headers("subject_a"))
    assert same.status_code == 200 and same.json()["subject"] == A


def test_subject_cannot_read_another_subject(client: TestClient, registry: Registry) -> None:
    for path in (f"/v1/subjects/{B}", f"/v1/subjects/{B}/decisions"):
        body = assert_problem(
            client.get(path, headers=registry.headers("subject_a")), 403, "forbidden"
        )
        assert "own" in body["detail"]
    rows = logged(registry, "other-subject")
    assert [r["subject"] for r in rows] == [B, B]
    assert_problem(check(client, registry, "subject_a", (A, "travel.flights")), 403, "forbidden")
    assert_problem(
        client.get("/v1/decisions", headers=registry.headers("subject_a")), 403, "forbidden"
    )


def test_officer_and_reviewer_read_files_and_are_logged(
    client: TestClient, registry: Registry
) -> None:
    for who in ("officer", "reviewer"):
        r = client.get(f"/v1/subjects/{C}", headers=registry.headers(who))
        assert r.status_code == 200 and r.json()["records"] == []
        assert_problem(client.get("/v1/decisions", headers=registry.headers(who)), 403, "forbidden")
        assert_problem(
            client.get("/v1/audit/verify", headers=registry.headers(who)), 403, "forbidden"
        )
        assert_problem(check(client, registry, who, (A, "travel.flights")), 403, "forbidden")
    reads = logged(registry, "read")
    assert [(r["role"], r["subject"]) for r in reads] == [("officer", C), ("reviewer", C)]
    assert_problem(
        client.get("/v1/subjects/not-a-key", headers=registry.headers("officer")),
        422,
        "invalid-input",
    )


def test_auditor_verifies_and_filters_decisions(client: TestClient, registry: Registry) -> None:
    v = client.get("/v1/audit/verify", headers=registry.headers("auditor"))
    assert v.status_code == 200 and v.json()["ok"] is True
    check(client, registry, "airline", (A, "travel.flights"), (B, "travel.flights"))
    check(client, registry, "bank", (A, "finance.loan-restriction"))
    mine = client.get(
        "/v1/decisions", params={"subject": A}, headers=registry.headers("auditor")
    ).json()
    assert [(d["party"], d["measure"]) for d in mine["items"]] == [
        ("bank-1", "finance.loan-restriction"),
        ("air-1", "travel.flights"),
    ]
    bank = client.get(
        "/v1/decisions", params={"party": "bank-1"}, headers=registry.headers("auditor")
    )
    assert [d["subject"] for d in bank.json()["items"]] == [A]
    page = client.get(
        "/v1/decisions", params={"limit": 2}, headers=registry.headers("auditor")
    ).json()
    assert len(page["items"]) == 2 and page["next"] == page["items"][-1]["decision_id"]
    rest = client.get(
        "/v1/decisions",
        params={"limit": 2, "before": page["next"]},
        headers=registry.headers("auditor"),
    ).json()
    assert len(rest["items"]) == 1 and rest["next"] is None
    assert (
        client.get(f"/v1/subjects/{A}/decisions", headers=registry.headers("auditor")).status_code
        == 200
    )
    assert_problem(
        client.get("/v1/decisions", params={"before": "??"}, headers=registry.headers("auditor")),
        422,
        "invalid-input",
    )


def test_public_key_can_do_nothing_yet(client: TestClient, registry: Registry) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    who = client.get("/v1/whoami", headers=registry.headers("public"))
    assert who.json() == {"key_id": registry.key_ids["public"], "role": "public", "scope": None}
    assert_problem(check(client, registry, "public", (A, "travel.flights")), 403, "forbidden")
    assert_problem(client.get("/v1/me", headers=registry.headers("public")), 403, "forbidden")
    assert_problem(
        client.get(f"/v1/subjects/{A}", headers=registry.headers("public")), 403, "forbidden"
    )
    assert_problem(
        client.post(
            "/v1/records", json=late("w1", A, "2025-01-01"), headers=registry.headers("public")
        ),
        403,
        "forbidden",
    )


# ---------------------------------------------------------------------- keys


def test_missing_malformed_unknown_and_revoked_keys_are_refused_and_logged(
    client: TestClient, registry: Registry
) -> None:
    cases = {
        "no-key": {},
        "malformed-key": {"Authorization": "Bearer hello"},
        "unknown-key": {"Authorization": "Bearer sck_000000000000_" + "x" * 43},
        "bad-secret": {"Authorization": f"Bearer sck_{registry.key_ids['auditor']}_" + "x" * 43},
    }
    for rule, headers in cases.items():
        r = client.get("/v1/audit/verify", headers=headers)
        assert_problem(r, 401, "unauthenticated")
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert len(logged(registry, rule)) == 1, rule
    assert client.get("/v1/audit/verify", headers=registry.headers("revoked")).status_code == 200
    eng = registry.engine()
    try:
        revoke_key(eng, registry.key_ids["revoked"], registry.clock.now())
    finally:
        eng.dispose()
    deadline = time.monotonic() + 5  # every worker sees it within one poll interval
    while client.get("/v1/audit/verify", headers=registry.headers("revoked")).status_code == 200:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    body = assert_problem(
        client.get("/v1/audit/verify", headers=registry.headers("revoked")), 401, "unauthenticated"
    )
    assert "revoked" in body["detail"]
    assert logged(registry, "revoked-key")
    r = client.post("/v1/checks", json={"purpose": "x", "checks": []})
    assert_problem(r, 401, "unauthenticated")


def test_health_readiness_and_metrics(client: TestClient, registry: Registry) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["rulebooks"] == ["t-status@1"]
    check(client, registry, "airline", (A, "travel.flights"))
    text = client.get("/metrics").text
    assert "socialcredit_checks_total" in text and "socialcredit_decisions_written_total" in text
    from socialcredit.status.decisions import project_decisions, projection_lag

    rt = client.app.state.rt  # type: ignore[attr-defined]
    check(client, registry, "airline", (B, "travel.flights"))
    project_decisions(rt.engine)  # what the projector does (if it has not yet)
    assert projection_lag(rt.engine) == 0
    rt.tick(maintenance=True)
    assert "socialcredit_decision_projection_lag 0.0" in client.get("/metrics").text


def test_a_failing_notifier_is_reported_by_readiness_and_metrics(client: TestClient) -> None:
    """Checks go on (200), but ``notices`` in /readyz says why notices are not written, and the
    gauge is 1 until they are again."""
    import sqlalchemy as sa

    from tests.status.helpers import defaulter

    rt = client.app.state.rt  # type: ignore[attr-defined]
    rt.tick(maintenance=True)
    assert client.get("/readyz").json()["notices"] == "ok"
    assert "socialcredit_notices_failing 0.0" in client.get("/metrics").text
    with rt.engine.begin() as conn:  # the notifier's table is gone: it cannot write
        conn.execute(sa.text("ALTER TABLE notices RENAME TO notices_away"))
    rt.ledger.furnish("court-1", defaulter("nf-1", C, "2026-01-10"))
    rt.after_write()
    rt.tick(maintenance=True)
    ready = client.get("/readyz")
    assert ready.status_code == 200 and "notices" in ready.json()["notices"]
    assert "socialcredit_notices_failing 1.0" in client.get("/metrics").text
    with rt.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE notices_away RENAME TO notices"))
    rt.tick(maintenance=True)
    assert client.get("/readyz").json()["notices"] == "ok"
    assert "socialcredit_notices_failing 0.0" in client.get("/metrics").text


def test_readiness_reports_a_lagging_status(registry: Registry) -> None:
    from socialcredit.ledger import Ledger
    from socialcredit.web import create_app

    app = create_app(registry.db, registry.clock, background=False)
    with TestClient(app) as c:
        assert c.get("/readyz").status_code == 200
        with Ledger.open(registry.db, clock=registry.clock) as led:  # a write elsewhere
            led.furnish("court-1", defaulter("d1", B, "2025-06-01"))
        body = assert_problem(c.get("/readyz"), 503, "not-ready")
        assert body["lag"] == 1 and "behind" in body["detail"]
        app.state.rt.tick(maintenance=True)
        assert c.get("/readyz").status_code == 200
        res = check(c, registry, "airline", (B, "travel.flights")).json()["results"][0]
        assert res["decision"] == "deny"


def test_a_server_process_freezes_what_start_up_loaded(registry: Registry) -> None:
    import gc

    from socialcredit.web import create_app
    from socialcredit.web.app import GC_THRESHOLD

    gc.unfreeze()
    threshold = gc.get_threshold()
    try:
        with TestClient(create_app(registry.db, registry.clock, background=False)):
            assert gc.get_freeze_count() == 0  # tests and tools: the collector as usual
            assert gc.get_threshold() == threshold
        with TestClient(create_app(registry.db, registry.clock, freeze_heap=True)) as c:
            assert gc.get_freeze_count() > 1000  # the index, catalogue, rulebooks ...
            assert gc.get_threshold()[0] == GC_THRESHOLD > threshold[0]
            assert c.get("/readyz").status_code == 200
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
