"""Correction propagation: exactly the relying parties that checked a subject while a record was
wrong are told, with exactly the decision ids made in that window (through the real API)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from socialcredit.web.runtime import Runtime
from tests.notices.conftest import SECRET, Hook
from tests.status.helpers import defaulter
from tests.web.conftest import A, Registry


def check(api: TestClient, reg: Registry, who: str, measure: str, purpose: str) -> str:
    r = api.post(
        "/v1/checks",
        json={"purpose": purpose, "checks": [{"subject": A, "measure": measure}]},
        headers=reg.headers(who),
    )
    assert r.status_code == 200, r.text
    return str(r.json()["results"][0]["decision_id"])


def party_inbox(api: TestClient, reg: Registry, who: str) -> list[dict[str, Any]]:
    r = api.get("/v1/party/notices", headers=reg.headers(who))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


@pytest.mark.parametrize("op", ["correct", "retract"])
def test_only_the_party_that_checked_during_the_wrong_period_is_told(
    api: TestClient,
    registry: Registry,
    webhook_server: Callable[[], Hook],
    op: str,
) -> None:
    rt: Runtime = api.app.state.rt  # type: ignore[attr-defined]
    clock = registry.clock
    hook = webhook_server()
    r = api.put(
        "/v1/party/webhook",
        json={"url": hook.url, "secret": SECRET},
        headers=registry.headers("airline"),
    )
    assert r.status_code == 200 and r.json()["secret_set"] is True
    # before: the inspector checks A; nothing wrong is on file yet
    check(api, registry, "inspector", "inspection.reduced", "inspection plan 2026")
    clock.advance(minutes=5)
    r = api.post(
        "/v1/records", json=defaulter("d1", A, "2026-01-10"), headers=registry.headers("court")
    )
    assert r.status_code in (200, 201), r.text
    seq = r.json()["seq"]
    # during: the airline is told twice that A may not fly
    clock.advance(minutes=5)
    during = [check(api, registry, "airline", "travel.flights", "boarding CA1234")]
    clock.advance(hours=2)
    during.append(check(api, registry, "airline", "travel.flights", "boarding CA1235"))
    clock.advance(days=1)
    body: dict[str, Any] = {"ref": f"fix-{op}", "reason": "the wrong person was named"}
    if op == "correct":
        body["changes"] = {"attr.ground": "obstructs-enforcement"}
    r = api.post(f"/v1/records/{seq}:{op}", json=body, headers=registry.headers("court"))
    assert r.status_code in (200, 201), r.text
    # after: the bank and the airline again — neither answer is affected
    clock.advance(minutes=5)
    check(api, registry, "bank", "finance.loan-restriction", "mortgage application")
    after_air = check(api, registry, "airline", "travel.flights", "boarding CA1236")
    rt.tick(maintenance=True)  # the notifier (and the pump, in the background)

    [notice] = party_inbox(api, registry, "airline")
    assert notice["kind"] == "correction" and notice["subject"] == A
    assert notice["body"]["decision_ids"] == during
    assert after_air not in notice["body"]["decision_ids"]
    assert [d["decision_id"] for d in notice["body"]["decisions"]] == during
    assert all(
        d["relied_on_record"] and d["decision"] == "deny" for d in notice["body"]["decisions"]
    )
    assert "court.judgment-defaulter" not in notice["body"]["text"]  # never the file's content
    assert party_inbox(api, registry, "inspector") == []
    assert party_inbox(api, registry, "bank") == []

    # the webhook got the same notice, signed with the party's secret
    [got] = hook.wait(1)
    assert got["signed"] is True
    assert got["json"]["notice_id"] == notice["notice_id"]
    assert got["json"]["body"]["decision_ids"] == during

    # the subject is told who was told
    kind = "record-corrected" if op == "correct" else "record-retracted"
    mine = api.get(f"/v1/me/notices?kind={kind}", headers=registry.headers("subject_a")).json()
    [told] = mine["items"]
    assert told["body"]["links"]["notified_parties"] == ["air-1"]
    assert any("Test Air (air-1)" in c and "2 decisions" in c for c in told["body"]["consequences"])
    # the subject's file lists who was told and which decisions, not the party's endpoints
    f = api.get("/v1/me/file", headers=registry.headers("subject_a")).json()
    [pn] = f["party_notices"]
    assert (pn["party"], pn["decision_ids"]) == ("air-1", during)
    assert "deliveries" not in pn and hook.url not in str(f)
    # and it stays true on the next tick: nothing is sent twice
    rt.tick(maintenance=True)
    assert len(party_inbox(api, registry, "airline")) == 1


def test_a_party_registers_its_webhook_with_a_secret(api: TestClient, registry: Registry) -> None:
    r = api.put(
        "/v1/party/webhook",
        json={"url": "ftp://nowhere"},
        headers=registry.headers("bank"),
    )
    assert r.status_code == 422
    fields = {p["field"] for p in r.json()["problems"]}
    assert fields == {"url", "secret"}
    r = api.get("/v1/party/webhook", headers=registry.headers("bank"))
    assert r.json() == {"party": "bank-1", "url": None, "email": None, "secret_set": False}
    r = api.get("/v1/party/notices", headers=registry.headers("subject_a"))
    assert r.status_code == 403


def test_propagation_finds_answers_projected_or_not(api: TestClient, registry: Registry) -> None:
    """Correction propagation reads the decision log and its projection together: an answer the
    projection has not reached is found like one it has, and the notifier projects nothing."""
    from socialcredit.status.decisions import project_decisions, projection_lag

    rt: Runtime = api.app.state.rt  # type: ignore[attr-defined]
    r = api.post(
        "/v1/records", json=defaulter("d1", A, "2026-01-10"), headers=registry.headers("court")
    )
    seq = r.json()["seq"]
    registry.clock.advance(minutes=1)
    during = [check(api, registry, "airline", "travel.flights", "boarding CA1234")]
    assert project_decisions(rt.engine) >= 1  # this one is projected ...
    registry.clock.advance(minutes=1)
    during.append(check(api, registry, "airline", "travel.flights", "boarding CA1235"))
    assert projection_lag(rt.engine) == 1  # ... this one only logged (no background loop here)
    registry.clock.advance(minutes=1)
    r = api.post(
        f"/v1/records/{seq}:retract",
        json={"ref": "fix", "reason": "the wrong person was named"},
        headers=registry.headers("court"),
    )
    assert r.status_code in (200, 201), r.text
    rt.notices.run_notifier()
    [notice] = party_inbox(api, registry, "airline")
    assert notice["body"]["decision_ids"] == during
    assert projection_lag(rt.engine) == 1
