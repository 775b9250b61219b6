"""Database connections: one SQLite file (WAL) by default, PostgreSQL by URL.

The database is named by ``--db`` or ``SOCIALCREDIT_DB``; a plain path means a SQLite file.
Writers serialise on the chain head: ``BEGIN IMMEDIATE`` on SQLite, a transaction-scoped advisory
lock on PostgreSQL, so the hash chain has exactly one successor for every entry.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # not POSIX: SQLite's own busy handler alone
    fcntl = None  # type: ignore[assignment]

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

DEFAULT_DB = "socialcredit.db"
ENV_VAR = "SOCIALCREDIT_DB"
CHAIN_LOCK_KEY = 0x5C0C12ED  # advisory lock id for the chain head on PostgreSQL
_MIGRATIONS = Path(__file__).with_name("migrations")


def resolve_url(db: str | os.PathLike[str] | None = None) -> str:
    """Turn ``--db`` / ``SOCIALCREDIT_DB`` / the default into an SQLAlchemy URL."""
    raw = str(db) if db is not None else os.environ.get(ENV_VAR) or DEFAULT_DB
    if "://" in raw:
        if raw.startswith(("postgresql://", "postgres://")):
            raw = "postgresql+psycopg://" + raw.split("://", 1)[1]
        return raw
    return f"sqlite:///{Path(raw).expanduser().absolute()}"


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # Manage transactions ourselves (BEGIN IMMEDIATE for writers); see module docstring.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, poolclass=sa.pool.QueuePool, pool_size=4)
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def is_sqlite(engine: sa.Engine) -> bool:
    return engine.dialect.name == "sqlite"


def in_this_process_only(engine: sa.Engine) -> bool:
    """A SQLite database in memory: no other process (a writer or notice child) can open it."""
    return is_sqlite(engine) and turn_file(engine) is None


def lock_file(engine: sa.Engine, name: str) -> str | None:
    """``<database>-<name>.lock``, beside a SQLite database file: the file whose ``flock`` the
    processes on that database take for ``name``; None for PostgreSQL and for a database in
    memory, which one process alone can reach."""
    db = engine.url.database
    if not is_sqlite(engine) or not db or db == ":memory:" or db.startswith("file:"):
        return None
    return f"{db}-{name}.lock"


def turn_file(engine: sa.Engine) -> str | None:
    """The file whose lock orders the writers of a SQLite database file (:func:`write_turn`)."""
    return lock_file(engine, "writes")


_TURNS = threading.local()  # the turn files this thread holds


@contextmanager
def write_turn(engine: sa.Engine) -> Iterator[None]:
    """On a SQLite file, writers take turns on an advisory lock of the operating system (``flock``
    on :func:`turn_file`, beside the database) before they ask SQLite for its write lock: the
    decision logs of every API worker, the projectors, the ledger's and the status's writes.
    Without it, a writer that finds the database locked sleeps in SQLite's busy handler (1, 2, 5,
    10 ms and longer) while others commit again and again: with two workers a check's p99 was a
    third of a second, and a record posted under load waited behind the projector. The kernel
    wakes the next writer as soon as the lock is let go. A thread that holds the turn already
    (a write inside a write) goes on. Nothing to do on PostgreSQL (its advisory locks order the
    writers that need it) or on a system without ``flock``."""
    turn = turn_file(engine)
    held: set[str] = _TURNS.__dict__.setdefault("held", set())
    if turn is None or fcntl is None or turn in held:
        yield
        return
    fd = os.open(turn, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # blocks without the GIL
        held.add(turn)
        try:
            yield
        finally:
            held.discard(turn)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def sole_round(engine: sa.Engine, name: str, pg_key: int) -> Iterator[bool]:
    """Whether the caller may run a round of work that one process at a time should do (the
    notifier's, which every server worker runs): True if no other process or connection is in
    such a round now, False at once if one is (never waiting). Held until the block ends. On a
    SQLite file, an ``flock`` taken without waiting on its :func:`lock_file`; on PostgreSQL
    a session advisory lock (``pg_key``) on a connection kept for the round; always True for a
    database in memory, which one process alone can reach."""
    if is_sqlite(engine):
        path = lock_file(engine, name)
        if path is None or fcntl is None:
            yield True
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                got = True
            except BlockingIOError:
                got = False
            try:
                yield got
            finally:
                if got:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        return
    with engine.connect() as conn:
        got = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": pg_key}).scalar())
        conn.commit()
        try:
            yield got
        finally:
            if got:
                try:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": pg_key})
                    conn.commit()
                except Exception:
                    conn.invalidate()  # its session ends, and the lock with it
                    raise


@contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction that holds the chain-head lock from its first statement to commit (on
    SQLite after its :func:`write_turn`)."""
    with write_turn(engine), engine.connect() as conn:
        if is_sqlite(engine):
            conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            if not is_sqlite(engine):
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK_KEY})
            yield conn


def _alembic_config(conn: sa.Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


_MIGRATE_LOCK = threading.Lock()  # Alembic's runtime context is process-global


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to the newest migration (creates a fresh registry).

    Safe when several threads or processes open the same database at once: the upgrade runs under
    the chain-head lock, and only when the database is behind.
    """
    current, head = schema_revision(engine)
    if current == head:
        return
    with _MIGRATE_LOCK, write_transaction(engine) as conn:
        if MigrationContext.configure(conn).get_current_revision() != head:
            command.upgrade(_alembic_config(conn), "head")


@functools.cache
def _head_revision() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head() or ""


def schema_revision(engine: sa.Engine) -> tuple[str | None, str]:
    """(current revision of the database, newest revision shipped)."""
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, _head_revision()
