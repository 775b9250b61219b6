"""Decision ids as text: 64-bit numbers as 13 Crockford base-32 characters (sortable as text).

No dependencies, so the client SDK can use it: a columnar check answer gives the first id of a
range, and the i-th answer's id is that number plus i (:func:`nth_id`).
"""

from __future__ import annotations

from collections.abc import Sequence

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}


_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)  # 10 bits -> 2 characters


def encode_id(n: int) -> str:
    """A decision id as 13 Crockford base-32 characters (sortable as text)."""
    p = _PAIRS
    return (
        _ALPHABET[(n >> 60) & 31]
        + p[(n >> 50) & 1023]
        + p[(n >> 40) & 1023]
        + p[(n >> 30) & 1023]
        + p[(n >> 20) & 1023]
        + p[(n >> 10) & 1023]
        + p[n & 1023]
    )


def encode_ids(ns: Sequence[int]) -> list[str]:
    """:func:`encode_id` for many ids: those of one commit share their first 9 characters."""
    p = _PAIRS
    out: list[str] = []
    top = -1
    head = ""
    for n in ns:
        if n >> 20 != top:
            top = n >> 20
            head = encode_id(n)[:9]
        out.append(head + p[(n >> 10) & 1023] + p[n & 1023])
    return out


def decode_id(s: str) -> int:
    """The inverse of :func:`encode_id`; raises ValueError for anything else."""
    text = s.strip().upper().replace("O", "0").replace("I", "1").replace("L", "1")
    if len(text) != 13 or any(c not in _INDEX for c in text):
        raise ValueError(f"{s!r} is not a decision id (13 Crockford base-32 characters)")
    n = 0
    for c in text:
        n = (n << 5) | _INDEX[c]
    return n


def nth_id(first: str, i: int) -> str:
    """The id ``i`` places after ``first`` (a columnar answer's ids are consecutive)."""
    return encode_id(decode_id(first) + i)
