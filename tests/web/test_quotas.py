"""Daily limits of answers per relying party, through the API (SQLite and PostgreSQL).

A party past its limit is refused whole (429, logged, nothing answered or logged as a decision)
until midnight UTC; parties without a limit are not touched; the count is kept with the answers,
so a second worker on the same database sees it within its next read; the SDK raises at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from socialcredit.client import AsyncRelyingPartyClient, QuotaExceeded, RelyingPartyClient
from socialcredit.status.parties import set_limits, usage, usage_history
from socialcredit.status.schema import decision_requests
from socialcredit.web import create_app
from tests.status.helpers import defaulter
from tests.web.conftest import A, B, C, Registry, live_server
from tests.web.test_roles import assert_problem, check, logged


def limit(reg: Registry, party: str, n: int | None, column: str = "daily_limit") -> None:
    eng = reg.engine()
    try:
        set_limits(eng, party, reg.clock.now(), {column: n})
    finally:
        eng.dispose()


def refresh(c: TestClient) -> None:
    """The worker's background read (every second when serving), now."""
    c.app.state.rt.tick(maintenance=True)  # type: ignore[attr-defined]


def columns(c: TestClient, reg: Registry, who: str, subjects: list[str]) -> Any:
    return c.post(
        "/v1/checks",
        json={"purpose": "manifest", "measure": "travel.flights", "subjects": subjects},
        headers=reg.headers(who),
    )


def answered(reg: Registry) -> int:
    """Answers in the decision log (every form, projected or not)."""
    eng = reg.engine()
    try:
        with eng.connect() as conn:
            return int(conn.execute(sa.select(sa.func.sum(decision_requests.c.n))).scalar() or 0)
    finally:
        eng.dispose()


def counted(reg: Registry, party: str, day: dt.date) -> int:
    eng = reg.engine()
    try:
        return usage(eng, day, [party]).get(party, 0)
    finally:
        eng.dispose()


@pytest.fixture
def limited(client: TestClient, registry: Registry) -> TestClient:
    r = client.post(
        "/v1/records", json=defaulter("d1", A, "2025-06-01"), headers=registry.headers("court")
    )
    assert r.status_code in (200, 201), r.text
    limit(registry, "air-1", 5)
    refresh(client)
    return client


def test_a_party_is_refused_past_its_daily_limit(limited: TestClient, registry: Registry) -> None:
    today = registry.clock.now().date()
    r = check(limited, registry, "airline", *((s, "travel.flights") for s in (A, B, C)))
    assert r.status_code == 200
    r = columns(limited, registry, "airline", [A, B])
    assert r.status_code == 200, r.text
    assert answered(registry) == 5 == counted(registry, "air-1", today)

    r = check(limited, registry, "airline", (B, "travel.flights"))
    body = assert_problem(r, 429, "quota-exceeded")
    # 09:30 UTC: the day ends in 14 h 30 min
    assert r.headers["retry-after"] == str(14 * 3600 + 30 * 60)
    assert body["daily_limit"] == 5 and body["used_today"] == 5 and body["asked"] == 1
    assert body["resets_at"] == f"{today + dt.timedelta(days=1)}T00:00:00Z"
    assert "air-1" in body["detail"] and "5" in body["detail"]
    assert answered(registry) == 5 == counted(registry, "air-1", today)
    rows = logged(registry, "quota")
    assert len(rows) == 1 and rows[0]["status"] == 429
    assert rows[0]["key_id"] == registry.key_ids["airline"] and rows[0]["scope"] == "air-1"

    # another party is not held to it
    r = check(limited, registry, "bank", *[(A, "finance.loan-restriction")] * 7)
    assert r.status_code == 200, r.text
    me = limited.get("/v1/whoami", headers=registry.headers("airline")).json()
    assert me["quota"] == {
        "daily_limit": 5,
        "used_today": 5,
        "remaining": 0,
        "resets_at": f"{today + dt.timedelta(days=1)}T00:00:00Z",
        "rate_limit": None,
    }
    bank = limited.get("/v1/whoami", headers=registry.headers("bank")).json()["quota"]
    assert bank["daily_limit"] is None and bank["remaining"] is None and bank["used_today"] == 7
    assert "quota" not in limited.get("/v1/whoami", headers=registry.headers("officer")).json()


