"""Subject access: the whole file through the API and the CLI; a subject reads only its own file
(refusals are problems, logged, and shown to the subject whose file was asked for)."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from socialcredit.cases.access import SECTIONS
from socialcredit.cli.main import app as cli
from socialcredit.web.runtime import Runtime
from tests.status.helpers import defaulter
from tests.web.conftest import A, B, Registry


def _setup(api: TestClient, registry: Registry) -> int:
    r = api.post(
        "/v1/records", json=defaulter("d1", A, "2026-01-10"), headers=registry.headers("court")
    )
    assert r.status_code in (200, 201), r.text
    seq = int(r.json()["seq"])
    registry.clock.advance(minutes=1)
    r = api.post(
        "/v1/checks",
        json={
            "purpose": "boarding CA1234",
            "checks": [{"subject": A, "measure": "travel.flights"}],
        },
        headers=registry.headers("airline"),
    )
    assert r.status_code == 200 and r.json()["results"][0]["decision"] == "deny"
    rt: Runtime = api.app.state.rt  # type: ignore[attr-defined]
    rt.tick(maintenance=True)
    return seq


def test_my_file_has_every_section(api: TestClient, registry: Registry) -> None:
    seq = _setup(api, registry)
    from socialcredit.cases.objections import open_objection

    rt: Runtime = api.app.state.rt  # type: ignore[attr-defined]
    case = open_objection(rt.ledger, rt.status.rulebooks, A, seq, "not my debt")
    r = api.get(f"/v1/subjects/{A}/file", headers=registry.headers("officer"))
    assert r.status_code == 200
    rt.tick(maintenance=True)

    r = api.get("/v1/me/file", headers=registry.headers("subject_a"))
    assert r.status_code == 200
    f = r.json()
    assert set(SECTIONS) <= set(f) and f["subject"] == A and f["free_of_charge"] is True
    [rec] = f["records"]
    assert rec["record_id"] == seq and rec["disputed"] is True
    assert rec["provenance"]["authority_name"] == "Test Court"
    assert rec["provenance"]["decision_no"] == "D-d1"
    assert [h["op"] for h in rec["history"]] == ["furnish", "dispute"]
    [st] = f["status"]
    assert st["rulebook"] == "t-status@1"
    assert st["explanation"]["memberships"][0]["list"] == "defaulters"
    assert st["explanation"]["memberships"][0]["records"][0]["id"] == seq
    [d] = f["decisions"]
    assert (d["party"], d["party_name"], d["purpose"], d["measure"], d["decision"]) == (
        "air-1",
        "Test Air",
        "boarding CA1234",
        "travel.flights",
        "deny",
    )
    assert len(d["decision_id"]) == 13 and d["at"]
    assert f["recipients"][0]["party"] == "air-1" and f["recipients"][0]["checks"] == 1
    assert f["cases"]["available"] is True
    assert [c["case_id"] for c in f["cases"]["items"]] == [case["case_id"]]
    assert {a["action"] for a in f["actions"]} >= {"case-opened"}
    kinds = {n["kind"] for n in f["notices"]}
    assert {"record-added", "listed", "case-opened"} <= kinds
    reads = [(x["role"], x["rule"]) for x in f["access_log"]]
    assert ("officer", "read") in reads
    assert f["status_history"] and f["status_history"][0]["rulebook"] == "t-status@1"


def test_a_subject_cannot_read_another_subjects_file(api: TestClient, registry: Registry) -> None:
    _setup(api, registry)
    r = api.get(f"/v1/subjects/{A}/file", headers=registry.headers("subject_b"))
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "only its own" in r.json()["detail"]
    refused = [x for x in registry.access() if x["rule"] == "other-subject"]
    assert [(x["subject"], x["key_id"]) for x in refused] == [(A, registry.key_ids["subject_b"])]
    # the subject whose file was asked for sees the attempt
    f = api.get("/v1/me/file", headers=registry.headers("subject_a")).json()
    assert any(x["rule"] == "other-subject" and x["status"] == 403 for x in f["access_log"])
    # B's own file is B's and says nothing of A
    own = api.get(f"/v1/subjects/{B}/file", headers=registry.headers("subject_b")).json()
    assert own["subject"] == B and own["records"] == [] and own["decisions"] == []
    # other roles: refused
    for who in ("airline", "court", "public"):
        assert api.get(f"/v1/subjects/{A}/file", headers=registry.headers(who)).status_code == 403
    # a notice of A is not in B's inbox, even by id
    [n] = api.get("/v1/me/notices?kind=record-added", headers=registry.headers("subject_a")).json()[
        "items"
    ]
    r = api.get(f"/v1/me/notices/{n['notice_id']}", headers=registry.headers("subject_b"))
    assert r.status_code == 404
    r = api.get(f"/v1/me/notices/{n['notice_id']}", headers=registry.headers("subject_a"))
    assert r.status_code == 200 and r.json()["notice_id"] == n["notice_id"]


def test_inbox_and_contact(api: TestClient, registry: Registry) -> None:
    r = api.put(
        "/v1/me/contact",
        json={"email": "a@example.org"},
        headers=registry.headers("subject_a"),
    )
    assert r.status_code == 200 and r.json()["email"] == "a@example.org"
    r = api.put("/v1/me/contact", json={"email": "x"}, headers=registry.headers("subject_a"))
    assert r.status_code == 422 and r.json()["problems"][0]["field"] == "email"
    assert api.get("/v1/me/contact", headers=registry.headers("subject_a")).json()["email"] == (
        "a@example.org"
    )
    _setup(api, registry)
    page = api.get("/v1/me/notices", headers=registry.headers("subject_a")).json()
    kinds = [n["kind"] for n in page["items"]]
    assert kinds == ["listed", "record-added"]  # newest first
    assert all(n["deliveries"][0]["channel"] == "email" for n in page["items"])
    # officers see the deliveries and can find those waiting
    r = api.get("/v1/notices/deliveries?state=pending", headers=registry.headers("officer"))
    assert r.status_code == 200 and len(r.json()["items"]) == 2
    assert (
        api.get("/v1/notices/deliveries", headers=registry.headers("subject_a")).status_code == 403
    )
    bad = api.get("/v1/me/notices?kind=nonsense", headers=registry.headers("subject_a"))
    assert bad.status_code == 422


def test_cli_file_and_notices(api: TestClient, registry: Registry) -> None:
    _setup(api, registry)
    run = CliRunner().invoke
    r = run(cli, ["--db", registry.db, "notices", "file", A, "--json"])
    assert r.exit_code == 0, r.output
    f = json.loads(r.output)
    assert set(SECTIONS) <= set(f) and f["records"][0]["provenance"]["authority"] == "court-1"
    assert f["decisions"][0]["party_name"] == "Test Air"
    r = run(cli, ["--db", registry.db, "notices", "list", "--subject", A, "--json"])
    assert r.exit_code == 0 and {n["kind"] for n in json.loads(r.output)} == {
        "record-added",
        "listed",
    }
    r = run(cli, ["--db", registry.db, "notices", "run", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["notices"] == 0  # already written
    r = run(cli, ["--db", registry.db, "notices", "file", "cn-rid:123", "--json"])
    assert r.exit_code == 2 and json.loads(r.output)["ok"] is False
    r = run(
        cli,
        [
            "--db",
            registry.db,
            "notices",
            "webhook",
            "air-1",
            "--url",
            "http://h.example/x",
            "--json",
        ],
    )
    assert r.exit_code == 2 and json.loads(r.output)["problems"][0]["field"] == "secret"
