"""``ids.bulk.canonical_mask`` (and ``scan``, which also gives each canonical key's code) agrees
with ``parse_key`` on every key (Hypothesis).

True exactly when ``k`` is a ``cn-rid`` key, ``parse_key(k)`` succeeds and ``k`` is already
canonical; everything else is left to ``parse_key``. Keys near the edge: valid numbers, every single-character change, Feb 29 in
leap and common years, years at the bounds, a leading 0, lower-case x, legacy 15-digit numbers,
other schemes.
"""

from __future__ import annotations

import random

from hypothesis import example, given
from hypothesis import strategies as st

from socialcredit import ids
from socialcredit.ids.bulk import canonical_mask, rid_code, scan
from socialcredit.ids.rid import rid_check_char


def truth(key: str) -> bool:
    """What the mask must say: a canonical, valid resident identity number (other schemes are
    always left to parse_key)."""
    if not key.startswith("cn-rid:"):
        return False
    try:
        return ids.parse_key(key).key == key
    except ids.IdError:
        return False


def rid(first17: str) -> str:
    return "cn-rid:" + first17 + rid_check_char(first17)


@st.composite
def valid_key(draw: st.DrawFn) -> str:
    """Mostly well-formed keys, as a real batch is (the array path takes them all at once)."""
    value = ids.random_rid(random.Random(draw(st.integers(0, 2**32))))
    if draw(st.integers(0, 9)) == 0:
        y = draw(st.integers(1790, 2110))
        md = draw(st.sampled_from(["0229", "0230", "1231", "1301", "0001", "0431"]))
        value = rid(value[:6] + f"{y:04d}" + md + value[14:17])[7:]
    if draw(st.integers(0, 9)) == 0:  # a check character that may not fit, or a leading 0
        value = draw(st.sampled_from(["0", value[0]])) + value[1:17] + draw(st.sampled_from("05X"))
    return "cn-rid:" + value


@st.composite
def near_valid(draw: st.DrawFn) -> str:
    value = ids.random_rid(random.Random(draw(st.integers(0, 2**32))))
    how = draw(
        st.sampled_from(
            ["valid", "change", "date", "lower", "short", "prefix", "wide", "scheme", "joined"]
        )
    )
    if how == "change":
        i = draw(st.integers(0, 17))
        c = draw(st.sampled_from("0123456789XxA "))
        value = value[:i] + c + value[i + 1 :]
    elif how == "date":
        y = draw(st.integers(1790, 2110))
        md = draw(st.sampled_from(["0229", "0230", "0228", "1231", "1301", "0001", "0100", "0431"]))
        value = rid(value[:6] + f"{y:04d}" + md + value[14:17])[7:]
    elif how == "lower":
        value = value[:17] + "x"
    elif how == "short":
        value = value[:6] + value[8:17]
    elif how == "wide":  # the same length, with a character outside ASCII
        i = draw(st.integers(0, 17))
        value = value[:i] + draw(st.sampled_from("１Ｘ٣é")) + value[i + 1 :]
    elif how == "scheme":  # the same length as a cn-rid key, another prefix
        return draw(st.sampled_from(["cn-rid;", "cn-ri:d", "cn_rid:", "CN-RID:"])) + value
    elif how == "joined":  # a newline inside, or two keys in one, or none
        return draw(st.sampled_from(["", "\n", value + "\ncn-rid:" + value, value[:10] + "\n"]))
    elif how == "prefix":
        return draw(st.sampled_from(["cn-uscc:", "CN-RID:", "cn-rid: ", "generic:"])) + value
    return "cn-rid:" + value


@given(
    st.lists(near_valid(), max_size=80) | st.lists(valid_key(), min_size=32, max_size=80)
)  # below and above the one-by-one threshold
@example(["cn-rid:11010519491231002X", "cn-rid:01010519491231002X", "cn-rid:11010519491231002x"])
@example([rid("11010520000229002"), rid("11010519000229002"), rid("11010518000101002")])
@example([rid("11010521000101002"), rid("11010521010101002"), rid("11010517991231002")])
def test_the_mask_is_exactly_parse_key_accepting_a_canonical_key(keys: list[str]) -> None:
    assert canonical_mask(keys) == [truth(k) for k in keys]
    # the scan behind the mask: the same answer, each canonical key's code, 0 for the rest
    found = scan(keys)
    assert found.canonical.tolist() == [truth(k) for k in keys]
    assert found.codes.tolist() == [rid_code(k) if truth(k) else 0 for k in keys]
    assert found.others() == [i for i, k in enumerate(keys) if not truth(k)]


@given(st.lists(valid_key(), min_size=2, max_size=40))
def test_canonical_keys_are_equal_exactly_when_their_codes_are(keys: list[str]) -> None:
    canonical = [k for k in keys if truth(k)]
    codes = {rid_code(k): k for k in canonical}
    assert len(codes) == len(set(canonical))
    assert all(c is not None and c > 0 for c in codes)
    assert [codes[c] for c in scan(canonical).codes.tolist()] == canonical


def test_a_batch_of_random_valid_numbers_is_all_canonical() -> None:
    rng = random.Random(5)
    keys = [f"cn-rid:{ids.random_rid(rng)}" for _ in range(2000)]
    assert all(canonical_mask(keys))
    broken = [k[:-1] + ("0" if k[-1] != "0" else "1") for k in keys]
    assert not any(canonical_mask(broken))
