"""Signed one-page credit reports (PDF) and their offline verification.

Two kinds:

* ``person`` — a subject's own file, for the subject (natural person or organisation): records on
  file, status under each active rulebook (memberships, scores and grades, measures with their
  basis). Only the subject (or staff) may obtain it.
* ``enterprise`` — the public report on an organisation, as used in procurement bids: only the
  entries that are public today (:func:`socialcredit.publish.public.public_entries`).

**Signature scheme.** The PDF is built (fpdf2), then signed with the registry's Ed25519 key over

    b"socialcredit-report/1\\n" + report_id + b"\\n" + <the PDF bytes up to and including %%EOF\\n>

and one comment line is appended after ``%%EOF`` (PDF readers ignore it)::

    %socialcredit-signature/1 report=<id> kid=<key id> sig=<base64url signature>

Changing any byte of the PDF, the report id or the signature, removing the line or signing with
another key makes :func:`verify_report` fail. Verification needs only the PDF and the registry's
published public keys (the JWKS at ``/.well-known/socialcredit-report-keys.json`` or a PEM).

Every issued report is logged in ``reports`` (id, subject, kind, sha256 of the signed file,
key id, time, and a summary safe to show on the public verification page ``/verify/{id}``).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import qrcode
import sqlalchemy as sa
from fpdf import FPDF

from socialcredit import ids
from socialcredit.engine.explain import explain
from socialcredit.engine.reference import evaluate
from socialcredit.errors import InputError, NotFoundError, Problem
from socialcredit.ledger import Ledger, RecordView
from socialcredit.publish.public import public_entries, subject_is_person
from socialcredit.publish.schema import reports
from socialcredit.publish.signing import (
    PublicKeys,
    Signer,
    b64url,
    registry_signer,
    unb64url,
    verify_signature,
)
from socialcredit.rulebooks.model import Rulebook
from socialcredit.status.service import rec_of

KINDS = ("person", "enterprise")
DOMAIN = b"socialcredit-report/1\n"
TRAILER_PREFIX = b"%socialcredit-signature/1 "
REGISTRY_NAME_ENV = "SOCIALCREDIT_REGISTRY_NAME"
PUBLIC_URL_ENV = "SOCIALCREDIT_PUBLIC_URL"
FONT_ENV = "SOCIALCREDIT_REPORT_FONT"
CJK_FONT_ENV = "SOCIALCREDIT_REPORT_CJK_FONT"
DEFAULT_REGISTRY_NAME = "socialcredit registry"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
_TRAILER_RE = re.compile(
    rb"%socialcredit-signature/1 report=([0-9a-f]{8,40}) kid=([0-9a-f]{16}) sig=([A-Za-z0-9_-]{86})\n\Z"
)

_DEJAVU = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
)
_CJK = (
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)


@dataclass(frozen=True)
class IssuedReport:
    report_id: str
    subject: str
    kind: str
    sha256: str  # of the signed file (as downloaded)
    key_id: str
    issued_at: dt.datetime
    verify_url: str
    pdf: bytes
    font_note: str | None = None  # set when some characters could not be rendered


@dataclass(frozen=True)
class Verification:
    ok: bool
    reason: str | None
    report_id: str | None = None
    key_id: str | None = None
    sha256: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "reason": self.reason,
            "report_id": self.report_id,
            "key_id": self.key_id,
            "sha256": self.sha256,
        }


# ---------------------------------------------------------------------- fonts


@dataclass(frozen=True)
class _Fonts:
    main: str | None  # a Unicode TTF, or None: the core Helvetica (Latin-1 only)
    bold: str | None
    cjk: str | None
    covered: frozenset[int]  # by the main font or the CJK fallback
    main_covered: frozenset[int]


def _first(paths: Sequence[str]) -> str | None:
    return next((p for p in paths if Path(p).is_file()), None)


@functools.cache
def _cmap(path: str) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    font = TTFont(path, fontNumber=0, lazy=True)
    try:
        return frozenset(font.getBestCmap() or {})
    finally:
        font.close()


@functools.cache
def _fonts(main_env: str | None, cjk_env: str | None) -> _Fonts:
    main = main_env if main_env and Path(main_env).is_file() else _first(_DEJAVU)
    bold = None
    if main is not None:
        b = Path(main).with_name(Path(main).stem + "-Bold.ttf")
        bold = str(b) if b.is_file() else None
    cjk = cjk_env if cjk_env and Path(cjk_env).is_file() else _first(_CJK)
    covered: set[int] = set()
    main_covered: frozenset[int] = frozenset()
    try:
        if main:
            main_covered = _cmap(main)
            covered |= main_covered
        if cjk:
            covered |= _cmap(cjk)
    except Exception:  # an unreadable font: fall back to the core font
        main = bold = cjk = None
        covered = set()
    if main is None:
        main_covered = frozenset(range(32, 256))
        covered = set(main_covered)
    return _Fonts(main, bold, cjk, frozenset(covered), main_covered)


def font_status() -> dict[str, Any]:
    f = _fonts(os.environ.get(FONT_ENV), os.environ.get(CJK_FONT_ENV))
    return {"font": f.main or "Helvetica (core, Latin-1 only)", "cjk_font": f.cjk}


class _Pdf(FPDF):
    pass


class _Writer:
    """Lays out one A4 page; text the fonts cannot draw is replaced by '?' and noted."""

    LINE = 4.2
    BOTTOM = 270.0

    def __init__(self, title: str, issued_at: dt.datetime, report_id: str):
        self.fonts = _fonts(os.environ.get(FONT_ENV), os.environ.get(CJK_FONT_ENV))
        pdf = _Pdf(format="A4")
        pdf.set_auto_page_break(False)
        pdf.set_margins(15, 15, 15)
        pdf.set_creation_date(issued_at)
        pdf.set_title(title)
        pdf.set_subject(f"report {report_id}")
        pdf.set_creator("socialcredit")
        pdf.set_producer("socialcredit (fpdf2)")
        if self.fonts.main:
            pdf.add_font("Main", "", self.fonts.main)
            pdf.add_font("Main", "B", self.fonts.bold or self.fonts.main)
            self.family = "Main"
        else:
            self.family = "helvetica"
        pdf.add_page()
        self.pdf = pdf
        self.missing: set[str] = set()
        self.truncated = 0
        self._cjk = False

    def _need_fallback(self) -> None:
        """Load the CJK font only for a document that needs it (parsing it is slow)."""
        if not self._cjk and self.fonts.cjk and self.fonts.main:
            self.pdf.add_font("CJK", "", self.fonts.cjk)
            self.pdf.set_fallback_fonts(["CJK"], exact_match=False)
            self._cjk = True

    def fit(self, text: str) -> str:
        out = []
        for ch in text:
            o = ord(ch)
            if o in self.fonts.main_covered or ch in "\n":
                out.append(ch)
            elif o in self.fonts.covered:
                self._need_fallback()
                out.append(ch)
            else:
                self.missing.add(ch)
                out.append("?")
        return "".join(out)

    def room(self, lines: int = 1) -> bool:
        return self.pdf.get_y() + lines * self.LINE <= self.BOTTOM

    def text(self, text: str, *, size: float = 8.5, bold: bool = False, w: float = 0) -> bool:
        if not self.room():
            self.truncated += 1
            return False
        self.pdf.set_font(self.family, "B" if bold else "", size)
        self.pdf.multi_cell(
            w,
            self.LINE if size <= 9 else size * 0.5,
            self.fit(text),
            align="L",
            new_x="LMARGIN",
            new_y="NEXT",
        )
        return True

    def heading(self, text: str) -> None:
        if not self.room(3):
            self.truncated += 1
            return
        self.pdf.ln(1.5)
        self.text(text, size=10, bold=True)
        y = self.pdf.get_y()
        self.pdf.line(15, y, 195, y)
        self.pdf.ln(0.8)

    def output(self) -> bytes:
        return bytes(self.pdf.output())


def qr_image(url: str) -> Any:
    """The QR code (a PIL image) for ``url``: error correction M, 4 px modules, 2-module border."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=4, border=2)
    qr.add_data(url)
    qr.make(fit=True)
    return qr.make_image(fill_color="black", back_color="white").get_image()


