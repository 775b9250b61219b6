"""The publication API: keys, reports, the verification page, open data and feeds."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET

import orjson
import pyarrow.parquet as pq
import pypdf
from fastapi.testclient import TestClient

from socialcredit.publish.reports import verify_report
from socialcredit.publish.signing import keys_from_jwks, keys_from_pem
from tests.publish.helpers import (
    ORG_PAST,
    ORG_PUBLIC,
    ORG_RED,
    PERSON_PRIVATE,
    PERSON_PUBLIC,
    World,
)

ATOM = "{http://www.w3.org/2005/Atom}"


def test_keys_are_published(client: TestClient) -> None:
    r = client.get("/.well-known/socialcredit-report-keys.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/jwk-set")
    keys = keys_from_jwks(r.content)
    pem = client.get("/.well-known/socialcredit-report-key.pem")
    assert pem.status_code == 200 and b"BEGIN PUBLIC KEY" in pem.content
    assert set(keys_from_pem(pem.content)) == set(keys) == {pem.headers["socialcredit-key-id"]}


def test_subject_downloads_own_report_and_it_verifies_offline(
    client: TestClient, world: World
) -> None:
    r = client.get("/v1/me/report", headers=world.headers("person"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    keys = keys_from_jwks(client.get("/.well-known/socialcredit-report-keys.json").content)
    result = verify_report(r.content, keys)
    assert result.ok and result.report_id == r.headers["socialcredit-report-id"]
    text = pypdf.PdfReader(io.BytesIO(r.content)).pages[0].extract_text()
    assert PERSON_PRIVATE in text and "Late payers" in text
    # other roles do not get a person report here
    assert client.get("/v1/me/report", headers=world.headers("bank")).status_code == 403
    assert client.get("/v1/me/report").status_code == 401


def test_anyone_downloads_an_enterprise_report(client: TestClient) -> None:
    r = client.get(f"/reports/enterprise/{ORG_PUBLIC}")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    keys = keys_from_jwks(client.get("/.well-known/socialcredit-report-keys.json").content)
    assert verify_report(r.content, keys).ok
    bad = client.get(f"/reports/enterprise/{PERSON_PUBLIC}")
    assert bad.status_code == 422
    assert bad.json()["problems"][0]["rule"] == "not-an-organisation"
    assert client.get("/reports/enterprise/cn-uscc:123").status_code == 422


def test_verification_page_shows_the_report(client: TestClient, world: World) -> None:
    r = client.get(f"/reports/enterprise/{ORG_PUBLIC}")
    rid = r.headers["socialcredit-report-id"]
    page = client.get(f"/verify/{rid}")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert rid in page.text and ORG_PUBLIC in page.text and "Acme Trading" in page.text
    import hashlib

    assert hashlib.sha256(r.content).hexdigest() in page.text
    as_json = client.get(f"/verify/{rid}", headers={"Accept": "application/json"}).json()
    assert as_json["report_id"] == rid and as_json["kind"] == "enterprise"
    assert client.get(f"/reports/{rid}").json()["sha256"] == as_json["sha256"]
    missing = client.get("/verify/00000000000000000000")
    assert missing.status_code == 404 and "No report" in missing.text
    # a person's own report: the public page confirms it without naming anyone
    own = client.get("/v1/me/report", headers=world.headers("person"))
    page = client.get(f"/verify/{own.headers['socialcredit-report-id']}")
    assert page.status_code == 200 and hashlib.sha256(own.content).hexdigest() in page.text
    assert "4405" not in page.text and "李四海" not in page.text
    # uploading the file checks it
    up = client.post("/verify", content=r.content, headers={"Content-Type": "application/pdf"})
    assert up.json()["ok"] is True and up.json()["report_id"] == rid
    tampered = r.content.replace(b"%%EOF", b"%%EOG", 1)
    up = client.post("/verify", files={"file": ("r.pdf", tampered, "application/pdf")})
    assert up.status_code == 200 and "Not valid" in up.text


def test_open_data_files(client: TestClient) -> None:
    index = client.get("/open-data/index.json").json()
    assert {f["name"] for f in index["files"]} == {
        "entries.csv",
        "entries.parquet",
        "entries.ndjson",
        "entities.ftm.json",
        "datapackage.json",
    }
    assert index["licenses"][0]["name"] == "CC-BY-4.0"
    rows = list(csv.DictReader(io.StringIO(client.get("/open-data/entries.csv").text)))
    got = {(r["subject"], r["list"]) for r in rows}
    assert got == {
        ("cn-rid:1101**********002X", "defaulters"),
        (ORG_PUBLIC, "defaulters"),
        (ORG_RED, "honours"),
    }
    table = pq.read_table(io.BytesIO(client.get("/open-data/entries.parquet").content))
    assert table.num_rows == 3 and set(table.column("subject").to_pylist()) == {s for s, _ in got}
    meta = orjson.loads(table.schema.metadata[b"socialcredit"])
    assert meta["licenses"][0]["name"] == "CC-BY-4.0"
    nd = [orjson.loads(x) for x in client.get("/open-data/entries.ndjson").content.splitlines()]
    assert len(nd) == 3 and all("records" in x for x in nd)
    pkg = client.get("/open-data/datapackage.json").json()
    assert pkg["licenses"][0]["name"] == "CC-BY-4.0" and pkg["created"].endswith("Z")
    assert any("t-publish@1" in s["title"] for s in pkg["sources"])
    assert {r["name"] for r in pkg["resources"]} >= {"entries-csv", "entities-ftm"}
    assert client.get("/open-data/secrets.txt").status_code == 404


def test_followthemoney_entities(client: TestClient) -> None:
    lines = client.get("/open-data/entities.ftm.json").content.splitlines()
    ents = [orjson.loads(x) for x in lines]
    by_id = {e["id"]: e for e in ents}
    assert all(set(e) == {"id", "schema", "properties"} for e in ents)
    sanctions = [e for e in ents if e["schema"] == "Sanction"]
    assert len(sanctions) == 2  # the red list is not a sanction
    targets = [by_id[s["properties"]["entity"][0]] for s in sanctions]
    assert sorted(t["schema"] for t in targets) == ["Company", "Person"]
    company = next(t for t in targets if t["schema"] == "Company")
    assert company["properties"]["uscCode"] == [ORG_PUBLIC.split(":")[1]]
    assert company["properties"]["name"] == ["Acme Trading Co., Ltd."]
    person = next(t for t in targets if t["schema"] == "Person")
    assert "idNumber" not in person["properties"]
    assert "11010519491231002X" not in str(person)
    s = sanctions[0]["properties"]
    for prop in ("entity", "authority", "program", "startDate", "reason"):
        assert prop in s
    # every property value is a list of strings (the FtM JSON form)
    for e in ents:
        for values in e["properties"].values():
            assert isinstance(values, list) and all(isinstance(v, str) for v in values)


def test_change_feeds(client: TestClient) -> None:
    doc = client.get("/feeds/changes.json").json()
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    items = doc["items"]
    assert {(i["_socialcredit"]["subject"], i["_socialcredit"]["event"]) for i in items} == {
        ("cn-rid:1101**********002X", "entered"),
        (ORG_PUBLIC, "entered"),
        (ORG_RED, "entered"),
    }
    assert ORG_PAST not in str(doc) and PERSON_PRIVATE.split(":")[1] not in str(doc)
    atom = ET.fromstring(client.get("/feeds/changes.atom").content)
    assert atom.tag == f"{ATOM}feed"
    entries = atom.findall(f"{ATOM}entry")
    assert len(entries) == 3
    assert {e.findtext(f"{ATOM}id") for e in entries} == {i["id"] for i in items}


def test_open_data_page(client: TestClient) -> None:
    r = client.get("/open-data/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    for link in ("/open-data/entries.csv", "/open-data/entities.ftm.json", "/feeds/changes.atom"):
        assert f'href="{link}"' in r.text
    assert "CC-BY-4.0" in r.text and "Dishonest judgment defaulters" in r.text
