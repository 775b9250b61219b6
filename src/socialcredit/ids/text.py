"""Text normalisation shared by every scheme."""

from __future__ import annotations

import unicodedata


def normalise(value: str) -> str:
    """Strip, apply Unicode NFKC and upper-case.

    NFKC folds full-width forms to ASCII (``'１１０１'`` → ``'1101'``, ``'Ｘ'`` → ``'X'``, the
    ideographic space to a plain space). Inner spaces and hyphens are kept: the ``cn-*`` schemes
    remove them in :func:`socialcredit.ids.parse`. ASCII input skips NFKC (it is a no-op there).
    The result is a fixed point: ``normalise(normalise(v)) == normalise(v)``.
    """
    if value.isascii():
        return value.strip().upper()
    s = value
    # Upper-casing can produce text that NFKC changes again (and vice versa), so repeat until
    # nothing changes; real input settles after one round, pathological input after two or three.
    for _ in range(8):
        t = unicodedata.normalize("NFKC", s).strip().upper()
        if t == s:
            break
        s = t
    return s


def compact(value: str) -> str:
    """:func:`normalise`, then drop all whitespace and hyphens (for the ``cn-*`` schemes)."""
    s = normalise(value)
    return "".join(s.split()).replace("-", "")
