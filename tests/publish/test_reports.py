"""Signed credit reports: issue → verify; every kind of tampering fails; the QR code; rotation."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pypdf
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from socialcredit.cli.main import app as cli
from socialcredit.clock import FixedClock
from socialcredit.errors import InputError
from socialcredit.publish import signing
from socialcredit.publish.reports import (
    issue_report,
    qr_matrix,
    report_record,
    sign_pdf,
    verify_report,
)
from socialcredit.publish.signing import Signer, key_id_of, keys_from_db, keys_from_jwks
from socialcredit.status.service import StatusService
from tests.publish.helpers import (
    ORG_PUBLIC,
    PERSON_PRIVATE,
    PERSON_PUBLIC,
    World,
    build_world,
)

BASE = "https://registry.example"


def _issue(world: World, subject: str, kind: str) -> tuple[bytes, str, dict[str, object]]:
    with world.open() as led:
        rep = issue_report(led, StatusService(led).rulebooks, subject, kind, base_url=BASE)
        keys = keys_from_db(led.engine)
        rec = report_record(led.engine, rep.report_id)
    assert rec is not None
    assert verify_report(rep.pdf, keys).ok
    return rep.pdf, rep.report_id, rec


def _keys(world: World) -> dict[str, object]:
    with world.open() as led:
        return dict(keys_from_db(led.engine))


def test_issue_and_verify_on_every_backend(
    db_url: str, clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCIALCREDIT_SIGNING_KEY", str(tmp_path / "k" / "signing.pem"))
    world = build_world(db_url, clock, tmp_path)
    pdf, rid, rec = _issue(world, ORG_PUBLIC, "enterprise")
    with world.open() as led:
        result = verify_report(pdf, keys_from_db(led.engine))
        doc = signing.jwks(led.engine)
    assert result.ok and result.report_id == rid and result.reason is None
    assert rec["kind"] == "enterprise" and rec["subject"] == ORG_PUBLIC
    assert rec["summary"]["adverse"] == 1  # type: ignore[index]
    # the published key set alone (offline) verifies it
    assert verify_report(pdf, keys_from_jwks(doc)).ok
    assert [k["kty"] for k in doc["keys"]] == ["OKP"] and doc["keys"][0]["crv"] == "Ed25519"
    key_file = tmp_path / "k" / "signing.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_report_text_says_what_it_should(world: World) -> None:
    pdf, rid, _ = _issue(world, ORG_PUBLIC, "enterprise")
    text = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert rid in text and ORG_PUBLIC in text and "Acme Trading" in text
    assert "Dishonest judgment defaulters" in text
    assert len(pypdf.PdfReader(io.BytesIO(pdf)).pages) == 1
    person, pid, prec = _issue(world, PERSON_PRIVATE, "person")
    ptext = pypdf.PdfReader(io.BytesIO(person)).pages[0].extract_text()
    # the subject's own report shows their private list, their full identifier and records
    assert "Late payers" in ptext and PERSON_PRIVATE in ptext and pid in ptext
    # ... but its public log entry (the verification page) names no one
    assert prec["subject"] is None and prec["name"] is None and prec["kind"] == "person"
    assert "440524188001010014" not in str(prec) and "4405**" not in str(prec)


@pytest.mark.parametrize(
    "where",
    [0.1, 0.5, 0.9, -200],
    ids=["header", "middle", "end", "trailer-region"],
)
def test_flipping_one_byte_fails(world: World, where: float) -> None:
    pdf, _, _ = _issue(world, ORG_PUBLIC, "enterprise")
    pos = int(len(pdf) * where) if where > 0 else len(pdf) + int(where)
    bad = bytearray(pdf)
    bad[pos] ^= 0x01
    result = verify_report(bytes(bad), _keys(world))  # type: ignore[arg-type]
    assert not result.ok and result.reason


def test_changing_a_text_object_fails(world: World) -> None:
    pdf, _, _ = _issue(world, ORG_PUBLIC, "enterprise")
    trailer = pdf[pdf.rindex(b"%socialcredit-signature/1") :]
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    writer = pypdf.PdfWriter(clone_from=reader)
    page = writer.pages[0]
    content = page.get_contents()
    assert content is not None
    data = content.get_data()
    assert b"BT" in data
    content.set_data(data + b"\nBT /F1 12 Tf 40 40 Td (No public entries) Tj ET\n")
    page.replace_contents(content)
    out = io.BytesIO()
    writer.write(out)
    forged = out.getvalue().rstrip(b"\n") + b"\n" + trailer
    result = verify_report(forged, _keys(world))  # type: ignore[arg-type]
    assert not result.ok
    assert "does not match" in (result.reason or "")


def test_stripping_the_signature_fails(world: World) -> None:
    pdf, _, _ = _issue(world, ORG_PUBLIC, "enterprise")
    stripped = pdf[: pdf.rindex(b"%socialcredit-signature/1")]
    result = verify_report(stripped, _keys(world))  # type: ignore[arg-type]
    assert not result.ok and "no socialcredit signature" in (result.reason or "")
    # appending anything after the signature line also fails
    result = verify_report(pdf + b"%extra\n", _keys(world))  # type: ignore[arg-type]
    assert not result.ok


def test_wrong_key_fails(world: World, tmp_path: Path) -> None:
    pdf, rid, _ = _issue(world, ORG_PUBLIC, "enterprise")
    other = Ed25519PrivateKey.generate()
    result = verify_report(pdf, {key_id_of(other.public_key()): other.public_key()})
    assert not result.ok and "unknown key id" in (result.reason or "")
    # re-signed by someone else who claims the registry's key id: the signature does not match
    real_kid = next(iter(_keys(world)))
    body = pdf[: pdf.rindex(b"%socialcredit-signature/1")]
    forged = sign_pdf(body, rid, Signer(other, real_kid, tmp_path / "x"))
    result = verify_report(forged, _keys(world))  # type: ignore[arg-type]
    assert not result.ok and "does not match" in (result.reason or "")


def test_qr_code_links_to_the_verification_page(world: World) -> None:
    pdf, rid, _ = _issue(world, ORG_PUBLIC, "enterprise")
    images = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].images
    assert len(images) == 1
    img = images[0].image.convert("L")
    expected = qr_matrix(f"{BASE}/verify/{rid}")
    n = len(expected)
    assert img.size[0] == img.size[1] == n * 4  # 4 px per module
    got = [[img.getpixel((x * 4 + 2, y * 4 + 2)) < 128 for x in range(n)] for y in range(n)]
    assert got == expected
    assert qr_matrix(f"{BASE}/verify/{rid}0") != expected  # the comparison can fail


def test_old_reports_verify_after_rotation(world: World, tmp_path: Path) -> None:
    old_pdf, _, _ = _issue(world, ORG_PUBLIC, "enterprise")
    with world.open() as led:
        old_kid = next(iter(keys_from_db(led.engine)))
        new = signing.rotate(led.engine, world.clock.now())
        doc = signing.jwks(led.engine)
        current = signing.current_public_pem(led.engine)
    assert new.key_id != old_kid and current is not None and current[0] == new.key_id
    new_pdf, _, _ = _issue(world, ORG_PUBLIC, "enterprise")
    keys = keys_from_jwks(doc)
    assert verify_report(old_pdf, keys).ok and verify_report(new_pdf, keys).ok
    assert verify_report(new_pdf, keys).key_id == new.key_id
    retired = {k["kid"]: k["retired_at"] for k in doc["keys"]}
    assert retired[old_kid] is not None and retired[new.key_id] is None


def test_enterprise_report_refused_for_a_person(world: World) -> None:
    with world.open() as led, pytest.raises(InputError) as e:
        issue_report(led, StatusService(led).rulebooks, PERSON_PUBLIC, "enterprise")
    assert e.value.problems[0].rule == "not-an-organisation"
    with world.open() as led, pytest.raises(InputError):
        issue_report(led, StatusService(led).rulebooks, ORG_PUBLIC, "gossip")


def test_cli_issue_verify_and_key(world: World, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "r.pdf"
    r = runner.invoke(
        cli,
        ["--db", world.db, "report", "issue", ORG_PUBLIC, "--kind", "enterprise", "-o", str(out)],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["--db", world.db, "report", "key", "--jwks"])
    assert r.exit_code == 0, r.output
    keys = tmp_path / "keys.json"
    keys.write_text(r.output)
    pem = tmp_path / "key.pem"
    r = runner.invoke(cli, ["--db", world.db, "report", "key"])
    assert r.exit_code == 0 and "BEGIN PUBLIC KEY" in r.output
    pem.write_text(
        r.output[r.output.index("-----BEGIN") : r.output.index("-----END PUBLIC KEY-----") + 24]
        + "\n"
    )
    ok = runner.invoke(cli, ["report", "verify", str(out), "--keys", str(keys)])
    assert ok.exit_code == 0, ok.output
    assert "VALID" in ok.output
    ok = runner.invoke(cli, ["report", "verify", str(out), "--key", str(pem), "--json"])
    assert ok.exit_code == 0 and '"ok": true' in ok.output
    bad = tmp_path / "bad.pdf"
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0x20
    bad.write_bytes(bytes(data))
    r = runner.invoke(cli, ["report", "verify", str(bad), "--keys", str(keys)])
    assert r.exit_code == 2
    r = runner.invoke(cli, ["report", "verify", str(bad), "--keys", str(keys), "--json"])
    assert r.exit_code == 2 and '"ok": false' in r.output and "does not match" in r.output


def test_person_report_needs_records(world: World) -> None:
    from socialcredit.errors import NotFoundError

    with world.open() as led, pytest.raises(NotFoundError):
        issue_report(led, StatusService(led).rulebooks, "cn-rid:110105198001010016", "person")


def test_any_single_byte_change_fails(world: World) -> None:
    """Property: flipping any bits of any one byte of a signed report makes it invalid."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    pdf, _, _ = _issue(world, ORG_PUBLIC, "enterprise")
    keys = _keys(world)

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(pos=st.integers(0, len(pdf) - 1), mask=st.integers(1, 255))
    def check(pos: int, mask: int) -> None:
        bad = bytearray(pdf)
        bad[pos] ^= mask
        assert not verify_report(bytes(bad), keys).ok  # type: ignore[arg-type]

    check()
    # and truncating it anywhere fails too
    for cut in (1, 10, len(pdf) // 2, len(pdf) - 1):
        assert not verify_report(pdf[:cut], keys).ok  # type: ignore[arg-type]


def test_without_a_cjk_font_the_report_says_so(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from socialcredit.publish import reports

    monkeypatch.setattr(reports, "_CJK", ())
    monkeypatch.delenv(reports.CJK_FONT_ENV, raising=False)
    reports._fonts.cache_clear()
    try:
        with world.open() as led:
            rep = issue_report(led, StatusService(led).rulebooks, PERSON_PUBLIC, "person")
            keys = keys_from_db(led.engine)
    finally:
        reports._fonts.cache_clear()
    assert rep.font_note is not None and "3 character(s)" in rep.font_note
    text = pypdf.PdfReader(io.BytesIO(rep.pdf)).pages[0].extract_text()
    assert "Name: ???" in text and "could not be drawn" in text
    assert verify_report(rep.pdf, keys).ok


def test_concurrent_first_use_makes_one_key(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "keys" / "k.pem"
    got: list[str] = []

    def load() -> None:
        got.append(key_id_of(signing.load_private_key(path).public_key()))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 1 and len(got) == 8
    assert sorted(p.name for p in path.parent.iterdir()) == ["k.pem"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
