"""generic: identifiers of registries outside China.

After :func:`~socialcredit.ids.normalise` (strip, NFKC, upper-case) the value must be 1-64
characters of ``A-Z 0-9 . _ / -``. There is no check character and no subject kind.
"""

from __future__ import annotations

from socialcredit.ids.model import Identifier, IdError, new_identifier
from socialcredit.ids.text import normalise

SCHEME = "generic"
MAX_LENGTH = 64
CHARSET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-")


def parse_generic(raw: str) -> Identifier:
    """Parse a generic identifier. See the module docstring."""
    s = normalise(raw)
    if 0 < len(s) <= MAX_LENGTH and CHARSET.issuperset(s):
        return new_identifier(SCHEME, s, None)
    if not s:
        raise IdError(
            SCHEME, raw, "length", "is empty but a generic identifier needs 1-64 characters"
        )
    if len(s) > MAX_LENGTH:
        raise IdError(
            SCHEME,
            raw,
            "length",
            f"has {len(s)} characters but a generic identifier has at most {MAX_LENGTH}",
        )
    pos = next(i for i, c in enumerate(s, 1) if c not in CHARSET)
    raise IdError(
        SCHEME,
        raw,
        "charset",
        f"position {pos} is {s[pos - 1]!r} but a generic identifier uses only A-Z, 0-9 and . _ / -",
        position=pos,
    )


def mask_generic(value: str) -> str:
    """Keep the first 2 and last 2 characters; values shorter than 6 are starred entirely."""
    if len(value) < 6:
        return "*" * len(value)
    return value[:2] + "*" * (len(value) - 4) + value[-2:]
