"""Delivery of notices by e-mail and webhook: retried with exponential backoff, never lost.

The notifier creates one ``notice_deliveries`` row per notice × channel × target. :func:`pump`
sends the rows that are due:

* **e-mail** through the SMTP server named by ``SOCIALCREDIT_SMTP`` (``host:port``) from
  ``SOCIALCREDIT_MAIL_FROM`` (stdlib :mod:`smtplib`); without a server configured, e-mail rows wait
  (``last_error`` says so) and are sent once one is;
* **webhook**: ``POST`` of the notice JSON to the URL, with ``X-Socialcredit-Signature:
  sha256=<hex HMAC-SHA256 of the exact body under the contact's secret>``; any 2xx is success.

A failure sets ``failed`` and the next attempt ``backoff × 2^(attempts-1)`` later (capped); after
``max_attempts`` the row is ``dead``: still listed, re-drivable with :func:`redrive`. The notice
itself is always readable in the inbox (``GET /v1/me/notices``) whatever happens to delivery.

Two pumps never send the same row at once: a row is claimed by moving its ``next_attempt_at``
forward by a lease with a compare-and-set before it is sent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import smtplib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx
import sqlalchemy as sa

from socialcredit.cases.notices_schema import (
    notice_contacts,
    notice_deliveries,
    notices,
    party_webhooks,
)
from socialcredit.clock import Clock
from socialcredit.errors import InputError, NotFoundError, Problem
from socialcredit.status.db import naive_utc

SIGNATURE_HEADER = "X-Socialcredit-Signature"
STATES = ("pending", "sent", "failed", "dead")


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    smtp_host: str | None = None
    smtp_port: int = 25
    mail_from: str = "notices@socialcredit.invalid"
    timeout: float = 5.0
    backoff: dt.timedelta = dt.timedelta(seconds=30)
    max_backoff: dt.timedelta = dt.timedelta(hours=6)
    max_attempts: int = 8
    lease: dt.timedelta = dt.timedelta(minutes=2)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **over: Any) -> DeliverySettings:
        """``SOCIALCREDIT_SMTP=host:port``, ``SOCIALCREDIT_MAIL_FROM``,
        ``SOCIALCREDIT_NOTICE_MAX_ATTEMPTS``, ``SOCIALCREDIT_NOTICE_BACKOFF`` (seconds)."""
        env = os.environ if env is None else env
        kw: dict[str, Any] = {}
        smtp = env.get("SOCIALCREDIT_SMTP")
        if smtp:
            host, _, port = smtp.rpartition(":")
            if not host or not port.isdigit():
                raise InputError(
                    [
                        Problem(
                            "SOCIALCREDIT_SMTP", "format", smtp, "use host:port, e.g. localhost:25"
                        )
                    ]
                )
            kw["smtp_host"], kw["smtp_port"] = host, int(port)
        if env.get("SOCIALCREDIT_MAIL_FROM"):
            kw["mail_from"] = env["SOCIALCREDIT_MAIL_FROM"]
        if env.get("SOCIALCREDIT_NOTICE_MAX_ATTEMPTS", "").isdigit():
            kw["max_attempts"] = max(1, int(env["SOCIALCREDIT_NOTICE_MAX_ATTEMPTS"]))
        if env.get("SOCIALCREDIT_NOTICE_BACKOFF", "").replace(".", "", 1).isdigit():
            kw["backoff"] = dt.timedelta(seconds=float(env["SOCIALCREDIT_NOTICE_BACKOFF"]))
        kw.update(over)
        return cls(**kw)

    def delay(self, attempts: int) -> dt.timedelta:
        """The wait before attempt ``attempts + 1`` after ``attempts`` failures."""
        d: dt.timedelta = self.backoff * (2 ** max(0, attempts - 1))
        return d if d < self.max_backoff else self.max_backoff


@dataclass(frozen=True, slots=True)
class PumpReport:
    sent: int
    failed: int
    dead: int
    waiting: int


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does: compare the header with the HMAC of the raw body (constant time)."""
    return bool(header) and hmac.compare_digest(sign(secret, body), str(header))


