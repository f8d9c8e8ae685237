"""Token estimates, truncation and embedding batch planning (no database, no network)."""

from __future__ import annotations

import itertools

import pytest

from rag_indexer_service.indexing.tokens import estimate_tokens, plan_batches, truncate_to_tokens


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 1), ("a", 1), ("abc", 1), ("abcd", 2), ("абв", 2), ("ж" * 30, 20)],
)
def test_estimate_is_utf8_bytes_over_three_rounded_up(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


def test_truncation_keeps_short_texts_and_cuts_long_ones_within_budget() -> None:
    assert truncate_to_tokens("short", 10) == "short"
    cut = truncate_to_tokens("ж" * 100, 10)  # 2 bytes per letter, 30-byte budget
    assert cut == "ж" * 15
    assert estimate_tokens(cut) <= 10


def test_truncation_never_splits_a_character() -> None:
    cut = truncate_to_tokens("ёж" * 50, 7)  # 21-byte budget, 2-byte letters
    assert cut == "ёж" * 5


def _check(costs: list[int], max_inputs: int, max_tokens: int) -> list[tuple[int, int]]:
    batches = plan_batches(costs, max_inputs=max_inputs, max_tokens=max_tokens)
    # contiguous, in order, covering every input once
    assert [i for start, end in batches for i in range(start, end)] == list(range(len(costs)))
    for start, end in batches:
        assert 0 < end - start <= max_inputs
        assert sum(costs[start:end]) <= max_tokens or end - start == 1
    return batches


def test_no_inputs_no_batches() -> None:
    assert plan_batches([], max_inputs=10, max_tokens=100) == []


def test_count_limit_splits_cheap_inputs() -> None:
    assert _check([1] * 7, max_inputs=3, max_tokens=1000) == [(0, 3), (3, 6), (6, 7)]


def test_token_limit_splits_before_the_input_that_would_overflow() -> None:
    assert _check([40, 40, 30, 50, 10], max_inputs=100, max_tokens=100) == [(0, 2), (2, 5)]


def test_a_batch_may_fill_the_token_budget_exactly() -> None:
    assert _check([50, 50, 1], max_inputs=100, max_tokens=100) == [(0, 2), (2, 3)]


def test_an_oversized_input_gets_a_batch_of_its_own() -> None:
    assert _check([10, 500, 10], max_inputs=100, max_tokens=100) == [(0, 1), (1, 2), (2, 3)]


@pytest.mark.parametrize(("max_inputs", "max_tokens"), [(1, 10), (4, 25), (16, 1000)])
def test_batches_are_greedy_and_within_both_budgets(max_inputs: int, max_tokens: int) -> None:
    costs = [c for c, _ in zip(itertools.cycle([1, 7, 3, 12, 5, 2]), range(60), strict=False)]
    batches = _check(costs, max_inputs, max_tokens)
    # greedy: the next input would not have fitted into the previous batch
    for (start, end), (next_start, _) in itertools.pairwise(batches):
        assert end == next_start
        assert end - start == max_inputs or sum(costs[start : end + 1]) > max_tokens
