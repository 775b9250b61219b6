"""cn-uscc: the Unified Social Credit Code (统一社会信用代码), GB 32100-2015.

Eighteen characters from the 31-symbol set ``0123456789ABCDEFGHJKLMNPQRTUWXY`` (value = index; the
letters I, O, S, V and Z are never used)::

    pos 1      registration department: 1-9, A, N or Y (9 = market regulation, 5 = civil affairs …)
    pos 2      entity type within that department (9/1 enterprise, 9/2 individual business …)
    pos 3-8    administrative division of the registering authority, GB/T 2260 (six digits)
    pos 9-17   subject identifier = the organisation code of GB 11714; pos 17 is its check digit
    pos 18     check character

Check character (pos 18): weights ``Wᵢ = 3^(i−1) mod 31`` for i = 1..17
(``1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28``), ``S = Σ value(cᵢ)·Wᵢ``,
``C = 31 − (S mod 31)`` with 31 → 0, output ``alphabet[C]``; equivalently
``(S + value(c₁₈)) mod 31 == 0``. Worked example ``91110108551385082Q``: S = 999, 999 mod 31 = 7,
31 − 7 = 24 → ``Q``.

Organisation-code check (pos 17, GB 11714-1997): over pos 9-16 with the 36-symbol values 0-9, A-Z
(A = 10 … Z = 35) and weights ``3 7 9 10 5 8 4 2``, ``C = 11 − (S mod 11)``, 10 → ``X``,
11 → ``0``. Example ``55138508``: S = 185, 185 mod 11 = 9 → ``2``.

Error detection: 31 is prime and every weight is a power of 3 (a primitive root mod 31), so MOD 31
catches every single-character substitution (two symbols differ by 1..30) and every transposition
of adjacent different characters: swapping positions i and i+1 changes S by
``(a − b)·(Wᵢ − Wᵢ₊₁) = −2·(a − b)·3^(i−1)``, never 0 mod 31; swapping 17 and 18 changes
``S + value(c₁₈)`` by ``(a − b)·(28 − 1) = 27·(a − b)``, never 0 mod 31.

Implementation note: the check sums are computed by ``int()`` in C. Translated to digit values
(``value(c)`` as a base-36 digit) and reversed, positions 1..17 read in base 34 give
``Σ value(cᵢ)·34^(i−1) ≡ Σ value(cᵢ)·3^(i−1) (mod 31)`` since 34 ≡ 3; and the organisation-code
weights are ``2^(17−p)`` mod 11 (p = 9..16), so since 35 ≡ 2 (mod 11) its sum is
``2·int(c₉…c₁₆, 35) mod 11`` (valid for every symbol of the 31-symbol set). The error path spells
the weights out.

All 18 positions must come from the 31-symbol set: GB 32100 excludes I, O, S, V and Z everywhere,
and the check character is only defined for those 31 values (so an old organisation code that
contains one of those letters cannot appear in a valid USCC).
"""

from __future__ import annotations

import random
from functools import lru_cache
from operator import getitem

from socialcredit.ids.model import Identifier, IdError, new_identifier
from socialcredit.ids.rid import SAMPLE_REGIONS
from socialcredit.ids.text import compact
from socialcredit.subjects import SubjectKind

SCHEME = "cn-uscc"

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
EXCLUDED = "IOSVZ"
VALUES: dict[str, int] = {c: i for i, c in enumerate(ALPHABET)}
WEIGHTS: tuple[int, ...] = tuple(pow(3, i - 1, 31) for i in range(1, 18))
_CHECK_BY_REMAINDER = "".join(ALPHABET[(31 - r) % 31] for r in range(31))

ORG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ORG_WEIGHTS: tuple[int, ...] = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_CHECK_BY_REMAINDER = "0X987654321"  # r = S mod 11 → 11 − r, with 10 → X and 11 → 0

_TERMS17: tuple[dict[str, int], ...] = tuple({c: v * w for c, v in VALUES.items()} for w in WEIGHTS)

# bytes.translate table: each symbol → the base-36 digit of its value; everything else → "!",
# which int() refuses.
_TO_DIGITS = bytearray(b"!" * 256)
for _c, _d in zip(ALPHABET.encode(), b"0123456789ABCDEFGHIJKLMNOPQRSTU", strict=True):
    _TO_DIGITS[_c] = _d
_TO_DIGITS_TABLE = bytes(_TO_DIGITS)
del _TO_DIGITS, _c, _d


def _weighted_sum(first17: str) -> int:
    """``Σ value(cᵢ)·3^(i−1)`` (mod 31) for 17 ASCII symbols; ValueError on any other character."""
    return int(first17.encode().translate(_TO_DIGITS_TABLE)[::-1], 34)