def notice_payload(notice: Mapping[str, Any]) -> bytes:
    """The JSON a webhook receives: the notice as stored (id, kind, subject, title, body)."""
    doc = {
        "notice_id": int(notice["notice_id"]),
        "kind": notice["kind"],
        "recipient_kind": notice["recipient_kind"],
        "recipient": notice["recipient"],
        "subject": notice["subject"],
        "created_at": notice["created_at"].isoformat(timespec="microseconds") + "Z",
        "title": notice["title"],
        "body": json.loads(notice["body"]),
    }
    return json.dumps(doc, ensure_ascii=False, sort_keys=True).encode()


def _secret(conn: sa.Connection, notice: Mapping[str, Any], target: str) -> str | None:
    if notice["recipient_kind"] == "party":
        r = conn.execute(
            sa.select(party_webhooks.c.secret).where(
                party_webhooks.c.party_id == notice["recipient"], party_webhooks.c.url == target
            )
        ).first()
    else:
        r = conn.execute(
            sa.select(notice_contacts.c.webhook_secret).where(
                notice_contacts.c.subject == notice["recipient"],
                notice_contacts.c.webhook_url == target,
            )
        ).first()
    return None if r is None else r[0]


def _send_email(settings: DeliverySettings, notice: Mapping[str, Any], to: str) -> None:
    assert settings.smtp_host is not None
    body = json.loads(notice["body"])
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = to
    msg["Subject"] = notice["title"]
    msg["X-Socialcredit-Notice"] = str(notice["notice_id"])
    msg.set_content(str(body.get("text") or notice["title"]))
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout) as smtp:
        smtp.send_message(msg)


def _send_webhook(
    settings: DeliverySettings,
    client: httpx.Client,
    notice: Mapping[str, Any],
    delivery_id: int,
    url: str,
    secret: str | None,
) -> None:
    payload = notice_payload(notice)
    headers = {
        "Content-Type": "application/json",
        "X-Socialcredit-Notice": str(notice["notice_id"]),
        "X-Socialcredit-Delivery": str(delivery_id),
    }
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, payload)
    r = client.post(url, content=payload, headers=headers, timeout=settings.timeout)
    if not 200 <= r.status_code < 300:
        raise RuntimeError(f"HTTP {r.status_code} from {url}: {r.text[:200]}")


