"""The Python SDK against a live server: typed errors carry the problem details."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from socialcredit.client import (
    AsyncRelyingPartyClient,
    AsyncSubjectClient,
    AuthError,
    ConflictError,
    ForbiddenError,
    InputRefused,
    ProviderClient,
    RelyingPartyClient,
    SubjectClient,
)
from socialcredit.decision_ids import decode_id, nth_id
from socialcredit.web import create_app
from tests.status.helpers import arrears, defaulter
from tests.web.conftest import A, B, C, Registry, live_server


def test_sdk_round_trip(registry: Registry) -> None:
    app = create_app(registry.db, registry.clock, poll_interval=0.01)
    with live_server(app) as url:
        with ProviderClient(url, registry.keys["court"]) as court:
            assert court.whoami()["scope"] == "court-1"
            first = court.furnish(defaulter("d1", A, "2025-06-01"))
            assert court.furnish(defaulter("d1", A, "2025-06-01")) == {
                **first,
                "status": "duplicate",
            }
            with pytest.raises(ForbiddenError) as e:
                court.furnish(arrears("t1", A, "2025-06-01"))
            assert e.value.problems[0]["rule"] == "not-accredited"
            assert e.value.type.endswith("/forbidden") and e.value.status == 403
            with pytest.raises(ConflictError):
                court.furnish(defaulter("d1", A, "2025-06-02"))
            with pytest.raises(InputRefused) as bad:
                court.furnish({"ref": "x"})
            assert {p["field"] for p in bad.value.problems} >= {"subject", "kind"}
            batch = court.furnish_many([defaulter("d2", B, "2025-06-01", case="C2")])
            assert batch["stored"] == 1
            assert court.retract(batch["results"][0]["seq"], "x2", "error")["status"] == "stored"
        with RelyingPartyClient(url, registry.keys["airline"]) as rp:
            res = rp.check(A, "travel.flights", purpose="boarding")
            assert res["decision"] == "deny" and res["basis"]["records"] == [first["seq"]]
            assert rp.check(B, "travel.flights", purpose="boarding")["decision"] == "allow"
            with pytest.raises(ForbiddenError):
                rp.check(A, "finance.loan-restriction", purpose="curious")
        with SubjectClient(url, registry.keys["subject_a"]) as me:
            assert me.file()["subject"] == A
            assert [d["decision"] for d in me.all_decisions()] == ["refused", "deny"]
        with pytest.raises(AuthError), SubjectClient(url, "sck_nope_nope") as nobody:
            nobody.file()

        async def run() -> tuple[list[dict[str, object]], dict[str, object]]:
            async with AsyncRelyingPartyClient(url, registry.keys["airline"]) as arp:
                answers = await asyncio.gather(
                    *(arp.check(s, "travel.flights", purpose="async") for s in (A, B, A))
                )
            async with AsyncSubjectClient(url, registry.keys["subject_b"]) as sb:
                page = await sb.decisions(limit=10)
            return list(answers), page

        answers, page = asyncio.run(run())
        assert [a["decision"] for a in answers] == ["deny", "allow", "deny"]
        assert [d["purpose"] for d in page["items"]] == ["async", "boarding"]  # type: ignore[index]


def test_sdk_check_subjects_matches_check_many(registry: Registry) -> None:
    app = create_app(registry.db, registry.clock, poll_interval=0.01)
    subjects = [A, B, A]
    with live_server(app) as url:
        with ProviderClient(url, registry.keys["court"]) as court:
            court.furnish(defaulter("d1", A, "2025-06-01"))
        with RelyingPartyClient(url, registry.keys["airline"]) as rp:
            columns = rp.check_subjects(subjects, "travel.flights", purpose="manifest")
            objects = rp.check_many([(s, "travel.flights") for s in subjects], purpose="manifest")
            with pytest.raises(InputRefused) as bad:
                rp.check_subjects([A, "cn-rid:1"], "travel.flights", purpose="manifest")
            assert bad.value.problems[0]["field"] == "subjects[1]"

        async def run() -> list[dict[str, object]]:
            async with AsyncRelyingPartyClient(url, registry.keys["airline"]) as arp:
                return await arp.check_subjects([B], "travel.flights", purpose="async")

        [later] = asyncio.run(run())
    strip = lambda r: {k: v for k, v in r.items() if k != "decision_id"}  # noqa: E731
    assert [strip(r) for r in columns] == [strip(r) for r in objects]
    assert [r["decision"] for r in columns] == ["deny", "allow", "deny"]
    ids = [decode_id(r["decision_id"]) for r in columns]
    assert ids == [ids[0], ids[0] + 1, ids[0] + 2]
    logged = {d["decision_id"]: d for d in registry.decisions()}
    assert [logged[i]["subject"] for i in ids] == subjects
    assert later["decision"] == "allow" and decode_id(str(later["decision_id"])) > ids[-1]


def test_sdk_check_exceptions_answers_what_check_subjects_answers(registry: Registry) -> None:
    app = create_app(registry.db, registry.clock, poll_interval=0.01)
    subjects = [B, A, C, A[:-1] + "x"]
    with live_server(app) as url:
        with ProviderClient(url, registry.keys["court"]) as court:
            court.furnish(defaulter("d1", A, "2025-06-01"))
        with RelyingPartyClient(url, registry.keys["airline"]) as rp:
            every = rp.check_subjects(subjects, "travel.flights", purpose="manifest")
            doc = rp.check_exceptions(subjects, "travel.flights", purpose="manifest")
            with pytest.raises(InputRefused) as bad:
                rp.check_exceptions([A, "cn-rid:1"], "travel.flights", purpose="manifest")
            assert bad.value.problems[0]["field"] == "subjects[1]"

        async def run() -> dict[str, Any]:
            async with AsyncRelyingPartyClient(url, registry.keys["airline"]) as arp:
                return await arp.check_exceptions(subjects, "travel.flights", purpose="async")

        later = asyncio.run(run())
    assert doc["count"] == later["count"] == len(subjects)
    assert doc["default"] == {"decision": "allow", "reason": "no-restriction"}
    assert doc["normalised"] == later["normalised"] == [{"index": 3, "subject": A}]
    first = decode_id(doc["decision_ids"]["first"])
    answers = [
        {
            "subject": subjects[i],
            "measure": doc["measure"],
            **doc["default"],
            "decision_id": nth_id(doc["decision_ids"]["first"], i),
        }
        for i in range(len(subjects))
    ]
    for x in doc["normalised"]:
        answers[x["index"]]["subject"] = x["subject"]
    for x in doc["exceptions"]:
        answers[x["index"]].update(
            {k: x[k] for k in ("decision", "reason", "basis", "decision_id")}
        )
    assert [x["index"] for x in doc["exceptions"]] == [1, 3]
    strip = lambda r: {k: v for k, v in r.items() if k != "decision_id"}  # noqa: E731
    assert [strip(r) for r in answers] == [strip(r) for r in every]
    assert [decode_id(r["decision_id"]) for r in answers] == [first + i for i in range(4)]
    assert [(x["index"], x["decision"]) for x in later["exceptions"]] == [(1, "deny"), (3, "deny")]
    assert decode_id(later["decision_ids"]["first"]) > first
    logged = {d["decision_id"]: d for d in registry.decisions()}
    assert [logged[first + i]["subject"] for i in range(4)] == [B, A, C, A]
    assert sorted(d["purpose"] for d in logged.values()) == ["async"] * 4 + ["manifest"] * 8
