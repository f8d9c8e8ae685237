"""Query-time synonyms for the keyword side of search, loaded from a TOML data file.

The packaged `data/synonyms.toml` holds marketplace vocabulary (customers' words for the
sellers': "мобильник" for "смартфон", "Найк" for "Nike"); `RAG_SEARCH_SYNONYMS_FILE` replaces
it. Terms are compared on their Snowball stems (the algorithm Postgres' `russian` text search
configuration uses), so inflected forms in a query find their rule. The file is checked as it
loads: anything malformed is a `ConfigError` naming the file and the entry.
"""

from __future__ import annotations

import functools
import re
import threading
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import snowballstemmer  # type: ignore[import-untyped]

from rag_indexer_service.errors import ConfigError

__all__ = ["Synonyms", "load_synonyms", "stems", "words"]

_WORD = re.compile(r"[^\W_]+(?:-[^\W_]+)*")
_KEYS = frozenset({"equivalent", "brands", "broader", "kinds", "kind_cues"})

Phrase = tuple[str, ...]
"""The words of a term, lower-cased."""


_local = threading.local()


def _stemmer() -> Any:
    # A snowballstemmer stemmer keeps the word it works on in itself: one per thread.
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = snowballstemmer.stemmer("russian")
    return stemmer


def words(text: str) -> Phrase:
    """The words of `text` as the keyword side sees them: lower-cased, ё spelt е."""
    return tuple(_WORD.findall(text.lower().replace("ё", "е")))


@functools.lru_cache(maxsize=100_000)
def _stem(word: str) -> str:
    # The pure-Python stemmer costs ~50 µs a word, and a query's words are stemmed many
    # times over (every look-ahead of the synonym rules, every inflected form): once each.
    stem: str = _stemmer().stemWord(word)
    return stem


def stems(phrase: Iterable[str]) -> Phrase:
    return tuple(map(_stem, phrase))


@dataclass(frozen=True, slots=True)
class Synonyms:
    """Expansion rules: a phrase's stems -> the other phrases a query holding it also finds."""

    rules: Mapping[Phrase, tuple[Phrase, ...]]
    kinds: Mapping[Phrase, str]
    """Stems of words that name a document kind -> the kind."""
    longest: int
    """Words in the longest rule or kind key: how far a query is looked ahead."""
    source: str
    cues: Mapping[Phrase, str] = field(default_factory=dict)
    """Stems of phrases that suggest a document kind ("проблемы": a review) -> the kind;
    unlike `kinds`, the words are still searched for."""
    longest_cue: int = 0

    def expansions(self, key: Phrase) -> tuple[Phrase, ...]:
        return self.rules.get(stems(key), ())

    def kind(self, key: Phrase) -> str | None:
        return self.kinds.get(stems(key))

    def cued_kinds(self, tokens: Phrase) -> tuple[str, ...]:
        """The kinds that phrases of `tokens` suggest (`kind_cues`), in query order."""
        found: list[str] = []
        stemmed = stems(tokens)
        for i in range(len(stemmed)):
            for length in range(1, min(self.longest_cue, len(stemmed) - i) + 1):
                kind = self.cues.get(stemmed[i : i + length])
                if kind is not None and kind not in found:
                    found.append(kind)
        return tuple(found)


def _phrase(value: object, where: str) -> Phrase:
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected a string, got {value!r}")
    phrase = words(value)
    if not phrase:
        raise ValueError(f"{where}: {value!r} has no words")
    return phrase


def _phrases(value: object, where: str, least: int) -> list[Phrase]:
    if not isinstance(value, list) or len(value) < least:
        raise ValueError(f"{where}: expected a list of at least {least} strings, got {value!r}")
    return [_phrase(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _kinds(raw: object, section: str = "kinds") -> dict[Phrase, str]:
    if not isinstance(raw, dict):
        raise ValueError(f"{section}: expected a table of kind = [words that name it]")
    kinds: dict[Phrase, str] = {}
    for kind, names in raw.items():
        for name in _phrases(names, f"{section}.{kind}", least=1):
            other = kinds.setdefault(stems(name), kind)
            if other != kind:
                raise ValueError(f"{section}: {' '.join(name)!r} names both {other!r} and {kind!r}")
    return kinds


def _parse(raw: dict[str, Any]) -> dict[Phrase, list[Phrase]]:
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ValueError(f"unknown keys {unknown} (expected {sorted(_KEYS)})")
    rules: dict[Phrase, list[Phrase]] = {}

    def add(key: Phrase, found: Phrase) -> None:
        targets = rules.setdefault(stems(key), [])
        if stems(found) != stems(key) and found not in targets:
            targets.append(found)

    for name in ("equivalent", "brands"):
        sets = raw.get(name, [])
        if not isinstance(sets, list):
            raise ValueError(f"{name}: expected a list of lists of strings")
        for n, entry in enumerate(sets):
            terms = _phrases(entry, f"{name}[{n}]", least=2)
            for key in terms:
                for found in terms:
                    add(key, found)
    broader = raw.get("broader", {})
    if not isinstance(broader, dict):
        raise ValueError("broader: expected a table of key = [narrower terms]")
    for key_text, narrower in broader.items():
        key = _phrase(key_text, f"broader.{key_text!r}")
        for found in _phrases(narrower, f"broader.{key_text!r}", least=1):
            add(key, found)
    return rules


def load_synonyms(path: Path | None = None) -> Synonyms:
    """The rules in `path`, or the packaged vocabulary; a `ConfigError` if malformed."""
    if path is None:
        source = "the packaged synonyms (indexing/data/synonyms.toml)"
        text = (resources.files(__package__) / "data" / "synonyms.toml").read_text("utf-8")
    else:
        source = f"RAG_SEARCH_SYNONYMS_FILE {path}"
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source}: cannot be read: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        rules = _parse(raw)
        kinds = _kinds(raw.get("kinds", {}))
        cues = _kinds(raw.get("kind_cues", {}), "kind_cues")
        both = sorted(" ".join(k) for k in set(kinds) & set(cues))
        if both:
            raise ValueError(f"kind_cues: {both} are in [kinds] too")
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    frozen = {key: tuple(found) for key, found in rules.items() if found}
    longest = max(map(len, [*frozen, *kinds]), default=0)
    return Synonyms(
        rules=frozen,
        kinds=kinds,
        longest=longest,
        source=source,
        cues=cues,
        longest_cue=max(map(len, cues), default=0),
    )
