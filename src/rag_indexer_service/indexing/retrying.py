"""Retry timing for HTTP calls: `Retry-After` parsing and jittered, capped exponential backoff."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

__all__ = ["TRANSIENT_STATUSES", "backoff_s", "retry_after_s"]

TRANSIENT_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
"""Statuses worth the same request again later; any other 4xx is the request's fault."""


def retry_after_s(headers: Mapping[str, str], *, now: dt.datetime | None = None) -> float | None:
    """Seconds the server asks us to wait, from `retry-after-ms` or `Retry-After`.

    `Retry-After` is either delay-seconds or an HTTP date; a date in the past means 0.
    Returns None when there is no usable header.
    """
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None or not raw.strip():
        return None
    try:
        return max(0.0, float(raw.strip()))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    current = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - current).total_seconds())


def backoff_s(
    attempt: int, *, base_s: float, max_s: float, rng: random.Random | None = None
) -> float:
    """Delay before attempt `attempt + 1` (attempt counts from 1): base·2^(n-1), capped, with
    "equal jitter" (uniform in [½, 1] of that), so retrying processes spread out."""
    ceiling = min(max_s, base_s * 2.0 ** (attempt - 1))
    return ceiling * (rng or random).uniform(0.5, 1.0)
