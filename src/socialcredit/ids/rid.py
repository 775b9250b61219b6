"""cn-rid: the Citizen Identity Number of the PRC (公民身份号码), GB 11643-1999.

Eighteen characters::

    pos 1-6    address code: county-level administrative division, GB/T 2260 (first digit 1-9)
    pos 7-14   date of birth YYYYMMDD (accepted: a real date in 1800-01-01 .. 2100-12-31)
    pos 15-17  sequence code; pos 17 is odd for men, even for women
    pos 18     check character, ISO 7064:1983 MOD 11-2: 0-9 or X

Check character: with weights ``Wᵢ = 2^(18−i) mod 11`` for i = 1..17
(``7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2``), ``r = Σ aᵢ·Wᵢ mod 11`` and the check character is
``"10X98765432"[r]``. Equivalently, with X = 10, ``Σ_{i=1..18} aᵢ·2^(18−i) ≡ 1 (mod 11)``.
Worked example ``11010519491231002X``: Σ = 167, 167 mod 11 = 2 → ``X``.

The older 15-digit number (GB 11643-1989) has a six-digit birth date ``YYMMDD`` (century 19) and no
check character; :func:`rid_from_15` converts it by inserting ``19`` and computing the check.

Implementation note: because 13 ≡ 2 (mod 11), ``Σ aᵢ·2^(17−i) ≡ int(first17, 13) (mod 11)``, so the
weighted sum is ``2·int(first17, 13) mod 11`` computed in C; the error path spells the weights out.

MOD 11-2 detects every single-character substitution (each weight is invertible mod 11 and two
different digits differ by 1..10) and every transposition of adjacent different characters.
"""

from __future__ import annotations

import datetime as dt
import random
from functools import lru_cache
from operator import getitem

from socialcredit.ids.model import Identifier, IdError, new_identifier
from socialcredit.ids.text import compact

SCHEME = "cn-rid"

WEIGHTS: tuple[int, ...] = tuple(pow(2, 18 - i, 11) for i in range(1, 18))
CHECK_CHARS = "10X98765432"  # indexed by Σ aᵢ·Wᵢ mod 11

# Accepted birth years. The standard sets no bound; 1800 (not 1900) because the customary GB 11643
# example 440524188001010014 is born in 1880. Whether a date lies in the future is not checked here
# (no clock in this module).
MIN_BIRTH_YEAR = 1800
MAX_BIRTH_YEAR = 2100
_MIN_YEAR_TEXT = str(MIN_BIRTH_YEAR)
_MAX_YEAR_TEXT = str(MAX_BIRTH_YEAR)

_DIGITS = "0123456789"
# Per-position tables char → value·weight, for the explicit (error-reporting) path.
_TERMS17: tuple[dict[str, int], ...] = tuple({c: int(c) * w for c in _DIGITS} for w in WEIGHTS)
_CHECK_SET = frozenset(CHECK_CHARS)

_MMDD = frozenset(
    f"{m:02d}{d:02d}"
    for m, days in enumerate((31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31), start=1)
    for d in range(1, days + 1)
)
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

# GB/T 2260 province-level codes (the first two digits of the address code).
PROVINCES: dict[str, str] = {
    "11": "Beijing", "12": "Tianjin", "13": "Hebei", "14": "Shanxi", "15": "Inner Mongolia",
    "21": "Liaoning", "22": "Jilin", "23": "Heilongjiang",
    "31": "Shanghai", "32": "Jiangsu", "33": "Zhejiang", "34": "Anhui", "35": "Fujian",
    "36": "Jiangxi", "37": "Shandong",
    "41": "Henan", "42": "Hubei", "43": "Hunan", "44": "Guangdong", "45": "Guangxi", "46": "Hainan",
    "50": "Chongqing", "51": "Sichuan", "52": "Guizhou", "53": "Yunnan", "54": "Tibet",
    "61": "Shaanxi", "62": "Gansu", "63": "Qinghai", "64": "Ningxia", "65": "Xinjiang",
    "71": "Taiwan", "81": "Hong Kong", "82": "Macao",
}  # fmt: skip

# A spread of real county-level codes used when generating numbers without a given region.
SAMPLE_REGIONS: tuple[str, ...] = (
    "110101", "110102", "110105", "110106", "110108", "120101", "130102", "140105", "150102",
    "210102", "220102", "230102", "310101", "310104", "310115", "320102", "320106", "330102",
    "330106", "340102", "350203", "360102", "370102", "370202", "410105", "420102", "430102",
    "440103", "440304", "440305", "450103", "460105", "500103", "510104", "520102", "530102",
    "540102", "610102", "620102", "630102", "640104", "650102",
)  # fmt: skip


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def rid_check_char(first17: str) -> str:
    """The GB 11643 check character (``0-9`` or ``X``) for the first 17 digits."""
    if len(first17) == 17 and first17.isascii() and first17.isdigit():
        return CHECK_CHARS[2 * int(first17, 13) % 11]
    if len(first17) != 17:
        raise IdError(
            SCHEME, first17, "length", f"needs the first 17 digits, got {len(first17)} characters"
        )
    pos = next(i for i, c in enumerate(first17, 1) if c not in _DIGITS)
    raise IdError(
        SCHEME,
        first17,
        "charset",
        f"position {pos} is {first17[pos - 1]!r} but positions 1-17 must be digits",
        position=pos,
    )


