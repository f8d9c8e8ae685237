"""The keyword side's query, built in Python from the user's text and the synonyms.

The query's words are read left to right; at each position the longest run of words that
names a document kind is set aside (`kinds`: those hits rank first, `search.py`), the
longest run that has a synonym rule becomes one group, and any other word a group of its
own. Phrasing that suggests a kind without naming it (`kind_cues`: "проблемы с размером",
"можно ли стирать") adds that kind too, and its words stay in the groups. A group matches a
chunk holding its own words, each in any inflected form (`morphology.py`), or all the words
of any one of its expansions. The query is the AND of
the groups that occur in the cabinet at all (`search.py` asks first), so a word no
document holds ("проблемы с размером") does not empty the result, much as a
`minimum_should_match` would. The texts are `to_tsquery` syntax over words of letters,
digits and hyphens only, so no user input reaches the tsquery parser unescaped; Postgres
stems each word with the `russian` configuration the index was built with.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from rag_indexer_service.indexing.morphology import word_forms
from rag_indexer_service.indexing.synonyms import Phrase, Synonyms, words

__all__ = ["KeywordGroup", "KeywordQuery", "Prunable", "Term", "build_keyword_query"]

_SHOWN = re.compile(r"[^\W_]+(?:-[^\W_]+)*")  # `synonyms.words` before lower-casing


@dataclass(frozen=True, slots=True)
class Term:
    """One thing a chunk can be found by: a query word, or an expansion of some."""

    label: str
    """As shown in a hit: the word, or "query words → expansion"."""
    tsquery: str
    expanded_from: str | None = None


@dataclass(frozen=True, slots=True)
class KeywordGroup:
    words: Phrase
    """Lower-cased, ё spelt е: what is searched for."""
    expansions: tuple[Phrase, ...]

    forms: tuple[tuple[str, ...], ...] = ()
    """Per word, its other inflected forms (`morphology.py`), found as the word itself."""
    shown: Phrase = ()
    """The words as the query spelt them (for hits' `matched_terms`)."""

    def label(self, n: int) -> str:
        return self.shown[n] if n < len(self.shown) else self.words[n]

    def word_tsquery(self, n: int) -> str:
        others = self.forms[n] if n < len(self.forms) else ()
        if not others:
            return self.words[n]
        return "(" + " | ".join((self.words[n], *others)) + ")"

    @property
    def tsquery(self) -> str:
        return self.tsquery_with(self.word_tsquery, _alternatives)

    def tsquery_with(
        self, word_tsquery: Callable[[int], str], expansions: Callable[[list[str]], str]
    ) -> str:
        """The group's tsquery: each own word as `word_tsquery` writes it, the alternatives
        after the first (the expansions, each in parentheses) as `expansions` adds them."""
        own = " & ".join(word_tsquery(n) for n in range(len(self.words)))
        if not self.expansions:
            return own
        return f"({own})" + expansions([f"({' & '.join(e)})" for e in self.expansions])


def _alternatives(alternatives: list[str]) -> str:
    return "".join(f" | {a}" for a in alternatives)


@dataclass(frozen=True, slots=True)
class Prunable:
    """A tsquery some of whose alternatives may be left out: `template` has a `%s` where
    each slot's are written, each as " | " and the alternative (`format()`'s syntax: the
    words are letters, digits and hyphens)."""

    template: str
    slots: tuple[int, ...]
    """The slot (1, 2, …, in the template's order) of each of `alternatives`."""
    alternatives: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KeywordQuery:
    groups: tuple[KeywordGroup, ...]
    kinds: tuple[str, ...] = ()
    """Document kinds the query names ("отзывы": review) or suggests ("проблемы": review);
    their hits rank first."""

    def tsquery(self, present: frozenset[int] | None = None) -> str:
        """AND of the groups (of those numbered in `present`, if given)."""
        return " & ".join(
            f"({g.tsquery})" for n, g in enumerate(self.groups) if present is None or n in present
        )

    def prunable(self, present: frozenset[int] | None = None) -> Prunable:
        """The query (`tsquery(present)`) with each word's other forms and each group's
        expansions as alternatives that the keyword side leaves out where no chunk it ranks
        could tell them apart (`search_sql.py`)."""
        slots: list[int] = []
        alternatives: list[str] = []

        def slot(pieces: list[str]) -> str:
            slots.extend([(slots[-1] if slots else 0) + 1] * len(pieces))
            alternatives.extend(pieces)
            return "%s"

        def slotted(group: KeywordGroup) -> Callable[[int], str]:
            def word_tsquery(n: int) -> str:
                others = group.forms[n] if n < len(group.forms) else ()
                if not others:
                    return group.words[n]
                return f"({group.words[n]}{slot(list(others))})"

            return word_tsquery

        template = " & ".join(
            f"({g.tsquery_with(slotted(g), slot)})"
            for n, g in enumerate(self.groups)
            if present is None or n in present
        )
        return Prunable(template, tuple(slots), tuple(alternatives))

    def own_words_tsquery(self) -> str:
        """OR of the query's own words: what ranks a chunk above one found by expansions."""
        return " | ".join(g.word_tsquery(n) for g in self.groups for n in range(len(g.words)))

    def expansion_text(self) -> str:
        """Every expansion's words, in query order (what the vector side adds)."""
        return " ".join(w for g in self.groups for e in g.expansions for w in e)

    def terms(self) -> tuple[Term, ...]:
        own = {
            w: Term(g.label(n), g.word_tsquery(n))
            for g in self.groups
            for n, w in enumerate(g.words)
        }
        expanded = [
            Term(f"{shown} → {' '.join(e)}", " & ".join(e), shown)
            for g in self.groups
            for shown in (" ".join(g.label(n) for n in range(len(g.words))),)
            for e in g.expansions
        ]
        return (*own.values(), *expanded)


def build_keyword_query(text: str, synonyms: Synonyms | None = None) -> KeywordQuery:
    tokens = words(text)
    spelt = tuple(_SHOWN.findall(text))
    if len(spelt) != len(tokens):  # lower-casing split a word (it never should)
        spelt = tokens
    groups: list[KeywordGroup] = []
    kinds: list[str] = []
    longest = max(1, synonyms.longest) if synonyms else 1
    i = 0
    while i < len(tokens):
        for length in range(min(longest, len(tokens) - i), 0, -1):
            key = tokens[i : i + length]
            kind = synonyms.kind(key) if synonyms else None
            if kind is not None:
                kinds.append(kind)
                i += length
                break
            found = synonyms.expansions(key) if synonyms else ()
            if found or length == 1:
                forms = tuple(word_forms(w) for w in key)
                groups.append(KeywordGroup(key, found, forms, spelt[i : i + length]))
                i += length
                break
    if synonyms is not None:
        kinds += synonyms.cued_kinds(tokens)
    return KeywordQuery(tuple(groups), tuple(dict.fromkeys(kinds)))
