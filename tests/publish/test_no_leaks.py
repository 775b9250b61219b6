"""Nothing past its publicity period, and no unmasked personal identifier, is ever published.

Every public surface is collected — open-data downloads, feeds, enterprise reports, verification
pages, the key set, and (when the portal exists) the public portal pages found by crawling and
searching — and scanned for what must never be there. The test first proves that those things do
exist in the registry (privately), and that the scanner finds them in a private document, so the
check can fail.
"""

from __future__ import annotations

import html
import io
import re
import urllib.parse
from pathlib import Path

import pyarrow.parquet as pq
import pypdf
from fastapi.testclient import TestClient

from socialcredit.publish.opendata import FILES
from tests.publish.helpers import (
    NAMES,
    ORG_CLEAN,
    ORG_PAST,
    ORG_PUBLIC,
    ORG_RED,
    PERSON_CLEAN,
    PERSON_PRIVATE,
    PERSON_PUBLIC,
    PERSONS,
    World,
)

# an 18-character resident identity number anywhere (region, birth date, sequence, check)
RID = re.compile(r"\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]")
PORTAL = Path(__file__).parents[2] / "src" / "socialcredit" / "web" / "routes_portal.py"
SKIP_PREFIXES = ("/login", "/logout", "/me", "/console", "/docs", "/static", "/openapi")

# records whose listing is private or past its publicity period (decision numbers)
PRIVATE_DECISIONS = ("DN-t-b", "DN-t-y", "DN-w-b1", "DN-w-b2", "DN-w-c")


def forbidden_today() -> list[str]:
    value = PERSON_PRIVATE.split(":")[1]
    return [
        *PRIVATE_DECISIONS,
        NAMES[PERSON_PRIVATE],  # a person only on a private list and a list past its period
        f"{value[:4]}**********{value[-4:]}",  # ... not even masked
        NAMES[PERSON_CLEAN],
    ]


def forbidden_later() -> list[str]:
    """After the defaulter list's 3-year publicity period for the public person has passed."""
    value = PERSON_PUBLIC.split(":")[1]
    return [
        *forbidden_today(),
        "DN-d-a",
        f"{value[:4]}**********{value[-4:]}",
        NAMES[PERSON_PUBLIC],
    ]


def leaks(text: str, forbidden: list[str]) -> list[str]:
    found = [m.group(0) for m in RID.finditer(text)]
    found += [s for s in forbidden if s in text]
    return found


def _pdf_text(data: bytes) -> str:
    return "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(data)).pages)


def _links(page: str) -> list[str]:
    out = []
    for href in re.findall(r'href="([^"]+)"', page):
        href = href.replace("&amp;", "&")
        parts = urllib.parse.urlsplit(href)
        if parts.scheme or parts.netloc or not parts.path.startswith("/"):
            continue
        if parts.path.startswith(SKIP_PREFIXES):
            continue
        out.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return out


def crawl_portal(client: TestClient, limit: int = 150) -> dict[str, str]:
    if not PORTAL.exists() or "@router.get" not in PORTAL.read_text():
        return {}
    seeds = ["/", "/lists", "/entries", "/rulebooks", "/stats", "/search"]
    for lst in ("defaulters", "late-payers", "tax-arrears", "honours"):  # private ones too
        seeds += [f"/lists/t-publish/{lst}", f"/entries?rulebook=t-publish&list={lst}"]
    for key in (*PERSONS, ORG_PUBLIC, ORG_PAST, ORG_RED, ORG_CLEAN):
        value = key.split(":")[1]
        seeds += [
            f"/entity/{key}",
            "/search?" + urllib.parse.urlencode({"q": value}),
            "/search?" + urllib.parse.urlencode({"q": value[:10]}),
            "/search?" + urllib.parse.urlencode({"q": NAMES[key]}),
            "/search?" + urllib.parse.urlencode({"q": NAMES[key][:2]}),
        ]
    pages: dict[str, str] = {}
    todo = list(seeds)
    while todo and len(pages) < limit:
        path = todo.pop(0)
        if path in pages:
            continue
        r = client.get(path)
        text = r.text
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query).get("q", [""])[0]
        if query:  # the page repeats what was asked: that is not published data
            for echo in {query, html.escape(query)}:
                text = text.replace(echo, "")
        pages[path] = text
        if "text/html" in r.headers.get("content-type", ""):
            todo += [p for p in _links(r.text) if p not in pages]
    return pages


