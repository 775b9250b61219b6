"""API keys: a role, a scope, and a hashed 256-bit secret.

A key reads ``sck_<key id>_<secret>``; only SHA-256 of the secret is stored (for high-entropy
secrets a slow hash buys nothing) and it is compared with :func:`hmac.compare_digest`. The key is
shown once, when created. Roles and what their scope names:

=============== ======================================================
provider        the authority id it furnishes for
relying-party   the relying party id it asks for
subject         the subject key whose own file it reads
officer         the officer's own subject key (officers are subjects too); optional, but case
                actions (decide, review, halt, tips) need it: they name the officer
reviewer        as officer
auditor         (no scope)
public          (no scope)
=============== ======================================================
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass

import sqlalchemy as sa

from socialcredit import ids
from socialcredit.errors import InputError, NotFoundError, Problem
from socialcredit.ledger.schema import authorities
from socialcredit.status.db import naive_utc
from socialcredit.status.schema import api_keys, relying_parties

ROLES = ("provider", "relying-party", "subject", "officer", "reviewer", "auditor", "public")
SCOPE_OF = {"provider": "authority", "relying-party": "relying-party", "subject": "subject"}
OPTIONAL_SCOPE = {"officer": "subject", "reviewer": "subject"}  # the officer's own subject key
PREFIX = "sck"


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    role: str
    scope: str | None
    label: str | None
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    secret_sha256: str = ""

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def as_dict(self) -> dict[str, object]:
        return {
            "key_id": self.key_id,
            "role": self.role,
            "scope": self.scope,
            "label": self.label,
            "created_at": self.created_at.isoformat() + "Z",
            "revoked_at": self.revoked_at.isoformat() + "Z" if self.revoked_at else None,
        }


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """``sck_<id>_<secret>`` -> (id, secret), or None if it is not shaped like a key."""
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    if len(parts[1]) > 32 or len(parts[2]) > 128:
        return None
    return parts[1], parts[2]


def _row(r: sa.RowMapping) -> ApiKey:
    return ApiKey(
        r["key_id"],
        r["role"],
        r["scope"],
        r["label"],
        r["created_at"],
        r["revoked_at"],
        r["secret_sha256"],
    )


def create_key(
    engine: sa.Engine,
    now: dt.datetime,
    role: str,
    scope: str | None = None,
    label: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns it and the full token (shown once, never stored)."""
    problems: list[Problem] = []
    if role not in ROLES:
        problems.append(
            Problem("role", "unknown-role", role, f"'{role}' is not a role ({', '.join(ROLES)})")
        )
    needs = SCOPE_OF.get(role)
    if needs is None and scope and role in OPTIONAL_SCOPE:
        needs = OPTIONAL_SCOPE[role]
    if needs is None and scope:
        problems.append(Problem("scope", "no-scope", scope, f"a {role} key takes no scope"))
    if needs is not None and not scope:
        problems.append(
            Problem("scope", "required", scope, f"a {role} key needs a {needs} (its scope)")
        )
    if needs is not None and scope and not problems:
        with engine.connect() as conn:
            if needs == "authority":
                found = conn.execute(
                    sa.select(authorities.c.authority_id).where(authorities.c.authority_id == scope)
                ).first()
                if found is None:
                    problems.append(
                        Problem("scope", "unknown-authority", scope, f"no authority '{scope}'")
                    )
            elif needs == "relying-party":
                found = conn.execute(
                    sa.select(relying_parties.c.party_id).where(relying_parties.c.party_id == scope)
                ).first()
                if found is None:
                    problems.append(
                        Problem(
                            "scope",
                            "unknown-relying-party",
                            scope,
                            f"no relying party '{scope}' (register it: socialcredit parties add)",
                        )
                    )
            else:
                try:
                    scope = ids.parse_key(scope).key
                except ids.IdError as e:
                    problems.append(e.problem("scope"))
    if problems:
        raise InputError(problems)
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    stamp = naive_utc(now)
    clean_label = (label or "").strip()[:200] or None
    row: dict[str, object] = {
        "key_id": key_id,
        "secret_sha256": hash_secret(secret),
        "role": role,
        "scope": scope or None,
        "label": clean_label,
        "created_at": stamp,
        "revoked_at": None,
    }
    with engine.begin() as conn:
        conn.execute(api_keys.insert().values(**row))
    key = ApiKey(key_id, role, scope or None, clean_label, stamp, None, hash_secret(secret))
    return key, f"{PREFIX}_{key_id}_{secret}"


def list_keys(engine: sa.Engine) -> list[ApiKey]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at)).mappings().all()
    return [_row(r) for r in rows]


def get_key(engine: sa.Engine, key_id: str) -> ApiKey | None:
    with engine.connect() as conn:
        r = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).mappings().first()
    return None if r is None else _row(r)


def revoke_key(engine: sa.Engine, key_id: str, now: dt.datetime) -> ApiKey:
    """Revoke a key (at once, in every API worker within one poll interval). Idempotent."""
    with engine.begin() as conn:
        conn.execute(
            api_keys.update()
            .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=naive_utc(now))
        )
    key = get_key(engine, key_id)
    if key is None:
        raise NotFoundError(f"no API key '{key_id}'")
    return key


class KeyCache:
    """Keys in memory, reloaded when the table changes (polled); unknown ids are looked up."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self._keys: dict[str, ApiKey] = {}
        # tokens whose secret matched, so a key's hash is computed once, not per request; only
        # live keys' tokens get in (so it holds at most one entry per key), and it is emptied
        # whenever the key table changes (a revocation among them)
        self._verified: dict[str, ApiKey] = {}
        self._fp: tuple[object, ...] | None = None
        self._lock = threading.Lock()

    def refresh(self) -> bool:
        with self.engine.connect() as conn:
            fp = tuple(
                conn.execute(
                    sa.select(
                        sa.func.count(),
                        sa.func.count(api_keys.c.revoked_at),
                        sa.func.max(api_keys.c.created_at),
                        sa.func.max(api_keys.c.revoked_at),
                    )
                ).one()
            )
        if fp == self._fp:
            return False
        with self._lock:
            self._keys = {k.key_id: k for k in list_keys(self.engine)}
            self._verified = {}
            self._fp = fp
        return True

    def cached(self, token: str) -> bool:
        """Whether :meth:`check` can answer from memory (no database round trip)."""
        if token in self._verified:
            return True
        parts = split_token(token)
        return parts is None or parts[0] in self._keys

    def check(self, token: str | None) -> tuple[ApiKey | None, str]:
        """(key, "") if the token is a live key, else (key or None, refusal rule)."""
        if not token:
            return None, "no-key"
        known = self._verified.get(token)
        if known is not None:
            return known, ""
        parts = split_token(token)
        if parts is None:
            return None, "malformed-key"
        key_id, secret = parts
        key = self._keys.get(key_id)
        if key is None:
            key = get_key(self.engine, key_id)
            if key is None:
                return None, "unknown-key"
            self._keys[key_id] = key
        if not hmac.compare_digest(key.secret_sha256, hash_secret(secret)):
            return None, "bad-secret"
        if key.revoked:
            return key, "revoked-key"
        with self._lock:
            if self._keys.get(key_id) is key:  # not replaced by a refresh meanwhile
                self._verified[token] = key
        return key, ""
