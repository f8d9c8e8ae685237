"""What Postgres can store: text without NUL and without lone surrogates, bounded ids.

A source row may carry characters Postgres refuses in `text` and `jsonb` (NUL, from a `json`
column, say) or that cannot be encoded as UTF-8 at all (surrogates, from JSON `\\ud800`
escapes). `storable()` makes any string storable; `unstorable_id()` says why an id cannot be
stored unchanged (an id is an identity: it is refused, never rewritten).
"""

from __future__ import annotations

import json
import re

__all__ = ["MAX_ID_BYTES", "shown", "storable", "unstorable_id"]

MAX_ID_BYTES = 1024
"""Longer document ids are refused (btree index entries are limited to ~2.7 kB)."""

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: str) -> str:
    """`value` without NUL, surrogate pairs joined, lone surrogates as U+FFFD."""
    if _UNSTORABLE.search(value) is None:
        return value
    value = value.replace("\x00", "")
    return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def unstorable_id(doc_id: str) -> str | None:
    """Why `doc_id` cannot be stored as it is, or None."""
    if not doc_id:
        return "the id is empty"
    if _UNSTORABLE.search(doc_id) is not None:
        return "the id contains NUL or an unpaired surrogate, which Postgres cannot store"
    size = len(doc_id.encode("utf-8"))
    if size > MAX_ID_BYTES:
        return f"the id is {size} bytes long, more than {MAX_ID_BYTES}"
    return None


def shown(value: str, max_chars: int = 200) -> str:
    """`value` safe to store and show in a failure record: escaped if unstorable, shortened."""
    if _UNSTORABLE.search(value) is not None:
        value = json.dumps(value)[1:-1]
    return value if len(value) <= max_chars else value[: max_chars - 1] + "…"