def collect(client: TestClient, world: World) -> dict[str, str]:
    """Every public document, as text."""
    out: dict[str, str] = {}
    for name in FILES:
        r = client.get(f"/open-data/{name}")
        assert r.status_code == 200
        if name.endswith(".parquet"):
            out[name] = str(pq.read_table(io.BytesIO(r.content)).to_pylist()) + str(
                pq.read_table(io.BytesIO(r.content)).schema.metadata
            )
        else:
            out[name] = r.text
    for path in (
        "/open-data/",
        "/open-data/index.json",
        "/feeds/changes.atom",
        "/feeds/changes.json",
        "/.well-known/socialcredit-report-keys.json",
        "/.well-known/socialcredit-report-key.pem",
    ):
        out[path] = client.get(path).text
    report_ids = []
    for org in (ORG_PUBLIC, ORG_PAST, ORG_RED, ORG_CLEAN):
        r = client.get(f"/reports/enterprise/{org}")
        assert r.status_code == 200
        out[f"enterprise report {org}"] = _pdf_text(r.content)
        report_ids.append(r.headers["socialcredit-report-id"])
    for who in ("person", "person_public"):  # subjects' own reports: their verification pages
        r = client.get("/v1/me/report", headers=world.headers(who))
        assert r.status_code == 200
        report_ids.append(r.headers["socialcredit-report-id"])
    for rid in report_ids:
        out[f"/verify/{rid}"] = client.get(f"/verify/{rid}").text
        out[f"/reports/{rid}"] = client.get(f"/reports/{rid}").text
    for subject in (*PERSONS, ORG_PAST, ORG_PUBLIC):  # what a watchlist owner is told
        r = client.put(
            f"/v1/watchlist/{subject}",
            json={"webhook_url": "http://127.0.0.1:9/hook"},
            headers=world.headers("bank"),
        )
        assert r.status_code == 200
        # the owner gave the full key: it is echoed to them, so it is not part of the scan
        out[f"watch {subject}"] = r.text.replace(subject, "")
    for path, page in crawl_portal(client).items():
        out[f"portal {path}"] = page
    return out


def test_the_secrets_exist_privately_and_the_scanner_finds_them(
    client: TestClient, world: World
) -> None:
    own = client.get("/v1/me", headers=world.headers("person"))
    assert own.status_code == 200
    found = leaks(own.text, forbidden_today())
    assert PERSON_PRIVATE.split(":")[1] in found  # the unmasked identifier, by the pattern
    for decision in ("DN-t-b", "DN-w-b1", "DN-w-b2"):
        assert decision in found
    pdf = client.get("/v1/me/report", headers=world.headers("person")).content
    assert PERSON_PRIVATE.split(":")[1] in leaks(_pdf_text(pdf), [])
    # ORG_PAST is still a member of the tax-arrears list, only no longer published
    with world.open() as led:
        from socialcredit.status.service import StatusService

        [row] = StatusService(led).current(ORG_PAST)
    assert [m["list"] for m in row["status"]["memberships"]] == ["tax-arrears"]


def test_nothing_private_or_expired_is_published(client: TestClient, world: World) -> None:
    docs = collect(client, world)
    found = {where: leaks(text, forbidden_today()) for where, text in docs.items()}
    assert {k: v for k, v in found.items() if v} == {}
    # the public entries are there (masked): the surfaces really publish things
    everything = "\n".join(docs.values())
    assert "1101**********002X" in everything and "DN-d-a" in everything
    assert ORG_PUBLIC in docs["entries.csv"]
    portal = [k for k in docs if k.startswith("portal ")]
    if PORTAL.exists() and "@router.get" in PORTAL.read_text():
        assert len(portal) > 40 and any(k.startswith("portal /entity/") for k in portal)
        assert "1101**********002X" in "\n".join(docs[k] for k in portal)


def test_nothing_is_published_after_its_publicity_period(client: TestClient, world: World) -> None:
    world.clock.set("2028-06-02T10:00:00")  # the public person's 3 years are over
    docs = collect(client, world)
    found = {where: leaks(text, forbidden_later()) for where, text in docs.items()}
    assert {k: v for k, v in found.items() if v} == {}
    assert ORG_PUBLIC in docs["entries.csv"]  # listed 2025-09-01: still inside its 3 years
