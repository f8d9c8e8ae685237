"""Row generation for the demo source: deterministic text and rows from a seeded RNG.

Only ``random.Random`` instances derived from the seed are used and every
timestamp is computed from :data:`BASE_TIME`, never from the wall clock.  The
functions here build rows in memory; :mod:`.seeding` and :mod:`.mutation`
write them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Final, NamedTuple, TypeVar

from rag_indexer_service.demo.catalogue import Catalogue, Category, Noun

__all__ = [
    "BASE_TIME",
    "DEMAND_LEVELS",
    "ProductFields",
    "Rng",
    "Row",
    "SeedData",
    "generate",
    "make_product",
    "make_question",
    "make_review",
    "sales_days",
]

#: Fixed "now" of the demo world; every generated timestamp derives from it.
BASE_TIME: Final[datetime] = datetime(2026, 1, 1, tzinfo=UTC)

# Review rating distribution: skewed positive like real marketplaces.
_RATING_POPULATION: Final[tuple[int, ...]] = (1,) * 5 + (2,) * 5 + (3,) * 10 + (4,) * 25 + (5,) * 55
_RATINGS: Final[tuple[Decimal, ...]] = tuple(Decimal(i).scaleb(-1) for i in range(51))

_SECONDS_PER_DAY: Final = 86_400
_SECOND: Final = timedelta(seconds=1)


_T = TypeVar("_T")


class Rng(random.Random):
    """``random.Random`` with cheap helpers for hot loops.

    ``int(random() * n)`` is several times faster than ``choice``/``randint``
    (which go through ``_randbelow``); the tiny bias does not matter here.
    """

    def pick(self, seq: Sequence[_T]) -> _T:
        return seq[int(self.random() * len(seq))]

    def between(self, low: int, high: int) -> int:
        """Uniform integer in ``[low, high]``."""
        return low + int(self.random() * (high - low + 1))

    def take(self, seq: Sequence[_T], k: int) -> list[_T]:
        """``k`` distinct elements (partial Fisher-Yates shuffle of a copy)."""
        pool = list(seq)
        n = len(pool)
        rnd = self.random
        for i in range(k):
            j = i + int(rnd() * (n - i))
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:k]


def _cabinet_name(rng: Rng, catalogue: Catalogue) -> str:
    if rng.random() < 0.55:
        male, female = rng.pick(catalogue.surnames)
        surname = male if rng.random() < 0.6 else female
        return f"ИП {surname} {rng.pick(catalogue.initials)}.{rng.pick(catalogue.initials)}."
    return f"{rng.pick(catalogue.org_forms)} «{rng.pick(catalogue.companies)}»"


def _make_price(rng: Rng, price_range: tuple[int, int]) -> Decimal:
    """Log-uniform price in the range, rounded like shops do: 14990, 14999, 349."""
    low, high = price_range
    raw = low * (high / low) ** rng.random()
    if raw >= 1000:
        rub = int(round(raw, -2)) - (10 if rng.random() < 0.7 else 1)
    elif raw >= 100:
        rub = int(round(raw, -1)) - 1
    else:
        rub = max(1, int(raw))
    return Decimal(rub * 100).scaleb(-2)


def _make_title(
    rng: Rng, catalogue: Catalogue, cat: Category, noun: Noun, brand: str | None
) -> str:
    parts = [noun.name]
    if brand is not None:
        parts.append(brand)
        models = noun.models if noun.models or noun.brands else cat.models
        if models and rng.random() < 0.7:
            parts.append(rng.pick(models))
    tail = []
    if noun.coloured:
        tail.append(rng.pick(catalogue.colours)[noun.gender])
    tail.append(rng.pick(noun.variants))
    return f"{' '.join(parts)}, {', '.join(tail)}"


def _make_description(
    rng: Rng, catalogue: Catalogue, cat: Category, noun: Noun, brand: str | None
) -> str:
    """2-6 sentences; ~10% are long (8-20 sentences in 2-4 paragraphs)."""
    intro = rng.pick(catalogue.intros_no_brand if brand is None else catalogue.intros)
    first = intro.format(noun=noun.name, noun_lower=noun.name.lower(), brand=brand)
    is_long = rng.random() < 0.1
    total = rng.between(8, 20) if is_long else rng.between(2, 6)
    n_facts = min(len(noun.facts), total - 1, rng.between(2 if is_long else 1, 3))
    sentences = [first, *rng.take(noun.facts, n_facts)]
    rest = total - len(sentences)
    care = rest > 0 and (is_long or rng.random() < 0.4)
    if care:
        rest -= 1
    n_body = min(len(cat.body), rest if is_long else rng.between(0, rest))
    extra = rng.take(cat.body, n_body) + rng.take(catalogue.general_body, rest - n_body)
    sentences += extra
    if care:
        sentences.append(rng.pick(cat.care))
    if not is_long:
        return " ".join(sentences)
    size = -(-len(sentences) // rng.between(2, 4))
    return "\n\n".join(" ".join(sentences[i : i + size]) for i in range(0, len(sentences), size))


class ProductFields(NamedTuple):
    title: str
    brand: str | None
    category: str
    description: str
    price: Decimal
    stock: int


def make_product(rng: Rng, catalogue: Catalogue, cat: Category) -> ProductFields:
    noun = rng.pick(cat.nouns)
    brand = None if rng.random() < 0.05 else rng.pick(noun.brands or cat.brands)
    title = _make_title(rng, catalogue, cat, noun, brand)
    description = _make_description(rng, catalogue, cat, noun, brand)
    price = _make_price(rng, noun.price_range)
    stock = 0 if rng.random() < 0.08 else int(rng.random() ** 2 * 500) + 1
    return ProductFields(title, brand, cat.name, description, price, stock)


def make_review(rng: Rng, catalogue: Catalogue, cat: Category) -> tuple[int, str, str | None]:
    """Return (rating, text, seller answer or None)."""
    rating = rng.pick(_RATING_POPULATION)
    if rating >= 4:
        parts = [rng.pick(catalogue.review_pos)]
        if rng.random() < 0.6:
            parts.append(rng.pick(cat.review_pos))
        if rating == 4 and rng.random() < 0.5:
            parts.append(rng.pick(catalogue.review_minor_con))
        elif rng.random() < 0.3:
            parts.append(rng.pick(catalogue.review_pos))
        answers = catalogue.answer_pos
    elif rating == 3:
        parts = [rng.pick(catalogue.review_neutral)]
        if rng.random() < 0.5:
            parts.append(rng.pick(catalogue.review_neutral))
        answers = catalogue.answer_neutral
    else:
        parts = [rng.pick(cat.review_neg)] if rng.random() < 0.6 else []
        parts.append(rng.pick(catalogue.review_neg))
        answers = catalogue.answer_neg
    if len(parts) > 1 and parts[0] == parts[-1]:
        parts.pop()
    answer = rng.pick(answers) if rng.random() < 0.6 else None
    return rating, " ".join(parts), answer


def make_question(rng: Rng, catalogue: Catalogue, cat: Category) -> tuple[str, str | None]:
    """Return (question, answer or None)."""
    question, answers = rng.pick(cat.qa) if rng.random() < 0.6 else rng.pick(catalogue.general_qa)
    return question, (rng.pick(answers) if rng.random() < 0.8 else None)


def _past(rng: Rng, max_days: int) -> datetime:
    """A timestamp in the ``max_days`` days before BASE_TIME (whole seconds)."""
    return BASE_TIME - _SECOND * rng.between(1, max_days * _SECONDS_PER_DAY - 1)


def sales_days(months: int) -> list[tuple[date, float]]:
    """Days of the ``months`` calendar months before BASE_TIME with demand factors."""
    if months <= 0:
        return []
    end = BASE_TIME.date()
    year, month = end.year, end.month - months
    while month <= 0:
        month += 12
        year -= 1
    day = date(year, month, 1)
    weekday_factor = (0.9, 0.85, 0.9, 0.95, 1.1, 1.3, 1.2)
    out = []
    while day < end:
        factor = weekday_factor[day.weekday()]
        if day.month == 12 and day.day >= 10:
            factor *= 1.5  # New Year rush
        elif day.month == 11 and 20 <= day.day <= 30:
            factor *= 1.3  # Black Friday
        out.append((day, factor))
        day += timedelta(days=1)
    return out


DEMAND_LEVELS: Final[tuple[float, ...]] = (0.1, 0.3, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0)


Row = tuple[object, ...]


@dataclass(slots=True)
class SeedData:
    cabinets: list[Row] = field(default_factory=list)
    products: list[Row] = field(default_factory=list)
    reviews: list[Row] = field(default_factory=list)
    questions: list[Row] = field(default_factory=list)
    # (product_id, cabinet_id, price) of the products that get daily sales.
    sales: list[tuple[int, int, Decimal]] = field(default_factory=list)
    next_id: int = 1

    def take_id(self) -> int:
        value = self.next_id
        self.next_id += 1
        return value


def _add_product(
    rng: Rng,
    catalogue: Catalogue,
    data: SeedData,
    cabinet_id: int,
    cat: Category,
    *,
    reviews: int,
    questions: int,
    with_sales: bool,
) -> None:
    """Generate one product with its reviews and questions into ``data``."""
    product_id = data.take_id()
    fields = make_product(rng, catalogue, cat)
    rating_sum = 0
    n_reviews = rng.between(0, 2 * reviews)
    for _ in range(n_reviews):
        rating, text, answer = make_review(rng, catalogue, cat)
        rating_sum += rating
        created = updated = _past(rng, 365)
        if answer is not None:
            delay = _SECOND * rng.between(600, 3 * _SECONDS_PER_DAY)
            updated = min(BASE_TIME, created + delay)
        data.reviews.append(
            (data.take_id(), cabinet_id, product_id, rating, text, answer, created, updated)
        )
    asked: set[str] = set()
    for _ in range(rng.between(0, 2 * questions)):
        qtext, qanswer = make_question(rng, catalogue, cat)
        if qtext in asked:  # one retry, then skip: no duplicate questions per product
            qtext, qanswer = make_question(rng, catalogue, cat)
            if qtext in asked:
                continue
        asked.add(qtext)
        created = updated = _past(rng, 365)
        if qanswer is not None:
            delay = _SECOND * rng.between(300, _SECONDS_PER_DAY)
            updated = min(BASE_TIME, created + delay)
        data.questions.append(
            (data.take_id(), cabinet_id, product_id, qtext, qanswer, created, updated)
        )
    rating_value = _RATINGS[round(rating_sum * 10 / n_reviews)] if n_reviews else None
    data.products.append(
        (
            product_id,
            cabinet_id,
            fields.title,
            fields.brand,
            fields.category,
            fields.description,
            fields.price,
            fields.stock,
            rating_value,
            _past(rng, 90),
        )
    )
    if with_sales and rng.random() < 0.3:
        data.sales.append((product_id, cabinet_id, fields.price))


def generate(
    catalogue: Catalogue,
    data: SeedData,
    seed: int,
    *,
    cabinets: int,
    products: int,
    reviews: int,
    questions: int,
    with_sales: bool,
) -> Iterator[int]:
    """Fill ``data`` cabinet by cabinet, yielding each cabinet id once it is generated."""
    # Each cabinet gets its own derived seed, so a cabinet's content does not
    # depend on how many cabinets are generated after it.
    base_seed = random.Random(seed).getrandbits(62) << 32
    rng = Rng()
    for cabinet_id in range(1, cabinets + 1):
        rng.seed(base_seed + cabinet_id)
        data.cabinets.append(
            (
                cabinet_id,
                _cabinet_name(rng, catalogue),
                rng.pick(catalogue.marketplaces),
                rng.random() >= 0.05,
                _past(rng, 365),
            )
        )
        # A seller usually focuses on one to three categories.
        assortment = rng.take(catalogue.categories, rng.between(1, 3))
        for _ in range(products):
            _add_product(
                rng,
                catalogue,
                data,
                cabinet_id,
                rng.pick(assortment),
                reviews=reviews,
                questions=questions,
                with_sales=with_sales,
            )
        yield cabinet_id
