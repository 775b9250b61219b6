"""The in-memory eligibility index: subject -> measure -> the basis of the measure in force.

Loaded from ``measure_index`` at start and kept current by polling ``status_changes`` (a few
milliseconds apart), so every API worker process answers from the same state within one poll
interval of a status change. Subjects with no measure in force are simply absent: an unknown
subject and a known clean subject get the same answer (invariant 5).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa

from socialcredit.ids.bulk import Scan, rid_code
from socialcredit.status.schema import measure_index, status_changes

_EMPTY = np.zeros(0, dtype=np.int64)
RECENT = 4096  # codes added since the sorted array was built, past which it is merged anew

_ROW_COLS = (
    measure_index.c.subject,
    measure_index.c.measure,
    measure_index.c.rulebook_ref,
    measure_index.c.memorandum,
    measure_index.c.via,
    measure_index.c.basis,
)
_ORDER = (
    measure_index.c.subject,
    measure_index.c.rulebook_id,
    measure_index.c.memorandum,
    measure_index.c.via,
    measure_index.c.measure,
)


@dataclass(frozen=True, slots=True)
class Hit:
    """Why a measure applies: ``by`` is "list" or "grade"; ``basis`` is what the answer shows."""

    by: str
    basis: dict[str, Any]
    basis_json: str


_ANSWERS = {
    (True, None): ("allow", "no-restriction"),
    (True, "list"): ("deny", "restricted-by-list"),
    (True, "grade"): ("deny", "restricted-by-grade"),
    (False, None): ("standard", "no-reward"),
    (False, "list"): ("grant", "reward-by-list"),
    (False, "grade"): ("grant", "reward-by-grade"),
}


def answer(sanction: bool, hit: Hit | None) -> tuple[str, str]:
    """(decision, reason code) of a check: for a sanction or a reward measure, and what the index
    holds for the subject and that measure (nothing: the measure does not apply)."""
    return _ANSWERS[sanction, None if hit is None else hit.by]


def _codes(subjects: Iterable[str]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The sorted, distinct rid codes of the cn-rid subjects among ``subjects``."""
    codes = [c for c in map(rid_code, subjects) if c is not None]
    return np.unique(np.array(codes, dtype=np.int64)) if codes else _EMPTY


def _build(rows: Iterable[Sequence[Any]]) -> dict[str, dict[str, Hit]]:
    """Rows ordered by subject, rulebook, memorandum, via: the first basis of a measure wins."""
    out: dict[str, dict[str, Hit]] = {}
    shared: dict[tuple[str, str, str, str], Hit] = {}
    legal: dict[str, str] = {}
    for subject, measure, ref, memo, via, basis_text in rows:
        per = out.get(subject)
        if per is None:
            per = out[subject] = {}
        if measure in per:
            continue
        key = (ref, memo, via, basis_text)
        hit = shared.get(key)
        if hit is None:
            b = orjson.loads(basis_text)
            lb = b.get("legal_basis")
            if lb is not None:
                lb = legal.setdefault(lb, lb)
            basis = {
                "rulebook": ref,
                "memorandum": memo,
                "via": via,
                "legal_basis": lb,
                "records": b.get("records", []),
            }
            hit = Hit(
                "list" if via.startswith("list:") else "grade",
                basis,
                orjson.dumps(basis, option=orjson.OPT_SORT_KEYS).decode(),
            )
            if len(shared) > 100_000:
                shared.clear()
            shared[key] = hit
        per[measure] = hit
    return out