def qr_matrix(url: str) -> list[list[bool]]:
    """The module matrix of :func:`qr_image` (with its border), for tests and checks."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=4, border=2)
    qr.add_data(url)
    qr.make(fit=True)
    return [list(row) for row in qr.get_matrix()]


# ---------------------------------------------------------------------- content


def _latest_name(views: Sequence[RecordView]) -> str | None:
    named = [v for v in views if v.subject_name]
    return max(named, key=lambda v: v.record_id).subject_name if named else None


def _subject_kind(key: str, views: Sequence[RecordView]) -> str | None:
    kind = next((v.subject_kind for v in reversed(views) if v.subject_kind), None)
    if kind is None:
        try:
            kind = ids.parse_key(key).subject_kind
        except ids.IdError:
            kind = None
    return kind


def _header(
    w: _Writer,
    *,
    registry: str,
    title: str,
    report_id: str,
    issued_at: dt.datetime,
    subject_line: str,
    name: str | None,
    url: str,
    extra: Sequence[str] = (),
) -> None:
    pdf = w.pdf
    pdf.image(qr_image(url), x=160, y=12, w=35, h=35)
    w.text(registry, size=14, bold=True, w=140)
    w.text(title, size=11, bold=True, w=140)
    pdf.ln(1)
    w.text(f"Report id: {report_id}", w=140)
    w.text(f"Issued: {issued_at.strftime('%Y-%m-%d %H:%M:%S')} UTC", w=140)
    w.text(f"Subject: {subject_line}", w=140)
    if name:
        w.text(f"Name: {name}", w=140)
    for line in extra:
        w.text(line, w=140)
    w.text(f"Verify: {url}", size=7.5, w=140)
    pdf.set_y(max(pdf.get_y(), 50))


def _footer(w: _Writer, kid: str, note: str) -> None:
    pdf = w.pdf
    pdf.set_y(272)
    pdf.set_font(w.family, "", 7)
    text = (
        f"{note} Signed with the registry's Ed25519 key {kid}. Check it offline: "
        "socialcredit report verify FILE --keys socialcredit-report-keys.json "
        "(the key set is published at /.well-known/socialcredit-report-keys.json). "
        "Any change to this file makes verification fail."
    )
    if w.truncated:
        text = f"({w.truncated} more line(s) did not fit on this page.) " + text
    if w.missing:
        text = (
            "Some characters could not be drawn with the fonts installed (shown as ?); "
            "the verification page shows the subject. " + text
        )
    pdf.multi_cell(0, 3.2, w.fit(text), new_x="LMARGIN", new_y="NEXT")


def _person_body(
    w: _Writer,
    ledger: Ledger,
    rulebooks: Sequence[Rulebook],
    key: str,
    views: Sequence[RecordView],
    today: dt.date,
) -> dict[str, Any]:
    recs = [rec_of(v) for v in views]
    kind = _subject_kind(key, views)
    in_force = [v for v in views if v.in_force]
    w.heading(f"Your file as of {today.isoformat()}")
    w.text(
        f"{len(views)} record(s) on file, {len(in_force)} in force"
        + (f"; {sum(v.disputed for v in views)} disputed" if any(v.disputed for v in views) else "")
        + f". Active rulebooks: {', '.join(rb.ref for rb in rulebooks) or 'none'}."
    )
    counts = {"memberships": 0, "measures": 0}
    for rb in rulebooks:
        st = evaluate(rb, recs, today, subject=key, subject_kind=kind)
        ex = explain(
            st, rb, {v.record_id: v.as_dict(history=False) for v in views}, ledger.catalogue
        )
        w.heading(f"Status under {rb.ref} — {rb.title}")
        if not (ex["memberships"] or ex["schemes"] or ex["measures"] or ex["pending"]):
            w.text("Nothing in this rulebook applies: no listing, no score, no measure.")
        for m in ex["memberships"]:
            counts["memberships"] += 1
            until = f"until {m['until']}" if m["until"] else "no fixed end"
            recs_txt = ", ".join(f"#{r['id']}" for r in m["records"]) or "—"
            w.text(f"Listed: {m['title']}", bold=True)
            w.text(
                f"  {m['type']} list {m['list']}, since {m['since']}, {until}; "
                f"records {recs_txt}; authority {m['authority']}; legal basis: "
                f"{' '.join(m['legal_basis'].split())}"
            )
            if m.get("repair"):
                w.text(f"  Repair: {m['repair']['text']}")
        for p in ex["pending"]:
            w.text(f"Pending: {p['title']} ({p['list']}) takes effect on {p['effective']}")
        for s in ex["schemes"]:
            if not s["consent"]:
                w.text(f"Score {s['title']}: not scored (no consent on file)")
                continue
            pts = s["points"]
            w.text(
                f"Score {s['title']} ({s['scheme']}): {pts:g} points, grade {s['grade']}"
                if pts is not None
                else f"Score {s['title']}: —"
            )
        for meas in ex["measures"]:
            counts["measures"] += 1
            by = "; ".join(
                f"{b['brings']} under {b['memorandum']}"
                + (f" until {b['ends']}" if b.get("ends") else "")
                for b in meas["brought_by"]
            )
            basis = meas.get("legal_basis") or ""
            w.text(
                f"Measure: {meas['title']} ({meas['type']}, {meas['domain']}) — {by}"
                + (f"; legal basis: {' '.join(basis.split())}" if basis else "")
            )
    if views:
        w.heading("Records on file (newest first)")
        for v in sorted(views, key=lambda v: (v.decision_date, v.record_id), reverse=True):
            state = (
                v.state
                + (", disputed" if v.disputed else "")
                + (", suspended" if v.suspended else "")
            )
            amount = f", {v.amount:,.2f} yuan" if v.amount is not None else ""
            if not w.text(
                f"#{v.record_id} {v.decision_date.isoformat()} {v.kind} ({v.severity or '-'}{amount}) "
                f"by {v.authority_id}, decision {v.decision_no} [{state}]"
            ):
                break
    w.heading("Your rights")
    w.text(
        "You may object to any record (socialcredit cases, or the self-service pages), apply for "
        "credit repair where a list allows it, and see who checked you (GET /v1/me/decisions)."
    )
    return counts


def _enterprise_body(
    w: _Writer,
    ledger: Ledger,
    rulebooks: Sequence[Rulebook],
    key: str,
    today: dt.date,
) -> dict[str, Any]:
    entries = list(public_entries(ledger.engine, rulebooks, today, subject=key))
    adverse = [e for e in entries if e.list_type != "red"]
    red = [e for e in entries if e.list_type == "red"]
    w.heading(f"Public entries as of {today.isoformat()}")
    w.text(
        "This report shows only what the registry's rulebooks make public today, for as long as "
        f"they allow it. Rulebooks: {', '.join(rb.ref for rb in rulebooks) or 'none active'}."
    )
    if not adverse:
        w.text("No public adverse entry (black, key-attention or warning list) on this day.")
    for group, title in ((adverse, "Adverse lists"), (red, "Red lists (commendations)")):
        if not group:
            continue
        w.heading(title)
        for e in group:
            until = f"until {e.until.isoformat()}" if e.until else "until removed"
            w.text(f"{e.list_title}", bold=True)
            w.text(
                f"  {e.list_type} list {e.list_id} ({e.rulebook_ref}), since "
                f"{e.since.isoformat()}, {until}; published until {e.publish_until.isoformat()}; "
                f"authority {e.authority}; legal basis: {e.legal_basis}"
                + (" [disputed by the subject]" if e.disputed else "")
            )
            for r in e.records:
                shown = ", ".join(
                    f"{k}: {v}" for k, v in r.fields.items() if k not in ("subject", "subject_name")
                )
                w.text(f"  record #{r.record_id}: {shown}")
    return {
        "public_entries": len(entries),
        "adverse": len(adverse),
        "red": len(red),
        "lists": sorted({f"{e.rulebook_id}/{e.list_id}" for e in entries}),
    }


# ---------------------------------------------------------------------- issuing


def registry_name() -> str:
    return os.environ.get(REGISTRY_NAME_ENV) or DEFAULT_REGISTRY_NAME


def verify_url(base_url: str | None, report_id: str) -> str:
    base = (base_url or os.environ.get(PUBLIC_URL_ENV) or DEFAULT_PUBLIC_URL).rstrip("/")
    return f"{base}/verify/{report_id}"


def sign_pdf(pdf: bytes, report_id: str, signer: Signer) -> bytes:
    """Append the signature line to ``pdf`` (which must end with ``%%EOF`` and a newline)."""
    if not pdf.endswith(b"\n"):
        pdf += b"\n"
    sig = signer.sign(DOMAIN + report_id.encode() + b"\n" + pdf)
    return (
        pdf
        + TRAILER_PREFIX
        + f"report={report_id} kid={signer.key_id} sig={b64url(sig)}\n".encode()
    )


def issue_report(
    ledger: Ledger,
    rulebooks: Sequence[Rulebook],
    subject: str,
    kind: str,
    *,
    signer: Signer | None = None,
    base_url: str | None = None,
    registry: str | None = None,
) -> IssuedReport:
    """Build, sign and log a report on ``subject`` (a full key). ``kind``: person | enterprise.

    ``person`` is the subject's own file (give it only to the subject or staff); ``enterprise`` is
    public and refused for natural persons.
    """
    if kind not in KINDS:
        raise InputError(
            [Problem("kind", "one-of", kind, f"the report kind is one of {', '.join(KINDS)}")]
        )
    try:
        key = ids.parse_key(subject).key
    except ids.IdError as e:
        raise InputError([e.problem("subject")]) from None
    now = ledger.clock.now()
    issued_at = now.astimezone(dt.UTC).replace(microsecond=0)
    today = issued_at.date()
    signer = signer or registry_signer(ledger.engine, now)
    views = ledger.subject_records(key)
    skind = _subject_kind(key, views)
    person = subject_is_person(key, skind)
    if kind == "enterprise" and person:
        raise InputError(
            [
                Problem(
                    "subject",
                    "not-an-organisation",
                    key,
                    "an enterprise report is for organisations; a natural person gets the "
                    "'person' report about their own file",
                )
            ]
        )
    if kind == "person" and not views:
        raise NotFoundError(f"no records about {key}")
    report_id = secrets.token_hex(10)
    url = verify_url(base_url, report_id)
    name = _latest_name(views)
    reg = registry or registry_name()
    if kind == "person":
        title = "Credit report — your own file (for the subject only)"
        w = _Writer(title, issued_at, report_id)
        _header(
            w,
            registry=reg,
            title=title,
            report_id=report_id,
            issued_at=issued_at,
            subject_line=key + (f" ({skind})" if skind else ""),
            name=name,
            url=url,
        )
        counts = _person_body(w, ledger, rulebooks, key, views, today)
        _footer(w, signer.key_id, "A subject-access report: it contains personal data.")
        # the public verification page names no one: the holder compares the file's SHA-256
        summary: dict[str, Any] = {
            "kind": kind,
            "subject": None if person else key,
            "name": None if person else name,
            "as_of": today.isoformat(),
            "rulebooks": [rb.ref for rb in rulebooks],
            **counts,
        }
    else:
        title = "Public credit report (enterprise)"
        w = _Writer(title, issued_at, report_id)
        _header(
            w,
            registry=reg,
            title=title,
            report_id=report_id,
            issued_at=issued_at,
            subject_line=key + (f" ({skind})" if skind else ""),
            name=name,
            url=url,
        )
        counts = _enterprise_body(w, ledger, rulebooks, key, today)
        _footer(w, signer.key_id, "Public information only.")
        summary = {
            "kind": kind,
            "subject": key,
            "name": name,
            "as_of": today.isoformat(),
            "rulebooks": [rb.ref for rb in rulebooks],
            **counts,
        }
    note = None
    if w.missing:
        note = (
            f"{len(w.missing)} character(s) could not be drawn (no font covers them; install a "
            f"CJK font or set {CJK_FONT_ENV}); they appear as '?'"
        )
        summary["font_note"] = note
    signed = sign_pdf(w.output(), report_id, signer)
    digest = hashlib.sha256(signed).hexdigest()
    with ledger.engine.begin() as conn:
        conn.execute(
            reports.insert().values(
                report_id=report_id,
                subject=key,
                kind=kind,
                sha256=digest,
                key_id=signer.key_id,
                issued_at=issued_at.replace(tzinfo=None),
                summary=orjson.dumps(summary).decode(),
            )
        )
    return IssuedReport(report_id, key, kind, digest, signer.key_id, issued_at, url, signed, note)


# ---------------------------------------------------------------------- verifying


def split_signed(data: bytes) -> tuple[bytes, str, str, bytes] | str:
    """(signed PDF part, report id, key id, signature) or the reason the file has no valid line."""
    at = data.rfind(b"\n" + TRAILER_PREFIX)
    if at < 0:
        return "no socialcredit signature line after %%EOF: the file is unsigned or was stripped"
    body, line = data[: at + 1], data[at + 1 :]
    m = _TRAILER_RE.match(line)
    if m is None:
        return "the signature line is malformed or is not the last line of the file"
    if not body.rstrip(b"\r\n").endswith(b"%%EOF"):
        return "the signature line does not follow the PDF's %%EOF marker"
    return body, m.group(1).decode(), m.group(2).decode(), unb64url(m.group(3).decode())


def verify_report(data: bytes, keys: PublicKeys) -> Verification:
    """Check a signed report offline against the registry's public keys (by key id)."""
    digest = hashlib.sha256(data).hexdigest()
    parts = split_signed(data)
    if isinstance(parts, str):
        return Verification(False, parts, sha256=digest)
    body, report_id, kid, sig = parts
    reason = verify_signature(keys, kid, sig, DOMAIN + report_id.encode() + b"\n" + body)
    if reason is not None:
        return Verification(False, reason, report_id, kid, digest)
    return Verification(True, None, report_id, kid, digest)


def report_record(engine: sa.Engine, report_id: str) -> dict[str, Any] | None:
    """The public log entry of a report (for the verification page), or None."""
    if not re.fullmatch(r"[0-9a-f]{8,40}", report_id):
        return None
    with engine.connect() as conn:
        r = conn.execute(sa.select(reports).where(reports.c.report_id == report_id)).first()
    if r is None:
        return None
    summary = orjson.loads(r.summary)
    return {
        "report_id": r.report_id,
        "kind": r.kind,
        "subject": summary.get("subject"),
        "name": summary.get("name"),
        "issued_at": r.issued_at.isoformat(timespec="seconds") + "Z",
        "sha256": r.sha256,
        "key_id": r.key_id,
        "summary": summary,
    }


def reports_of(engine: sa.Engine, subject: str) -> list[dict[str, Any]]:
    """Reports issued about a subject (newest first) — for the subject's self-service pages."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(reports.c.report_id)
            .where(reports.c.subject == subject)
            .order_by(reports.c.issued_at.desc())
        ).all()
    out = []
    for (rid,) in rows:
        rec = report_record(engine, rid)
        if rec is not None:
            out.append(rec)
    return out
