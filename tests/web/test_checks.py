"""POST /v1/checks: the columnar form, and the lane that serves the route.

The columnar form (one measure, many subjects) must answer exactly what the object form answers,
log one decision per subject with consecutive ids, and refuse what the object form refuses, naming
``subjects[i]`` or ``measure``. The lane (``ServiceApp``) must answer every request exactly as the
routed endpoint would: same status, same headers that matter, same body.
"""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from socialcredit import ids
from socialcredit.decision_ids import decode_id, encode_id
from socialcredit.ids.bulk import SMALL
from socialcredit.web.app import ServiceApp, create_app
from tests.status.helpers import commendation, defaulter
from tests.web.conftest import A, B, C, Registry, live_server
from tests.web.test_roles import assert_problem, check, logged

CLEAN = "cn-rid:11010119900307651X"  # a valid number the registry never heard of


def columns(
    c: TestClient | httpx.Client,
    reg: Registry,
    who: str,
    measure: str,
    subjects: list[Any],
    purpose: str = "manifest",
) -> Any:
    return c.post(
        "/v1/checks",
        json={"purpose": purpose, "measure": measure, "subjects": subjects},
        headers=reg.headers(who),
    )


@pytest.fixture
def listed(client: TestClient, registry: Registry) -> TestClient:
    r = client.post(
        "/v1/records", json=defaulter("d1", A, "2025-06-01"), headers=registry.headers("court")
    )
    assert r.status_code in (200, 201), r.text
    return client


def test_columns_answer_what_the_object_form_answers(
    listed: TestClient, registry: Registry
) -> None:
    subjects = [A, B, CLEAN, A]
    r = columns(listed, registry, "airline", "travel.flights", subjects)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["subjects"] == subjects and doc["measure"] == "travel.flights"
    objects = check(listed, registry, "airline", *((s, "travel.flights") for s in subjects))
    results = objects.json()["results"]
    assert (
        doc["decisions"] == [x["decision"] for x in results] == ["deny", "allow", "allow", "deny"]
    )
    assert doc["reasons"] == [x["reason"] for x in results]
    assert doc["bases"] == [x.get("basis") for x in results]
    assert doc["bases"][1] is None and doc["bases"][0]["via"].startswith("list:")


def test_columns_decision_ids_are_consecutive_and_logged(
    listed: TestClient, registry: Registry
) -> None:
    subjects = [B, A, CLEAN]
    doc = columns(listed, registry, "airline", "travel.flights", subjects).json()
    first, count = decode_id(doc["decision_ids"]["first"]), doc["decision_ids"]["count"]
    assert count == 3
    logged_rows = {d["decision_id"]: d for d in registry.decisions()}
    for i, subject in enumerate(subjects):
        row = logged_rows[first + i]
        assert (row["subject"], row["measure"], row["decision"], row["reason"]) == (
            subject,
            "travel.flights",
            doc["decisions"][i],
            doc["reasons"][i],
        )
        assert (json.loads(row["basis"]) if row["basis"] else None) == doc["bases"][i]
        assert row["purpose"] == "manifest" and row["party_id"] == "air-1"
    # the subject sees the answer about them, under the same id
    mine = listed.get("/v1/me/decisions", headers=registry.headers("subject_a")).json()["items"]
    assert [d["decision_id"] for d in mine] == [encode_id(first + 1)]


def test_columns_canonicalise_subjects(listed: TestClient, registry: Registry) -> None:
    assert A.endswith("X")
    lower = A[:-1] + "x"  # a lower-case check character, and a stray space below
    doc = columns(listed, registry, "airline", "travel.flights", [lower, " " + B]).json()
    assert doc["subjects"][0] == A
    assert doc["subjects"][1] == B
    assert doc["decisions"][0] == "deny"


def answered(c: TestClient, decision: str) -> float:
    """The server's count of answers with ``decision`` (its /metrics)."""
    prefix = f'socialcredit_checks_total{{decision="{decision}"}} '
    lines = [x for x in c.get("/metrics").text.splitlines() if x.startswith(prefix)]
    return float(lines[0][len(prefix) :]) if lines else 0.0


def test_a_batch_past_the_one_by_one_threshold_answers_as_objects_do(
    listed: TestClient, registry: Registry
) -> None:
    """From SMALL keys on, subjects are scanned together and found through the index's sorted
    codes: canonical keys, forms parse_key normalises, and keys of no listed subject."""
    rng = random.Random(3)
    others = [f"cn-rid:{ids.random_rid(rng)}" for _ in range(SMALL + 10)]
    subjects = [A, A[:-1] + "x", " " + B, CLEAN, *others, A, B]
    denied, allowed = answered(listed, "deny"), answered(listed, "allow")
    doc = columns(listed, registry, "airline", "travel.flights", subjects).json()
    results = check(listed, registry, "airline", *((s, "travel.flights") for s in subjects))
    results = results.json()["results"]
    assert doc["subjects"] == [x["subject"] for x in results]
    assert doc["decisions"] == [x["decision"] for x in results]
    assert doc["reasons"] == [x["reason"] for x in results]
    assert doc["bases"] == [x.get("basis") for x in results]
    deny = [i for i, d in enumerate(doc["decisions"]) if d == "deny"]
    assert deny == [0, 1, len(subjects) - 2]
    # each answer counted once per request, by its decision (both forms were asked)
    assert answered(listed, "deny") - denied == 2 * len(deny)
    assert answered(listed, "allow") - allowed == 2 * (len(subjects) - len(deny))