def test_a_batch_past_the_limit_is_refused_whole(limited: TestClient, registry: Registry) -> None:
    r = columns(limited, registry, "airline", [A, B, C, A, B, C])
    body = assert_problem(r, 429, "quota-exceeded")
    assert body["asked"] == 6 and body["used_today"] == 0
    assert "asks for 6" in body["detail"]
    assert answered(registry) == 0
    # what fits is answered, and every answer counts
    assert columns(limited, registry, "airline", [A, B, C, A]).status_code == 200
    r = check(limited, registry, "airline", (A, "travel.flights"), (B, "travel.flights"))
    assert assert_problem(r, 429, "quota-exceeded")["used_today"] == 4
    r = check(limited, registry, "airline", (A, "travel.flights"))
    assert r.status_code == 200 and r.json()["results"][0]["decision"] == "deny"
    assert answered(registry) == 5


def test_the_limit_lifts_at_midnight_utc(limited: TestClient, registry: Registry) -> None:
    first = registry.clock.now().date()
    assert columns(limited, registry, "airline", [A, B, C, A, B]).status_code == 200
    assert_problem(columns(limited, registry, "airline", [A]), 429, "quota-exceeded")
    registry.clock.set("2026-01-15T23:59:59")
    r = columns(limited, registry, "airline", [A])
    assert assert_problem(r, 429, "quota-exceeded") and r.headers["retry-after"] == "1"
    registry.clock.set("2026-01-16T00:00:01")
    assert columns(limited, registry, "airline", [A, B, C]).status_code == 200
    refresh(limited)  # the next read: the new day's count, from the database
    assert columns(limited, registry, "airline", [A, B]).status_code == 200
    assert_problem(columns(limited, registry, "airline", [A]), 429, "quota-exceeded")
    eng = registry.engine()
    try:
        assert usage_history(eng, "air-1", 3, first + dt.timedelta(days=1)) == [
            (first - dt.timedelta(days=1), 0),
            (first, 5),
            (first + dt.timedelta(days=1), 5),
        ]
    finally:
        eng.dispose()


def test_answers_before_the_limit_was_set_count(client: TestClient, registry: Registry) -> None:
    """The count is kept for every party, so a limit set during the day starts from the answers
    already given; lifted, it holds nothing back."""
    assert columns(client, registry, "airline", [A, B, C]).status_code == 200
    limit(registry, "air-1", 4)
    refresh(client)
    assert_problem(columns(client, registry, "airline", [A, B]), 429, "quota-exceeded")
    assert columns(client, registry, "airline", [A]).status_code == 200
    limit(registry, "air-1", None)
    refresh(client)
    assert columns(client, registry, "airline", [A, B, C]).status_code == 200
    assert counted(registry, "air-1", registry.clock.now().date()) == 7 == answered(registry)


@pytest.fixture
def second_worker(registry: Registry) -> Iterator[TestClient]:
    app = create_app(registry.db, registry.clock, poll_interval=0.01, log_process=True)
    with TestClient(app) as c:
        yield c


def test_workers_share_the_count(
    limited: TestClient, second_worker: TestClient, registry: Registry
) -> None:
    refresh(second_worker)
    assert columns(limited, registry, "airline", [A, B, C]).status_code == 200
    refresh(second_worker)  # its next read sees the first worker's three answers
    assert_problem(columns(second_worker, registry, "airline", [A, B, C]), 429, "quota-exceeded")
    assert columns(second_worker, registry, "airline", [A, B]).status_code == 200
    refresh(limited)
    assert_problem(columns(limited, registry, "airline", [A]), 429, "quota-exceeded")
    me = second_worker.get("/v1/whoami", headers=registry.headers("airline")).json()["quota"]
    assert me["used_today"] == 5 and me["remaining"] == 0
    assert answered(registry) == 5 == counted(registry, "air-1", registry.clock.now().date())
    # a new day: each worker reads the party's count at its first request of the day, so the
    # first worker, with no read since midnight, sees the second's answers
    registry.clock.set("2026-01-16T08:00:00")
    assert columns(second_worker, registry, "airline", [A, B, C, A]).status_code == 200
    body = assert_problem(columns(limited, registry, "airline", [A, B]), 429, "quota-exceeded")
    assert body["used_today"] == 4
    assert columns(limited, registry, "airline", [C]).status_code == 200
    assert counted(registry, "air-1", dt.date(2026, 1, 16)) == 5


