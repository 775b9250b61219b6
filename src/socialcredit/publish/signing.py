"""The registry's Ed25519 signing key: credit reports and watchlist alerts are signed with it.

* The **private key** lives in a PEM file (PKCS#8, unencrypted, mode 0600): ``$SOCIALCREDIT_SIGNING_KEY``
  or, by default, a file beside the SQLite database (``<db>.signing-key.pem``; for PostgreSQL
  ``~/.socialcredit/signing-key.pem``). It is created on first use and never stored in the database.
* Every **public key** is recorded in ``signing_keys`` under its key id (the first 16 hex digits
  of the SHA-256 of the raw 32-byte public key), so reports signed before a rotation still verify.
* The keys are published as a JSON Web Key Set (RFC 8037 ``OKP``/``Ed25519``) at
  ``/.well-known/socialcredit-report-keys.json`` and the current key as PEM at
  ``/.well-known/socialcredit-report-key.pem`` (and by ``socialcredit report key``).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from socialcredit.errors import InputError, Problem
from socialcredit.publish.schema import signing_keys

KEY_ENV = "SOCIALCREDIT_SIGNING_KEY"
ALGORITHM = "Ed25519"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def raw_public(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(pub: Ed25519PublicKey) -> str:
    """The key id: the first 16 hex digits of SHA-256 over the raw public key."""
    return hashlib.sha256(raw_public(pub)).hexdigest()[:16]


def public_pem(pub: Ed25519PublicKey) -> str:
    return pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def default_key_path(engine: sa.Engine | None = None) -> Path:
    """Where the private key lives: ``$SOCIALCREDIT_SIGNING_KEY``, else beside the SQLite file."""
    env = os.environ.get(KEY_ENV)
    if env:
        return Path(env).expanduser()
    if engine is not None and engine.dialect.name == "sqlite" and engine.url.database:
        return Path(engine.url.database + ".signing-key.pem")
    return Path.home() / ".socialcredit" / "signing-key.pem"


def _write_private(path: Path, key: Ed25519PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # written whole to a private temporary file, then linked into place: another process never
    # sees a half-written key, and an existing key is never replaced (FileExistsError)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_private_key(path: Path, *, create: bool = True) -> Ed25519PrivateKey:
    """Read the private key at ``path``; create it (mode 0600) if missing and ``create``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if not create:
            raise
        key = Ed25519PrivateKey.generate()
        try:
            _write_private(path, key)
        except FileExistsError:  # another process made it first: use theirs
            data = path.read_bytes()
        else:
            return key
    loaded = serialization.load_pem_private_key(data, password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise InputError(
            [Problem("signing_key", "not-ed25519", str(path), "the signing key is not Ed25519")]
        )
    return loaded


@dataclass(frozen=True)
class Signer:
    """The registry's current private key and its id."""

    private_key: Ed25519PrivateKey
    key_id: str
    path: Path

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)

    def public_pem(self) -> str:
        return public_pem(self.public_key)


def _naive(t: dt.datetime) -> dt.datetime:
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t


