"""The demo catalogue: product types and phrase pools, loaded from the TOML files in ``data/``.

``catalogue.toml`` holds the categories and their nouns, ``phrases.toml`` the
catalogue-wide phrase pools, ``sellers.toml`` the seller names.  The generator
picks from these sequences by index, so their order is part of what makes the
demo data deterministic for a seed.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["Catalogue", "Category", "Noun", "load_catalogue"]

_GENDERS = frozenset({"m", "f", "n", "pl"})

QA = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True)
class Noun:
    """A product type: title head, grammatical gender, variants, price range, facts."""

    name: str
    gender: str
    variants: tuple[str, ...]
    price_range: tuple[int, int]
    facts: tuple[str, ...]
    coloured: bool
    brands: tuple[str, ...]
    models: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Category:
    """A catalogue category with its nouns and category-wide phrase pools."""

    name: str
    nouns: tuple[Noun, ...]
    brands: tuple[str, ...]
    models: tuple[str, ...]
    body: tuple[str, ...]
    care: tuple[str, ...]
    review_pos: tuple[str, ...]
    review_neg: tuple[str, ...]
    qa: QA


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Everything the demo generator writes text from."""

    categories: tuple[Category, ...]
    #: Colour adjective forms keyed by grammatical gender (``m``, ``f``, ``n``, ``pl``).
    colours: tuple[Mapping[str, str], ...]
    intros: tuple[str, ...]
    intros_no_brand: tuple[str, ...]
    general_body: tuple[str, ...]
    review_pos: tuple[str, ...]
    review_minor_con: tuple[str, ...]
    review_neutral: tuple[str, ...]
    review_neg: tuple[str, ...]
    answer_pos: tuple[str, ...]
    answer_neutral: tuple[str, ...]
    answer_neg: tuple[str, ...]
    answer_updates: tuple[str, ...]
    general_qa: QA
    #: (male, female) surname forms.
    surnames: tuple[tuple[str, str], ...]
    initials: str
    companies: tuple[str, ...]
    org_forms: tuple[str, ...]
    marketplaces: tuple[str, ...]

    category_by_name: Mapping[str, Category]
    #: Seller answers by question text, from ``general_qa`` and every category's ``qa``.
    qa_answers: Mapping[str, tuple[str, ...]]


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of strings, got {value!r}")
    return tuple(value)


def _qa(entries: list[dict[str, Any]]) -> QA:
    return tuple((str(e["question"]), _strs(e["answers"])) for e in entries)


def _noun(raw: dict[str, Any], variant_sets: Mapping[str, tuple[str, ...]]) -> Noun:
    if raw["gender"] not in _GENDERS:
        raise ValueError(f"noun {raw['name']!r}: gender must be one of {sorted(_GENDERS)}")
    variants = variant_sets[raw["variant_set"]] if "variant_set" in raw else _strs(raw["variants"])
    low, high = raw["price_rub"]
    if not 0 < low <= high:
        raise ValueError(f"noun {raw['name']!r}: price_rub must be 0 < low <= high")
    return Noun(
        name=raw["name"],
        gender=raw["gender"],
        variants=variants,
        price_range=(int(low), int(high)),
        facts=_strs(raw["facts"]),
        coloured=bool(raw.get("coloured", True)),
        brands=_strs(raw.get("brands", [])),
        models=_strs(raw.get("models", [])),
    )


def _category(raw: dict[str, Any], variant_sets: Mapping[str, tuple[str, ...]]) -> Category:
    return Category(
        name=raw["name"],
        nouns=tuple(_noun(n, variant_sets) for n in raw["noun"]),
        brands=_strs(raw["brands"]),
        models=_strs(raw["models"]),
        body=_strs(raw["body"]),
        care=_strs(raw["care"]),
        review_pos=_strs(raw["review_pos"]),
        review_neg=_strs(raw["review_neg"]),
        qa=_qa(raw["qa"]),
    )


def _read(name: str) -> dict[str, Any]:
    text = (resources.files(__package__) / "data" / name).read_text(encoding="utf-8")
    return tomllib.loads(text)


@functools.cache
def load_catalogue() -> Catalogue:
    """Read the packaged catalogue (once per process)."""
    books = _read("catalogue.toml")
    phrases = _read("phrases.toml")
    sellers = _read("sellers.toml")
    variant_sets = {name: _strs(v) for name, v in books["variant_sets"].items()}
    categories = tuple(_category(c, variant_sets) for c in books["category"])
    general_qa = _qa(phrases["general_qa"])
    return Catalogue(
        categories=categories,
        colours=tuple({g: str(c[g]) for g in sorted(_GENDERS)} for c in phrases["colours"]),
        intros=_strs(phrases["intros"]),
        intros_no_brand=_strs(phrases["intros_no_brand"]),
        general_body=_strs(phrases["general_body"]),
        review_pos=_strs(phrases["review_pos"]),
        review_minor_con=_strs(phrases["review_minor_con"]),
        review_neutral=_strs(phrases["review_neutral"]),
        review_neg=_strs(phrases["review_neg"]),
        answer_pos=_strs(phrases["answer_pos"]),
        answer_neutral=_strs(phrases["answer_neutral"]),
        answer_neg=_strs(phrases["answer_neg"]),
        answer_updates=_strs(phrases["answer_updates"]),
        general_qa=general_qa,
        surnames=tuple((str(s["male"]), str(s["female"])) for s in sellers["surnames"]),
        initials=str(sellers["initials"]),
        companies=_strs(sellers["companies"]),
        org_forms=_strs(sellers["org_forms"]),
        marketplaces=_strs(sellers["marketplaces"]),
        category_by_name={c.name: c for c in categories},
        qa_answers={q: a for qa in (general_qa, *(c.qa for c in categories)) for q, a in qa},
    )