def test_the_client_raises_at_once_and_reads_the_quota(
    limited: TestClient, registry: Registry
) -> None:
    app = limited.app
    with live_server(app) as url:  # type: ignore[arg-type]
        with RelyingPartyClient(url, registry.keys["airline"], retries=3, backoff=0.01) as rp:
            assert rp.quota()["remaining"] == 5
            rp.check_subjects([A, B, C, A, B], "travel.flights", purpose="boarding")
            assert rp.quota()["remaining"] == 0
            assert rp.usage(days=1) == [{"day": "2026-01-15", "answers": 5}]
            with pytest.raises(QuotaExceeded) as e:
                rp.check(A, "travel.flights", purpose="boarding")
            assert e.value.status == 429 and e.value.daily_limit == 5
            assert e.value.used_today == 5 and e.value.resets_at == "2026-01-16T00:00:00Z"

        async def more() -> dict[str, Any]:
            async with AsyncRelyingPartyClient(
                url, registry.keys["airline"], retries=3, backoff=0.01
            ) as arp:
                with pytest.raises(QuotaExceeded):
                    await arp.check_exceptions([A], "travel.flights", purpose="boarding")
                assert (await arp.usage(days=1))[0]["answers"] == 5
                return await arp.quota()

        assert asyncio.run(more())["used_today"] == 5
    # not retried: one refusal logged per call
    assert len(logged(registry, "quota")) == 2


def test_a_party_over_its_rate_waits(client: TestClient, registry: Registry) -> None:
    """A batch passes into debt; the party's next request is refused (429 rate-limited, logged,
    nothing answered) with how long to wait; another party is not held to it."""
    limit(registry, "air-1", 1, "rate_limit")
    refresh(client)
    assert columns(client, registry, "airline", [A, B, C] * 3).status_code == 200  # 9 answers
    r = columns(client, registry, "airline", [A])
    body = assert_problem(r, 429, "rate-limited")
    # 1 a second, 8 answers of debt: one answer's worth is back in ~9 s
    assert 8 <= int(r.headers["retry-after"]) <= 9
    assert body["rate_limit"] == 1 and body["asked"] == 1 and 8 < body["retry_after"] <= 9
    assert "1 answers a second" in body["detail"]
    assert answered(registry) == 9
    rows = logged(registry, "rate")
    assert len(rows) == 1 and rows[0]["status"] == 429 and rows[0]["scope"] == "air-1"
    assert check(client, registry, "bank", (A, "finance.loan-restriction")).status_code == 200
    me = client.get("/v1/whoami", headers=registry.headers("airline")).json()["quota"]
    assert me["rate_limit"] == 1 and me["daily_limit"] is None


def test_the_client_waits_out_a_rate_limit(client: TestClient, registry: Registry) -> None:
    """The SDK honours Retry-After for a rate limit and retries: the check is answered."""
    limit(registry, "air-1", 2, "rate_limit")
    refresh(client)
    with (
        live_server(client.app) as url,  # type: ignore[arg-type]
        RelyingPartyClient(url, registry.keys["airline"], retries=3, backoff=0.01) as rp,
    ):
        rp.check_subjects([A, B, C], "travel.flights", purpose="manifest")  # 1 in debt
        t0 = time.monotonic()
        assert rp.check(A, "travel.flights", purpose="boarding")["decision"] == "allow"
        assert time.monotonic() - t0 >= 0.9  # it waited for the Retry-After (1 s)
    assert len(logged(registry, "rate")) == 1 and answered(registry) == 4


def test_staff_list_the_parties_and_a_party_reads_its_own_usage(
    limited: TestClient, registry: Registry
) -> None:
    assert columns(limited, registry, "airline", [A, B, C]).status_code == 200
    r = limited.get("/v1/parties", headers=registry.headers("auditor"))
    assert r.status_code == 200
    doc = r.json()
    assert doc["day"] == "2026-01-15"
    air = next(p for p in doc["items"] if p["party_id"] == "air-1")
    assert air["daily_limit"] == 5 and air["used_today"] == 3 and air["domains"] == ["travel"]
    bank = next(p for p in doc["items"] if p["party_id"] == "bank-1")
    assert bank["daily_limit"] is None and bank["used_today"] == 0
    assert_problem(
        limited.get("/v1/parties", headers=registry.headers("airline")), 403, "forbidden"
    )

    for who in ("airline", "officer"):
        r = limited.get("/v1/parties/air-1/usage?days=2", headers=registry.headers(who))
        assert r.status_code == 200, r.text
        assert r.json()["days"] == [
            {"day": "2026-01-14", "answers": 0},
            {"day": "2026-01-15", "answers": 3},
        ]
        assert r.json()["daily_limit"] == 5
    r = limited.get("/v1/parties/bank-1/usage", headers=registry.headers("airline"))
    assert_problem(r, 403, "forbidden")
    assert logged(registry, "scope")[-1]["path"] == "/v1/parties/bank-1/usage"
    r = limited.get("/v1/parties/nobody/usage", headers=registry.headers("auditor"))
    assert_problem(r, 404, "not-found")
    r = limited.get("/v1/parties/air-1/usage?days=0", headers=registry.headers("auditor"))
    assert r.status_code == 422