class EligibilityIndex:
    """Thread-safe for one poller and any number of readers (per-subject dicts are replaced whole)."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self._map: dict[str, dict[str, Hit]] = {}
        # The rid_code of every canonical cn-rid subject in the map, and maybe of some that have
        # left it: a sorted array and the codes added since it was sorted. Replaced whole (one
        # tuple), so a reader takes both from one moment.
        self._rid: tuple[np.ndarray[Any, np.dtype[np.int64]], ...] = (_EMPTY, _EMPTY)
        self._last = 0
        self._poll_lock = threading.Lock()
        self.loaded = False
        self._probe: Any = None  # a DBAPI connection kept for the cheap "anything new?" query
        self._sqlite = engine.dialect.name == "sqlite"

    def __len__(self) -> int:
        return len(self._map)

    def __contains__(self, subject: object) -> bool:
        return subject in self._map

    @property
    def subjects(self) -> Mapping[str, Mapping[str, Hit]]:
        """subject -> measure -> Hit, read-only (for loops that would otherwise call
        :meth:`get` per item; the poller replaces per-subject dicts whole, and the map itself
        only on a full load)."""
        return self._map

    @property
    def change_seq(self) -> int:
        return self._last

    def get(self, subject: str, measure: str) -> Hit | None:
        per = self._map.get(subject)
        return None if per is None else per.get(measure)

    def find(
        self, keys: Sequence[str], measure: str, found: Scan | None = None
    ) -> list[tuple[int, Hit]]:
        """``(i, hit)`` for each ``keys[i]`` with ``measure`` in force. With ``found``, the
        :func:`~socialcredit.ids.bulk.scan` of ``keys``, only the keys that may be in the index
        are looked up: the canonical cn-rid keys whose code is among the index's (a search of a
        sorted array for the whole batch) and every key that is not canonical. The map has the
        last word, so a code left behind by a subject that has left the index costs a look-up
        and changes no answer."""
        per_subject = self._map
        if found is None:
            candidates: Iterable[int] = range(len(keys))
        else:
            maybe = ~found.canonical
            for held in self._rid:  # each sorted
                if len(held):
                    at = np.searchsorted(held, found.codes)
                    np.minimum(at, len(held) - 1, out=at)
                    maybe |= held[at] == found.codes
            candidates = np.flatnonzero(maybe).tolist()
        out: list[tuple[int, Hit]] = []
        for i in candidates:
            per = per_subject.get(keys[i])
            if per is not None:
                hit = per.get(measure)
                if hit is not None:
                    out.append((i, hit))
        return out

    def measures(self, subject: str) -> dict[str, Hit]:
        return dict(self._map.get(subject, {}))

    def load(self) -> None:
        """Load everything (at start, and whenever a rebuild marks all subjects changed)."""
        with self._poll_lock:
            self._load()

    def _load(self) -> None:
        with self.engine.connect() as conn:
            last = conn.execute(sa.select(sa.func.max(status_changes.c.change_seq))).scalar()
            rows = conn.execute(sa.select(*_ROW_COLS).order_by(*_ORDER))
            built = _build(rows)
        self._rid = (_codes(built), _EMPTY)
        self._map = built
        self._last = int(last or 0)
        self.loaded = True

    def _add_codes(self, codes: np.ndarray[Any, np.dtype[np.int64]]) -> None:
        """Publish codes of subjects about to enter the map (before they do: a reader that sees
        a code the map does not hold yet finds nothing, as it would have a moment earlier)."""
        if not len(codes):
            return
        base, recent = self._rid
        recent = np.union1d(recent, codes)
        if len(recent) > RECENT:
            base, recent = np.union1d(base, recent), _EMPTY
        self._rid = (base, recent)

    def latest_change(self) -> int:
        """The newest ``change_seq`` committed (one indexed query on a kept DBAPI connection: the
        poller asks this 50 times a second, and the SQLAlchemy layer would cost more than it)."""
        raw = self._probe
        if raw is None:
            raw = self._probe = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute("SELECT max(change_seq) FROM status_changes")
            row = cur.fetchone()
            cur.close()
            if not self._sqlite:
                raw.rollback()  # end the snapshot: the next probe sees newer commits
        except BaseException:
            self._probe = None
            with contextlib.suppress(Exception):
                raw.invalidate()
            raise
        return int(row[0] or 0)

    def close(self) -> None:
        with self._poll_lock:
            raw, self._probe = self._probe, None
            if raw is not None:
                with contextlib.suppress(Exception):
                    raw.close()

    def poll(self, batch: int = 5000) -> int:
        """Apply the changes made since the last poll. Returns the number of subjects refreshed.
        Nothing new (the usual case) costs one probe of ``max(change_seq)``."""
        with self._poll_lock:
            if not self.loaded:
                self._load()
                return len(self._map)
            if self.latest_change() <= self._last:
                return 0
            done = 0
            while True:
                with self.engine.connect() as conn:
                    changes = conn.execute(
                        sa.select(status_changes.c.change_seq, status_changes.c.subject)
                        .where(status_changes.c.change_seq > self._last)
                        .order_by(status_changes.c.change_seq)
                        .limit(batch)
                    ).all()
                    if not changes:
                        return done
                    subjects = {s for _, s in changes}
                    if None in subjects:
                        self._load()
                        return done + len(self._map)
                    keys = sorted(s for s in subjects if s is not None)
                    fresh: dict[str, dict[str, Hit]] = {}
                    for i in range(0, len(keys), 500):
                        part = keys[i : i + 500]
                        fresh.update(
                            _build(
                                conn.execute(
                                    sa.select(*_ROW_COLS)
                                    .where(measure_index.c.subject.in_(part))
                                    .order_by(*_ORDER)
                                )
                            )
                        )
                self._add_codes(_codes(fresh))
                for s in keys:
                    per = fresh.get(s)
                    if per is None:
                        self._map.pop(s, None)
                    else:
                        self._map[s] = per
                self._last = int(changes[-1][0])
                done += len(keys)
                if len(changes) < batch:
                    return done