def _check_15(raw: str, s: str) -> None:
    """Validate a 15-digit legacy number ``s`` (positions refer to it)."""
    for i, c in enumerate(s, 1):
        if c not in _DIGITS:
            raise IdError(
                SCHEME,
                raw,
                "charset",
                f"position {i} is {c!r} but a 15-digit legacy number has digits only",
                position=i,
            )
    if s[0] == "0":
        raise IdError(
            SCHEME,
            raw,
            "region",
            "position 1 is '0' but an address code starts with 1-9",
            position=1,
        )
    _check_date(raw, 1900 + int(s[6:8]), s[8:10], s[10:12], 9, f"positions 7-12 {s[6:12]!r}")


def _check_date(raw: str, year: int, mm: str, dd: str, pos_month: int, where: str) -> None:
    """Raise ``birth-date`` unless year/mm/dd is a calendar date in 1800-01-01..2100-12-31.

    ``where`` names the date field (``"positions 7-14 '19491231'"``); the year starts at position
    7 and the month at ``pos_month``, the day two positions later.
    """
    pos_day = pos_month + 2
    if not MIN_BIRTH_YEAR <= year <= MAX_BIRTH_YEAR:
        raise IdError(
            SCHEME,
            raw,
            "birth-date",
            f"{where} is not a birth date: the year {year} is outside "
            f"{MIN_BIRTH_YEAR}-{MAX_BIRTH_YEAR}",
            position=7,
        )
    month = int(mm)
    if not 1 <= month <= 12:
        raise IdError(
            SCHEME,
            raw,
            "birth-date",
            f"{where} is not a birth date: there is no month {mm}",
            position=pos_month,
        )
    day = int(dd)
    last = 28 if month == 2 and not _is_leap(year) else _DAYS_IN_MONTH[month - 1]
    if not 1 <= day <= last:
        raise IdError(
            SCHEME,
            raw,
            "birth-date",
            f"{where} is not a birth date: {year}-{mm} has no day {dd}",
            position=pos_day,
        )


def _check_18(raw: str, s: str) -> None:
    """Validate an 18-character number ``s``; raise the first broken rule."""
    for i, c in enumerate(s[:17], 1):
        if c not in _DIGITS:
            raise IdError(
                SCHEME,
                raw,
                "charset",
                f"position {i} is {c!r} but positions 1-17 must be digits",
                position=i,
            )
    if s[17] not in _CHECK_SET:
        raise IdError(
            SCHEME,
            raw,
            "charset",
            f"position 18 is {s[17]!r} but the check character must be a digit or X",
            position=18,
        )
    if s[0] == "0":
        raise IdError(
            SCHEME,
            raw,
            "region",
            "position 1 is '0' but an address code starts with 1-9",
            position=1,
        )
    _check_date(raw, int(s[6:10]), s[10:12], s[12:14], 11, f"positions 7-14 {s[6:14]!r}")
    expected = CHECK_CHARS[sum(map(getitem, _TERMS17, s)) % 11]
    if s[17] != expected:
        raise IdError(
            SCHEME,
            raw,
            "check-character",
            f"position 18 is {s[17]!r} but the check character should be {expected!r}",
            position=18,
            expected=expected,
        )


def rid_from_15(value15: str) -> str:
    """Convert a 15-digit legacy number (GB 11643-1989) to the 18-character form.

    Inserts the century ``19`` before the two-digit birth year and appends the MOD 11-2 check
    character. Raises :class:`IdError` if ``value15`` is not a valid 15-digit number.
    """
    s = compact(value15)
    if len(s) != 15:
        raise IdError(
            SCHEME, value15, "length", f"has {len(s)} characters but a legacy number has 15 digits"
        )
    _check_15(value15, s)
    first17 = f"{s[:6]}19{s[6:]}"
    return first17 + rid_check_char(first17)


def _slow(raw: str) -> Identifier:
    s = compact(raw)
    n = len(s)
    if n == 18:
        _check_18(raw, s)
        return new_identifier(SCHEME, s, "person")
    if n == 15:
        _check_15(raw, s)
        first17 = f"{s[:6]}19{s[6:]}"
        return new_identifier(SCHEME, first17 + rid_check_char(first17), "person")
    what = "is empty" if n == 0 else f"has {n} characters"
    raise IdError(
        SCHEME,
        raw,
        "length",
        f"{what} but a resident identity number has 18 (or 15 digits in the legacy form)",
    )


