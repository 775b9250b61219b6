"""Portal pages over a real registry (TestClient): public pages, masking, sign-in, accessibility."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from socialcredit.clock import FixedClock
from socialcredit.ledger import Ledger
from socialcredit.web import create_app
from socialcredit.web.keys import create_key
from tests.portal.helpers import (
    COMPANY,
    COMPANY2,
    COMPANY3,
    PERSON,
    PERSON2,
    PERSON_MASKED,
    setup_registry,
)

warnings.filterwarnings("ignore", message=".*httpx2.*")
from fastapi.testclient import TestClient  # noqa: E402

UNMASKED = [PERSON.split(":")[1], PERSON2.split(":")[1], PERSON2]


class Page(HTMLParser):
    """The accessibility basics of one page."""

    def __init__(self) -> None:
        super().__init__()
        self.lang: str | None = None
        self.h1 = 0
        self.landmarks: set[str] = set()
        self.labels: set[str] = set()
        self.inputs: list[tuple[str, str | None, bool]] = []  # (tag, id, aria-labelled)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if tag == "h1":
            self.h1 += 1
        if tag in ("main", "nav", "header", "footer"):
            self.landmarks.add(tag)
        if tag == "label" and a.get("for"):
            self.labels.add(str(a["for"]))
        if tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.inputs.append((tag, a.get("id"), bool(a.get("aria-label"))))


def check_accessible(html: str) -> None:
    p = Page()
    p.feed(html)
    assert p.lang == "en"
    assert p.h1 == 1, "exactly one h1"
    assert {"main", "nav", "header", "footer"} <= p.landmarks
    for tag, ident, aria in p.inputs:
        assert aria or (ident is not None and ident in p.labels), f"{tag}#{ident} has no label"


@pytest.fixture
def site(tmp_path: Path, clock: FixedClock) -> Iterator[tuple[TestClient, dict[str, str]]]:
    db = str(tmp_path / "portal.db")
    setup_registry(db, clock, tmp_path / "rb")
    keys = {}
    with Ledger.open(db, clock=clock) as led:
        now = clock.now()
        for name, role, scope in (
            ("subject", "subject", PERSON),
            ("officer", "officer", None),
            ("provider", "provider", "court-1"),
        ):
            keys[name] = create_key(led.engine, now, role, scope, name)[1]
    app = create_app(db, clock, poll_interval=0.01)
    with TestClient(app) as c:
        yield c, keys


PUBLIC_PAGES = [
    "/",
    "/search?q=co",
    "/lists",
    "/entries",
    "/lists/t-portal/defaulters",
    "/rulebooks",
    "/rulebooks/t-portal",
    "/stats",
    "/login",
    f"/entity/{COMPANY}",
]


def test_public_pages_are_accessible_and_never_leak(
    site: tuple[TestClient, dict[str, str]],
) -> None:
    c, _ = site
    for path in PUBLIC_PAGES:
        r = c.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")
        check_accessible(r.text)
        for secret in UNMASKED:
            assert secret not in r.text, f"{secret} on {path}"
    assert c.get("/static/portal.css").status_code == 200
    assert c.get("/static/../app.py").status_code == 404


def test_search_and_entity_pages(site: tuple[TestClient, dict[str, str]]) -> None:
    c, _ = site
    r = c.get("/search", params={"q": "Chengdu Bright"})
    assert COMPANY in r.text and "1 result" in r.text
    page = c.get(f"/entity/{COMPANY}").text
    assert "Dishonest judgment defaulters" in page and "D-d2" in page
    assert "2027-06-09" in page  # last day shown (2y from 2025-06-10)
    # a company on a private list only: its page exists (registry data) but shows no entry
    private = c.get(f"/entity/{COMPANY2}").text
    assert "no entry on a public list" in private and "W-w1" not in private
    # a listing whose publicity period ended is not shown
    old = c.get(f"/entity/{COMPANY3}").text
    assert "D-d3" not in old
    # a person: found by name, shown masked, page by opaque id
    r = c.get("/search", params={"q": "zhang"})
    assert PERSON_MASKED in r.text
    slug = re.search(r'href="/entity/(p\d+)"', r.text)
    assert slug is not None
    person = c.get(f"/entity/{slug.group(1)}")
    assert person.status_code == 200 and "D-d1" in person.text and PERSON_MASKED in person.text
    # a person without public entries does not exist for the public, by any path
    assert c.get("/search", params={"q": "Li Si"}).text.count("/entity/") == 0
    assert c.get(f"/entity/{PERSON2}").status_code == 404
    assert c.get("/entity/p999999").status_code == 404
    # the list page and its filters
    listing = c.get("/lists/t-portal/defaulters").text
    assert COMPANY in listing and PERSON_MASKED in listing and COMPANY3 not in listing
    assert "Late payers" not in c.get("/entries").text.split("<table")[1]
    only_2025_06 = c.get("/lists/t-portal/defaulters", params={"from": "2025-06-01"}).text
    assert COMPANY in only_2025_06 and PERSON_MASKED not in only_2025_06
    assert c.get("/lists/t-portal/late-payers").status_code == 404
    # the rulebook browser shows sources and confidence
    rb = c.get("/rulebooks/t-portal").text
    assert "Source: test fixture" in rb and "confidence U" in rb and "published for" in rb


def test_sign_in_and_out(site: tuple[TestClient, dict[str, str]]) -> None:
    c, keys = site
    assert c.get("/me", follow_redirects=False).status_code == 303
    bad = c.post("/login", data={"token": "sck_nope_nope"})
    assert bad.status_code == 401 and "not accepted" in bad.text
    prov = c.post("/login", data={"token": keys["provider"]})
    assert prov.status_code == 403
    r = c.post("/login", data={"token": keys["subject"]}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/me"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert keys["subject"] not in cookie
    home = c.get("/").text
    assert "Signed in as subject" in home and PERSON_MASKED in home
    # a forged cookie is refused (each sent alone: the jar would keep the server's beside it)
    real = cookie.split(";")[0].split("=", 1)[1]
    c.cookies.clear()
    c.cookies.set("sc_session", real)
    assert "Signed in as subject" in c.get("/").text  # a cookie set this way is the one sent
    c.cookies.clear()
    c.cookies.set("sc_session", real[:-2] + ("11" if real.endswith("00") else "00"))
    assert "Signed in" not in c.get("/").text
    c.cookies.clear()
    r = c.post("/login", data={"token": keys["subject"]}, follow_redirects=False)
    c.post("/logout", follow_redirects=False)
    c.cookies.clear()
    assert "Signed in" not in c.get("/").text


def test_my_file_pages(site: tuple[TestClient, dict[str, str]]) -> None:
    c, keys = site
    c.post("/login", data={"token": keys["subject"]})
    for path in ("/me", "/me/why", "/me/checks", "/me/notices", "/me/repair"):
        r = c.get(path)
        assert r.status_code == 200, path
        check_accessible(r.text)
    me = c.get("/me").text
    assert "D-d1" in me and "Dishonest judgment defaulters" in me
    why = c.get("/me/why").text
    assert "refuses" in why  # the entry rule is named
    # how long the checks about the subject are kept (this app was given no period)
    assert "Decisions are kept without a time limit." in c.get("/me/checks").text
    # an officer key does not open /me, a subject key does not open the console
    assert c.get("/console").status_code == 403
    c.cookies.clear()
    c.post("/login", data={"token": keys["officer"]})
    assert c.get("/me").status_code == 403
    r = c.get("/console")
    assert r.status_code == 200 and "Case queue" in r.text
    check_accessible(r.text)
    check_accessible(c.get("/console/tips").text)


def test_forms_need_the_session_csrf_token(
    site: tuple[TestClient, dict[str, str]],
) -> None:
    c, keys = site
    c.post("/login", data={"token": keys["subject"]})
    me = c.get("/me").text
    record = re.search(r'href="/me/object/(\d+)"', me)
    assert record is not None
    path = f"/me/object/{record.group(1)}"
    form = c.get(path).text
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', form)
    assert token is not None
    # without the token nothing happens
    r = c.post(path, data={"grounds": "not mine"})
    assert r.status_code == 403
    assert "disputed" not in c.get("/me").text.split("My records")[1]
    # an empty objection is refused with the field named, and nothing changes
    r = c.post(path, data={"grounds": " ", "csrf": token.group(1)})
    assert r.status_code == 422 and "grounds" in r.text
    r = c.post(path, data={"grounds": "I paid", "csrf": token.group(1)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/me?done=objection"
    after = c.get("/me?done=objection").text
    assert "objection was recorded" in after and "Objection under way" in after
    # another subject's record cannot be reached
    assert c.get("/me/object/999999").status_code == 404


def test_console_verifies_a_tip(tmp_path: Path, clock: FixedClock) -> None:
    """A tip is queued, shown under 'Tips to verify', and an officer verifies it in the console."""
    from socialcredit.cases.tips import submit_tip
    from socialcredit.status.service import StatusService

    db = str(tmp_path / "tips.db")
    setup_registry(db, clock, tmp_path / "rb")
    with Ledger.open(db, clock=clock) as led:
        books = StatusService(led).rulebooks
        case = submit_tip(
            led, books, "cn-rid:440524188001010014", COMPANY2, "They dump waste at night."
        )
        officer = create_key(led.engine, clock.now(), "officer", PERSON, "officer")[1]
        auditor = create_key(led.engine, clock.now(), "auditor", None, "auditor")[1]
    app = create_app(db, clock, poll_interval=0.01)
    with TestClient(app) as c:
        c.post("/login", data={"token": auditor})
        tips = c.get("/console/tips").text
        assert "They dump waste at night." in tips
        page = c.get(f"/console/cases/{case['case_id']}").text
        assert "Record decision" not in page  # an auditor reads but does not decide
        c.cookies.clear()
        c.post("/login", data={"token": officer})
        page = c.get(f"/console/cases/{case['case_id']}").text
        check_accessible(page)
        token = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
        assert token is not None
        r = c.post(
            f"/console/cases/{case['case_id']}",
            data={"csrf": token.group(1), "decision": "confirm", "reason": "wrong choice"},
        )
        assert r.status_code == 422 and "not a decision" in r.text  # not a tip decision
        r = c.post(
            f"/console/cases/{case['case_id']}",
            data={"csrf": token.group(1), "decision": "verify", "reason": "seen on site"},
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert "They dump waste at night." not in c.get("/console/tips").text
        done = c.get(f"/console/cases/{case['case_id']}").text
        assert "Record decision" not in done and PERSON in done  # decided, by this officer


def test_repair_applied_for_and_approved(tmp_path: Path, clock: FixedClock) -> None:
    """The subject applies in /me/repair; an officer approves in the console; the entry leaves."""
    db = str(tmp_path / "repair.db")
    setup_registry(db, clock, tmp_path / "rb")
    with Ledger.open(db, clock=clock) as led:
        subject = create_key(led.engine, clock.now(), "subject", PERSON, "me")[1]
        officer = create_key(led.engine, clock.now(), "officer", PERSON2, "officer")[1]
    app = create_app(db, clock, poll_interval=0.01)
    with TestClient(app) as c:
        assert PERSON_MASKED in c.get("/lists/t-portal/defaulters").text
        c.post("/login", data={"token": subject})
        page = c.get("/me/repair").text
        check_accessible(page)
        assert "You may apply now" in page
        token = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
        assert token is not None
        r = c.post(
            "/me/repair",
            data={
                "csrf": token.group(1),
                "rulebook": "t-portal",
                "list": "defaulters",
                "statement": "The debt is paid; receipt attached to the court file.",
            },
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        assert "repair" in c.get("/me").text
        c.cookies.clear()
        c.post("/login", data={"token": officer})
        queue = c.get("/console?type=repair").text
        case = re.search(r'href="/console/cases/(\d+)"', queue)
        assert case is not None
        page = c.get(f"/console/cases/{case.group(1)}").text
        token = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
        assert token is not None
        r = c.post(
            f"/console/cases/{case.group(1)}",
            data={"csrf": token.group(1), "decision": "approve", "reason": "paid in full"},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        app.state.rt.tick(maintenance=True)
        assert PERSON_MASKED not in c.get("/lists/t-portal/defaulters").text