def test_columns_rewards(client: TestClient, registry: Registry) -> None:
    from socialcredit.ledger import Ledger

    with Ledger.open(registry.db, clock=registry.clock) as led:
        led.furnish("gov-1", commendation("h1", A, "2025-12-01"))
    client.app.state.rt.tick(maintenance=True)  # type: ignore[attr-defined]
    doc = columns(client, registry, "inspector", "inspection.reduced", [A, B]).json()
    assert doc["decisions"] == ["grant", "standard"]
    assert doc["reasons"] == ["reward-by-grade", "no-reward"]


def test_columns_input_is_validated_exactly(client: TestClient, registry: Registry) -> None:
    many = [CLEAN] * 40  # the array path, with two bad ones among them
    many[3] = "cn-rid:110105194912310021"
    many[31] = 7
    r = client.post(
        "/v1/checks",
        json={"measure": "travel.flight", "subjects": many, "x": 1},
        headers=registry.headers("airline"),
    )
    body = assert_problem(r, 422, "invalid-input")
    assert [(p["field"], p["rule"]) for p in body["problems"]] == [
        ("x", "unknown-field"),
        ("purpose", "required"),
        ("measure", "unknown-measure"),
        ("subjects[3]", "check-character"),
        ("subjects[31]", "type:string"),
    ]
    empty = columns(client, registry, "airline", "travel.flights", [])
    assert [p["field"] for p in assert_problem(empty, 422, "invalid-input")["problems"]] == [
        "subjects"
    ]
    big = columns(client, registry, "airline", "travel.flights", [CLEAN] * 10_001)
    assert_problem(big, 413, "too-large")
    assert registry.decisions() == []


def test_columns_outside_the_domain_are_refused_and_logged(
    client: TestClient, registry: Registry
) -> None:
    r = columns(client, registry, "airline", "finance.loan-restriction", [A, B])
    body = assert_problem(r, 403, "forbidden")
    assert [(p["field"], p["rule"]) for p in body["problems"]] == [("measure", "outside-domain")]
    rows = registry.decisions()
    assert [(d["subject"], d["decision"], d["reason"]) for d in rows] == [
        (A, "refused", "measure-outside-domain"),
        (B, "refused", "measure-outside-domain"),
    ]
    assert len(logged(registry, "outside-domain")) == 1


def test_columns_need_a_relying_party_key(client: TestClient, registry: Registry) -> None:
    assert_problem(columns(client, registry, "court", "travel.flights", [A]), 403, "forbidden")
    r = client.post("/v1/checks", json={"purpose": "x", "measure": "travel.flights"})
    assert_problem(r, 401, "unauthenticated")


# ---------------------------------------------------------------------- the lane


class _Routed:
    """The app without its lane: every request through FastAPI's routing, as before the lane."""

    def __init__(self, app: FastAPI):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await FastAPI.__call__(self.app, scope, receive, send)


@pytest.fixture
def routed(listed: TestClient) -> Iterator[httpx.Client]:
    app = listed.app
    assert isinstance(app, ServiceApp) and ("POST", "/v1/checks") in app.lane
    transport = httpx.ASGITransport(app=_Routed(app))  # type: ignore[arg-type]
    import asyncio

    # the ASGI transport is async; run each request on a private loop
    class Client:
        def post(self, url: str, **kw: Any) -> httpx.Response:
            async def go() -> httpx.Response:
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                    r = await c.post(url, **kw)
                    await r.aread()
                    return r

            return asyncio.run(go())

    yield Client()  # type: ignore[misc]


def _strip(doc: Any) -> Any:
    """A response body without what differs between two identical requests (ids, times)."""
    if isinstance(doc, dict):
        return {k: _strip(v) for k, v in doc.items() if k not in ("decision_id", "decision_ids")}
    if isinstance(doc, list):
        return [_strip(x) for x in doc]
    return doc


LANE_CASES: list[tuple[str, str, Any]] = [
    (
        "airline",
        "objects",
        {"purpose": "p", "checks": [{"subject": A, "measure": "travel.flights"}]},
    ),
    ("airline", "columns", {"purpose": "p", "measure": "travel.flights", "subjects": [A, B, C]}),
    ("airline", "invalid", {"purpose": "", "checks": [{"subject": "cn-rid:1", "measure": "x"}]}),
    ("airline", "not an object", [1, 2]),
    (
        "airline",
        "outside",
        {"purpose": "p", "measure": "finance.loan-restriction", "subjects": [A]},
    ),
    ("court", "wrong role", {"purpose": "p", "measure": "travel.flights", "subjects": [A]}),
    ("nobody", "no key", {"purpose": "p", "measure": "travel.flights", "subjects": [A]}),
]


