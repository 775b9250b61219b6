"""The cases API over a real app: each role's routes, and refusals as logged problems."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from socialcredit.clock import FixedClock
from socialcredit.ledger import Ledger
from socialcredit.status.schema import access_log
from socialcredit.status.service import StatusService
from socialcredit.web import create_app
from socialcredit.web.keys import create_key
from tests.cases.helpers import (
    OFFICER_1,
    OFFICER_2,
    OTHER,
    SUBJ,
    commitment,
    defaulter,
    serious,
    setup_authorities,
    write_rulebook,
)

warnings.filterwarnings("ignore", message=".*httpx2.*")
from fastapi.testclient import TestClient  # noqa: E402


@dataclass
class Api:
    client: TestClient
    clock: FixedClock
    db: str
    keys: dict[str, str] = field(default_factory=dict)

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def furnish(self, who: str, row: dict) -> int:
        r = self.client.post("/v1/records", json=row, headers=self.h(who))
        assert r.status_code == 201, r.text
        return int(r.json()["seq"])


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    clock = FixedClock("2026-03-02T09:00:00")
    keys = {}
    with Ledger.open(db_url, clock=clock) as led:
        setup_authorities(led)
        StatusService(led).activate(write_rulebook(tmp_path / "rb"))
        now = clock.now()
        for name, role, scope in (
            ("subject", "subject", SUBJ),
            ("other", "subject", OTHER),
            ("court", "provider", "court-1"),
            ("samr", "provider", "samr-1"),
            ("credit", "provider", "credit-1"),
            ("officer1", "officer", OFFICER_1),
            ("officer2", "reviewer", OFFICER_2),
            ("unscoped", "officer", None),
            ("auditor", "auditor", None),
            ("public", "public", None),
        ):
            keys[name] = create_key(led.engine, now, role, scope, name)[1]
    app = create_app(db_url, clock, poll_interval=0.01, background=False)
    with TestClient(app) as c:
        yield Api(c, clock, db_url, keys)


def _access(db: str) -> list[dict]:
    from socialcredit.ledger.db import make_engine, resolve_url

    eng = make_engine(resolve_url(db))
    try:
        with eng.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(access_log)).mappings()]
    finally:
        eng.dispose()


def test_objection_round_trip(api: Api) -> None:
    seq = api.furnish("court", defaulter("d1", SUBJ, "2026-03-01"))
    c = api.client
    r = c.post(
        "/v1/me/objections", json={"record": seq, "grounds": "paid"}, headers=api.h("subject")
    )
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["state"] == "open" and case["deadline"] == "2026-03-09"
    # the other subject cannot object to it; the provider that did not furnish cannot answer
    r = c.post("/v1/me/objections", json={"record": seq, "grounds": "x"}, headers=api.h("other"))
    assert r.status_code == 404
    r = c.post(
        f"/v1/me/records/{seq}/statement", json={"text": "I paid."}, headers=api.h("subject")
    )
    assert r.status_code == 201
    listed = c.get("/v1/objections", headers=api.h("court")).json()["items"]
    assert [x["case_id"] for x in listed] == [case["case_id"]]
    assert c.get("/v1/objections", headers=api.h("samr")).json()["items"] == []
    r = c.post(
        f"/v1/objections/{case['case_id']}:answer",
        json={"outcome": "confirm", "reason": "not ours"},
        headers=api.h("samr"),
    )
    assert r.status_code == 403 and r.json()["problems"][0]["rule"] == "not-furnisher"
    r = c.post(
        f"/v1/objections/{case['case_id']}:answer",
        json={"outcome": "retract", "reason": "paid indeed"},
        headers=api.h("court"),
    )
    assert r.status_code == 200 and r.json()["outcome"] == "retracted"
    mine = c.get("/v1/me/cases", headers=api.h("subject")).json()["items"]
    assert mine[0]["outcome"] == "retracted"
    r = c.post(
        f"/v1/me/records/{seq}/statement", json={"text": "I paid."}, headers=api.h("subject")
    )
    assert r.status_code == 422  # the record was retracted: nothing to comment on
    rules = {a["rule"] for a in _access(api.db)}
    assert {"not-furnisher", "not-found"} <= rules


def test_review_four_eyes_and_halt_over_http(api: Api) -> None:
    c = api.client
    api.furnish("samr", serious("s1", SUBJ, "2026-03-02"))
    api.client.app.state.rt.tick(maintenance=True)  # the sweep opens the review case

    def listed_in_my_file() -> tuple[list[str], list[str]]:
        st = c.get("/v1/me", headers=api.h("subject")).json()["status"][0]
        return (
            [m["list"] for m in st["explanation"]["memberships"]],
            [w["list"] for w in st["withheld"]],
        )

    # the subject's own file shows the listing as withheld until reviewed, not as in force
    assert listed_in_my_file() == ([], ["serious"])
    queue = c.get("/v1/cases?type=review", headers=api.h("officer1")).json()["items"]
    assert len(queue) == 1 and queue[0]["subject_key"] == SUBJ
    cid = queue[0]["case_id"]
    r = c.post(f"/v1/cases/{cid}:confirm", json={"reason": "ok"}, headers=api.h("unscoped"))
    assert r.status_code == 403 and r.json()["detail"].startswith("a officer key acts")
    r = c.post(f"/v1/cases/{cid}:confirm", json={"reason": "ok"}, headers=api.h("officer1"))
    assert r.status_code == 200 and r.json()["state"] == "open"
    r = c.post(f"/v1/cases/{cid}:confirm", json={"reason": "again"}, headers=api.h("officer1"))
    assert r.status_code == 403 and r.json()["problems"][0]["rule"] == "same-reviewer"
    r = c.post(f"/v1/cases/{cid}:confirm", json={"reason": "agree"}, headers=api.h("officer2"))
    assert r.status_code == 200 and r.json()["outcome"] == "confirmed"
    assert listed_in_my_file() == (["serious"], [])
    r = c.post(
        "/v1/reviews:halt",
        json={"subject": SUBJ, "rulebook": "t-cases", "list": "serious", "reason": "appeal"},
        headers=api.h("officer2"),
    )
    assert r.status_code == 201 and r.json()["state"] == "halted"
    acts = c.get(f"/v1/audit/actions?actor={OFFICER_2}", headers=api.h("auditor")).json()
    assert [a["action"] for a in acts["items"]] == ["review-confirmed", "review-halted"]
    assert c.get("/v1/audit/actions", headers=api.h("officer1")).status_code == 403
    r = c.get("/v1/audit/actions?action=nope", headers=api.h("auditor"))
    assert r.status_code == 422


def test_repair_and_tips_over_http(api: Api) -> None:
    c = api.client
    api.furnish("court", defaulter("d1", SUBJ, "2025-08-01"))
    api.furnish("credit", commitment("k1", SUBJ, "2026-03-01"))
    el = c.get(
        "/v1/me/repairs/eligibility?rulebook=t-cases&list=defaulters", headers=api.h("subject")
    ).json()
    assert el["ok"] and el["repair_from"] == "2026-02-01"
    r = c.post(
        "/v1/me/repairs",
        json={"rulebook": "t-cases", "list": "defaulters", "statement": "paid"},
        headers=api.h("subject"),
    )
    assert r.status_code == 201, r.text
    cid = r.json()["case_id"]
    r = c.post(
        f"/v1/cases/{cid}:decide", json={"approve": True, "reason": "ok"}, headers=api.h("officer2")
    )
    assert r.status_code == 403  # a reviewer key cannot decide repairs
    r = c.post(
        f"/v1/cases/{cid}:decide", json={"approve": True, "reason": "ok"}, headers=api.h("officer1")
    )
    assert r.status_code == 200 and r.json()["outcome"] == "approved"
    me = c.get("/v1/me", headers=api.h("subject")).json()
    assert all(not s["explanation"].get("memberships") for s in me["status"]) or all(
        m.get("list") != "defaulters"
        for s in me["status"]
        for m in s["explanation"].get("memberships", [])
    )
    r = c.post("/v1/tips", json={"subject": OTHER, "text": "rumour"}, headers=api.h("public"))
    assert r.status_code == 201
    tip = r.json()["case_id"]
    assert (
        c.post(
            "/v1/tips", json={"subject": OTHER, "text": "x"}, headers=api.h("subject")
        ).status_code
        == 403
    )
    r = c.post(f"/v1/cases/{tip}:reject", json={"reason": "no basis"}, headers=api.h("officer1"))
    assert r.status_code == 200 and r.json()["outcome"] == "rejected"
    theirs = c.get("/v1/me/cases", headers=api.h("other")).json()["items"]
    assert theirs[0]["opened_by"] == "public" and "reporter" not in theirs[0]["detail"]
