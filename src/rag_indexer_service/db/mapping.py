"""`from_mapping()`: build a dataclass from a result row by its field names."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

__all__ = ["from_mapping"]

T = TypeVar("T")


def from_mapping(
    cls: type[T], row: Mapping[Any, Any], *, columns: Mapping[str, str] | None = None, **given: Any
) -> T:
    """`cls(field=row[column])` for every field not in `given`; the column is the field's name
    unless `columns` renames it."""
    renames = columns or {}
    values = {
        f.name: row[renames.get(f.name, f.name)]
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.init and f.name not in given
    }
    return cls(**values, **given)