_ORG_TERMS: tuple[dict[str, int], ...] = tuple(
    {c: v * w for v, c in enumerate(ORG_ALPHABET)} for w in ORG_WEIGHTS
)

DEPARTMENTS: dict[str, str] = {
    "1": "institutional staffing",
    "2": "foreign affairs",
    "3": "justice administration",
    "4": "culture",
    "5": "civil affairs",
    "6": "tourism",
    "7": "religious affairs",
    "8": "trade unions",
    "9": "industry and commerce (market regulation)",
    "A": "Central Military Commission staffing office",
    "N": "agriculture",
    "Y": "other",
}
ENTITY_TYPES: dict[str, str] = {
    "11": "government organ",
    "12": "public institution",
    "13": "mass organisation",
    "19": "other",
    "31": "law firm",
    "32": "notary office",
    "33": "grassroots legal service office",
    "34": "forensic appraisal institution",
    "35": "arbitration commission",
    "39": "other",
    "51": "social group",
    "52": "private non-enterprise unit",
    "53": "foundation",
    "59": "other",
    "91": "enterprise",
    "92": "individual business",
    "93": "farmers' specialised cooperative",
    "N1": "group-level collective economic organisation",
    "N2": "village-level collective economic organisation",
    "N3": "township-level collective economic organisation",
    "N9": "other",
}

_KIND_BY_PREFIX: dict[str, SubjectKind] = {
    "91": "enterprise",
    "92": "individual-business",
    "93": "cooperative",
    "11": "government-organ",
    "12": "public-institution",
}


def _kind(prefix: str) -> SubjectKind:
    kind = _KIND_BY_PREFIX.get(prefix)
    if kind is not None:
        return kind
    return "social-organisation" if prefix[0] == "5" else "other-organisation"


# Every possible two-character prefix of a valid code → kind, for a single lookup on the hot path.
_KINDS: dict[str, SubjectKind] = {d + t: _kind(d + t) for d in DEPARTMENTS for t in ALPHABET}

# Prefixes used when generating a code of a given kind.
_PREFIXES: dict[str, tuple[str, ...]] = {
    "enterprise": ("91",),
    "individual-business": ("92",),
    "cooperative": ("93",),
    "government-organ": ("11",),
    "public-institution": ("12",),
    "social-organisation": ("51", "52", "53", "59"),
    "other-organisation": (
        "13", "19", "31", "32", "33", "34", "35", "39", "N1", "N2", "N3", "N9", "Y1",
    ),
}  # fmt: skip


def subject_kind(prefix: str) -> SubjectKind:
    """The subject kind for positions 1-2: 9/1 enterprise, 9/2 individual business, 9/3 cooperative,
    1/1 government organ, 1/2 public institution, 5/x social organisation, else other organisation."""
    return _KINDS.get(prefix) or _kind(prefix)


def org_code_check_char(first8: str) -> str:
    """The GB 11714 organisation-code check character (``0-9`` or ``X``) for its first 8 characters."""
    if len(first8) != 8:
        raise IdError(
            SCHEME, first8, "length", f"needs 8 organisation-code characters, got {len(first8)}"
        )
    try:
        return _ORG_CHECK_BY_REMAINDER[sum(map(getitem, _ORG_TERMS, first8)) % 11]
    except KeyError:
        pos = next(i for i, c in enumerate(first8, 1) if c not in ORG_ALPHABET)
        raise IdError(
            SCHEME,
            first8,
            "charset",
            f"position {pos} is {first8[pos - 1]!r} but an organisation code uses only 0-9 and A-Z",
            position=pos,
        ) from None


