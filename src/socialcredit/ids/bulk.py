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
from collections.abc import Sequence
from typing import Any

import numpy as np

from socialcredit.ids import parse_key
from socialcredit.ids.model import IdError
from socialcredit.ids.rid import CHECK_CHARS, MAX_BIRTH_YEAR, MIN_BIRTH_YEAR

PREFIX = "cn-rid:"
SMALL = 32  # fewer keys than this are parsed one by one (~5 us a key; numpy ~170 us a call here)
_LEN = len(PREFIX) + 18
_WEIGHTS = np.array([(1 << (17 - i)) % 11 for i in range(17)], dtype=np.int64)
_CHECK = np.frombuffer(CHECK_CHARS.encode(), dtype=np.uint8)
_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def canonical_mask(keys: Sequence[str]) -> list[bool]:
    """For each key: True if it is a canonical, valid ``cn-rid`` key (``parse_key(k).key == k``),
    False if :func:`parse_key` must decide (other schemes, other forms, invalid)."""
    out = [False] * len(keys)
    pos = [i for i, k in enumerate(keys) if len(k) == _LEN and k.startswith(PREFIX) and k.isascii()]
    if len(pos) < SMALL:  # arrays pay off from a few dozen keys: a handful go one by one
        for i in pos:
            with contextlib.suppress(IdError):
                out[i] = parse_key(keys[i]).key == keys[i]
        return out
    text = "".join(keys[i] for i in pos).encode("ascii")
    a = np.frombuffer(text, dtype=np.uint8).reshape(len(pos), _LEN)[:, len(PREFIX) :]
    d = a[:, :17].astype(np.int64) - 48
    ok: np.ndarray[Any, np.dtype[np.bool_]] = np.asarray(((d >= 0) & (d <= 9)).all(axis=1))
    d = np.where(ok[:, None], d, 0)
    ok &= np.asarray(_CHECK[(d @ _WEIGHTS) % 11] == a[:, 17])
    ok &= d[:, 0] != 0
    year = d[:, 6] * 1000 + d[:, 7] * 100 + d[:, 8] * 10 + d[:, 9]
    month = d[:, 10] * 10 + d[:, 11]
    day = d[:, 12] * 10 + d[:, 13]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    ok &= (year >= MIN_BIRTH_YEAR) & (year <= MAX_BIRTH_YEAR) & (month >= 1) & (month <= 12)
    last = _DAYS[np.clip(month, 0, 12)] + ((month == 2) & leap)
    ok &= (day >= 1) & (day <= last)
    for i, good in zip(pos, ok.tolist(), strict=True):
        out[i] = good
    return out
