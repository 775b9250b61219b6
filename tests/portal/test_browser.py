"""The portal in real Chromium (Debian's, driven by Playwright) against a real uvicorn server.

The server runs in a thread over a SQLite registry with an injected FixedClock that the test
moves. Screenshots of the key pages go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from socialcredit.clock import FixedClock
from socialcredit.ledger import Ledger
from socialcredit.status.parties import add_party
from socialcredit.web import create_app
from socialcredit.web.keys import create_key
from tests.portal.helpers import (
    COMPANY,
    COMPANY3,
    PERSON,
    PERSON2,
    PERSON_MASKED,
    RULEBOOK_YAML,
    setup_registry,
)
from tests.web.conftest import live_server

warnings.filterwarnings("ignore", message=".*httpx2.*")

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
OFFICER = "cn-rid:110101199003074477"
OFFICER2 = "cn-rid:11010519491231002X"  # any subject can be an officer; not for their own case

# the late-payers list needs a human review before a listing takes effect
E2E_RULEBOOK = RULEBOOK_YAML.replace(
    "    entry:\n      - id: twice-a-year",
    "    review: {required: true}\n    entry:\n      - id: twice-a-year",
).replace("measures: [consumption.star-hotels]", "measures: [travel.g-trains]")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


class Site:
    def __init__(self, base: str, clock: FixedClock, keys: dict[str, str], app: Any):
        self.base, self.clock, self.keys, self.app = base, clock, keys, app

    def shot(self, page: Any, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def check(self, subject: str, measure: str = "travel.flights") -> str:
        r = httpx.post(
            f"{self.base}/v1/checks",
            json={"purpose": "boarding", "checks": [{"subject": subject, "measure": measure}]},
            headers={"Authorization": f"Bearer {self.keys['airline']}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        decision: str = r.json()["results"][0]["decision"]
        return decision

    def tick(self) -> None:
        """One maintenance round now (the background loop would do it within a second)."""
        self.app.state.rt.tick(maintenance=True)


FOUR_EYES_RULEBOOK = E2E_RULEBOOK.replace(
    "review: {required: true}", "review: {required: true, four_eyes: true}"
)


@pytest.fixture
def site(tmp_path: Path, clock: FixedClock, request: pytest.FixtureRequest) -> Iterator[Site]:
    db = str(tmp_path / "portal.db")
    rulebook = getattr(request, "param", E2E_RULEBOOK)
    setup_registry(db, clock, tmp_path / "rb", rulebook)
    keys: dict[str, str] = {}
    with Ledger.open(db, clock=clock) as led:
        now = clock.now()
        add_party(led.engine, led.catalogue, now, "air-1", "Test Air", "airline")
        for name, role, scope in (
            ("subject", "subject", PERSON),
            ("officer", "officer", OFFICER),
            ("officer2", "officer", OFFICER2),
            ("airline", "relying-party", "air-1"),
        ):
            keys[name] = create_key(led.engine, now, role, scope, name)[1]
    app = create_app(db, clock, poll_interval=0.01, maintenance_interval=0.2)
    with live_server(app) as base:
        yield Site(base, clock, keys, app)


def sign_in(page: Any, base: str, token: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("API key").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def eventually(fn: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not fn():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_visitor_sees_only_public_entries(browser: Any, site: Site) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(site.base + "/")
    assert page.locator("html").get_attribute("lang") == "en"
    site.shot(page, "01-home")
    page.get_by_label("Name or identifier").fill("Co., Ltd.")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/search\?q="))
    site.shot(page, "02-search")
    # progressive enhancement: results as you type (the page works without it, as above)
    page.goto(site.base + "/search")
    page.get_by_label("Name or identifier").press_sequentially("chengdu", delay=40)
    page.get_by_role("link", name="Chengdu Bright Pipes Co., Ltd.").wait_for(timeout=10_000)
    assert "q=chengdu" in page.url
    page.get_by_role("link", name="Chengdu Bright Pipes Co., Ltd.").click()
    page.wait_for_url(re.compile(r"/entity/"))
    body = page.locator("main").inner_text()
    assert COMPANY in body and "D-d2" in body and "Dishonest judgment defaulters" in body
    site.shot(page, "03-entity")
    # a listing whose publicity period is over is not shown anywhere
    page.goto(f"{site.base}/entity/{COMPANY3}")
    assert "D-d3" not in page.content()
    page.goto(f"{site.base}/lists/t-portal/defaulters")
    listing = page.locator("main").inner_text()
    assert PERSON_MASKED in listing and COMPANY in listing and COMPANY3 not in listing
    assert PERSON.split(":")[1] not in page.content()
    site.shot(page, "04-list")
    page.goto(f"{site.base}/rulebooks/t-portal")
    site.shot(page, "05-rulebook")
    page.goto(f"{site.base}/stats")
    assert page.locator("svg").count() >= 1
    site.shot(page, "06-stats")
    page.close()


def test_the_whole_story(browser: Any, site: Site, tmp_path: Path) -> None:
    """Object; the authority does not answer; the record is suspended and the check changes;
    an officer decides; the subject downloads a report and it verifies."""
    base = site.base
    assert site.check(PERSON) == "deny"  # on the defaulters list: no flights

    # the subject objects to the record in their file
    me = browser.new_page(viewport={"width": 1200, "height": 900})
    sign_in(me, base, site.keys["subject"])
    assert me.url.endswith("/me")
    site.shot(me, "10-my-file")
    me.get_by_role("link", name="Object to this record").first.click()
    me.get_by_label("Why is this record wrong?").fill(
        "I paid the judgment debt in full in February; the court has the receipt."
    )
    site.shot(me, "11-object")
    me.get_by_role("button", name="Send my objection").click()
    me.wait_for_url(re.compile(r"/me\?done=objection"))
    text = me.locator("main").inner_text()
    assert "disputed" in text and "objection" in text
    site.shot(me, "12-objected")
    assert site.check(PERSON) == "deny"  # disputed records still count until suspended

    # the authority does not answer; 31 days pass (objection_response: 30 days)
    site.clock.advance(days=31)
    site.tick()
    eventually(lambda: site.check(PERSON) == "allow", "the suspension to reach the check")
    me.reload()  # a month later the session has ended (sessions last hours, on the registry clock)
    assert "/login" in me.url
    sign_in(me, base, site.keys["subject"])
    assert "suspended" in me.locator("main").inner_text()
    site.shot(me, "13-suspended")
    # and the entry is no longer public
    pub = browser.new_page()

    def gone() -> bool:
        pub.goto(f"{base}/search?q=zhang")
        return PERSON_MASKED not in pub.locator("main").inner_text()

    eventually(gone, "the suspended entry to leave the public search")
    pub.close()

    # who checked me: the airline, twice denied and once allowed at least
    me.goto(f"{base}/me/checks")
    assert "Test Air" in me.locator("main").inner_text()
    site.shot(me, "14-who-checked-me")
    me.goto(f"{base}/me/notices")
    site.shot(me, "15-notices")

    # an officer decides: the proposed late-payers listing of another subject needs review
    eventually(lambda: _has_review(site), "the review case to open")
    assert site.check(PERSON2, "travel.g-trains") == "allow"  # proposed: no effect before review
    off = browser.new_page(viewport={"width": 1200, "height": 900})
    sign_in(off, base, site.keys["officer"])
    assert off.url.endswith("/console")
    queue = off.locator("main").inner_text()
    assert "objection" in queue and "review" in queue  # ordered by deadline
    site.shot(off, "20-console-queue")
    off.get_by_role("navigation", name="Console").get_by_role("link", name="Reviews").click()
    off.get_by_role("link", name=re.compile(r"#\d+")).first.click()
    assert PERSON2 in off.locator("main").inner_text()
    off.get_by_label("Reason (recorded in the audit log with your identity)").fill(
        "Two late payments within a year, both receipts checked against the utility's ledger."
    )
    off.get_by_label("Confirm the listing").check()
    site.shot(off, "21-console-case")
    off.get_by_role("button", name="Record decision").click()
    off.wait_for_url(re.compile(r"/console\?done=decided"))
    site.tick()
    assert "decision was recorded" in off.locator("main").inner_text()
    eventually(
        lambda: site.check(PERSON2, "travel.g-trains") == "deny",
        "the confirmed listing to take effect",
    )
    off.close()

    # the subject downloads their report, and it verifies offline
    me.goto(f"{base}/me")
    with me.expect_download() as dl:
        me.get_by_role("link", name="Download my report (PDF)").click()
    pdf = tmp_path / "my-report.pdf"
    dl.value.save_as(pdf)
    pem = tmp_path / "registry.pem"
    pem.write_bytes(httpx.get(f"{base}/.well-known/socialcredit-report-key.pem").content)
    from typer.testing import CliRunner

    from socialcredit.cli.main import app as cli

    ok = CliRunner().invoke(cli, ["report", "verify", str(pdf), "--key", str(pem)])
    assert ok.exit_code == 0, ok.output
    assert "VALID" in ok.output
    tampered = tmp_path / "tampered.pdf"
    data = bytearray(pdf.read_bytes())
    i = data.find(b"/Producer")
    data[i + 1] ^= 0x01
    tampered.write_bytes(bytes(data))
    bad = CliRunner().invoke(cli, ["report", "verify", str(tampered), "--key", str(pem)])
    assert bad.exit_code == 2
    me.close()


def _has_review(site: Site) -> bool:
    site.tick()
    from socialcredit.cases.actions import list_cases

    return bool(list_cases(site.app.state.rt.engine, case_type="review", open_only=True))


def test_accessibility_basics_in_the_browser(browser: Any, site: Site) -> None:
    """Every form control has a label, one h1, lang set, landmarks present."""
    page = browser.new_page()
    for path in ("/", "/search?q=co", "/lists", "/entries", "/login", "/stats"):
        page.goto(site.base + path)
        assert page.locator("h1").count() == 1, path
        assert page.locator("html").get_attribute("lang") == "en"
        for el in page.locator("input:not([type=hidden]), select, textarea").all():
            ident = el.get_attribute("id")
            assert ident and page.locator(f"label[for='{ident}']").count() == 1, (path, ident)
        assert page.locator("main").count() == 1 and page.locator("nav").count() >= 1
    page.close()


@pytest.mark.parametrize("site", [FOUR_EYES_RULEBOOK], indirect=True)
def test_four_eyes_in_the_console(browser: Any, site: Site) -> None:
    """A listing that needs two officers: the same officer cannot give both confirmations."""
    eventually(lambda: _has_review(site), "the review case to open")

    def confirm(token: str, reason: str) -> str:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        try:
            sign_in(page, site.base, token)
            page.goto(f"{site.base}/console?type=review")
            page.get_by_role("link", name=re.compile(r"#\d+")).first.click()
            page.get_by_label("Reason (recorded in the audit log with your identity)").fill(reason)
            page.get_by_label("Confirm the listing").check()
            page.get_by_role("button", name="Record decision").click()
            page.wait_for_load_state()
            text: str = page.locator("main").inner_text()
            if "Nothing was changed" in text:
                site.shot(page, "22-four-eyes-refused")
            return text
        finally:
            page.close()

    assert "decision was recorded" in confirm(site.keys["officer"], "first look: receipts checked")
    site.tick()
    assert site.check(PERSON2, "travel.g-trains") == "allow"  # one of two: still no effect
    again = confirm(site.keys["officer"], "second look by the same officer")
    assert "Nothing was changed" in again
    assert "decision was recorded" in confirm(site.keys["officer2"], "second officer agrees")
    site.tick()
    eventually(
        lambda: site.check(PERSON2, "travel.g-trains") == "deny", "the confirmed listing to apply"
    )