def uscc_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters."""
    if len(first17) == 17 and first17.isascii():
        try:
            return _CHECK_BY_REMAINDER[_weighted_sum(first17) % 31]
        except ValueError:
            pass
    if len(first17) != 17:
        raise IdError(
            SCHEME, first17, "length", f"needs the first 17 characters, got {len(first17)}"
        )
    pos = next(i for i, c in enumerate(first17, 1) if c not in VALUES)
    raise _charset_error(first17, first17, pos)


def _charset_error(raw: str, s: str, pos: int) -> IdError:
    c = s[pos - 1]
    if c in EXCLUDED:
        why = "the letters I, O, S, V and Z are never used in a unified social credit code"
    else:
        why = "only digits and the letters A-H, J-N, P-R, T, U, W, X, Y are used"
    return IdError(SCHEME, raw, "charset", f"position {pos} is {c!r} but {why}", position=pos)


def _check(raw: str, s: str) -> None:
    """Validate an 18-character code ``s``; raise the first broken rule, in the order
    length, charset, registration department, division, organisation-code check, check character."""
    for i, c in enumerate(s, 1):
        if c not in VALUES:
            raise _charset_error(raw, s, i)
    if s[0] not in DEPARTMENTS:
        raise IdError(
            SCHEME,
            raw,
            "charset",
            f"position 1 is {s[0]!r} but the registration department code must be one of "
            "1-9, A, N, Y",
            position=1,
        )
    for i in range(2, 8):
        if s[i] not in "0123456789":
            raise IdError(
                SCHEME,
                raw,
                "region",
                f"position {i + 1} is {s[i]!r} but positions 3-8 (the administrative division "
                "code) must be digits",
                position=i + 1,
            )
    org = _ORG_CHECK_BY_REMAINDER[sum(map(getitem, _ORG_TERMS, s[8:16])) % 11]
    if s[16] != org:
        raise IdError(
            SCHEME,
            raw,
            "org-code-check",
            f"position 17 is {s[16]!r} but the organisation-code check character should be {org!r}",
            position=17,
            expected=org,
        )
    expected = _CHECK_BY_REMAINDER[sum(map(getitem, _TERMS17, s)) % 31]
    if s[17] != expected:
        raise IdError(
            SCHEME,
            raw,
            "check-character",
            f"position 18 is {s[17]!r} but the check character should be {expected!r}",
            position=18,
            expected=expected,
        )


def _slow(raw: str) -> Identifier:
    s = compact(raw)
    if len(s) != 18:
        what = "is empty" if not s else f"has {len(s)} characters"
        raise IdError(SCHEME, raw, "length", f"{what} but a unified social credit code has 18")
    _check(raw, s)
    return new_identifier(SCHEME, s, subject_kind(s[:2]))


def parse_uscc(raw: str) -> Identifier:
    """Parse a GB 32100 code. See the module docstring."""
    if len(raw) == 18 and raw.isascii():
        # Fast path for canonical input; anything else takes _slow, which normalises and names the
        # exact rule that fails.
        try:
            total = int(raw.encode().translate(_TO_DIGITS_TABLE)[16::-1], 34)
        except ValueError:
            total = -1
        if (
            total >= 0
            and _CHECK_BY_REMAINDER[total % 31] == raw[17]
            and raw[0] in DEPARTMENTS
            and raw[2:8].isdigit()
            and _ORG_CHECK_BY_REMAINDER[2 * int(raw[8:16], 35) % 11] == raw[16]
        ):
            return new_identifier(SCHEME, raw, _KINDS[raw[:2]])
    return _slow(raw)


def describe_uscc(value: str) -> dict[str, object]:
    """Decoded facts of a canonical code."""
    dept, prefix = value[0], value[:2]
    return {
        "registration_department_code": dept,
        "registration_department": DEPARTMENTS.get(dept, "unknown"),
        "entity_type_code": value[1],
        "entity_type": ENTITY_TYPES.get(prefix, f"type {value[1]} (not catalogued)"),
        "division_code": value[2:8],
        "org_code": value[8:17],
    }


@lru_cache(maxsize=1)
def _pairs() -> tuple[str, ...]:
    return tuple(a + b for a in ALPHABET for b in ALPHABET)


def random_uscc(
    rng: random.Random, *, kind: SubjectKind = "enterprise", division: str | None = None
) -> str:
    """A random valid code for a subject of ``kind``, deterministic for a seeded ``rng``.

    Positions 1-2 follow ``kind`` (``"person"`` has no USCC and is refused), positions 3-8 are
    ``division`` (six digits) or one of a spread of real division codes, and the organisation code
    is either eight digits (pre-2015 style) or ``MA`` plus six symbols (post-2015 style), followed
    by its GB 11714 check digit and the GB 32100 check character.
    """
    prefixes = _PREFIXES.get(kind)
    if prefixes is None:
        raise ValueError(f"kind {kind!r} has no unified social credit code")
    if division is None:
        division = SAMPLE_REGIONS[int(rng.random() * len(SAMPLE_REGIONS))]
    elif len(division) != 6 or not division.isascii() or not division.isdigit():
        raise ValueError(f"division {division!r} must be six digits")
    prefix = prefixes[int(rng.random() * len(prefixes))]
    if rng.random() < 0.5:
        body = f"{int(rng.random() * 100_000_000):08d}"
    else:
        pairs = _pairs()
        n = len(pairs)
        body = (
            "MA"
            + pairs[int(rng.random() * n)]
            + pairs[int(rng.random() * n)]
            + pairs[int(rng.random() * n)]
        )
    first17 = prefix + division + body + _ORG_CHECK_BY_REMAINDER[2 * int(body, 35) % 11]
    return first17 + _CHECK_BY_REMAINDER[_weighted_sum(first17) % 31]