def pump(
    engine: sa.Engine,
    clock: Clock,
    settings: DeliverySettings | None = None,
    *,
    limit: int = 100,
) -> PumpReport:
    """Send every delivery that is due (at most ``limit``). Safe to run in several processes."""
    settings = settings or DeliverySettings.from_env()
    now = naive_utc(clock.now())
    with engine.connect() as conn:
        due = (
            conn.execute(
                sa.select(notice_deliveries)
                .where(
                    notice_deliveries.c.state.in_(("pending", "failed")),
                    notice_deliveries.c.next_attempt_at <= now,
                )
                .order_by(notice_deliveries.c.next_attempt_at, notice_deliveries.c.delivery_id)
                .limit(limit)
            )
            .mappings()
            .all()
        )
    if not due:  # the usual case, once a second in the API: no client (its TLS set-up is costly)
        return PumpReport(0, 0, 0, 0)
    sent = failed = dead = waiting = 0
    with httpx.Client() as client:
        for d in due:
            if d["channel"] == "email" and not settings.smtp_host:
                waiting += 1
                msg = "waiting: no SMTP server is configured (set SOCIALCREDIT_SMTP=host:port)"
                if d["last_error"] != msg:
                    with engine.begin() as conn:
                        conn.execute(
                            notice_deliveries.update()
                            .where(notice_deliveries.c.delivery_id == d["delivery_id"])
                            .values(last_error=msg)
                        )
                continue
            # claim the row: only one pump moves next_attempt_at from the value it read
            with engine.begin() as conn:
                claimed = conn.execute(
                    notice_deliveries.update()
                    .where(
                        notice_deliveries.c.delivery_id == d["delivery_id"],
                        notice_deliveries.c.next_attempt_at == d["next_attempt_at"],
                        notice_deliveries.c.state == d["state"],
                    )
                    .values(next_attempt_at=now + settings.lease)
                ).rowcount
                got = (
                    conn.execute(sa.select(notices).where(notices.c.notice_id == d["notice_id"]))
                    .mappings()
                    .first()
                )
                notice = None if got is None else dict(got)
                secret = (
                    _secret(conn, notice, d["target"])
                    if notice is not None and d["channel"] == "webhook"
                    else None
                )
            if not claimed or notice is None:
                continue
            error: str | None = None
            try:
                if d["channel"] == "email":
                    _send_email(settings, notice, d["target"])
                else:
                    _send_webhook(settings, client, notice, d["delivery_id"], d["target"], secret)
            except Exception as e:
                error = f"{type(e).__name__}: {e}"[:2000]
            attempts = int(d["attempts"]) + 1
            at = naive_utc(clock.now())
            if error is None:
                values: dict[str, Any] = {
                    "state": "sent",
                    "attempts": attempts,
                    "sent_at": at,
                    "last_error": None,
                }
                sent += 1
            elif attempts >= settings.max_attempts:
                values = {"state": "dead", "attempts": attempts, "last_error": error}
                dead += 1
            else:
                values = {
                    "state": "failed",
                    "attempts": attempts,
                    "last_error": error,
                    "next_attempt_at": at + settings.delay(attempts),
                }
                failed += 1
            with engine.begin() as conn:
                conn.execute(
                    notice_deliveries.update()
                    .where(notice_deliveries.c.delivery_id == d["delivery_id"])
                    .values(**values)
                )
    return PumpReport(sent, failed, dead, waiting)


