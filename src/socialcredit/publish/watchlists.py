"""Watchlists: partners an owner monitors, with signed webhook alerts on public status changes.

**Owners.** An owner is an organisation (``org:<subject key>`` — an API key of role ``subject``
whose subject is an organisation, e.g. a company vetting its suppliers) or a relying party
(``party:<party id>`` — e.g. a bank). Natural persons cannot keep watchlists.

**What triggers an alert.** Only a change of the watched subject's *public* status: entering or
leaving a public list (:func:`socialcredit.publish.public.public_entries` is the one definition of
public). Private lists, scores and grades never trigger anything, and an alert carries only
public information.

**How changes are found.** :meth:`Watcher.detect` tails ``status_changes`` after its own watermark
(``publish_watermarks``) and, once a day, re-checks every watched subject (publicity periods end
with time, not with a ledger entry). It compares the subject's public entries with the last ones
seen (``watch_public``) and writes one alert per owner watching it — alerts, the new public state
and the watermark move in one transaction, so a crash loses nothing and repeats nothing.

**Delivery.** :meth:`Watcher.deliver` POSTs each pending alert's exact stored body with headers
``Socialcredit-Signature`` (base64url Ed25519 signature of the body bytes with the registry key),
``Socialcredit-Key-Id`` and ``Socialcredit-Alert-Id``. A non-2xx answer or a network error is
retried with exponential backoff (30 s doubling, at most 6 h between tries) — forever: alerts are
never dropped, and every alert with its attempts is listable.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import sqlalchemy as sa

from socialcredit import ids
from socialcredit.clock import Clock
from socialcredit.errors import InputError, NotFoundError, Problem
from socialcredit.publish.public import mask_subject, public_entries, subject_is_person
from socialcredit.publish.schema import (
    publish_watermarks,
    watch_alerts,
    watch_public,
    watchlists,
)
from socialcredit.publish.signing import Signer, b64url
from socialcredit.rulebooks.model import Rulebook
from socialcredit.status.db import locked_transaction, naive_utc
from socialcredit.status.schema import status_changes

log = logging.getLogger(__name__)

WATCH_LOCK_KEY = 0x5C0C3A7C
WM_CHANGES = "watch-changes"
WM_DAY = "watch-day"
BACKOFF_FIRST = dt.timedelta(seconds=30)
BACKOFF_MAX = dt.timedelta(hours=6)
CLAIM_LEASE = dt.timedelta(minutes=2)  # a deliverer that dies mid-POST: retried after this
SIGNATURE_HEADER = "Socialcredit-Signature"
KEY_ID_HEADER = "Socialcredit-Key-Id"
ALERT_ID_HEADER = "Socialcredit-Alert-Id"
ALERT_TYPE = "socialcredit.watch.public-status-changed"
MAX_WATCHES_PER_OWNER = 10_000


# ---------------------------------------------------------------------- owners and watches


def owner_for(role: str, scope: str | None) -> str:
    """The owner name of an API key, or InputError if the key may not keep a watchlist."""
    if role == "relying-party" and scope:
        return f"party:{scope}"
    if role == "subject" and scope:
        if subject_is_person(scope):
            raise InputError(
                [
                    Problem(
                        "owner",
                        "not-an-organisation",
                        None,
                        "watchlists are for organisations and relying parties, not persons",
                    )
                ]
            )
        return f"org:{scope}"
    raise InputError(
        [Problem("owner", "role", role, "only organisation subjects and relying parties")]
    )


def parse_owner(owner: str) -> str:
    """Validate an owner name given on the command line (``org:KEY`` or ``party:ID``)."""
    kind, sep, rest = owner.partition(":")
    if sep and kind == "party" and rest:
        return owner
    if sep and kind == "org":
        try:
            key = ids.parse_key(rest).key
        except ids.IdError as e:
            raise InputError([e.problem("owner")]) from None
        return owner_for("subject", key)
    raise InputError(
        [Problem("owner", "format", owner, "write org:SCHEME:VALUE or party:PARTY_ID")]
    )


def _check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(
            [Problem("webhook_url", "url", url, "an absolute http:// or https:// URL")]
        )
    if len(url) > 2000:
        raise InputError([Problem("webhook_url", "too-long", None, "at most 2000 characters")])
    return url.strip()


def _subject(raw: str) -> str:
    try:
        return ids.parse_key(raw).key
    except ids.IdError as e:
        raise InputError([e.problem("subject")]) from None


def list_watches(engine: sa.Engine, owner: str | None = None) -> list[dict[str, Any]]:
    q = sa.select(watchlists).order_by(watchlists.c.owner, watchlists.c.subject)
    if owner is not None:
        q = q.where(watchlists.c.owner == owner)
    with engine.connect() as conn:
        return [
            {
                "owner": r["owner"],
                "subject": r["subject"],
                "webhook_url": r["webhook_url"],
                "created_at": r["created_at"].isoformat(timespec="seconds") + "Z",
            }
            for r in conn.execute(q).mappings()
        ]


def remove_watch(engine: sa.Engine, owner: str, subject: str) -> None:
    key = _subject(subject)
    with engine.begin() as conn:
        n = conn.execute(
            watchlists.delete().where(watchlists.c.owner == owner, watchlists.c.subject == key)
        ).rowcount
    if not n:
        raise NotFoundError(f"{owner} does not watch {key}")


def list_alerts(
    engine: sa.Engine, owner: str | None = None, *, limit: int = 100, status: str | None = None
) -> list[dict[str, Any]]:
    q = sa.select(watch_alerts).order_by(watch_alerts.c.alert_id.desc()).limit(limit)
    if owner is not None:
        q = q.where(watch_alerts.c.owner == owner)
    if status is not None:
        q = q.where(watch_alerts.c.status == status)

    def stamp(t: dt.datetime | None) -> str | None:
        return None if t is None else t.isoformat(timespec="seconds") + "Z"

    with engine.connect() as conn:
        return [
            {
                "alert_id": r["alert_id"],
                "owner": r["owner"],
                "subject": r["subject"],
                "webhook_url": r["webhook_url"],
                "created_at": stamp(r["created_at"]),
                "status": r["status"],
                "attempts": r["attempts"],
                "next_attempt_at": stamp(r["next_attempt_at"]),
                "delivered_at": stamp(r["delivered_at"]),
                "last_error": r["last_error"],
                "body": orjson.loads(r["body"]),
            }
            for r in conn.execute(q).mappings()
        ]


# ---------------------------------------------------------------------- the watcher


@dataclass(frozen=True)
class PumpReport:
    checked: int
    alerts: int
    delivered: int
    failed: int

    def as_dict(self) -> dict[str, int]:
        return {
            "checked": self.checked,
            "alerts": self.alerts,
            "delivered": self.delivered,
            "failed": self.failed,
        }


def _wm(conn: sa.Connection, name: str) -> int:
    v = conn.execute(
        sa.select(publish_watermarks.c.seq).where(publish_watermarks.c.name == name)
    ).scalar()
    return int(v or 0)


def _set_wm(conn: sa.Connection, name: str, value: int) -> None:
    n = conn.execute(
        publish_watermarks.update().where(publish_watermarks.c.name == name).values(seq=value)
    ).rowcount
    if not n:
        conn.execute(publish_watermarks.insert().values(name=name, seq=value))


def backoff(attempts: int) -> dt.timedelta:
    """Wait after ``attempts`` failed tries: 30 s, 60 s, 120 s ... at most 6 h."""
    wait: dt.timedelta = BACKOFF_FIRST * (2 ** max(0, min(attempts - 1, 20)))
    return min(wait, BACKOFF_MAX)


class Watcher:
    """Detects public status changes of watched subjects and delivers signed alerts."""

    def __init__(
        self,
        engine: sa.Engine,
        rulebooks: Sequence[Rulebook] | Callable[[], Sequence[Rulebook]],
        clock: Clock,
        signer: Signer | Callable[[], Signer],
        *,
        registry: str = "socialcredit registry",
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ):
        self.engine = engine
        self._rulebooks = rulebooks
        self.clock = clock
        self._signer = signer
        self.registry = registry
        self.timeout = timeout
        self.transport = transport
        self._lock = threading.Lock()

    @property
    def rulebooks(self) -> Sequence[Rulebook]:
        return self._rulebooks() if callable(self._rulebooks) else self._rulebooks

    @property
    def signer(self) -> Signer:
        if callable(self._signer):
            self._signer = self._signer()
        return self._signer

    # -------------------------------------------------------------- state

    def public_state(self, subject: str, today: dt.date) -> list[dict[str, Any]]:
        """The subject's public entries, in the compact form alerts compare and carry."""
        out = [
            {
                "rulebook": e.rulebook_ref,
                "rulebook_id": e.rulebook_id,
                "list": e.list_id,
                "list_title": e.list_title,
                "list_type": e.list_type,
                "since": e.since.isoformat(),
                "until": e.until.isoformat() if e.until else None,
                "publish_until": e.publish_until.isoformat(),
                "subject": e.subject_ref,
                "subject_name": e.subject_name,
            }
            for e in public_entries(self.engine, self.rulebooks, today, subject=subject)
        ]
        out.sort(key=lambda d: (d["rulebook_id"], d["list"], d["since"]))
        return out

    def add(self, owner: str, subject: str, webhook_url: str) -> dict[str, Any]:
        """Watch ``subject`` for ``owner`` (replaces the webhook URL if already watched).

        The subject's current public state is the baseline: only later changes alert.
        """
        key = _subject(subject)
        url = _check_url(webhook_url)
        now = naive_utc(self.clock.now())
        state = self.public_state(key, self.clock.now().date())
        with locked_transaction(self.engine, WATCH_LOCK_KEY) as conn:
            n = conn.execute(
                sa.select(sa.func.count())
                .select_from(watchlists)
                .where(watchlists.c.owner == owner)
            ).scalar_one()
            done = conn.execute(
                watchlists.update()
                .where(watchlists.c.owner == owner, watchlists.c.subject == key)
                .values(webhook_url=url)
            ).rowcount
            if not done:
                if n >= MAX_WATCHES_PER_OWNER:
                    raise InputError(
                        [
                            Problem(
                                "subject",
                                "too-many",
                                key,
                                f"an owner may watch at most {MAX_WATCHES_PER_OWNER} subjects",
                            )
                        ]
                    )
                conn.execute(
                    watchlists.insert().values(
                        owner=owner, subject=key, webhook_url=url, created_at=now
                    )
                )
            seen = conn.execute(
                sa.select(watch_public.c.subject).where(watch_public.c.subject == key)
            ).first()
            if seen is None:
                conn.execute(
                    watch_public.insert().values(
                        subject=key, entries=orjson.dumps(state).decode(), updated_at=now
                    )
                )
        return {"owner": owner, "subject": key, "webhook_url": url, "public": state}

    # -------------------------------------------------------------- detecting

    def detect(self, *, limit: int = 5000) -> tuple[int, int]:
        """Turn public status changes of watched subjects into alerts. (subjects checked, alerts)."""
        with self._lock:
            checked = made = 0
            while True:
                now = self.clock.now()
                today = now.date()
                with self.engine.connect() as conn:
                    wm = _wm(conn, WM_CHANGES)
                    day = _wm(conn, WM_DAY)
                    rows = conn.execute(
                        sa.select(status_changes.c.change_seq, status_changes.c.subject)
                        .where(status_changes.c.change_seq > wm)
                        .order_by(status_changes.c.change_seq)
                        .limit(limit)
                    ).all()
                    watched = {
                        s for (s,) in conn.execute(sa.select(watchlists.c.subject).distinct())
                    }
                new_wm = int(rows[-1][0]) if rows else wm
                new_day = today.toordinal()
                if not rows and day == new_day:
                    return checked, made
                todo: set[str] = set()
                if day != new_day or any(s is None for _, s in rows):
                    todo = set(watched)
                else:
                    todo = {s for _, s in rows if s in watched}
                states = {s: self.public_state(s, today) for s in sorted(todo)}
                n = self._write(states, wm, new_wm, day, new_day, now)
                if n is None:
                    continue  # someone else moved the watermark: read again
                checked += len(states)
                made += n
                if len(rows) < limit:
                    return checked, made

    def _write(
        self,
        states: dict[str, list[dict[str, Any]]],
        wm: int,
        new_wm: int,
        day: int,
        new_day: int,
        now: dt.datetime,
    ) -> int | None:
        at = naive_utc(now)
        made = 0
        with locked_transaction(self.engine, WATCH_LOCK_KEY) as conn:
            if _wm(conn, WM_CHANGES) != wm or _wm(conn, WM_DAY) != day:
                return None
            for subject, state in states.items():
                old_row = conn.execute(
                    sa.select(watch_public.c.entries).where(watch_public.c.subject == subject)
                ).first()
                old = orjson.loads(old_row[0]) if old_row else None
                text = orjson.dumps(state).decode()
                if old_row is None:
                    conn.execute(
                        watch_public.insert().values(subject=subject, entries=text, updated_at=at)
                    )
                    old = []
                elif old_row[0] != text:
                    conn.execute(
                        watch_public.update()
                        .where(watch_public.c.subject == subject)
                        .values(entries=text, updated_at=at)
                    )
                changes = _diff(old or [], state)
                if not changes:
                    continue
                owners = conn.execute(
                    sa.select(watchlists.c.owner, watchlists.c.webhook_url).where(
                        watchlists.c.subject == subject
                    )
                ).all()
                for owner, url in owners:
                    made += 1
                    inserted = conn.execute(
                        watch_alerts.insert().values(
                            owner=owner,
                            subject=subject,
                            webhook_url=url,
                            body="{}",
                            created_at=at,
                            status="pending",
                            attempts=0,
                            next_attempt_at=at,
                        )
                    ).inserted_primary_key
                    assert inserted is not None
                    alert_id = inserted[0]
                    body = {
                        "type": ALERT_TYPE,
                        "alert_id": int(alert_id),
                        "registry": self.registry,
                        "owner": owner,
                        "subject": subject,
                        "subject_public": mask_subject(subject),
                        "detected_at": at.isoformat(timespec="seconds") + "Z",
                        "changes": changes,
                        "public_entries": state,
                    }
                    conn.execute(
                        watch_alerts.update()
                        .where(watch_alerts.c.alert_id == alert_id)
                        .values(body=orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode())
                    )
            _set_wm(conn, WM_CHANGES, new_wm)
            _set_wm(conn, WM_DAY, new_day)
        return made

    # -------------------------------------------------------------- delivering

    def deliver(self, *, limit: int = 100) -> tuple[int, int]:
        """POST every due alert once. Returns (delivered, failed)."""
        now = naive_utc(self.clock.now())
        with self.engine.connect() as conn:
            due = (
                conn.execute(
                    sa.select(watch_alerts)
                    .where(
                        watch_alerts.c.status == "pending",
                        watch_alerts.c.next_attempt_at <= now,
                    )
                    .order_by(watch_alerts.c.alert_id)
                    .limit(limit)
                )
                .mappings()
                .all()
            )
        if not due:
            return 0, 0
        signer = self.signer
        ok = bad = 0
        with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
            for a in due:
                # claim it (another worker's deliverer may have read the same row)
                with self.engine.begin() as conn:
                    claimed = conn.execute(
                        watch_alerts.update()
                        .where(
                            watch_alerts.c.alert_id == a["alert_id"],
                            watch_alerts.c.status == "pending",
                            watch_alerts.c.next_attempt_at == a["next_attempt_at"],
                        )
                        .values(next_attempt_at=now + CLAIM_LEASE)
                    ).rowcount
                if not claimed:
                    continue
                body = a["body"].encode()
                headers = {
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: b64url(signer.sign(body)),
                    KEY_ID_HEADER: signer.key_id,
                    ALERT_ID_HEADER: str(a["alert_id"]),
                    "User-Agent": "socialcredit-watchlists/1",
                }
                error: str | None = None
                try:
                    r = client.post(a["webhook_url"], content=body, headers=headers)
                    if not 200 <= r.status_code < 300:
                        error = f"HTTP {r.status_code}"
                except httpx.HTTPError as e:
                    error = f"{type(e).__name__}: {e}"[:500]
                attempts = a["attempts"] + 1
                with self.engine.begin() as conn:
                    if error is None:
                        ok += 1
                        conn.execute(
                            watch_alerts.update()
                            .where(watch_alerts.c.alert_id == a["alert_id"])
                            .values(
                                status="delivered",
                                attempts=attempts,
                                delivered_at=naive_utc(self.clock.now()),
                                next_attempt_at=None,
                                last_error=None,
                            )
                        )
                    else:
                        bad += 1
                        conn.execute(
                            watch_alerts.update()
                            .where(watch_alerts.c.alert_id == a["alert_id"])
                            .values(
                                attempts=attempts,
                                next_attempt_at=naive_utc(self.clock.now()) + backoff(attempts),
                                last_error=error,
                            )
                        )
        return ok, bad

    def pump(self) -> PumpReport:
        checked, made = self.detect()
        delivered, failed = self.deliver()
        return PumpReport(checked, made, delivered, failed)


