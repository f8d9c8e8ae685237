"""Fast tests (no Postgres) for the packaged demo catalogue and the in-memory row generator."""

from __future__ import annotations

import string

from rag_indexer_service.demo import load_catalogue
from rag_indexer_service.demo.generate import BASE_TIME, Rng, SeedData, generate, make_review

INTRO_FIELDS = {"noun", "noun_lower", "brand"}


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _generate(seed: int, cabinets: int, products: int = 20) -> SeedData:
    data = SeedData()
    steps = generate(
        load_catalogue(),
        data,
        seed,
        cabinets=cabinets,
        products=products,
        reviews=3,
        questions=1,
        with_sales=True,
    )
    for _ in steps:
        pass
    return data


def test_every_noun_can_be_written() -> None:
    """Given the packaged data, every pick the generator makes has something to pick from."""
    catalogue = load_catalogue()
    assert len(catalogue.categories) >= 3
    assert len({c.name for c in catalogue.categories}) == len(catalogue.categories)
    for colour in catalogue.colours:
        assert set(colour) == {"m", "f", "n", "pl"}
    for category in catalogue.categories:
        assert category.nouns and category.body and category.care and category.qa
        assert category.review_pos and category.review_neg
        for noun in category.nouns:
            assert noun.variants and noun.facts, noun.name
            assert noun.brands or category.brands, noun.name
            low, high = noun.price_range
            assert 0 < low <= high, noun.name
        for _question, answers in category.qa:
            assert answers


def test_intro_templates_use_only_known_fields() -> None:
    catalogue = load_catalogue()
    for template in catalogue.intros:
        assert "brand" in _fields(template) and _fields(template) <= INTRO_FIELDS
    for template in catalogue.intros_no_brand:
        assert _fields(template) <= INTRO_FIELDS - {"brand"}


def test_question_answers_cover_every_question() -> None:
    catalogue = load_catalogue()
    questions = [q for q, _ in catalogue.general_qa] + [
        q for c in catalogue.categories for q, _ in c.qa
    ]
    assert set(questions) == set(catalogue.qa_answers)


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    first, again, other = _generate(7, 3), _generate(7, 3), _generate(8, 3)
    assert (first.cabinets, first.products, first.reviews, first.questions, first.sales) == (
        again.cabinets,
        again.products,
        again.reviews,
        again.questions,
        again.sales,
    )
    assert first.products != other.products


def test_a_cabinet_does_not_depend_on_later_cabinets() -> None:
    """Given two runs with 2 and 4 cabinets, the first two cabinets' rows are the same."""
    small, large = _generate(3, 2), _generate(3, 4)
    assert large.cabinets[:2] == small.cabinets
    assert large.products[: len(small.products)] == small.products


def test_generated_rows_stay_in_the_demo_world() -> None:
    data = _generate(11, 3)
    catalogue = load_catalogue()
    ids = [row[0] for row in data.products + data.reviews + data.questions]
    assert len(ids) == len(set(ids))
    assert {row[2] for row in data.cabinets} <= set(catalogue.marketplaces)
    assert {row[4] for row in data.products} <= set(catalogue.category_by_name)
    timestamps = [row[-1] for row in data.products + data.reviews + data.questions]
    assert max(timestamps) <= BASE_TIME  # type: ignore[operator]


def test_review_text_follows_its_rating() -> None:
    catalogue = load_catalogue()
    category = catalogue.categories[0]
    rng = Rng(5)
    for _ in range(300):
        rating, text, _answer = make_review(rng, catalogue, category)
        if rating >= 4:
            assert any(p in text for p in catalogue.review_pos + category.review_pos)
        elif rating <= 2:
            assert any(p in text for p in catalogue.review_neg)
