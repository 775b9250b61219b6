"""Decision ids: 13 Crockford base-32 characters, reversible, sortable as text, batch = single."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from socialcredit.decision_ids import decode_id, encode_id, encode_ids, nth_id

IDS = st.integers(min_value=0, max_value=(1 << 65) - 1)


@given(IDS)
def test_an_id_decodes_to_itself(n: int) -> None:
    s = encode_id(n)
    assert len(s) == 13
    assert decode_id(s) == n
    assert decode_id(s.lower()) == n


@given(IDS, IDS)
def test_text_order_is_numeric_order(a: int, b: int) -> None:
    assert (encode_id(a) < encode_id(b)) == (a < b)


@given(
    st.lists(IDS, max_size=50), st.integers(min_value=0, max_value=(1 << 40)), st.integers(1, 3000)
)
def test_a_batch_encodes_like_one_at_a_time(scattered: list[int], start: int, run: int) -> None:
    # scattered ids, and a run of consecutive ids crossing 2^10 and 2^20 boundaries
    ns = [*scattered, *range(start, start + run)]
    assert encode_ids(ns) == [encode_id(n) for n in ns]


@given(st.integers(min_value=0, max_value=(1 << 63) - 1), st.integers(0, 10_000))
def test_the_nth_id_of_a_columnar_answer(first: int, i: int) -> None:
    assert nth_id(encode_id(first), i) == encode_id(first + i)