def list_deliveries(
    engine: sa.Engine, *, state: str | None = None, notice_id: int | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    from socialcredit.cases.notices import delivery_dict

    if state is not None and state not in STATES:
        raise InputError(
            [Problem("state", "enum", state, f"a delivery state is one of {', '.join(STATES)}")]
        )
    q = sa.select(notice_deliveries)
    if state is not None:
        q = q.where(notice_deliveries.c.state == state)
    if notice_id is not None:
        q = q.where(notice_deliveries.c.notice_id == notice_id)
    q = q.order_by(notice_deliveries.c.delivery_id.desc()).limit(limit)
    with engine.connect() as conn:
        return [delivery_dict(dict(r)) for r in conn.execute(q).mappings()]


def redrive(engine: sa.Engine, clock: Clock, delivery_id: int) -> dict[str, Any]:
    """Put a failed or dead delivery back in the queue, due now, with its attempts reset."""
    from socialcredit.cases.notices import delivery_dict

    now = naive_utc(clock.now())
    with engine.begin() as conn:
        r = (
            conn.execute(
                sa.select(notice_deliveries).where(notice_deliveries.c.delivery_id == delivery_id)
            )
            .mappings()
            .first()
        )
        if r is None:
            raise NotFoundError(f"no delivery {delivery_id}")
        if r["state"] == "sent":
            raise InputError(
                [
                    Problem(
                        "delivery",
                        "already-sent",
                        delivery_id,
                        f"delivery {delivery_id} was sent at {r['sent_at']}; nothing to re-drive",
                    )
                ]
            )
        conn.execute(
            notice_deliveries.update()
            .where(notice_deliveries.c.delivery_id == delivery_id)
            .values(state="pending", attempts=0, next_attempt_at=now)
        )
        r = (
            conn.execute(
                sa.select(notice_deliveries).where(notice_deliveries.c.delivery_id == delivery_id)
            )
            .mappings()
            .one()
        )
    return delivery_dict(dict(r))


# ---------------------------------------------------------------------- contacts


def _check_url(field: str, url: str | None) -> list[Problem]:
    if url is None:
        return []
    if not url.startswith(("http://", "https://")) or len(url) > 500 or " " in url:
        return [Problem(field, "format", url, "a webhook URL is http(s)://..., at most 500 chars")]
    return []


def _check_email(field: str, email: str | None) -> list[Problem]:
    if email is None:
        return []
    local, at, domain = email.partition("@")
    if (
        not at
        or not local
        or "." not in domain
        or len(email) > 254
        or any(c.isspace() for c in email)
    ):
        return [Problem(field, "format", email, "not an e-mail address (name@example.org)")]
    return []


def _check_secret(field: str, url: str | None, secret: str | None) -> list[Problem]:
    if url is not None and (secret is None or not 16 <= len(secret) <= 200):
        return [
            Problem(
                field,
                "required",
                None,
                "a webhook needs a secret of 16-200 characters: every delivery is signed with it "
                f"(header {SIGNATURE_HEADER}: sha256=HMAC-SHA256(secret, body))",
            )
        ]
    return []


def set_contact(
    engine: sa.Engine,
    clock: Clock,
    subject: str,
    *,
    email: str | None = None,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
) -> dict[str, Any]:
    """Set how a subject is told (replaces the previous contact; both None: inbox only)."""
    problems = (
        _check_email("email", email)
        + _check_url("webhook_url", webhook_url)
        + _check_secret("webhook_secret", webhook_url, webhook_secret)
    )
    if problems:
        raise InputError(problems)
    row = {
        "email": email,
        "webhook_url": webhook_url,
        "webhook_secret": webhook_secret if webhook_url else None,
        "updated_at": naive_utc(clock.now()),
    }
    with engine.begin() as conn:
        n = conn.execute(
            notice_contacts.update().where(notice_contacts.c.subject == subject).values(**row)
        ).rowcount
        if not n:
            conn.execute(notice_contacts.insert().values(subject=subject, **row))
    return get_contact(engine, subject)


def get_contact(engine: sa.Engine, subject: str) -> dict[str, Any]:
    with engine.connect() as conn:
        r = (
            conn.execute(sa.select(notice_contacts).where(notice_contacts.c.subject == subject))
            .mappings()
            .first()
        )
    if r is None:
        return {"subject": subject, "email": None, "webhook_url": None, "webhook_secret_set": False}
    return {
        "subject": subject,
        "email": r["email"],
        "webhook_url": r["webhook_url"],
        "webhook_secret_set": bool(r["webhook_secret"]),
    }


def set_party_webhook(
    engine: sa.Engine,
    clock: Clock,
    party_id: str,
    *,
    url: str | None,
    secret: str | None,
    email: str | None = None,
) -> dict[str, Any]:
    """Register where a relying party receives correction notices (the party must exist)."""
    from socialcredit.status.parties import get_party

    get_party(engine, party_id)
    problems = (
        _check_url("url", url) + _check_secret("secret", url, secret) + _check_email("email", email)
    )
    if problems:
        raise InputError(problems)
    row = {
        "url": url,
        "secret": secret if url else None,
        "email": email,
        "updated_at": naive_utc(clock.now()),
    }
    with engine.begin() as conn:
        n = conn.execute(
            party_webhooks.update().where(party_webhooks.c.party_id == party_id).values(**row)
        ).rowcount
        if not n:
            conn.execute(party_webhooks.insert().values(party_id=party_id, **row))
    return get_party_webhook(engine, party_id)


def get_party_webhook(engine: sa.Engine, party_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        r = (
            conn.execute(sa.select(party_webhooks).where(party_webhooks.c.party_id == party_id))
            .mappings()
            .first()
        )
    if r is None:
        return {"party": party_id, "url": None, "email": None, "secret_set": False}
    return {
        "party": party_id,
        "url": r["url"],
        "email": r["email"],
        "secret_set": bool(r["secret"]),
    }


__all__: Sequence[str] = (
    "DeliverySettings",
    "PumpReport",
    "get_contact",
    "get_party_webhook",
    "list_deliveries",
    "notice_payload",
    "pump",
    "redrive",
    "set_contact",
    "set_party_webhook",
    "sign",
    "verify_signature",
)