def parse_rid(raw: str) -> Identifier:
    """Parse a GB 11643 number (18 characters, or 15 legacy digits). See the module docstring."""
    if len(raw) == 18 and raw.isascii():
        # Fast path for canonical input (and a lower-case x); anything else takes _slow, which
        # normalises and names the exact rule that fails.
        head = raw[:17]
        if head.isdigit():
            check = raw[17]
            if check == "x":
                check = "X"
            if (
                check == CHECK_CHARS[2 * int(head, 13) % 11]
                and raw[0] != "0"
                and raw[10:14] in _MMDD
                and _MIN_YEAR_TEXT <= raw[6:10] <= _MAX_YEAR_TEXT
                and (raw[10:14] != "0229" or _is_leap(int(raw[6:10])))
            ):
                return new_identifier(SCHEME, head + check if check != raw[17] else raw, "person")
    return _slow(raw)


def describe_rid(value: str) -> dict[str, object]:
    """Decoded facts of a canonical 18-character number."""
    facts: dict[str, object] = {"region_code": value[:6]}
    province = PROVINCES.get(value[:2])
    if province is not None:
        facts["province"] = province
    facts["birth_date"] = f"{value[6:10]}-{value[10:12]}-{value[12:14]}"
    facts["sex"] = "male" if int(value[16]) % 2 else "female"
    facts["sequence"] = value[14:17]
    return facts


def mask_rid(value: str) -> str:
    """Keep the first 4 and last 4 characters."""
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


# ---------------------------------------------------------------------------- generation


# Day number of 1 January of each year MIN_BIRTH_YEAR .. MAX_BIRTH_YEAR + 1, counted from the first.
_YEAR_START: tuple[int, ...] = tuple(
    dt.date(y, 1, 1).toordinal() - dt.date(MIN_BIRTH_YEAR, 1, 1).toordinal()
    for y in range(MIN_BIRTH_YEAR, MAX_BIRTH_YEAR + 2)
)


@lru_cache(maxsize=1)
def _all_dates() -> str:
    """Every date MIN_BIRTH_YEAR-01-01 .. MAX_BIRTH_YEAR-12-31 as YYYYMMDD, concatenated (8 chars a
    day, ~880 kB), so that day number k since the first is ``_all_dates()[8k : 8k + 8]``."""
    common = [md for md in sorted(_MMDD) if md != "0229"]
    leap = sorted(_MMDD)
    # year + year.join(mmdd) == "".join(year + md for md in mmdd): one C-level join per year.
    return "".join(
        y + y.join(leap if _is_leap(year) else common)
        for year in range(MIN_BIRTH_YEAR, MAX_BIRTH_YEAR + 1)
        for y in (str(year),)
    )


_SEQ_ANY = tuple(f"{n:03d}" for n in range(1000))
_SEQ_MALE = tuple(q for q in _SEQ_ANY if int(q[2]) % 2 == 1)
_SEQ_FEMALE = tuple(q for q in _SEQ_ANY if int(q[2]) % 2 == 0)


def random_rid(
    rng: random.Random,
    *,
    birth_year_range: tuple[int, int] = (1940, 2006),
    region: str | None = None,
    sex: str | None = None,
) -> str:
    """A random valid 18-character number, deterministic for a seeded ``rng``.

    The birth date is uniform over every day of ``birth_year_range`` (inclusive), the region one
    of :data:`SAMPLE_REGIONS` unless given (six digits, first 1-9), the sex random unless given
    (``"male"``/``"female"``).
    """
    first_year, last_year = birth_year_range
    if not MIN_BIRTH_YEAR <= first_year <= last_year <= MAX_BIRTH_YEAR:
        raise ValueError(
            f"birth_year_range {birth_year_range!r} must lie within "
            f"{MIN_BIRTH_YEAR}-{MAX_BIRTH_YEAR}"
        )
    if region is None:
        region = SAMPLE_REGIONS[int(rng.random() * len(SAMPLE_REGIONS))]
    elif len(region) != 6 or not region.isascii() or not region.isdigit() or region[0] == "0":
        raise ValueError(f"region {region!r} must be six digits starting with 1-9")
    if sex is None:
        seqs = _SEQ_ANY
    elif sex == "male":
        seqs = _SEQ_MALE
    elif sex == "female":
        seqs = _SEQ_FEMALE
    else:
        raise ValueError(f"sex {sex!r} must be 'male', 'female' or None")
    dates = _all_dates()
    first_day = _YEAR_START[first_year - MIN_BIRTH_YEAR]
    n_days = _YEAR_START[last_year + 1 - MIN_BIRTH_YEAR] - first_day
    at = 8 * (first_day + int(rng.random() * n_days))
    first17 = region + dates[at : at + 8] + seqs[int(rng.random() * len(seqs))]
    return first17 + CHECK_CHARS[2 * int(first17, 13) % 11]
