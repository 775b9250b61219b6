"""Many subject keys at once: which are already canonical and valid (a batch of checks).

A relying party's batch names thousands of subjects; validating each with :func:`parse_key` costs
more than everything else the check does. :func:`canonical_mask` decides, with array arithmetic
over the whole batch, which keys are canonical resident identity numbers (``cn-rid:`` + 18
characters, GB 11643 check character, a real birth date in range, first digit not 0): exactly the
keys for which ``parse_key(k).key == k``. Every other key (another scheme, a legacy or
non-canonical form, an invalid one) is left to :func:`parse_key`, which normalises it or names the
rule it breaks, so the answer for every key is the one :func:`parse_key` would give.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from socialcredit.ids import parse_key
from socialcredit.ids.model import IdError
from socialcredit.ids.rid import CHECK_CHARS, MAX_BIRTH_YEAR, MIN_BIRTH_YEAR

PREFIX = "cn-rid:"
SMALL = 32  # fewer keys than this are parsed one by one (~5 us a key; numpy ~170 us a call here)
_LEN = len(PREFIX) + 18
_WEIGHTS = np.array([(1 << (17 - i)) % 11 for i in range(17)], dtype=np.float64)
_YMD = np.array([10 ** (7 - i) for i in range(8)], dtype=np.float64)  # YYYYMMDD
_TENS = np.array([10 ** (16 - i) for i in range(17)], dtype=np.float64)[8:]  # 1e8 .. 1
_PREFIX = np.frombuffer(PREFIX.encode(), dtype=np.uint8)
_CHECK = np.frombuffer(CHECK_CHARS.encode(), dtype=np.uint8)


def canonical_mask(keys: Sequence[str]) -> list[bool]:
    """For each key: True if it is a canonical, valid ``cn-rid`` key (``parse_key(k).key == k``),
    False if :func:`parse_key` must decide (other schemes, other forms, invalid)."""
    if len(keys) < SMALL:  # arrays pay off from a few dozen keys: a handful go one by one
        out = [False] * len(keys)
        for i, k in enumerate(keys):
            if len(k) == _LEN and k.startswith(PREFIX) and k.isascii():
                with contextlib.suppress(IdError):
                    out[i] = parse_key(k).key == k
        return out
    result: list[bool] = canonical_array(keys).tolist()
    return result


def canonical_array(keys: Sequence[str]) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """:func:`canonical_mask` as a boolean array. A batch of well-formed keys (the usual case)
    is checked with no Python code per key; a mixed batch goes through a per-key filter first."""
    return scan(keys).canonical


@dataclass(frozen=True, slots=True)
class Scan:
    """Many keys at once: which are canonical ``cn-rid`` keys (:func:`canonical_mask`), and the
    :func:`rid_code` of each of those (0 for every other key, which no canonical key has)."""

    canonical: np.ndarray[Any, np.dtype[np.bool_]]
    codes: np.ndarray[Any, np.dtype[np.int64]]

    def others(self) -> list[int]:
        """The positions of the keys that are not canonical (for :func:`parse_key`)."""
        out: list[int] = np.flatnonzero(~self.canonical).tolist()
        return out


def rid_code(key: str) -> int | None:
    """A ``cn-rid`` key's 17 digits as a number (the 18th, the check character, follows from
    them), or None for a key of another shape. Two canonical keys are equal exactly when their
    codes are, so a set of keys can be held and searched as a sorted integer array."""
    digits = key[len(PREFIX) : _LEN - 1]
    if len(key) == _LEN and key.startswith(PREFIX) and digits.isascii() and digits.isdigit():
        return int(digits)
    return None


def sift(keys: Sequence[str], text: str | None = None) -> tuple[list[int], Scan | None]:
    """The positions of the keys that are not canonical (for :func:`parse_key`), and the
    :func:`scan` of a batch (for an index's codes); a handful of keys (fewer than ``SMALL``) are
    checked one by one, with no scan. ``text`` as for :func:`scan`."""
    if len(keys) < SMALL:
        return [i for i, ok in enumerate(canonical_mask(keys)) if not ok], None
    found = scan(keys, text)
    return found.others(), found


def scan(keys: Sequence[str], text: str | None = None) -> Scan:
    """:func:`canonical_array` and the codes, in one pass; ``text`` is the keys joined by
    newlines, when the caller has it already. Every key must be a string."""
    n = len(keys)
    canonical = np.zeros(n, dtype=np.bool_)
    codes = np.zeros(n, dtype=np.int64)
    if not n:
        return Scan(canonical, codes)
    if text is None:
        text = "\n".join(keys)
    if _uniform(text, n):
        rows = np.frombuffer(text.encode("ascii") + b"\n", dtype=np.uint8).reshape(n, _LEN + 1)
        d = rows[:, len(PREFIX) : _LEN - 1] - np.uint8(48)  # wraps below '0': > 9 too
        if (d <= 9).all():
            canonical[:] = True
            _valid(rows, d, canonical, codes)
            return Scan(canonical, codes)
    pos = [i for i, k in enumerate(keys) if len(k) == _LEN and k.isascii()]
    if pos:
        joined = "".join(keys[i] for i in pos).encode("ascii")
        rows = np.frombuffer(joined, dtype=np.uint8).reshape(len(pos), _LEN)
        d = rows[:, len(PREFIX) : _LEN - 1] - np.uint8(48)
        ok = (rows[:, : len(PREFIX)] == _PREFIX).all(axis=1) & (d <= 9).all(axis=1)
        sub = np.zeros(len(pos), dtype=np.int64)
        _valid(rows, d, ok, sub)
        canonical[pos] = ok
        codes[pos] = sub
    return Scan(canonical, codes)


def _uniform(text: str, n: int) -> bool:
    """Whether ``text``, ``n`` keys joined by newlines, is all ``cn-rid:`` and 18 more ASCII
    characters a key. Exact: a key with a newline of its own changes the count of newlines."""
    step = _LEN + 1
    return (
        len(text) == step * n - 1
        and text.isascii()
        and text.count("\n") == n - 1
        and text[_LEN::step] == "\n" * (n - 1)
        and all(text[j::step] == c * n for j, c in enumerate(PREFIX))
    )


def _valid(
    rows: np.ndarray[Any, np.dtype[np.uint8]],
    d: np.ndarray[Any, np.dtype[np.uint8]],
    ok: np.ndarray[Any, np.dtype[np.bool_]],
    codes: np.ndarray[Any, np.dtype[np.int64]],
) -> None:
    """Narrow ``ok`` (in place) to the rows (``cn-rid:`` keys of 25 characters, their 17 digits
    ``d``, where ``ok`` says they are digits) with a valid check character, a first digit other
    than 0 and a birth date that exists in the range; ``codes`` gets their :func:`rid_code`."""
    f = d.astype(np.float64)  # small exact integers: the products go through BLAS
    ok &= _CHECK[(f @ _WEIGHTS).astype(np.int64) % 11] == rows[:, _LEN - 1]
    ok &= d[:, 0] != 0
    day = (f[:, 6:14] @ _YMD).astype(np.int64) - MIN_BIRTH_YEAR * 10_000
    dates = _dates()
    inside = (day >= 0) & (day < len(dates))
    ok &= inside & dates[np.where(inside, day, 0)]
    # 17 digits exceed a double's 53 bits: two halves of 8 and 9 digits, each exact
    high = (f[:, :8] @ _TENS[1:]).astype(np.int64)
    low = (f[:, 8:] @ _TENS).astype(np.int64)
    codes[:] = np.where(ok, high * 1_000_000_000 + low, 0)


@functools.cache
def _dates() -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Indexed by (year - MIN_BIRTH_YEAR) * 10000 + month * 100 + day: is that a date."""
    days = np.arange(
        f"{MIN_BIRTH_YEAR:04d}-01-01", f"{MAX_BIRTH_YEAR + 1:04d}-01-01", dtype="datetime64[D]"
    )
    months = days.astype("datetime64[M]")
    year = days.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (days - months).astype(np.int64) + 1
    out = np.zeros((MAX_BIRTH_YEAR - MIN_BIRTH_YEAR + 1) * 10_000, dtype=np.bool_)
    out[(year - MIN_BIRTH_YEAR) * 10_000 + month * 100 + day] = True
    return out