@pytest.mark.parametrize(("who", "case", "body"), LANE_CASES, ids=[c[1] for c in LANE_CASES])
def test_the_lane_answers_as_the_route_does(
    listed: TestClient, routed: Any, registry: Registry, who: str, case: str, body: Any
) -> None:
    headers = registry.headers(who) if who in registry.keys else {}
    lane = listed.post("/v1/checks", json=body, headers=headers)
    route = routed.post("/v1/checks", json=body, headers=headers)
    assert lane.status_code == route.status_code, (case, lane.text, route.text)
    for h in ("content-type", "www-authenticate", "retry-after"):
        assert lane.headers.get(h) == route.headers.get(h), (case, h)
    assert _strip(lane.json()) == _strip(route.json()), case


def test_the_lane_answers_malformed_json_as_the_route_does(
    listed: TestClient, routed: Any, registry: Registry
) -> None:
    headers = {**registry.headers("airline"), "content-type": "application/json"}
    lane = listed.post("/v1/checks", content=b"{nope", headers=headers)
    route = routed.post("/v1/checks", content=b"{nope", headers=headers)
    assert lane.status_code == route.status_code == 400
    assert lane.json() == route.json()


def test_the_lane_leaves_other_methods_to_the_router(
    client: TestClient, registry: Registry
) -> None:
    r = client.get("/v1/checks", headers=registry.headers("airline"))
    assert_problem(r, 405, "method-not-allowed")


def test_the_projector_thread_catches_up_behind_the_answers(
    listed: TestClient, registry: Registry
) -> None:
    """No reader asks, yet every answer gets its row: the server's projector thread makes them."""
    import time

    import sqlalchemy as sa

    from socialcredit.status.decisions import projection_lag
    from socialcredit.status.schema import decisions

    rt = listed.app.state.rt  # type: ignore[attr-defined]
    subjects = [CLEAN] * 30 + [A] * 20
    assert columns(listed, registry, "airline", "travel.flights", subjects).status_code == 200
    deadline = time.monotonic() + 20
    while projection_lag(rt.engine) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert projection_lag(rt.engine) == 0
    with rt.engine.connect() as conn:  # the rows themselves, as projected
        rows = conn.execute(sa.select(decisions.c.subject)).scalars().all()
    assert sorted(rows) == sorted(subjects)


def test_a_body_over_the_limit_is_refused_unread(client: TestClient, registry: Registry) -> None:
    from socialcredit.web.routes import MAX_BODY

    big = b'{"purpose": "' + b"x" * MAX_BODY + b'"}'
    headers = {**registry.headers("airline"), "content-type": "application/json"}
    body = assert_problem(client.post("/v1/checks", content=big, headers=headers), 413, "too-large")
    assert f"{MAX_BODY:,}" in body["detail"]

    def chunked() -> Iterator[bytes]:  # no content-length: counted as it arrives
        yield big[: len(big) // 2]
        yield big[len(big) // 2 :]

    r = client.post("/v1/checks", content=chunked(), headers=headers)
    assert_problem(r, 413, "too-large")
    assert len(logged(registry, "too-large")) == 2
    assert registry.decisions() == []


def test_a_body_in_pieces_is_answered_whole(registry: Registry) -> None:
    """Over a socket, a chunked body written in three pieces, a pause between them, reaches the
    lane as three messages; the answer is the one the whole body gets."""
    body = json.dumps(
        {"purpose": "boarding", "checks": [{"subject": A, "measure": "travel.flights"}]}
    ).encode()
    auth = registry.headers("airline")["Authorization"].encode()
    app = create_app(registry.db, registry.clock, poll_interval=0.01, log_process=True)
    with live_server(app) as url:
        r = httpx.post(
            f"{url}/v1/records",
            json=defaulter("d1", A, "2025-06-01"),
            headers=registry.headers("court"),
        )
        assert r.status_code in (200, 201), r.text
        whole = httpx.post(f"{url}/v1/checks", content=body, headers=registry.headers("airline"))
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/checks HTTP/1.1\r\nHost: test\r\nAuthorization: " + auth + b"\r\n"
                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                b"Connection: close\r\n\r\n"
            )
            for piece in (body[:7], body[7:20], body[20:]):
                time.sleep(0.1)
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sock.sendall(b"0\r\n\r\n")
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
    head, _, text = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), reply
    assert whole.status_code == 200, whole.text
    split = json.loads(text)
    assert split["results"][0]["decision"] == "deny"
    assert _strip(split) == _strip(whole.json())