def _key(d: dict[str, Any]) -> tuple[str, str, str]:
    return (d["rulebook_id"], d["list"], d["since"])


def _diff(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    before = {_key(d): d for d in old}
    after = {_key(d): d for d in new}
    out = []
    for k in sorted(after.keys() - before.keys()):
        out.append({"event": "entered", **after[k]})
    for k in sorted(before.keys() - after.keys()):
        out.append({"event": "left", **before[k]})
    return out


# ---------------------------------------------------------------------- in the API process


class Alerter:
    """Runs a :class:`Watcher` on its own thread, woken by :meth:`kick` (the runtime's tick).

    Keeping it off the status poller's thread means a slow webhook never delays the eligibility
    index.
    """

    def __init__(self, watcher: Watcher, stop: threading.Event, interval: float = 5.0):
        self.watcher = watcher
        self._stop = stop
        self._wake = threading.Event()
        self.interval = interval
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="watch-alerter", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                with self.watcher.engine.connect() as conn:
                    any_watch = conn.execute(sa.select(watchlists.c.owner).limit(1)).first()
                    pending = conn.execute(
                        sa.select(watch_alerts.c.alert_id)
                        .where(watch_alerts.c.status == "pending")
                        .limit(1)
                    ).first()
                if any_watch is None and pending is None:
                    continue
                self.watcher.pump()
                self.last_error = None
            except Exception as e:  # keep going; the next kick retries
                self.last_error = f"{type(e).__name__}: {e}"
                log.exception("watchlist alerter")


def runtime_tick(rt: Any) -> None:
    """The runtime's maintenance tick: start the alerter on first use, then wake it."""
    alerter: Alerter | None = getattr(rt, "_watch_alerter", None)
    if alerter is None:
        from socialcredit.publish.reports import registry_name
        from socialcredit.publish.signing import registry_signer

        engine, clock = rt.engine, rt.clock
        watcher = Watcher(
            engine,
            lambda: rt.status.rulebooks,
            clock,
            lambda: registry_signer(engine, clock.now()),
            registry=registry_name(),
        )
        alerter = Alerter(watcher, rt._stop)
        rt._watch_alerter = alerter
    alerter.kick()