def register_public_key(engine: sa.Engine, pub: Ed25519PublicKey, now: dt.datetime) -> str:
    """Record ``pub`` in ``signing_keys`` (idempotent). Returns its key id."""
    kid = key_id_of(pub)
    with engine.connect() as conn:
        seen = conn.execute(
            sa.select(signing_keys.c.key_id).where(signing_keys.c.key_id == kid)
        ).first()
    if seen is None:
        with contextlib.suppress(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(  # (a concurrent registration of the same key is harmless)
                signing_keys.insert().values(
                    key_id=kid,
                    algorithm=ALGORITHM,
                    public_key=b64url(raw_public(pub)),
                    created_at=_naive(now),
                    retired_at=None,
                )
            )
    return kid


def registry_signer(engine: sa.Engine, now: dt.datetime, path: Path | str | None = None) -> Signer:
    """The registry's signer: loads (or creates) the private key and records its public key."""
    p = Path(path) if path is not None else default_key_path(engine)
    key = load_private_key(p)
    kid = register_public_key(engine, key.public_key(), now)
    return Signer(key, kid, p)


def rotate(engine: sa.Engine, now: dt.datetime, path: Path | str | None = None) -> Signer:
    """Make a new key; the old one is retired (kept in ``signing_keys``, file renamed aside)."""
    p = Path(path) if path is not None else default_key_path(engine)
    old: Signer | None = None
    if p.exists():
        old = registry_signer(engine, now, p)
        p.rename(p.with_name(f"{p.name}.{old.key_id}.retired"))
    new = registry_signer(engine, now, p)
    if old is not None:
        with engine.begin() as conn:
            conn.execute(
                signing_keys.update()
                .where(signing_keys.c.key_id == old.key_id, signing_keys.c.retired_at.is_(None))
                .values(retired_at=_naive(now))
            )
    return new


def _stamp(t: dt.datetime | None) -> str | None:
    return None if t is None else t.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def jwks(engine: sa.Engine) -> dict[str, Any]:
    """Every public key as a JSON Web Key Set (RFC 7517 / RFC 8037), newest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(signing_keys).order_by(
                signing_keys.c.created_at.desc(), signing_keys.c.key_id
            )
        ).mappings()
        keys = [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "use": "sig",
                "kid": r["key_id"],
                "x": r["public_key"],
                "created_at": _stamp(r["created_at"]),
                "retired_at": _stamp(r["retired_at"]),
            }
            for r in rows
        ]
    return {"keys": keys}


def current_public_pem(engine: sa.Engine) -> tuple[str, str] | None:
    """(key id, PEM) of the newest key that is not retired, or None if none was ever made."""
    with engine.connect() as conn:
        r = conn.execute(
            sa.select(signing_keys)
            .where(signing_keys.c.retired_at.is_(None))
            .order_by(signing_keys.c.created_at.desc())
            .limit(1)
        ).first()
    if r is None:
        return None
    pub = Ed25519PublicKey.from_public_bytes(unb64url(r.public_key))
    return r.key_id, public_pem(pub)


# ---------------------------------------------------------------------- verifying


PublicKeys = Mapping[str, Ed25519PublicKey]


def keys_from_jwks(doc: Mapping[str, Any] | bytes | str) -> dict[str, Ed25519PublicKey]:
    """Public keys by key id from a JWKS document (as served at the well-known URL)."""
    if isinstance(doc, (bytes, str)):
        doc = orjson.loads(doc)
    assert isinstance(doc, Mapping)
    out: dict[str, Ed25519PublicKey] = {}
    for k in doc.get("keys", []):
        if k.get("kty") == "OKP" and k.get("crv") == "Ed25519" and isinstance(k.get("x"), str):
            pub = Ed25519PublicKey.from_public_bytes(unb64url(k["x"]))
            out[key_id_of(pub)] = pub  # the id is recomputed, never trusted from the document
    return out


def keys_from_pem(pem: bytes | str) -> dict[str, Ed25519PublicKey]:
    """One public key (PEM, SubjectPublicKeyInfo) by its key id."""
    data = pem.encode() if isinstance(pem, str) else pem
    pub = serialization.load_pem_public_key(data)
    if not isinstance(pub, Ed25519PublicKey):
        raise InputError([Problem("key", "not-ed25519", None, "the public key is not Ed25519")])
    return {key_id_of(pub): pub}


def keys_from_db(engine: sa.Engine) -> dict[str, Ed25519PublicKey]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(signing_keys.c.public_key)).all()
    out = {}
    for (x,) in rows:
        pub = Ed25519PublicKey.from_public_bytes(unb64url(x))
        out[key_id_of(pub)] = pub
    return out


def verify_signature(keys: PublicKeys, key_id: str, signature: bytes, data: bytes) -> str | None:
    """None if ``signature`` over ``data`` is valid under key ``key_id``; else the reason."""
    pub = keys.get(key_id)
    if pub is None:
        return f"unknown key id {key_id!r}: not among the {len(keys)} published key(s)"
    try:
        pub.verify(signature, data)
    except InvalidSignature:
        return f"the signature does not match the content under key {key_id}"
    return None
