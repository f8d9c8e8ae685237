"""Opaque page tokens for newest-first listings.

A token names the position after the last row of a page. Its alphabet and length are fixed
(documented as a pattern in the OpenAPI), and every token of that shape is a valid position, so
a malformed one is a 422 from validation and a well-formed one can never fail later.
"""

from __future__ import annotations

import string

__all__ = ["CURSOR_PATTERN", "decode_cursor", "encode_cursor"]

_ALPHABET = string.digits + string.ascii_lowercase
CURSOR_PATTERN = r"^[0-9a-z]{1,12}$"  # 36**12 > every run id this service will ever issue


def encode_cursor(before_id: int) -> str:
    if before_id < 0:
        raise ValueError("a cursor position is never negative")
    digits = []
    while True:
        before_id, rest = divmod(before_id, 36)
        digits.append(_ALPHABET[rest])
        if before_id == 0:
            return "".join(reversed(digits))


def decode_cursor(token: str) -> int:
    return int(token, 36)
