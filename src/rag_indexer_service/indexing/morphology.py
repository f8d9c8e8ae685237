"""Inflected forms of a query word, so the keyword side is not at the mercy of the stemmer.

Snowball stems some forms of one word differently ("отзывы" → `отзыв` but "Отзыв" → `отз`;
"повреждённая" → `поврежден`, "повреждена" → `поврежд`), so a query in one form misses
documents in another. pymorphy3 (OpenCorpora's dictionary) gives the word's most probable
lemma and its whole paradigm; the keyword side looks for one form per distinct stem.
Query time only; the dictionary loads (≈ 0.2 s) once per process, on the first query.
"""

from __future__ import annotations

import functools
from typing import Any

from rag_indexer_service.indexing.synonyms import stems

__all__ = ["word_forms"]

_MAX_FORMS = 8
# Comparatives and superlatives are other words as far as a search is concerned
# ("сильный" is not "сильнее").
_DEGREES = frozenset({"COMP", "Supr"})
# A short stem is shared by unrelated words ("силен" → `сил`, as in "сила").
_MIN_STEM = 4


@functools.cache
def _analyzer() -> Any:
    import pymorphy3  # type: ignore[import-untyped]

    return pymorphy3.MorphAnalyzer()


@functools.lru_cache(maxsize=50_000)
def word_forms(word: str) -> tuple[str, ...]:
    """Other forms of `word` (lower-case) whose stems differ from its own and each other's."""
    try:
        parses = _analyzer().parse(word)
    except ValueError:
        # pymorphy3 asks `unicodedata.name()` whether a letter is Latin, and letters with no
        # name (Tangut ideographs, U+17000...) raise: such a word has no Russian forms.
        return ()
    if not parses or not parses[0].is_known:
        return ()
    seen = {stems((word,))[0]}
    forms: list[str] = []
    for form in parses[0].lexeme:
        if _DEGREES & form.tag.grammemes:
            continue
        text = form.word.replace("ё", "е")
        stem = stems((text,))[0]
        if stem not in seen and len(stem) >= _MIN_STEM and "-" not in text:
            seen.add(stem)
            forms.append(text)
    return tuple(forms[:_MAX_FORMS])
