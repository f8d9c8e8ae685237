"""Token estimates without a tokenizer, truncation to a token budget, and request batching.

The estimate is UTF-8 bytes / 3, rounded up. BPE tokenizers (cl100k, o200k) average about
4 bytes per token on English and 5–6 on Russian, so the estimate overshoots for the texts this
service embeds: batches stay under a provider's per-request limit and inputs under its
context length without shipping a tokenizer per model.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["BYTES_PER_TOKEN", "estimate_tokens", "plan_batches", "truncate_to_tokens"]

BYTES_PER_TOKEN = 3


def estimate_tokens(text: str) -> int:
    """A conservative token count of `text` (at least 1)."""
    return max(1, -(-len(text.encode("utf-8")) // BYTES_PER_TOKEN))


def truncate_to_tokens(text: str, max_tokens: int) -> str:
    """`text` cut (at a character boundary) so that its estimate is at most `max_tokens`."""
    data = text.encode("utf-8")
    limit = max_tokens * BYTES_PER_TOKEN
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def plan_batches(
    costs: Sequence[int], *, max_inputs: int, max_tokens: int
) -> list[tuple[int, int]]:
    """Split inputs (in order) into `[start, end)` ranges within both budgets.

    An input costing more than `max_tokens` on its own gets a batch to itself; callers
    truncate inputs first so that does not happen.
    """
    batches: list[tuple[int, int]] = []
    start = tokens = 0
    for index, cost in enumerate(costs):
        if index > start and (index - start >= max_inputs or tokens + cost > max_tokens):
            batches.append((start, index))
            start, tokens = index, 0
        tokens += cost
    if start < len(costs):
        batches.append((start, len(costs)))
    return batches
