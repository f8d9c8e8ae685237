"""Digests of values that cross a process: built from canonical JSON, never `repr()` or `hash()`.

`repr()` of a set or frozenset follows the process's string hash seed, so two processes (the
scheduler and a worker, or two CLI runs) would disagree on the same value. Every value here is
reduced to plain JSON first: dataclasses to objects, sets to sorted lists, keys sorted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

__all__ = ["canonical_json", "digest"]


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((_plain(v) for v in value), key=canonical_json)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"no canonical form for {type(value).__name__}")


def canonical_json(value: Any) -> str:
    """The same text for equal values in every process, whatever its hash seed."""
    return json.dumps(_plain(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def digest(value: Any, *, size: int = 6) -> str:
    """Hex blake2b of `canonical_json(value)`, `size` bytes long."""
    return hashlib.blake2b(canonical_json(value).encode("utf-8"), digest_size=size).hexdigest()
