"""Properties of socialcredit.ids, checked with Hypothesis against an independent oracle.

The oracle below is written straight from domain-facts §7 (literal weight tables, ``str.index``
values, ``datetime.date`` for the calendar) and shares no code with the implementation, which uses
precomputed tables and ``int(…, base)`` shortcuts on its fast path.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import cast

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from socialcredit import ids
from socialcredit.ids import rid as rid_module
from socialcredit.ids import uscc as uscc_module
from socialcredit.subjects import ORGANISATION_KINDS, SubjectKind

# ------------------------------------------------------------------------------------ the oracle

RID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
ORG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]
DIGITS = "0123456789"


def oracle_rid(s: str) -> bool:
    """Is the canonical 18-character string ``s`` a valid cn-rid?"""
    if len(s) != 18 or any(c not in DIGITS for c in s[:17]) or s[17] not in DIGITS + "X":
        return False
    if s[0] == "0":
        return False
    try:
        born = dt.date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return False
    if not dt.date(1800, 1, 1) <= born <= dt.date(2100, 12, 31):
        return False
    total = sum(int(c) * w for c, w in zip(s, RID_WEIGHTS, strict=False))
    return "10X98765432"[total % 11] == s[17]


def oracle_uscc(s: str) -> bool:
    """Is the canonical string ``s`` a valid cn-uscc?"""
    if len(s) != 18 or any(c not in USCC_ALPHABET for c in s):
        return False
    if s[0] not in "123456789ANY" or any(c not in DIGITS for c in s[2:8]):
        return False
    org_sum = sum(ORG_ALPHABET.index(c) * w for c, w in zip(s[8:16], ORG_WEIGHTS, strict=True))
    c = 11 - org_sum % 11
    if s[16] != {10: "X", 11: "0"}.get(c, str(c)):
        return False
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(s, USCC_WEIGHTS, strict=False))
    return USCC_ALPHABET[(31 - total % 31) % 31] == s[17]


def parses(scheme: str, value: str) -> bool:
    try:
        ids.parse(scheme, value)
    except ids.IdError:
        return False
    return True


# No deadline: CI machines are shared and a first example may pay for one-off set-up work.
props = settings(deadline=None)

# ------------------------------------------------------------------------------------ strategies

seeds = st.integers(min_value=0, max_value=2**64)
org_kinds: st.SearchStrategy[SubjectKind] = st.sampled_from(
    cast(tuple[SubjectKind, ...], ORGANISATION_KINDS)
)


@st.composite
def valid_rids(draw: st.DrawFn) -> str:
    rng = random.Random(draw(seeds))
    first = draw(st.integers(1800, 2100))
    last = draw(st.integers(first, min(2100, first + 80)))
    sex = draw(st.sampled_from([None, "male", "female"]))
    return ids.random_rid(rng, birth_year_range=(first, last), sex=sex)


@st.composite
def valid_usccs(draw: st.DrawFn) -> str:
    return ids.random_uscc(random.Random(draw(seeds)), kind=draw(org_kinds))


def substitutions(value: str, charset_at: list[str]) -> list[str]:
    """Every string that differs from ``value`` in exactly one position, within that position's
    allowed characters."""
    out = []
    for i, allowed in enumerate(charset_at):
        for c in allowed:
            if c != value[i]:
                out.append(value[:i] + c + value[i + 1 :])
    return out


RID_CHARSETS = [DIGITS] * 17 + [DIGITS + "X"]
USCC_CHARSETS = [USCC_ALPHABET] * 18


# -------------------------------------------------------------------------- generated codes


@props
@given(seed=seeds, years=st.tuples(st.integers(1800, 2100), st.integers(0, 100)))
def test_random_rid_is_valid_and_round_trips(seed: int, years: tuple[int, int]) -> None:
    first, span = years
    last = min(2100, first + span)
    code = ids.random_rid(random.Random(seed), birth_year_range=(first, last))
    assert oracle_rid(code)
    ident = ids.parse("cn-rid", code)
    assert ident.value == code and ident.subject_kind == "person"
    assert ids.parse_key(ident.key) == ident
    born = dt.date.fromisoformat(str(ids.describe(ident)["birth_date"]))
    assert first <= born.year <= last


@props
@given(seed=seeds, sex=st.sampled_from(["male", "female"]))
def test_random_rid_respects_sex_and_region(seed: int, sex: str) -> None:
    code = ids.random_rid(random.Random(seed), sex=sex, region="350203")
    assert code.startswith("350203")
    assert ids.describe(ids.parse("cn-rid", code))["sex"] == sex


@props
@given(seed=seeds, kind=org_kinds)
def test_random_uscc_is_valid_and_round_trips(seed: int, kind: SubjectKind) -> None:
    code = ids.random_uscc(random.Random(seed), kind=kind)
    assert oracle_uscc(code)
    ident = ids.parse("cn-uscc", code)
    assert ident.value == code
    assert ident.subject_kind == kind
    assert ids.parse_key(ident.key) == ident


@props
@given(seed=seeds)
def test_random_uscc_respects_division(seed: int) -> None:
    code = ids.random_uscc(random.Random(seed), division="440304")
    assert code[2:8] == "440304" and ids.is_valid("cn-uscc", code)


def test_generation_is_deterministic_and_refuses_bad_arguments() -> None:
    assert ids.random_rid(random.Random(7)) == ids.random_rid(random.Random(7))
    assert ids.random_uscc(random.Random(7)) == ids.random_uscc(random.Random(7))
    rng = random.Random(0)
    with pytest.raises(ValueError):
        ids.random_rid(rng, birth_year_range=(1700, 1800))
    with pytest.raises(ValueError):
        ids.random_rid(rng, birth_year_range=(2000, 1990))
    with pytest.raises(ValueError):
        ids.random_rid(rng, region="012345")
    with pytest.raises(ValueError):
        ids.random_rid(rng, sex="other")
    with pytest.raises(ValueError):
        ids.random_uscc(rng, kind="person")
    with pytest.raises(ValueError):
        ids.random_uscc(rng, division="12345A")


def test_generation_is_fast_enough() -> None:
    # The brief: 1M codes in a few seconds. 20k here, with a generous bound for slow CI machines.
    import time

    rng = random.Random(1)
    start = time.perf_counter()
    for _ in range(20_000):
        ids.random_rid(rng)
        ids.random_uscc(rng)
    assert time.perf_counter() - start < 5.0


# ------------------------------------------------------------------- single substitutions


@props
@given(code=valid_rids())
def test_every_single_substitution_of_a_rid_is_detected(code: str) -> None:
    # MOD 11-2: a substitution at position i changes the sum by (a − b)·Wᵢ with 0 < |a − b| ≤ 10
    # and Wᵢ invertible mod 11, so it never keeps the sum ≡ 1; at position 18 the check itself
    # changes.
    for bad in substitutions(code, RID_CHARSETS):
        assert not parses("cn-rid", bad), bad


@props
@given(code=valid_usccs())
def test_every_single_substitution_of_a_uscc_is_detected(code: str) -> None:
    # MOD 31: values differ by 1..30 and every weight 3^k is invertible mod 31 (31 is prime).
    for bad in substitutions(code, USCC_CHARSETS):
        assert not parses("cn-uscc", bad), bad


# ------------------------------------------------------------------- adjacent transpositions


@props
@given(code=valid_usccs())
@example(code="91110108551385082Q")
def test_every_adjacent_transposition_of_a_uscc_is_detected(code: str) -> None:
    # True for MOD 31 with these weights (proved, not only sampled): swapping different symbols
    # a, b at positions i, i+1 ≤ 17 changes S by (a − b)(3^(i−1) − 3^i) = −2(a − b)·3^(i−1), and
    # swapping positions 17 and 18 changes S + value(c18) by (a − b)(3^16 − 1) = 27(a − b)
    # (3^16 ≡ 28). 31 is prime and 0 < |a − b| ≤ 30, so neither is ever ≡ 0 (mod 31).
    for i in range(17):
        if code[i] != code[i + 1]:
            swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
            assert not parses("cn-uscc", swapped), swapped


def test_transposition_detection_claim_exhaustively() -> None:
    # The algebra above, checked over every pair of symbol values and every adjacent position.
    w = [pow(3, i, 31) for i in range(17)] + [1]  # position 18 enters the equation with weight 1
    for i in range(17):
        for a in range(31):
            for b in range(31):
                if a != b:
                    assert (a - b) * (w[i] - w[i + 1]) % 31 != 0


@props
@given(code=valid_rids())
@example(code="11010519491231002X")
def test_every_adjacent_transposition_of_a_rid_is_detected(code: str) -> None:
    # MOD 11-2 as well: positions i, i+1 ≤ 17 change the sum by (a − b)·2^(17−i)·(2 − 1), never
    # ≡ 0 mod 11 for different digits; swapping 17 and 18 either puts X among the digits
    # (charset) or changes the sum by (a − b)(W17 − 1) = (a − b)·1 ≠ 0.
    for i in range(17):
        if code[i] != code[i + 1]:
            swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
            assert not parses("cn-rid", swapped), swapped


# ----------------------------------------------------------------- agreement with the oracle


def mutate(draw: st.DrawFn, code: str, alphabet: str) -> str:
    chars = list(code)
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(chars) - 1))
        chars[i] = draw(st.sampled_from(alphabet))
    return "".join(chars)


@st.composite
def rid_candidates(draw: st.DrawFn) -> str:
    return mutate(draw, draw(valid_rids()), DIGITS + "X0123")


@st.composite
def uscc_candidates(draw: st.DrawFn) -> str:
    return mutate(draw, draw(valid_usccs()), ORG_ALPHABET)


@props
@given(value=rid_candidates())
def test_rid_parse_agrees_with_oracle(value: str) -> None:
    assert parses("cn-rid", value) == oracle_rid(value)


@props
@given(value=uscc_candidates())
def test_uscc_parse_agrees_with_oracle(value: str) -> None:
    assert parses("cn-uscc", value) == oracle_uscc(value)


@props
@given(value=st.text(alphabet="0123456789X", min_size=18, max_size=18))
def test_rid_parse_agrees_with_oracle_on_arbitrary_digits(value: str) -> None:
    assert parses("cn-rid", value) == oracle_rid(value)


@props
@given(value=st.one_of(rid_candidates(), st.text(max_size=20)))
def test_rid_fast_path_agrees_with_slow_path(value: str) -> None:
    def outcome(f: object) -> object:
        try:
            return f(value)  # type: ignore[operator]
        except ids.IdError as e:
            return (e.rule, e.position, e.expected)

    fast = outcome(rid_module.parse_rid)
    slow = outcome(rid_module._slow)
    assert fast == slow


@props
@given(value=st.one_of(uscc_candidates(), st.text(max_size=20)))
def test_uscc_fast_path_agrees_with_slow_path(value: str) -> None:
    def outcome(f: object) -> object:
        try:
            return f(value)  # type: ignore[operator]
        except ids.IdError as e:
            return (e.rule, e.position, e.expected)

    assert outcome(uscc_module.parse_uscc) == outcome(uscc_module._slow)


@props
@given(value=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-", min_size=1, max_size=64))
def test_generic_accepts_its_charset(value: str) -> None:
    assert ids.parse("generic", value.lower()).value == value


# ------------------------------------------------------------------------------ normalisation


def to_full_width(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s)


@props
@given(code=valid_rids())
def test_full_width_and_spaced_rids_parse_to_the_same_value(code: str) -> None:
    assert ids.parse("cn-rid", to_full_width(code.lower())).value == code
    assert ids.parse("cn-rid", f" {code[:6]} {code[6:14]}-{code[14:]} ").value == code


@props
@given(code=valid_usccs())
def test_full_width_and_lower_case_usccs_parse_to_the_same_value(code: str) -> None:
    assert ids.parse("cn-uscc", to_full_width(code.lower())).value == code


@props
@given(value=st.text())
@example(value="\u0390")  # upper-casing ΐ yields a sequence NFKC recomposes
@example(value="ǰ")
@example(value="ﬀ ")
def test_normalise_is_idempotent(value: str) -> None:
    once = ids.normalise(value)
    assert ids.normalise(once) == once


@settings(max_examples=300, deadline=None)
@given(scheme=st.sampled_from(ids.SCHEMES), value=st.text(max_size=30))
def test_parse_never_raises_anything_but_id_error_and_is_stable(scheme: str, value: str) -> None:
    try:
        ident = ids.parse(scheme, value)
    except ids.IdError as e:
        assert e.rule in ids.RULES
        assert e.position is None or e.position >= 1
        return
    # the canonical value parses to itself, and masking never fails on it
    assert ids.parse(scheme, ident.value) == ident
    assert ids.parse_key(ident.key) == ident
    ids.mask(scheme, value)


@props
@given(code=valid_rids())
def test_mask_keeps_only_the_ends_of_a_rid(code: str) -> None:
    assume(len(code) == 18)
    masked = ids.mask("cn-rid", code)
    assert masked == code[:4] + "*" * 10 + code[-4:]
