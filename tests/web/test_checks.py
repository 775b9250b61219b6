"""POST /v1/checks: the columnar form, and the lane that serves the route.

The columnar form (one measure, many subjects) must answer exactly what the object form answers,
log one decision per subject with consecutive ids, and refuse what the object form refuses, naming
``subjects[i]`` or ``measure``. Asked for ``answers: "exceptions"``, it must answer what the full
columns answer, only shorter (the answers that are not the default, the keys normalised), and log
and count exactly what they log and count. The lane (``ServiceApp``) must answer every request
exactly as the routed endpoint would: same status, same headers that matter, same body.
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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    answers: str | None = None,
) -> Any:
    body = {"purpose": purpose, "measure": measure, "subjects": subjects}
    if answers is not None:
        body["answers"] = answers
    return c.post("/v1/checks", json=body, headers=reg.headers(who))


def invalid(c: TestClient, reg: Registry, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The problems of a body the airline sends that is refused as invalid (422)."""
    r = c.post("/v1/checks", json=body, headers=reg.headers("airline"))
    problems: list[dict[str, Any]] = assert_problem(r, 422, "invalid-input")["problems"]
    return problems


def rules(problems: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(p["field"], p["rule"]) for p in problems]


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
    problems = invalid(client, registry, {"measure": "travel.flight", "subjects": many, "x": 1})
    assert rules(problems) == [
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


def test_columns_need_a_relying_party_key(client: TestClient, registry: Registry) -> None:
    assert_problem(columns(client, registry, "court", "travel.flights", [A]), 403, "forbidden")
    r = client.post("/v1/checks", json={"purpose": "x", "measure": "travel.flights"})
    assert_problem(r, 401, "unauthenticated")


# ---------------------------------------------------------------------- answers: "exceptions"


def exceptions(
    c: TestClient,
    reg: Registry,
    who: str,
    measure: str,
    subjects: list[str],
    purpose: str = "manifest",
) -> Any:
    return columns(c, reg, who, measure, subjects, purpose, answers="exceptions")


def expand(doc: dict[str, Any], sent: list[str]) -> dict[str, Any]:
    """An exceptions answer to ``sent`` as the all form spells it out, after checking what the
    form promises: both lists in subject order, each exception's id first + index, every key
    that is not the one sent listed as normalised (and only those)."""
    n = doc["count"]
    assert n == len(sent) == doc["decision_ids"]["count"]
    first = decode_id(doc["decision_ids"]["first"])
    subjects = list(sent)
    for kind in ("normalised", "exceptions"):
        at = [x["index"] for x in doc[kind]]
        assert at == sorted(set(at)) and all(0 <= i < n for i in at), kind
    for x in doc["normalised"]:
        assert x["subject"] != sent[x["index"]]
        subjects[x["index"]] = x["subject"]
    decisions = [doc["default"]["decision"]] * n
    reasons = [doc["default"]["reason"]] * n
    bases: list[Any] = [None] * n
    for x in doc["exceptions"]:
        i = x["index"]
        assert x["subject"] == subjects[i]  # a normalised key is among the normalised too
        assert x["decision_id"] == encode_id(first + i)
        assert (x["decision"], x["reason"]) != (decisions[i], reasons[i])
        decisions[i], reasons[i], bases[i] = x["decision"], x["reason"], x["basis"]
    return {
        "purpose": doc["purpose"],
        "measure": doc["measure"],
        "subjects": subjects,
        "decisions": decisions,
        "reasons": reasons,
        "bases": bases,
    }


def _without_ids(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "decision_ids"}


LEGACY_A = "cn-rid:110105491231002"  # A's number in the legacy 15-digit form


FIRM = "cn-uscc:91110105MA01AB3CXM"  # canonical, yet parse_key's to check (not a cn-rid key)


def mixed_batch() -> list[str]:
    """Listed, clean, unknown and non-canonical keys (of listed and of clean subjects, and of
    another scheme), past the one-by-one threshold so that the keys are scanned together."""
    rng = random.Random(5)
    unknown = [f"cn-rid:{ids.random_rid(rng)}" for _ in range(SMALL)]
    odd = [A[:-1] + "x", " " + B, LEGACY_A]  # indexes 13 to 15
    return [B, A, CLEAN, *unknown[:10], *odd, *unknown[10:], C, A, FIRM, FIRM.lower()]


def test_exceptions_are_what_the_all_form_answers(listed: TestClient, registry: Registry) -> None:
    sent = mixed_batch()
    every = columns(listed, registry, "airline", "travel.flights", sent).json()
    r = exceptions(listed, registry, "airline", "travel.flights", sent)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert list(doc) == [
        "purpose",
        "measure",
        "count",
        "default",
        "exceptions",
        "normalised",
        "decision_ids",
    ]
    assert doc["default"] == {"decision": "allow", "reason": "no-restriction"}
    assert expand(doc, sent) == _without_ids(every)
    n = len(sent)
    assert [x["index"] for x in doc["exceptions"]] == [1, 13, 15, n - 3]
    assert {x["reason"] for x in doc["exceptions"]} == {"restricted-by-list"}
    assert doc["normalised"] == [
        {"index": 13, "subject": A},
        {"index": 14, "subject": B},
        {"index": 15, "subject": A},
        {"index": n - 1, "subject": FIRM},
    ]
    assert doc["exceptions"][0]["basis"] == every["bases"][1] and every["bases"][1] is not None


def test_exceptions_of_a_handful_name_the_normalised_keys(
    listed: TestClient, registry: Registry
) -> None:
    """Fewer than SMALL keys are checked one by one (no scan): the same answer."""
    assert ids.parse_key(LEGACY_A).key == A
    sent = [LEGACY_A, B, " " + CLEAN, FIRM]
    doc = exceptions(listed, registry, "airline", "travel.flights", sent).json()
    assert doc["normalised"] == [{"index": 0, "subject": A}, {"index": 2, "subject": CLEAN}]
    assert [(x["index"], x["subject"], x["decision"]) for x in doc["exceptions"]] == [
        (0, A, "deny")
    ]
    every = columns(listed, registry, "airline", "travel.flights", sent).json()
    assert expand(doc, sent) == _without_ids(every)
    clean = exceptions(listed, registry, "airline", "travel.flights", [B, CLEAN]).json()
    assert clean["exceptions"] == [] and clean["normalised"] == [] and clean["count"] == 2


def test_exceptions_are_logged_as_every_answer_is(listed: TestClient, registry: Registry) -> None:
    """The log holds one row per subject, the same rows whichever form the answer takes; an
    unknown subject's row is a clean subject's row."""
    sent = mixed_batch()
    n = len(sent)
    every = columns(listed, registry, "airline", "travel.flights", sent, purpose="p").json()
    doc = exceptions(listed, registry, "airline", "travel.flights", sent, purpose="p").json()
    rows = registry.decisions()
    assert len(rows) == 2 * n
    by_id = {row["decision_id"]: row for row in rows}
    firsts = decode_id(every["decision_ids"]["first"]), decode_id(doc["decision_ids"]["first"])
    strip = lambda row: {k: v for k, v in row.items() if k != "decision_id"}  # noqa: E731
    all_rows = [strip(by_id[firsts[0] + i]) for i in range(n)]
    exc_rows = [strip(by_id[firsts[1] + i]) for i in range(n)]
    assert exc_rows == all_rows
    assert [row["subject"] for row in exc_rows] == every["subjects"]
    denied = {x["index"] for x in doc["exceptions"]}
    assert [i for i, row in enumerate(exc_rows) if row["decision"] == "deny"] == sorted(denied)
    unknown, clean = sent.index(CLEAN), sent.index(B)
    assert {k: v for k, v in exc_rows[unknown].items() if k != "subject"} == {
        k: v for k, v in exc_rows[clean].items() if k != "subject"
    }


def test_exceptions_count_answers_as_the_columns_do(listed: TestClient, registry: Registry) -> None:
    sent = mixed_batch()
    counts = []
    for ask in (columns, exceptions):
        denied, allowed = answered(listed, "deny"), answered(listed, "allow")
        assert ask(listed, registry, "airline", "travel.flights", sent).status_code == 200
        counts.append((answered(listed, "deny") - denied, answered(listed, "allow") - allowed))
    assert counts[0] == counts[1] == (4, len(sent) - 4)


def test_exceptions_of_a_reward(client: TestClient, registry: Registry) -> None:
    from socialcredit.ledger import Ledger

    with Ledger.open(registry.db, clock=registry.clock) as led:
        led.furnish("gov-1", commendation("h1", A, "2025-12-01"))
    client.app.state.rt.tick(maintenance=True)  # type: ignore[attr-defined]
    sent = [B, A[:-1] + "x", CLEAN]
    doc = exceptions(client, registry, "inspector", "inspection.reduced", sent).json()
    assert doc["default"] == {"decision": "standard", "reason": "no-reward"}
    assert [(x["index"], x["decision"], x["reason"]) for x in doc["exceptions"]] == [
        (1, "grant", "reward-by-grade")
    ]
    every = columns(client, registry, "inspector", "inspection.reduced", sent).json()
    assert expand(doc, sent) == _without_ids(every)
    assert every["decisions"] == ["standard", "grant", "standard"]


@pytest.mark.parametrize("value", ["none", "ALL", "", None, 1, True, ["exceptions"], {"a": 1}])
def test_answers_must_be_all_or_exceptions(
    client: TestClient, registry: Registry, value: Any
) -> None:
    [problem] = invalid(
        client,
        registry,
        {"purpose": "m", "measure": "travel.flights", "subjects": [A], "answers": value},
    )
    assert (problem["field"], problem["rule"]) == ("answers", "enum")
    assert problem["value"] == (value if isinstance(value, str) else None)
    assert '"all"' in problem["message"] and '"exceptions"' in problem["message"]
    assert registry.decisions() == []


def test_answers_are_checked_with_the_rest_of_the_body(
    client: TestClient, registry: Registry
) -> None:
    body = {"measure": "travel.flight", "subjects": [A, "cn-rid:1"], "answers": "some"}
    assert rules(invalid(client, registry, body)) == [
        ("purpose", "required"),
        ("measure", "unknown-measure"),
        ("answers", "enum"),
        ("subjects[1]", "length"),
    ]
    assert registry.decisions() == []


def test_answers_are_not_a_field_of_the_object_form(client: TestClient, registry: Registry) -> None:
    for value in ("exceptions", "all"):
        checks = [{"subject": A, "measure": "travel.flights"}]
        body = {"purpose": "m", "checks": checks, "answers": value}
        assert rules(invalid(client, registry, body)) == [("answers", "unknown-field")]
    assert registry.decisions() == []


@pytest.mark.parametrize("ask", ["columns", "exceptions"])
def test_columns_outside_the_domain_are_refused_and_logged(
    client: TestClient, registry: Registry, ask: str
) -> None:
    """Either answer form: nothing is answered, every subject is logged as refused."""
    send = columns if ask == "columns" else exceptions
    r = send(client, registry, "airline", "finance.loan-restriction", [A, B])
    body = assert_problem(r, 403, "forbidden")
    assert [(p["field"], p["rule"]) for p in body["problems"]] == [("measure", "outside-domain")]
    rows = registry.decisions()
    assert [(d["subject"], d["decision"], d["reason"]) for d in rows] == [
        (A, "refused", "measure-outside-domain"),
        (B, "refused", "measure-outside-domain"),
    ]
    assert len(logged(registry, "outside-domain")) == 1


@pytest.fixture(scope="module")
def pool() -> list[str]:
    rng = random.Random(11)
    return [f"cn-rid:{ids.random_rid(rng)}" for _ in range(40)]


@pytest.fixture
def many_listed(listed: TestClient, registry: Registry, pool: list[str]) -> TestClient:
    """A, and the first 8 of ``pool``, on the defaulter list."""
    for n, subject in enumerate(pool[:8]):
        r = listed.post(
            "/v1/records",
            json=defaulter(f"m{n}", subject, "2025-06-01", case=f"M{n}"),
            headers=registry.headers("court"),
        )
        assert r.status_code in (200, 201), r.text
    return listed


_SPELLINGS = st.sampled_from(["as sent", "space", "lower"])


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(picks=st.lists(st.tuples(st.integers(0, 41), _SPELLINGS), min_size=1, max_size=70))
def test_exceptions_expand_to_the_all_form(
    many_listed: TestClient, registry: Registry, pool: list[str], picks: list[tuple[int, str]]
) -> None:
    """For any mix of listed (A, pool[:8]), clean (B) and unknown subjects, each sent canonical
    or in a form parse_key normalises, below and past the one-by-one threshold."""
    keys = [*pool, A, B]
    sent = []
    for k, spelling in picks:
        key = keys[k]
        sent.append(
            " " + key if spelling == "space" else key.lower() if spelling == "lower" else key
        )
    doc = exceptions(many_listed, registry, "airline", "travel.flights", sent).json()
    every = columns(many_listed, registry, "airline", "travel.flights", sent).json()
    assert expand(doc, sent) == _without_ids(every)
    listed_keys = {A, *pool[:8]}
    assert [x["index"] for x in doc["exceptions"]] == [
        i for i, (k, _) in enumerate(picks) if keys[k] in listed_keys
    ]


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
    (
        "airline",
        "exceptions",
        {
            "purpose": "p",
            "measure": "travel.flights",
            "subjects": [A, " " + B, C],
            "answers": "exceptions",
        },
    ),
    (
        "airline",
        "bad answers",
        {"purpose": "p", "measure": "travel.flights", "subjects": [A], "answers": "some"},
    ),
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


@pytest.mark.parametrize("empty", ["", "   "])
def test_an_empty_subject_is_refused_in_either_form(
    client: TestClient, registry: Registry, empty: str
) -> None:
    """An empty key is not a subject: refused with the field and the rule, and nothing is
    answered or logged (it was answered "allow" under the key "" in the columnar form, and
    dropped from the answers without a word in the object form)."""
    many = [CLEAN] * 40  # the scanned path
    many[5] = empty
    for body, field in (
        ({"purpose": "p", "measure": "travel.flights", "subjects": [CLEAN, empty]}, "subjects[1]"),
        ({"purpose": "p", "measure": "travel.flights", "subjects": many}, "subjects[5]"),
        (
            {
                "purpose": "p",
                "checks": [
                    {"subject": CLEAN, "measure": "travel.flights"},
                    {"subject": empty, "measure": "travel.flights"},
                ],
            },
            "checks[1].subject",
        ),
    ):
        r = client.post("/v1/checks", json=body, headers=registry.headers("airline"))
        problem = assert_problem(r, 422, "invalid-input")
        assert [(p["field"], p["rule"], p["value"]) for p in problem["problems"]] == [
            (field, "scheme", empty)
        ]
    assert registry.decisions() == []
