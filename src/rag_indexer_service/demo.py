"""Demo source database: a marketplace seller SaaS schema with synthetic data.

The demo schema imitates what a seller back office for Russian marketplaces
(Wildberries, Ozon, Yandex Market) keeps per seller account ("cabinet"):
products with long descriptions, customer reviews with seller answers,
customer questions and daily sales.  It exists so that newcomers and tests
have a realistic, mostly Russian-language source to index without access to
production data.

Tables (all in the current ``search_path``, normally ``public``):

* ``cabinets(id, name, marketplace, is_active, updated_at)``
* ``products(id, cabinet_id, title, brand, category, description, price,
  stock, rating, updated_at)``
* ``reviews(id, cabinet_id, product_id, rating, text, answer, created_at,
  updated_at)``
* ``questions(id, cabinet_id, product_id, text, answer, created_at,
  updated_at)``
* ``sales_daily(cabinet_id, product_id, day, orders, revenue)``

All generated data is deterministic for a given seed: only
``random.Random`` instances derived from the seed are used and all
timestamps are computed from the fixed base date :data:`BASE_TIME`
(2026-01-01 UTC), never from the wall clock.  Product, review and question
ids come from one shared counter, so an id is unique across the three
tables.  :func:`seed` replaces any existing demo data, bulk-loading with
``COPY`` (binary via ``copy_records_to_table``; text for the large
``sales_daily`` table); :func:`mutate` changes, adds and deletes a share of
the rows so that incremental re-indexing can be exercised.  Besides the
``cabinet_id`` indexes, ``reviews`` and ``questions`` are indexed on
``product_id`` so that deleting products (``ON DELETE CASCADE``) stays cheap.

The companion file ``demo_sources.toml`` (next to this module) describes how
to read indexable documents from this schema.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Final, NamedTuple, TypeVar

import asyncpg  # type: ignore[import-untyped,unused-ignore]

__all__ = [
    "BASE_TIME",
    "DEMO_TABLES",
    "MutateReport",
    "SeedReport",
    "create_schema",
    "is_seeded",
    "mutate",
    "seed",
]

#: Fixed "now" of the demo world; every generated timestamp derives from it.
BASE_TIME: Final[datetime] = datetime(2026, 1, 1, tzinfo=UTC)

#: Demo tables, children first (the order used for TRUNCATE).
DEMO_TABLES: Final[tuple[str, ...]] = (
    "sales_daily",
    "questions",
    "reviews",
    "products",
    "cabinets",
)


@dataclass(frozen=True, slots=True)
class SeedReport:
    """Row counts written by :func:`seed` and the wall time it took."""

    cabinets: int
    products: int
    reviews: int
    questions: int
    sales_rows: int
    duration_s: float


@dataclass(frozen=True, slots=True)
class MutateReport:
    """Rows touched by :func:`mutate`.

    Counts are summed over products, reviews and questions.  ``deleted``
    counts explicitly deleted rows only, not the reviews, questions and
    sales rows removed by ``ON DELETE CASCADE`` together with a product.
    """

    changed: int
    added: int
    deleted: int
    duration_s: float


# ---------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------

_TABLES_DDL: Final[tuple[str, ...]] = (
    """
    CREATE TABLE IF NOT EXISTS cabinets (
        id          bigint PRIMARY KEY,
        name        text NOT NULL,
        marketplace text NOT NULL,
        is_active   boolean NOT NULL DEFAULT true,
        updated_at  timestamptz NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS products (
        id          bigint PRIMARY KEY,
        cabinet_id  bigint NOT NULL,
        title       text NOT NULL,
        brand       text,
        category    text NOT NULL,
        description text NOT NULL,
        price       numeric(12, 2) NOT NULL,
        stock       integer NOT NULL,
        rating      numeric(2, 1),
        updated_at  timestamptz NOT NULL,
        CONSTRAINT products_cabinet_id_fkey FOREIGN KEY (cabinet_id)
            REFERENCES cabinets (id) ON DELETE CASCADE
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS reviews (
        id          bigint PRIMARY KEY,
        cabinet_id  bigint NOT NULL,
        product_id  bigint NOT NULL,
        rating      smallint NOT NULL,
        text        text NOT NULL,
        answer      text,
        created_at  timestamptz NOT NULL,
        updated_at  timestamptz NOT NULL,
        CONSTRAINT reviews_product_id_fkey FOREIGN KEY (product_id)
            REFERENCES products (id) ON DELETE CASCADE
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS questions (
        id          bigint PRIMARY KEY,
        cabinet_id  bigint NOT NULL,
        product_id  bigint NOT NULL,
        text        text NOT NULL,
        answer      text,
        created_at  timestamptz NOT NULL,
        updated_at  timestamptz NOT NULL,
        CONSTRAINT questions_product_id_fkey FOREIGN KEY (product_id)
            REFERENCES products (id) ON DELETE CASCADE
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS sales_daily (
        cabinet_id  bigint NOT NULL,
        product_id  bigint NOT NULL,
        day         date NOT NULL,
        orders      integer NOT NULL,
        revenue     numeric(14, 2) NOT NULL,
        CONSTRAINT sales_daily_pkey PRIMARY KEY (product_id, day),
        CONSTRAINT sales_daily_product_id_fkey FOREIGN KEY (product_id)
            REFERENCES products (id) ON DELETE CASCADE
    )
    """,
)

# (index name, table, column).  The product_id indexes keep ON DELETE CASCADE
# from products cheap.
_INDEXES: Final[tuple[tuple[str, str, str], ...]] = (
    ("products_cabinet_id_idx", "products", "cabinet_id"),
    ("reviews_cabinet_id_idx", "reviews", "cabinet_id"),
    ("reviews_product_id_idx", "reviews", "product_id"),
    ("questions_cabinet_id_idx", "questions", "cabinet_id"),
    ("questions_product_id_idx", "questions", "product_id"),
    ("sales_daily_cabinet_id_idx", "sales_daily", "cabinet_id"),
)

# (table, constraint name, definition); dropped during seed() and re-added
# afterwards so that bulk COPY does not pay a per-row RI trigger.
_FOREIGN_KEYS: Final[tuple[tuple[str, str, str], ...]] = (
    (
        "products",
        "products_cabinet_id_fkey",
        "FOREIGN KEY (cabinet_id) REFERENCES cabinets (id) ON DELETE CASCADE",
    ),
    (
        "reviews",
        "reviews_product_id_fkey",
        "FOREIGN KEY (product_id) REFERENCES products (id) ON DELETE CASCADE",
    ),
    (
        "questions",
        "questions_product_id_fkey",
        "FOREIGN KEY (product_id) REFERENCES products (id) ON DELETE CASCADE",
    ),
    (
        "sales_daily",
        "sales_daily_product_id_fkey",
        "FOREIGN KEY (product_id) REFERENCES products (id) ON DELETE CASCADE",
    ),
)

_SALES_PK: Final = "sales_daily_pkey"

_CABINET_COLUMNS: Final = ("id", "name", "marketplace", "is_active", "updated_at")
_PRODUCT_COLUMNS: Final = (
    "id",
    "cabinet_id",
    "title",
    "brand",
    "category",
    "description",
    "price",
    "stock",
    "rating",
    "updated_at",
)
_REVIEW_COLUMNS: Final = (
    "id",
    "cabinet_id",
    "product_id",
    "rating",
    "text",
    "answer",
    "created_at",
    "updated_at",
)
_QUESTION_COLUMNS: Final = (
    "id",
    "cabinet_id",
    "product_id",
    "text",
    "answer",
    "created_at",
    "updated_at",
)
_SALES_COLUMNS: Final = ("cabinet_id", "product_id", "day", "orders", "revenue")


async def create_schema(conn: asyncpg.Connection) -> None:
    """Create the demo tables and indexes if they do not exist (idempotent)."""
    for ddl in _TABLES_DDL:
        await conn.execute(ddl)
    for index, table, column in _INDEXES:
        await conn.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {table} ({column})")


async def is_seeded(conn: asyncpg.Connection) -> bool:
    """Return True if all demo tables exist and there is at least one cabinet."""
    exists = await conn.fetchval(
        "SELECT bool_and(to_regclass(t) IS NOT NULL) FROM unnest($1::text[]) AS t",
        list(DEMO_TABLES),
    )
    if not exists:
        return False
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM cabinets)"))


# ---------------------------------------------------------------------------
# Text pools
# ---------------------------------------------------------------------------

# Colour adjective forms by grammatical gender: m, f, n, pl.
_COLOURS: Final[tuple[tuple[str, str, str, str], ...]] = (
    ("чёрный", "чёрная", "чёрное", "чёрные"),
    ("белый", "белая", "белое", "белые"),
    ("серый", "серая", "серое", "серые"),
    ("синий", "синяя", "синее", "синие"),
    ("тёмно-синий", "тёмно-синяя", "тёмно-синее", "тёмно-синие"),
    ("красный", "красная", "красное", "красные"),
    ("зелёный", "зелёная", "зелёное", "зелёные"),
    ("бежевый", "бежевая", "бежевое", "бежевые"),
    ("розовый", "розовая", "розовое", "розовые"),
    ("голубой", "голубая", "голубое", "голубые"),
    ("бордовый", "бордовая", "бордовое", "бордовые"),
    ("графитовый", "графитовая", "графитовое", "графитовые"),
    ("хаки", "хаки", "хаки", "хаки"),
    ("молочный", "молочная", "молочное", "молочные"),
)
_GENDER_INDEX: Final[dict[str, int]] = {"m": 0, "f": 1, "n": 2, "pl": 3}


@dataclass(frozen=True, slots=True)
class _Noun:
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
class _Category:
    """A catalogue category with its nouns and category-wide phrase pools."""

    name: str
    nouns: tuple[_Noun, ...]
    brands: tuple[str, ...]
    models: tuple[str, ...]
    body: tuple[str, ...]
    care: tuple[str, ...]
    review_pos: tuple[str, ...]
    review_neg: tuple[str, ...]
    qa: tuple[tuple[str, tuple[str, ...]], ...]


def _t(items: str) -> tuple[str, ...]:
    """Split a ``|``-separated list."""
    return tuple(item.strip() for item in items.split("|")) if items else ()


def _n(
    name: str,
    gender: str,
    variants: str,
    price_range: tuple[int, int],
    *facts: str,
    coloured: bool = True,
    brands: str = "",
    models: str = "",
) -> _Noun:
    return _Noun(name, gender, _t(variants), price_range, facts, coloured, _t(brands), _t(models))


_SHOE_SIZES: Final = "|".join(f"р. {s}" for s in range(36, 47))
_CLOTHES_SIZES: Final = "р. XS|р. S|р. M|р. L|р. XL|р. XXL|р. 44|р. 46|р. 48|р. 50|р. 52"

_CATEGORIES: Final[tuple[_Category, ...]] = (
    _Category(
        name="Обувь",
        nouns=(
            _n(
                "Кроссовки беговые",
                "pl",
                _SHOE_SIZES,
                (2990, 14990),
                "Подошва из лёгкой пены EVA хорошо амортизирует при беге.",
                "Верх из дышащей сетки не даёт ноге перегреваться.",
                "Технология Air-cushion снижает нагрузку на суставы.",
                brands="Nike|Adidas|Puma|Reebok|New Balance|Asics|Demix",
                models="Air Zoom|Ultraboost|Gel-Kayano|Fresh Foam|Pegasus|Run Pro",
            ),
            _n(
                "Кроссовки повседневные",
                "pl",
                _SHOE_SIZES,
                (1990, 11990),
                "Верх из экокожи с перфорацией для вентиляции.",
                "Резиновая подмётка не скользит на мокром асфальте.",
                "Универсальный дизайн подойдёт к джинсам и спортивному костюму.",
            ),
            _n(
                "Кеды",
                "pl",
                _SHOE_SIZES,
                (990, 6990),
                "Верх из плотного хлопкового канваса.",
                "Классическая вулканизированная подошва.",
                "Идеальны для лета и прогулок по городу.",
            ),
            _n(
                "Ботинки зимние",
                "pl",
                _SHOE_SIZES,
                (3990, 15990),
                "Внутри тёплая подкладка из натуральной шерсти, рассчитана на морозы до −25 °C.",
                "Подошва с глубоким протектором не скользит на льду.",
                "Верх из натуральной кожи с водоотталкивающей пропиткой.",
            ),
            _n(
                "Челси кожаные",
                "pl",
                _SHOE_SIZES,
                (4990, 14990),
                "Эластичные боковые вставки позволяют легко надевать и снимать обувь.",
                "Верх из натуральной гладкой кожи.",
                "Подходят как к джинсам, так и к классическим брюкам.",
            ),
            _n(
                "Туфли классические",
                "pl",
                _SHOE_SIZES,
                (2990, 12990),
                "Верх и подкладка из натуральной кожи.",
                "Кожаная подошва с резиновой набойкой.",
                "Отлично подходят для офиса и торжественных мероприятий.",
            ),
            _n(
                "Сандалии",
                "pl",
                _SHOE_SIZES,
                (990, 5990),
                "Регулируемые ремешки на липучках.",
                "Лёгкая подошва из EVA не боится воды.",
                "Подходят для пляжа, дачи и путешествий.",
            ),
            _n(
                "Сапоги резиновые",
                "pl",
                _SHOE_SIZES,
                (790, 3990),
                "Изготовлены из натурального каучука, полностью водонепроницаемы.",
                "Съёмный утеплитель-чулок позволяет носить их до −10 °C.",
                "Незаменимы для дачи, рыбалки и дождливой погоды.",
            ),
            _n(
                "Слипоны",
                "pl",
                _SHOE_SIZES,
                (990, 4990),
                "Надеваются без шнурков, эластичная вставка держит ногу.",
                "Мягкая стелька с эффектом памяти.",
                "Лёгкие, подходят для лета и путешествий.",
            ),
            _n(
                "Лоферы",
                "pl",
                _SHOE_SIZES,
                (2990, 9990),
                "Верх из замши с мягкой подкладкой.",
                "Декоративная пряжка в классическом стиле.",
                "Подходят для офиса и прогулок в стиле smart casual.",
            ),
        ),
        brands=_t("Nike|Adidas|Puma|Reebok|New Balance|Skechers|Ralf Ringer|Юничел|Zenden|Тофа"),
        models=_t("Classic|Comfort|Urban|Street|Trail|Pro|Lite"),
        body=(
            "Размер соответствует стандартной российской размерной сетке.",
            "Если у вас широкая стопа или высокий подъём, советуем взять на размер больше.",
            "Стелька съёмная, с анатомическим профилем.",
            "Модель прошла проверку на износостойкость в лаборатории производителя.",
            "Подходит для повседневной носки в городе.",
            "Швы выполнены аккуратно, без следов клея.",
            "Поставляется в фирменной коробке.",
            "Перед покупкой измерьте длину стопы и сверьтесь с таблицей размеров.",
        ),
        care=(
            "Очищать влажной губкой или мягкой щёткой, не стирать в машине.",
            "Сушить при комнатной температуре вдали от батарей.",
            "Для ухода используйте средства, подходящие к материалу верха.",
        ),
        review_pos=(
            "Размер подошёл идеально, ноге удобно с первого дня.",
            "Ходила целый день — ноги совсем не устали.",
            "Выглядят дороже своей цены.",
            "Сели по ноге как влитые.",
        ),
        review_neg=(
            "Маломерят сильно, пришлось возвращать.",
            "Через две недели отклеилась подошва.",
            "Натирают пятку, разносить так и не получилось.",
        ),
        qa=(
            (
                "Подскажите, размер соответствует? У меня длина стопы 27 см.",
                (
                    "Здравствуйте! При длине стопы 27 см рекомендуем 42 размер.",
                    "Добрый день! Модель в размер, для стопы 27 см подойдёт 42.",
                ),
            ),
            (
                "Подойдут на широкую стопу?",
                ("Здравствуйте! Полнота стандартная, при широкой стопе возьмите размер больше.",),
            ),
            (
                "Это натуральная кожа или искусственная?",
                ("Добрый день! Материалы верха и подкладки указаны во вкладке «Характеристики».",),
            ),
        ),
    ),
    _Category(
        name="Одежда",
        nouns=(
            _n(
                "Футболка оверсайз",
                "f",
                _CLOTHES_SIZES,
                (590, 2490),
                "Состав: 100% хлопок, плотность 220 г/м².",
                "Свободный крой oversize со спущенным плечом.",
                "Горловина обработана мягкой трикотажной бейкой.",
            ),
            _n(
                "Худи с капюшоном",
                "n",
                _CLOTHES_SIZES,
                (1490, 5990),
                "Трикотаж с начёсом внутри, состав: 80% хлопок, 20% полиэстер.",
                "Большой карман-кенгуру спереди.",
                "Капюшон на регулируемых шнурках.",
            ),
            _n(
                "Джинсы прямого кроя",
                "pl",
                "W26 L32|W28 L32|W30 L32|W32 L34|W34 L34|W36 L34",
                (1990, 6990),
                "Деним плотностью 12 унций, 99% хлопок, 1% эластан.",
                "Классическая пятикарманка с посадкой на талии.",
                "Длина по внутреннему шву — 81 см.",
            ),
            _n(
                "Платье миди",
                "n",
                _CLOTHES_SIZES,
                (1990, 8990),
                "Ткань — вискоза, приятно струится и не мнётся.",
                "Длина изделия около 115 см, пояс в комплекте.",
                "Подходит как для офиса, так и для вечернего выхода.",
            ),
            _n(
                "Куртка демисезонная",
                "f",
                _CLOTHES_SIZES,
                (3990, 14990),
                "Утеплитель 100 г/м², рассчитана на температуру от −5 до +10 °C.",
                "Ткань верха с водоотталкивающей пропиткой.",
                "Молнии YKK, есть внутренний карман для телефона.",
            ),
            _n(
                "Пуховик удлинённый",
                "m",
                _CLOTHES_SIZES,
                (6990, 24990),
                "Наполнитель — натуральный пух и перо в пропорции 80/20.",
                "Рассчитан на температуру до −30 °C.",
                "Капюшон с отстёгивающейся опушкой из искусственного меха.",
            ),
            _n(
                "Свитшот",
                "m",
                _CLOTHES_SIZES,
                (1290, 4990),
                "Футер трёхнитка, хлопок с добавлением полиэстера.",
                "Манжеты и низ на мягкой резинке.",
                "Подходит для многослойных образов.",
            ),
            _n(
                "Брюки карго",
                "pl",
                _CLOTHES_SIZES,
                (1990, 5990),
                "Шесть вместительных карманов, включая накладные боковые.",
                "Пояс на резинке с регулирующим шнуром.",
                "Ткань — плотный хлопковый твил.",
            ),
            _n(
                "Рубашка льняная",
                "f",
                _CLOTHES_SIZES,
                (1990, 6990),
                "Ткань — 100% натуральный лён, в жару в ней не жарко.",
                "Свободный крой и перламутровые пуговицы.",
                "Лён со временем становится только мягче.",
            ),
            _n(
                "Костюм спортивный",
                "m",
                _CLOTHES_SIZES,
                (2490, 8990),
                "В комплекте толстовка на молнии и брюки-джоггеры.",
                "Трикотаж с начёсом, состав: 70% хлопок, 30% полиэстер.",
                "Подходит для тренировок и прогулок.",
            ),
            _n(
                "Пальто шерстяное",
                "n",
                _CLOTHES_SIZES,
                (6990, 29990),
                "Состав: 70% шерсть, 30% полиамид.",
                "Подкладка из вискозы, длина ниже колена.",
                "Классический силуэт с отложным воротником.",
            ),
            _n(
                "Джемпер вязаный",
                "m",
                _CLOTHES_SIZES,
                (1990, 6990),
                "Пряжа с добавлением мериносовой шерсти, не колется.",
                "Фактурная вязка «косы» спереди.",
                "Держит форму и не растягивается после стирки.",
            ),
        ),
        brands=_t(
            "Gloria Jeans|Befree|Love Republic|O'stin|ТВОЕ|Lime|Zarina|Sela|Incity|"
            "Lamoda Basics|Вещь!|Северная Мода"
        ),
        models=_t("Basic|Oversize|Slim Fit|Comfort|Casual|Premium|Street|Relaxed"),
        body=(
            "Модель соответствует размеру, параметры модели на фото: рост 175 см, размер S.",
            "Цвет на фото может немного отличаться из-за настроек монитора.",
            "Швы обработаны аккуратно, изделие не деформируется после стирки.",
            "Хорошо сочетается с базовым гардеробом в стиле casual.",
            "Подходит для офиса, прогулок и путешествий.",
            "Таблица размеров есть в карточке товара, при сомнениях напишите нам — подскажем.",
            "Ткань сертифицирована по стандарту OEKO-TEX.",
        ),
        care=(
            "Стирка при 30 °C, деликатный режим, не отбеливать.",
            "Гладить с изнанки при средней температуре.",
            "Не сушить в барабане, сушить в расправленном виде.",
        ),
        review_pos=(
            "Села по фигуре отлично, ношу с удовольствием.",
            "Цвет точно как на фото, швы ровные.",
            "После стирки не села и не полиняла.",
            "Ткань приятная к телу, не колется.",
        ),
        review_neg=(
            "После первой стирки вещь села на размер.",
            "Торчат нитки, шов разошёлся через неделю.",
            "Ткань тонкая и просвечивает, совсем не как на фото.",
        ),
        qa=(
            (
                "Какой размер взять на рост 170 и вес 65 кг?",
                (
                    "Здравствуйте! Рекомендуем размер M.",
                    "Добрый день! Вам подойдёт размер 46 (M).",
                ),
            ),
            (
                "Садится ли после стирки?",
                ("Здравствуйте! При стирке при 30 °C изделие не садится.",),
            ),
            (
                "Какой состав ткани?",
                ("Здравствуйте! Состав указан во вкладке «Характеристики» и на этикетке.",),
            ),
        ),
    ),
    _Category(
        name="Электроника",
        nouns=(
            _n(
                "Наушники беспроводные",
                "pl",
                "Bluetooth 5.3|с шумоподавлением ANC|TWS",
                (990, 19990),
                "Активное шумоподавление ANC убирает шум метро и офиса.",
                "Вместе с кейсом работают до 30 часов.",
                "Встроенные микрофоны обеспечивают чёткую связь при звонках.",
                brands="Apple|Samsung|Sony|JBL|Xiaomi|Huawei|Honor|Soundcore",
                models="Buds 3|Pro|Lite|Air|Neo|SE",
            ),
            _n(
                "Смартфон",
                "m",
                "6/128 ГБ|8/256 ГБ|12/512 ГБ",
                (9990, 89990),
                "Экран AMOLED 6,7 дюйма с частотой обновления 120 Гц.",
                "Основная камера 50 Мп с оптической стабилизацией.",
                "Аккумулятор 5000 мАч и быстрая зарядка 67 Вт.",
                brands="Apple|Samsung|Xiaomi|Huawei|Honor|Realme|Tecno|Infinix",
                models="Note 13|Pro|Ultra|Lite|Max|X5|Neo",
            ),
            _n(
                "Умные часы",
                "pl",
                "41 мм|45 мм|GPS",
                (2990, 39990),
                "Отслеживают пульс, сон и уровень кислорода в крови.",
                "Более 100 спортивных режимов и встроенный GPS.",
                "Защита от воды 5 ATM — можно плавать в бассейне.",
                brands="Apple|Samsung|Huawei|Xiaomi|Amazfit|Garmin",
                models="Watch 9|GT 4|Active|Pro|Sport",
            ),
            _n(
                "Портативная колонка",
                "f",
                "20 Вт|30 Вт|IPX7",
                (1490, 19990),
                "Мощный звук с глубоким басом.",
                "Защита от воды IPX7 — не боится дождя и брызг.",
                "Можно объединить две колонки в стереопару.",
                brands="JBL|Sony|Marshall|Яндекс|Tronsmart|Dexp",
                models="Charge 5|Flip 6|Go 4|Mini|Max",
            ),
            _n(
                "Внешний аккумулятор",
                "m",
                "10000 мАч|20000 мАч|30000 мАч",
                (990, 5990),
                "Заряжает смартфон до 4 раз.",
                "Поддерживает быструю зарядку Power Delivery 22,5 Вт.",
                "Два выхода USB-A и один порт USB-C.",
                brands="Anker|Baseus|Xiaomi|Ugreen|Romoss|Cactus",
                models="PowerCore|Mi Power|Lite|Pro",
            ),
            _n(
                "Планшет",
                "m",
                "10.1 дюйма, 64 ГБ|11 дюймов, 128 ГБ|Wi-Fi + LTE",
                (8990, 59990),
                "Яркий IPS-экран с разрешением 2K.",
                "Четыре динамика с поддержкой Dolby Atmos.",
                "Аккумулятор 8000 мАч — до 12 часов просмотра видео.",
                brands="Apple|Samsung|Xiaomi|Huawei|Honor|Digma",
                models="Pad 6|Tab S9|MatePad|Pro|Lite",
            ),
            _n(
                "Фитнес-браслет",
                "m",
                "AMOLED|с NFC|с пульсометром",
                (1490, 5990),
                "Считает шаги, калории и фазы сна.",
                "Бесконтактная оплата через NFC.",
                "Работает до 14 дней без подзарядки.",
                brands="Xiaomi|Huawei|Honor|Amazfit",
                models="Smart Band 8|Band 9|Band|Pro",
            ),
            _n(
                "Зарядное устройство USB-C",
                "n",
                "20 Вт|33 Вт|65 Вт GaN",
                (490, 3990),
                "Технология GaN — компактный корпус и низкий нагрев.",
                "Поддерживает Power Delivery 3.0 и Quick Charge 4+.",
                "Подходит для смартфонов, планшетов и ноутбуков.",
                coloured=False,
                brands="Anker|Baseus|Ugreen|Xiaomi|Samsung",
                models="Nano|GaN Pro|Mini",
            ),
            _n(
                "Робот-пылесос",
                "m",
                "с влажной уборкой|с лидаром|с базой самоочистки",
                (9990, 59990),
                "Лидарная навигация строит точную карту квартиры.",
                "Сила всасывания 4000 Па справляется с шерстью и крошками.",
                "Управление через приложение и голосом через Алису.",
                brands="Xiaomi|Roborock|Dreame|Polaris|Tefal|Яндекс",
                models="S8|L10|Vacuum E10|Max|Pro",
            ),
            _n(
                "Клавиатура механическая",
                "f",
                "Red switches|Brown switches|TKL",
                (2490, 12990),
                "Механические переключатели с ресурсом 50 млн нажатий.",
                "RGB-подсветка с настройкой через ПО.",
                "Русская и английская раскладки нанесены лазером.",
                brands="Logitech|Razer|HyperX|Ardor Gaming|Dexp|Redragon",
                models="G Pro|Alloy|Kumara|Blade",
            ),
            _n(
                "Мышь беспроводная",
                "f",
                "2.4 ГГц|Bluetooth|бесшумная",
                (490, 4990),
                "Оптический сенсор до 4000 DPI.",
                "Тихие клавиши не мешают окружающим.",
                "Работает до 12 месяцев от одной батарейки AA.",
                brands="Logitech|Xiaomi|Defender|A4Tech|Dexp",
                models="M190|Silent|Pro|Lite",
            ),
        ),
        brands=_t("Xiaomi|Samsung|Huawei|Honor|Dexp|Digma"),
        models=_t("Pro|Lite|Max|Mini"),
        body=(
            "В комплекте инструкция на русском языке и гарантийный талон.",
            "Официальная гарантия производителя — 12 месяцев.",
            "Товар прошёл сертификацию ЕАЭС.",
            "Подключение и настройка занимают не больше пяти минут.",
            "Поставляется в фирменной упаковке с защитными плёнками.",
            "Сервисные центры производителя есть во всех крупных городах России.",
            "Совместимо с iOS и Android.",
        ),
        care=(
            "Не оставляйте устройство на солнце и рядом с источниками тепла.",
            "Для чистки используйте сухую мягкую ткань без спирта.",
            "Храните при температуре от 0 до +35 °C.",
        ),
        review_pos=(
            "Работает без нареканий, за эти деньги отличный вариант.",
            "Всё подключилось сразу, инструкция понятная.",
            "Качество сборки хорошее, ничего не скрипит.",
            "Пользуюсь каждый день, полёт нормальный.",
        ),
        review_neg=(
            "Через неделю перестал включаться, отправила в сервис.",
            "Пришёл без кабеля, хотя в описании он есть.",
            "Корпус с царапинами, явно не новый.",
        ),
        qa=(
            (
                "Это глобальная версия?",
                ("Здравствуйте! Да, это глобальная версия с поддержкой русского языка.",),
            ),
            (
                "Есть ли русское меню и инструкция?",
                ("Добрый день! Да, меню и инструкция полностью на русском языке.",),
            ),
            (
                "Какая гарантия на товар?",
                (
                    "Здравствуйте! Гарантия производителя 12 месяцев.",
                    "Добрый день! Гарантия 1 год, сервисные центры есть во всех крупных городах.",
                ),
            ),
        ),
    ),
    _Category(
        name="Дом и сад",
        nouns=(
            _n(
                "Комплект постельного белья",
                "m",
                "1,5-спальный|2-спальный|евро|семейный",
                (1490, 7990),
                "Ткань — поплин из 100% хлопка плотностью 140 г/м².",
                "В комплекте пододеяльник, простыня и две наволочки 70×70 см.",
                "Ткань не линяет и не скатывается после стирок.",
                brands="Ивановский текстиль|Cleanelly|Мягкий дом|Sofi de Marko|Togas",
            ),
            _n(
                "Подушка ортопедическая",
                "f",
                "50×70 см|60×40 см, высота 12 см",
                (1490, 5990),
                "Пена с эффектом памяти принимает форму головы и шеи.",
                "Съёмный чехол из бамбукового волокна.",
                "Подходит для сна на спине и на боку.",
                coloured=False,
                brands="Аскона|Ormatek|Тримед|Мягкий дом",
            ),
            _n(
                "Плед флисовый",
                "m",
                "150×200 см|200×220 см",
                (590, 2990),
                "Мягкий флис не электризуется и не линяет.",
                "Края обработаны аккуратным оверлоком.",
                "Лёгкий и тёплый, подойдёт для дивана и пикника.",
                brands="Cleanelly|Мягкий дом|Home Collection|Уют",
            ),
            _n(
                "Набор кастрюль",
                "m",
                "3 предмета|6 предметов|8 предметов",
                (2990, 14990),
                "Нержавеющая сталь 18/10 с капсульным дном.",
                "Подходит для всех типов плит, включая индукционные.",
                "Стеклянные крышки с отверстием для выхода пара.",
                brands="Tefal|Rondell|Vitesse|Appetite|Катюша",
            ),
            _n(
                "Сковорода антипригарная",
                "f",
                "24 см|26 см|28 см",
                (990, 5990),
                "Антипригарное покрытие с титановым напылением.",
                "Подходит для всех типов плит, включая индукционные.",
                "Ручка из бакелита не нагревается во время готовки.",
                brands="Tefal|Rondell|Нева Металл Посуда|Биол|Appetite",
            ),
            _n(
                "Горшок для цветов",
                "m",
                "1 л|3 л|5 л|10 л",
                (190, 2490),
                "Система автополива снабжает растение водой до двух недель.",
                "Пластик устойчив к ультрафиолету и не выцветает.",
                "Подходит для дома, балкона и открытой веранды.",
                brands="Idea|Ingreen|Palisad|Green Home",
            ),
            _n(
                "Шланг садовый",
                "m",
                "15 м|20 м|30 м",
                (690, 4990),
                "Армированный трёхслойный шланг диаметром 1/2 дюйма.",
                "Не трескается на морозе и не перекручивается.",
                "В комплекте распылитель с семью режимами полива.",
                coloured=False,
                brands="Гардена|Palisad|Grinda|Park",
            ),
            _n(
                "Полотенце махровое",
                "n",
                "50×90 см|70×140 см|100×150 см",
                (390, 2490),
                "Махра из 100% хлопка плотностью 450 г/м².",
                "Хорошо впитывает влагу и быстро сохнет.",
                "Производство — Иваново.",
                brands="Ивановский текстиль|Cleanelly|Togas|Мягкий дом",
            ),
            _n(
                "Настольная лампа",
                "f",
                "LED, 7 Вт|E27|с беспроводной зарядкой",
                (990, 7990),
                "Три режима цветовой температуры и плавная регулировка яркости.",
                "Гибкая ножка позволяет направить свет куда нужно.",
                "Свет без мерцания не утомляет глаза.",
                brands="Xiaomi|Camelion|ЭРА|Rexant|Lucia",
            ),
            _n(
                "Коврик для ванной",
                "m",
                "50×80 см|60×90 см",
                (390, 2490),
                "Нескользящая основа из латекса.",
                "Мягкий длинный ворс быстро впитывает воду.",
                "Можно стирать в стиральной машине.",
                brands="Home Collection|Cleanelly|Fixsen|Уют",
            ),
            _n(
                "Органайзер для хранения",
                "m",
                "3 секции|5 секций|складной",
                (290, 2490),
                "Каркас держит форму, даже когда органайзер пустой.",
                "Удобно хранить бельё, носки и аксессуары.",
                "В сложенном виде занимает мало места.",
                brands="Home Collection|Hoff|Домовёнок|Уют",
            ),
        ),
        brands=_t("Hoff|Home Collection|Уют|Домовёнок"),
        models=_t("Comfort|Eco|Premium|Home|Soft|Classic|Family"),
        body=(
            "Отлично впишется в интерьер в скандинавском стиле и стиле лофт.",
            "Упаковано в подарочную коробку — хороший вариант для подарка на новоселье.",
            "Все материалы безопасны и имеют сертификаты соответствия.",
            "Производство — Россия.",
            "Фото сделаны в реальном интерьере при дневном освещении.",
            "Подходит для квартиры, загородного дома и дачи.",
        ),
        care=(
            "Перед первым использованием рекомендуем промыть или постирать изделие.",
            "Не используйте абразивные чистящие средства.",
            "Храните в сухом месте.",
        ),
        review_pos=(
            "Качество отличное, размер точно как указано.",
            "Смотрится дорого, в интерьере отлично.",
            "Пользуемся каждый день, всё супер.",
        ),
        review_neg=(
            "Размер меньше заявленного.",
            "Пришло с браком, один угол повреждён.",
            "Через месяц потеряло вид.",
        ),
        qa=(
            (
                "Это производство России?",
                ("Здравствуйте! Да, товар произведён в России.",),
            ),
            (
                "Подойдёт в подарок?",
                ("Добрый день! Да, товар упакован в подарочную коробку.",),
            ),
        ),
    ),
    _Category(
        name="Красота",
        nouns=(
            _n(
                "Крем для лица увлажняющий",
                "m",
                "50 мл|30 мл",
                (390, 3990),
                "В составе гиалуроновая кислота, пантенол и масло ши.",
                "Лёгкая текстура быстро впитывается и не оставляет липкой плёнки.",
                "Подходит для сухой и чувствительной кожи.",
            ),
            _n(
                "Шампунь для волос",
                "m",
                "250 мл|400 мл|1 л",
                (190, 1490),
                "Бессульфатная формула мягко очищает кожу головы.",
                "Делает волосы мягкими и блестящими, облегчает расчёсывание.",
                "Подходит для окрашенных волос.",
            ),
            _n(
                "Сыворотка с витамином C",
                "f",
                "30 мл|15 мл",
                (490, 3490),
                "Стабильная форма витамина C в концентрации 15%.",
                "Выравнивает тон кожи и уменьшает пигментацию.",
                "Наносить утром под солнцезащитный крем.",
            ),
            _n(
                "Тушь для ресниц",
                "f",
                "объём|удлинение|водостойкая",
                (290, 1490),
                "Силиконовая щёточка разделяет и подкручивает ресницы.",
                "Не осыпается и не отпечатывается в течение дня.",
                "Легко смывается тёплой водой.",
                brands="Maybelline|L'Oréal Paris|Vivienne Sabo|Essence|Relouis",
                models="Lash Sensational|Volume Million Lashes|Cabaret|Lash Princess",
            ),
            _n(
                "Патчи для глаз гидрогелевые",
                "pl",
                "60 шт.|30 пар",
                (290, 1490),
                "Уменьшают отёки и тёмные круги под глазами.",
                "В составе коллаген и экстракт жемчуга.",
                "Держать на коже 15–20 минут.",
            ),
            _n(
                "Парфюмерная вода",
                "f",
                "30 мл|50 мл|100 мл",
                (990, 8990),
                "Верхние ноты — бергамот и мандарин, сердце — жасмин, база — мускус и ваниль.",
                "Стойкость аромата — до 8 часов.",
                "Флакон в подарочной упаковке.",
                brands="Lancôme|Dior|Zara|Novaya Zarya|Brocard|Essens",
                models="Idôle|Miss|Red Temptation|Красная Москва|Summer",
            ),
            _n(
                "Бальзам для губ",
                "m",
                "4,5 г|10 мл",
                (149, 690),
                "Питает и защищает губы от обветривания.",
                "В составе масло ши и витамин E.",
                "Удобно носить с собой в кармане.",
            ),
            _n(
                "Маска для волос",
                "f",
                "200 мл|500 мл",
                (290, 2490),
                "Восстанавливает повреждённые и сухие волосы.",
                "В составе кератин и аргановое масло.",
                "Достаточно 3–5 минут на влажных волосах.",
            ),
            _n(
                "Гель для душа",
                "m",
                "250 мл|500 мл|750 мл",
                (149, 790),
                "Мягкая моющая основа не сушит кожу.",
                "Аромат с нотами цитруса и белого чая.",
                "Удобный флакон с дозатором.",
            ),
            _n(
                "Скраб для тела",
                "m",
                "200 мл|300 г",
                (290, 1490),
                "Основа из морской соли и сахара.",
                "Масла кокоса и миндаля оставляют кожу бархатистой.",
                "Использовать 1–2 раза в неделю.",
            ),
        ),
        brands=_t(
            "L'Oréal Paris|Garnier|Nivea|La Roche-Posay|Vichy|Librederm|Art&Fact|"
            "Natura Siberica|Чистая линия|Бархатные ручки|Невская косметика"
        ),
        models=_t("Hydra|Sensitive|Repair|Daily|Night|Aqua|Professional"),
        body=(
            "Дерматологически протестировано.",
            "Средство не тестировалось на животных.",
            "Подходит для ежедневного применения.",
            "Продукция оригинальная, поставляется напрямую от официального дистрибьютора.",
            "Срок годности — 36 месяцев, после вскрытия — 12 месяцев.",
            "Произведено по стандартам GMP.",
            "Формула без парабенов и искусственных красителей.",
        ),
        care=(
            "Хранить при температуре от +5 до +25 °C вдали от прямых солнечных лучей.",
            "Избегать попадания в глаза.",
            "Перед применением рекомендуем провести тест на сгибе локтя.",
        ),
        review_pos=(
            "Эффект заметен уже через неделю.",
            "Аромат нежный, ненавязчивый.",
            "Расход экономичный, хватает надолго.",
            "Брала повторно, теперь только его.",
        ),
        review_neg=(
            "Вызвало раздражение и покраснение, пришлось смыть.",
            "Запах резкий и химический, совсем не как в описании.",
            "Пришёл вскрытый флакон, часть средства вытекла.",
        ),
        qa=(
            (
                "Какой срок годности у товара?",
                ("Добрый день! Срок годности 36 месяцев, на складе свежие партии.",),
            ),
            (
                "Можно ли использовать во время беременности?",
                ("Здравствуйте! Рекомендуем предварительно проконсультироваться с врачом.",),
            ),
            (
                "Подходит для чувствительной кожи?",
                ("Здравствуйте! Средство гипоаллергенное, но лучше сначала сделать тест.",),
            ),
        ),
    ),
    _Category(
        name="Детские товары",
        nouns=(
            _n(
                "Конструктор",
                "m",
                "120 деталей|500 деталей|1000 деталей",
                (490, 14990),
                "Детали совместимы с конструкторами других популярных брендов.",
                "Развивает мелкую моторику, логику и воображение.",
                "Рекомендуемый возраст — от 6 лет.",
                coloured=False,
                brands="LEGO|Mould King|Sluban|Город мастеров",
                models="City|Friends|Technic|Classic|Creator",
            ),
            _n(
                "Подгузники-трусики",
                "pl",
                "M, 6–11 кг|L, 9–14 кг|XL, 12–17 кг",
                (790, 2490),
                "Впитывающий слой надёжно защищает от протеканий до 12 часов.",
                "Дышащий материал снижает риск раздражения.",
                "Мягкий эластичный поясок не натирает.",
                coloured=False,
                brands="Pampers|Huggies|Merries|Moony|Lovular|Солнце и Луна",
                models="Pants|Premium Care|Elite Soft|Classic",
            ),
            _n(
                "Коляска прогулочная",
                "f",
                "с перекидной ручкой|складная книжкой|всесезонная",
                (7990, 29990),
                "Складывается одной рукой в компактную книжку.",
                "Спинка опускается до горизонтального положения.",
                "Большой капюшон и дождевик в комплекте.",
                brands="Chicco|Happy Baby|Indigo|Babyton|Farfello",
                models="Umma|Ultima|Urban|Mini",
            ),
            _n(
                "Мягкая игрушка медведь",
                "f",
                "30 см|50 см|80 см",
                (390, 3990),
                "Наполнитель — гипоаллергенное полиэфирное волокно.",
                "Глазки и носик надёжно пришиты, безопасны для малышей.",
                "Можно стирать в машинке в мешке для стирки.",
                brands="Мякиши|Мягкий мир|Budi Basa|Fancy",
                models="",
            ),
            _n(
                "Развивающий коврик",
                "m",
                "с дугами|с игрушками|90×90 см",
                (1490, 5990),
                "Съёмные дуги с подвесными игрушками и зеркальцем.",
                "Разные фактуры ткани развивают тактильные ощущения.",
                "Подходит с рождения.",
                brands="Fisher-Price|Tiny Love|Happy Baby|Умка",
            ),
            _n(
                "Пазл",
                "m",
                "100 элементов|500 элементов|1000 элементов",
                (190, 1490),
                "Плотный картон, элементы точно подогнаны друг к другу.",
                "Яркая картинка не выцветает.",
                "Развивает внимание и усидчивость.",
                coloured=False,
                brands="Десятое королевство|Степ Пазл|Ravensburger|Умка",
                models="",
            ),
            _n(
                "Комбинезон зимний детский",
                "m",
                "р. 86|р. 92|р. 98|р. 104|р. 110",
                (2990, 9990),
                "Мембранная ткань не продувается и отводит влагу.",
                "Утеплитель рассчитан на морозы до −30 °C.",
                "Светоотражающие элементы для безопасности в темноте.",
                brands="Premont|Kerry|Orby|Батик|Crockid",
            ),
            _n(
                "Бутылочка для кормления",
                "f",
                "150 мл|250 мл",
                (290, 1490),
                "Изготовлена из полипропилена без BPA.",
                "Соска с антиколиковым клапаном.",
                "Можно стерилизовать и мыть в посудомоечной машине.",
                coloured=False,
                brands="Philips Avent|Chicco|Пома|Мир детства|Dr. Brown's",
                models="Natural|Anti-colic|Classic",
            ),
            _n(
                "Самокат трёхколёсный",
                "m",
                "со светящимися колёсами|складной",
                (1490, 6990),
                "Руль регулируется по высоте под рост ребёнка.",
                "Широкая дека и устойчивая конструкция.",
                "Выдерживает нагрузку до 50 кг.",
                brands="Micro|Globber|Tech Team|Navigator",
                models="Mini|Primo|Junior|Maxi",
            ),
        ),
        brands=_t("Мир детства|Умка|Happy Baby|Chicco"),
        models=_t("Baby|Junior|Kids|Mini|Play"),
        body=(
            "Все материалы сертифицированы для детских товаров.",
            "Товар соответствует техническому регламенту ТР ТС.",
            "Отличный подарок на день рождения или Новый год.",
            "Проверено мамами: одна из самых популярных позиций нашего магазина.",
            "Подробная инструкция на русском языке в комплекте.",
        ),
        care=(
            "Использовать под присмотром взрослых.",
            "Хранить в сухом месте, вдали от отопительных приборов.",
        ),
        review_pos=(
            "Ребёнок в восторге!",
            "Качество отличное, никакого запаха.",
            "Брали в подарок племяннику, все довольны.",
        ),
        review_neg=(
            "Сильный запах пластика, проветриваем уже неделю.",
            "Пришло с дефектом, пришлось возвращать.",
            "Качество не соответствует цене.",
        ),
        qa=(
            (
                "С какого возраста можно?",
                ("Здравствуйте! Рекомендуемый возраст указан во вкладке «Характеристики».",),
            ),
            (
                "Есть ли сертификат соответствия?",
                ("Добрый день! Да, товар сертифицирован, пришлём сертификат по запросу.",),
            ),
        ),
    ),
    _Category(
        name="Спорт",
        nouns=(
            _n(
                "Гантели разборные",
                "pl",
                "2×5 кг|2×10 кг|2×15 кг",
                (1490, 7990),
                "Блины с виниловым покрытием не царапают пол.",
                "Гриф с прорезиненной ручкой не скользит в руке.",
                "Вес легко менять благодаря надёжным замкам.",
                coloured=False,
                brands="Torres|Bradex|Starfit|Demix|Iron King",
            ),
            _n(
                "Коврик для йоги",
                "m",
                "183×61 см, 6 мм|183×61 см, 10 мм",
                (590, 3990),
                "Материал TPE не скользит и легко моется.",
                "Толщина комфортна для коленей и позвоночника.",
                "В комплекте ремешок для переноски.",
                brands="Demix|Starfit|Bradex|Torres|Ramayoga",
            ),
            _n(
                "Велосипед горный",
                "m",
                '26"|27,5"|29"',
                (14990, 59990),
                "Рама из алюминиевого сплава, вес — около 14 кг.",
                "21 скорость и дисковые тормоза.",
                "Амортизационная вилка с ходом 100 мм.",
                brands="Stels|Forward|Stark|Merida|Format",
                models="Navigator 700|Apache|Router|Big Nine|1413",
            ),
            _n(
                "Фитнес-резинки",
                "pl",
                "набор 5 шт.|набор 3 шт.",
                (290, 1490),
                "Пять уровней сопротивления — от лёгкого до очень сильного.",
                "Ткань с латексными нитями не скатывается и не рвётся.",
                "Подходят для тренировки ягодиц и ног дома.",
                brands="Demix|Bradex|Starfit|Fitrule",
            ),
            _n(
                "Скакалка скоростная",
                "f",
                "3 м|регулируемая длина",
                (250, 1490),
                "Стальной трос в ПВХ-оплётке.",
                "Подшипники в ручках обеспечивают плавное вращение.",
                "Подходит для кроссфита и бокса.",
                brands="Demix|Torres|Starfit|Atemi",
            ),
            _n(
                "Мяч футбольный",
                "m",
                "размер 4|размер 5",
                (790, 4990),
                "Термосклеенные панели — мяч не впитывает воду.",
                "Подходит для игры на натуральном и искусственном газоне.",
                "Соответствует стандартам FIFA Basic.",
                brands="Adidas|Nike|Puma|Select|Demix|Torres",
                models="Pro|Training|Match|Club",
            ),
            _n(
                "Ролики раздвижные",
                "pl",
                "р. 33–36|р. 36–39|р. 40–43",
                (2990, 9990),
                "Размер регулируется в пределах четырёх позиций.",
                "Полиуретановые колёса 70 мм с подшипниками ABEC-7.",
                "Жёсткая манжета надёжно фиксирует голеностоп.",
                brands="Tech Team|Ridex|Oxelo|Sportcollection",
            ),
            _n(
                "Бутылка для воды спортивная",
                "f",
                "500 мл|750 мл|1 л",
                (290, 1490),
                "Тритан без BPA не впитывает запахи.",
                "Клапан с защитой от протекания.",
                "Шкала объёма помогает следить за питьевым режимом.",
                brands="Demix|Contigo|Nalgene|Bradex",
            ),
            _n(
                "Палатка туристическая",
                "f",
                "2-местная|3-местная|4-местная",
                (3990, 24990),
                "Водостойкость тента — 3000 мм водяного столба.",
                "Ставится за 10 минут одним человеком.",
                "Два тамбура для хранения вещей.",
                brands="Outventure|Nordway|Larsen|Следопыт|Tramp",
                models="Tahoe|Trekking|Camp|Lite",
            ),
            _n(
                "Рюкзак туристический",
                "m",
                "30 л|45 л|65 л",
                (1990, 14990),
                "Регулируемая подвесная система снимает нагрузку со спины.",
                "Ткань Oxford с водоотталкивающей пропиткой.",
                "В комплекте накидка от дождя.",
                brands="Outventure|Nordway|Сплав|Tramp|Deuter",
                models="Trekking|Alpine|Urban|Pro",
            ),
        ),
        brands=_t("Demix|Torres|Bradex|Starfit"),
        models=_t("Pro|Fit|Active|Sport|Power|Flex"),
        body=(
            "Подойдёт как новичкам, так и опытным спортсменам.",
            "Все материалы проверены на прочность и износостойкость.",
            "Отличный подарок для тех, кто ведёт активный образ жизни.",
            "Товар сертифицирован, гарантия — 6 месяцев.",
        ),
        care=(
            "После использования протрите влажной тканью и просушите.",
            "Храните в сухом месте, вдали от прямых солнечных лучей.",
        ),
        review_pos=(
            "Занимаюсь каждый день, качество отличное.",
            "Всё как в описании, доставили быстро.",
            "Для своих денег — отлично.",
        ),
        review_neg=(
            "Сломалось на второй тренировке.",
            "Качество хуже, чем ожидал.",
            "Сильный химический запах.",
        ),
        qa=(
            (
                "Есть ли гарантия?",
                ("Здравствуйте! Да, гарантия 6 месяцев.",),
            ),
            (
                "Подойдёт для начинающих?",
                ("Добрый день! Да, отлично подойдёт для начинающих.",),
            ),
        ),
    ),
    _Category(
        name="Автотовары",
        nouns=(
            _n(
                "Видеорегистратор",
                "m",
                "Full HD|2K|4K",
                (1990, 14990),
                "Угол обзора 140 градусов и ночной режим.",
                "Поддерживает карты памяти microSD до 128 ГБ.",
                "Встроенный G-сенсор автоматически сохраняет запись при ударе.",
                coloured=False,
                brands="70mai|Xiaomi|Neoline|Artway|Inspector",
                models="Dash Cam Pro|A500S|G-Tech|Lite",
            ),
            _n(
                "Автомобильный компрессор",
                "m",
                "35 л/мин|40 л/мин",
                (1490, 6990),
                "Накачивает колесо R16 примерно за 4 минуты.",
                "Цифровой манометр с автоотключением при заданном давлении.",
                "Работает от прикуривателя 12 В.",
                coloured=False,
                brands="Airline|Berkut|Автопрофи|70mai|Xiaomi",
                models="X5|R15|Air Pump|Pro",
            ),
            _n(
                "Чехлы на сиденья",
                "pl",
                "универсальные|комплект 9 предметов",
                (1990, 9990),
                "Экокожа легко чистится и не выгорает на солнце.",
                "Совместимы с боковыми подушками безопасности.",
                "В комплекте чехлы на подголовники.",
                brands="Автопилот|Автопрофи|Airline|Car Performance",
                models="Classic|Comfort|Sport",
            ),
            _n(
                "Держатель для телефона",
                "m",
                "магнитный|на дефлектор|с беспроводной зарядкой",
                (290, 2990),
                "Надёжно держит смартфон даже на кочках.",
                "Поворачивается на 360 градусов.",
                "Подходит для смартфонов с диагональю от 4 до 7 дюймов.",
                brands="Baseus|Ugreen|Borofone|Hoco|Автопрофи",
                models="Magnetic|Air Vent|Pro",
            ),
            _n(
                "Щётки стеклоочистителя",
                "pl",
                "650/400 мм|600/450 мм|550/500 мм",
                (590, 3490),
                "Бескаркасная конструкция плотно прилегает к стеклу.",
                "Резина с графитовым покрытием не скрипит.",
                "Всесезонные, не обмерзают зимой.",
                coloured=False,
                brands="Bosch|Valeo|Denso|Alca|Автопрофи",
                models="Aerotwin|Silencio|Twin|Winter",
            ),
            _n(
                "Моторное масло 5W-40",
                "n",
                "1 л|4 л|5 л",
                (590, 4490),
                "Полностью синтетическое масло для бензиновых и дизельных двигателей.",
                "Соответствует допускам API SN/CF и ACEA A3/B4.",
                "Сохраняет текучесть при холодном пуске до −35 °C.",
                coloured=False,
                brands="Лукойл|Castrol|Shell|Mobil|Роснефть|G-Energy",
                models="Genesis|Magnatec|Helix Ultra|Super 3000|Magnum",
            ),
            _n(
                "Органайзер в багажник",
                "m",
                "складной|с крышкой",
                (690, 2990),
                "Три отсека с жёсткими перегородками.",
                "Липучки на дне не дают органайзеру скользить.",
                "В сложенном виде занимает минимум места.",
                brands="Автопрофи|Airline|Tanzo|Car Performance",
                models="",
            ),
        ),
        brands=_t("Автопрофи|Airline|Tanzo"),
        models=_t("Pro|Plus|Drive|Road"),
        body=(
            "Подходит для большинства легковых автомобилей.",
            "Товар сертифицирован для продажи на территории России.",
            "Отличный подарок автолюбителю.",
            "Перед покупкой сверьтесь с руководством по эксплуатации автомобиля.",
        ),
        care=(
            "Храните в недоступном для детей месте.",
            "Не оставляйте в салоне в сильную жару.",
        ),
        review_pos=(
            "Подошло к машине без проблем.",
            "Качество отличное, пользуюсь каждый день.",
            "Доставили быстро, упаковка целая.",
        ),
        review_neg=(
            "Не подошло к моей машине, хотя заявлено как универсальное.",
            "Сломалось через неделю.",
            "Качество ниже среднего.",
        ),
        qa=(
            (
                "Подойдёт для Kia Rio 2019 года?",
                ("Здравствуйте! Да, подойдёт, модель универсальная.",),
            ),
            (
                "Есть ли гарантия?",
                ("Добрый день! Гарантия 12 месяцев от производителя.",),
            ),
        ),
    ),
    _Category(
        name="Зоотовары",
        nouns=(
            _n(
                "Корм сухой для кошек",
                "m",
                "400 г|1,5 кг|10 кг",
                (199, 6990),
                "Полнорационный корм с высоким содержанием мяса.",
                "Поддерживает здоровье мочевыделительной системы.",
                "Без искусственных красителей и ароматизаторов.",
                coloured=False,
                brands="Royal Canin|Purina Pro Plan|Whiskas|Мнямс|Зоогурман|Barsik",
                models="Sterilised|Kitten|Adult|Sensitive|Indoor",
            ),
            _n(
                "Корм сухой для собак",
                "m",
                "2 кг|12 кг|15 кг",
                (590, 8990),
                "Подходит для собак средних и крупных пород.",
                "Глюкозамин и хондроитин поддерживают суставы.",
                "Упаковка с zip-замком сохраняет свежесть корма.",
                coloured=False,
                brands="Royal Canin|Purina Pro Plan|Pedigree|Четвероногий гурман|Мнямс",
                models="Adult|Puppy|Active|Light|Medium",
            ),
            _n(
                "Наполнитель древесный",
                "m",
                "5 л|10 л|20 л",
                (149, 990),
                "Гранулы из прессованных опилок хорошо впитывают влагу и запах.",
                "Не пылит и не прилипает к лапам.",
                "Можно утилизировать в унитаз небольшими порциями.",
                coloured=False,
                brands="Barsik|Pi-Pi-Bent|Котяра|N1",
                models="",
            ),
            _n(
                "Когтеточка-столбик",
                "f",
                "60 см|90 см",
                (490, 3490),
                "Столбик плотно обмотан натуральным сизалем.",
                "Устойчивое основание не опрокидывается.",
                "Игрушка-помпон на пружине развлекает кошку.",
                brands="Триол|Pet Choice|Дарэлл|Zooexpress",
                models="",
            ),
            _n(
                "Лежанка для собак",
                "f",
                "S|M|L|XL",
                (790, 4990),
                "Съёмный чехол можно стирать в машинке.",
                "Высокие бортики — удобно класть голову.",
                "Нескользящее дно.",
                brands="Triol|Pet Choice|Дарэлл|Зооник",
                models="Comfort|Soft|Premium",
            ),
            _n(
                "Шлейка с поводком",
                "f",
                "XS|S|M|L",
                (390, 1990),
                "Регулируется по обхвату груди и шеи.",
                "Светоотражающие полосы для прогулок в темноте.",
                "Поводок длиной 1,5 м с карабином.",
                brands="Triol|Hunter|Ferplast|Зооник",
                models="",
            ),
        ),
        brands=_t("Triol|Pet Choice|Зооник"),
        models=(),
        body=(
            "Производство — Россия, сырьё проходит ветеринарный контроль.",
            "Все товары для животных сертифицированы.",
            "Рекомендовано ветеринарами.",
            "Отправляем в день заказа.",
        ),
        care=(
            "Хранить в сухом прохладном месте.",
            "Перед использованием ознакомьтесь с инструкцией на упаковке.",
        ),
        review_pos=(
            "Питомец доволен, будем брать ещё.",
            "Качество отличное, цена адекватная.",
            "Уже третий раз заказываем.",
        ),
        review_neg=(
            "Питомцу не понравилось.",
            "Упаковка пришла порванной.",
            "Качество не соответствует цене.",
        ),
        qa=(
            (
                "Есть ли другие размеры?",
                ("Здравствуйте! Все доступные варианты есть в соседних карточках.",),
            ),
            (
                "Где производится товар?",
                ("Добрый день! Товар произведён в России.",),
            ),
        ),
    ),
)

_CATEGORY_BY_NAME: Final[dict[str, _Category]] = {c.name: c for c in _CATEGORIES}

_INTROS: Final[tuple[str, ...]] = (
    "{noun} от бренда {brand} — отличный выбор на каждый день.",
    "{noun} {brand} — сочетание продуманного дизайна и качественных материалов.",
    "В нашем ассортименте — {noun_lower} от {brand} по выгодной цене.",
    "{noun} {brand} — хит продаж нашего магазина в этом сезоне.",
    "Оригинальная продукция {brand}: {noun_lower} с официальной гарантией.",
    "{noun} {brand} — для тех, кто ценит комфорт и надёжность.",
    "New collection! {noun} {brand} — уже на складе, отправим в день заказа.",
)
_INTROS_NO_BRAND: Final[tuple[str, ...]] = (
    "{noun} — отличный выбор на каждый день.",
    "В нашем ассортименте — {noun_lower} по выгодной цене.",
    "{noun} — хит продаж нашего магазина в этом сезоне.",
)

_GENERAL_BODY: Final[tuple[str, ...]] = (
    "Товар сертифицирован и соответствует требованиям ГОСТ.",
    "Отправка со склада в течение 24 часов после оформления заказа.",
    "Доставка по всей России: Москва, Санкт-Петербург, Казань, Екатеринбург и другие города.",
    "Надёжная упаковка защищает товар от повреждений при транспортировке.",
    "Добавьте товар в избранное, чтобы не пропустить скидки и акции.",
    "Мы официальный дилер, поэтому гарантируем оригинальность каждой единицы товара.",
    "Будем благодарны за ваш отзыв после покупки — это помогает нам становиться лучше.",
    "Цена указана за одну единицу товара.",
    "Остались вопросы? Напишите нам в чат, ответим в течение часа.",
    "Комплектация может незначительно отличаться от изображения на фото.",
    "Premium quality по доступной цене.",
    "Подходит в качестве подарка на Новый год, 8 Марта и 23 Февраля.",
    "Возврат в течение 14 дней, если товар не подошёл.",
    "Best seller на маркетплейсе по итогам прошлого месяца.",
)

_REVIEW_POS: Final[tuple[str, ...]] = (
    "Отличный товар, полностью соответствует описанию.",
    "Качество на высоте, рекомендую!",
    "Доставка быстрая, упаковка целая.",
    "Покупкой очень довольна, буду заказывать ещё.",
    "За свои деньги просто супер.",
    "Продавцу спасибо, всё пришло вовремя.",
    "Брала в подарок, всем понравилось.",
    "Выглядит даже лучше, чем на фото.",
    "Пользуюсь уже месяц, никаких нареканий.",
    "Всё отлично, 10 из 10.",
    "Заказываю у этого продавца не первый раз, всегда всё ок.",
    "Great quality, советую.",
)
_REVIEW_MINOR_CON: Final[tuple[str, ...]] = (
    "Единственный минус — долгая доставка.",
    "Немного отличается оттенок, но некритично.",
    "Коробка пришла слегка помятой, сам товар целый.",
    "Инструкция могла бы быть подробнее.",
)
_REVIEW_NEUTRAL: Final[tuple[str, ...]] = (
    "Нормальный товар за свои деньги, но не более.",
    "Качество среднее, ожидала большего.",
    "В целом пойдёт, но есть мелкие недочёты.",
    "Соответствует цене, чудес ждать не стоит.",
    "Есть запах, но через пару дней выветрился.",
    "Доставка долгая, товар обычный.",
    "Цвет немного отличается от фото.",
    "Пока не поняла, нравится или нет, посмотрим в носке.",
    "Так себе, на троечку.",
)
_REVIEW_NEG: Final[tuple[str, ...]] = (
    "Ужасное качество, не рекомендую.",
    "Товар не соответствует описанию.",
    "Пришёл брак, оформила возврат.",
    "Деньги на ветер, больше не закажу.",
    "Прислали не тот цвет и не тот размер.",
    "Упаковка была повреждена, товар с царапинами.",
    "Продавец не отвечает на сообщения.",
    "Сломалось через несколько дней использования.",
    "Очень разочарована покупкой.",
)
_ANSWER_POS: Final[tuple[str, ...]] = (
    "Здравствуйте! Спасибо за отзыв и высокую оценку, нам очень приятно!",
    "Благодарим за покупку! Рады, что товар вам понравился. Ждём вас снова!",
    "Спасибо за тёплые слова! Команда магазина желает вам отличного дня.",
    "Здравствуйте! Благодарим за выбор нашего магазина. Будем рады видеть вас снова.",
)
_ANSWER_NEUTRAL: Final[tuple[str, ...]] = (
    "Здравствуйте! Спасибо за обратную связь, обязательно учтём ваши замечания.",
    "Благодарим за отзыв! Мы передали информацию в отдел контроля качества.",
    "Здравствуйте! Жаль, что товар не полностью оправдал ожидания. Напишите нам в чат, поможем.",
)
_ANSWER_NEG: Final[tuple[str, ...]] = (
    "Здравствуйте! Приносим извинения за доставленные неудобства. Оформите, пожалуйста, возврат — "
    "мы полностью вернём деньги.",
    "Нам очень жаль, что так получилось. Мы проверили партию и усилили контроль качества.",
    "Здравствуйте! Это не соответствует нашим стандартам. Пожалуйста, напишите номер заказа в чат, "
    "мы решим вопрос.",
    "Извините за неприятную ситуацию! Брак случается редко, товар будет заменён бесплатно.",
)

_GENERAL_QA: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    (
        "Когда будет поступление?",
        (
            "Здравствуйте! Поступление ожидается на следующей неделе.",
            "Добрый день! Товар поступит на склад в течение 10 дней.",
        ),
    ),
    (
        "Это оригинал?",
        ("Здравствуйте! Да, мы работаем напрямую с официальным дистрибьютором.",),
    ),
    (
        "Можно ли оформить доставку в Казань?",
        ("Добрый день! Да, доставка возможна в любой город России через маркетплейс.",),
    ),
    (
        "Какие размеры упаковки?",
        ("Здравствуйте! Размер упаковки указан во вкладке «Характеристики».",),
    ),
    (
        "Будет ли скидка на Black Friday?",
        (
            "Здравствуйте! Следите за акциями, скидки обязательно будут.",
            "Добрый день! Товар будет участвовать в распродаже, добавьте его в избранное.",
        ),
    ),
    (
        "Есть ли товар в других цветах?",
        ("Здравствуйте! Другие цвета доступны в соседних карточках нашего магазина.",),
    ),
)
_ANSWER_UPDATES: Final[tuple[str, ...]] = (
    "Обновление: товар снова в наличии.",
    "Дополнение: цена снижена до конца месяца.",
    "Уточнение: информация актуализирована по данным производителя.",
    "P.S. Новая партия уже на складе.",
)

_QA_ANSWERS: Final[dict[str, tuple[str, ...]]] = {
    q: answers for qa in (_GENERAL_QA, *(c.qa for c in _CATEGORIES)) for q, answers in qa
}

_SURNAMES: Final[tuple[tuple[str, str], ...]] = (
    ("Иванов", "Иванова"),
    ("Петров", "Петрова"),
    ("Смирнов", "Смирнова"),
    ("Кузнецов", "Кузнецова"),
    ("Попов", "Попова"),
    ("Соколов", "Соколова"),
    ("Лебедев", "Лебедева"),
    ("Козлов", "Козлова"),
    ("Новиков", "Новикова"),
    ("Морозов", "Морозова"),
    ("Волков", "Волкова"),
    ("Алексеев", "Алексеева"),
    ("Фёдоров", "Фёдорова"),
    ("Захаров", "Захарова"),
    ("Ахметов", "Ахметова"),
    ("Гарипов", "Гарипова"),
)
_INITIALS: Final = "АБВГДЕИКЛМНОПРСТЮЯ"
_COMPANIES: Final[tuple[str, ...]] = (
    "Ромашка",
    "Вектор",
    "Альфа Трейд",
    "СеверСнаб",
    "Торговый дом Восток",
    "МаркетПлюс",
    "ТехноМир",
    "Уютный дом",
    "Lucky Shop",
    "Best Price",
    "Спорт-Линия",
    "Детский мир снабжения",
    "Красота и Здоровье",
    "Авто-Стандарт",
    "ЗооЛэнд",
    "Smart Goods",
)
_ORG_FORMS: Final[tuple[str, ...]] = ("ООО", "ООО", "ООО", "АО")
_MARKETPLACES: Final[tuple[str, ...]] = ("wildberries", "ozon", "yandex_market")

# Review rating distribution: skewed positive like real marketplaces.
_RATING_POPULATION: Final[tuple[int, ...]] = (1,) * 5 + (2,) * 5 + (3,) * 10 + (4,) * 25 + (5,) * 55
_RATINGS: Final[tuple[Decimal, ...]] = tuple(Decimal(i).scaleb(-1) for i in range(51))

_SECONDS_PER_DAY: Final = 86_400
_SECOND: Final = timedelta(seconds=1)


# ---------------------------------------------------------------------------
# Row generation
# ---------------------------------------------------------------------------


_T = TypeVar("_T")


class _Rng(random.Random):
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


def _cabinet_name(rng: _Rng) -> str:
    if rng.random() < 0.55:
        male, female = rng.pick(_SURNAMES)
        surname = male if rng.random() < 0.6 else female
        return f"ИП {surname} {rng.pick(_INITIALS)}.{rng.pick(_INITIALS)}."
    return f"{rng.pick(_ORG_FORMS)} «{rng.pick(_COMPANIES)}»"


def _make_price(rng: _Rng, price_range: tuple[int, int]) -> Decimal:
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


def _make_title(rng: _Rng, cat: _Category, noun: _Noun, brand: str | None) -> str:
    parts = [noun.name]
    if brand is not None:
        parts.append(brand)
        models = noun.models if noun.models or noun.brands else cat.models
        if models and rng.random() < 0.7:
            parts.append(rng.pick(models))
    tail = []
    if noun.coloured:
        tail.append(rng.pick(_COLOURS)[_GENDER_INDEX[noun.gender]])
    tail.append(rng.pick(noun.variants))
    return f"{' '.join(parts)}, {', '.join(tail)}"


def _make_description(rng: _Rng, cat: _Category, noun: _Noun, brand: str | None) -> str:
    """2-6 sentences; ~10% are long (8-20 sentences in 2-4 paragraphs)."""
    intro = rng.pick(_INTROS_NO_BRAND if brand is None else _INTROS)
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
    extra = rng.take(cat.body, n_body) + rng.take(_GENERAL_BODY, rest - n_body)
    sentences += extra
    if care:
        sentences.append(rng.pick(cat.care))
    if not is_long:
        return " ".join(sentences)
    size = -(-len(sentences) // rng.between(2, 4))
    return "\n\n".join(" ".join(sentences[i : i + size]) for i in range(0, len(sentences), size))


class _ProductFields(NamedTuple):
    title: str
    brand: str | None
    category: str
    description: str
    price: Decimal
    stock: int


def _make_product(rng: _Rng, cat: _Category) -> _ProductFields:
    noun = rng.pick(cat.nouns)
    brand = None if rng.random() < 0.05 else rng.pick(noun.brands or cat.brands)
    title = _make_title(rng, cat, noun, brand)
    description = _make_description(rng, cat, noun, brand)
    price = _make_price(rng, noun.price_range)
    stock = 0 if rng.random() < 0.08 else int(rng.random() ** 2 * 500) + 1
    return _ProductFields(title, brand, cat.name, description, price, stock)


def _make_review(rng: _Rng, cat: _Category) -> tuple[int, str, str | None]:
    """Return (rating, text, seller answer or None)."""
    rating = rng.pick(_RATING_POPULATION)
    if rating >= 4:
        parts = [rng.pick(_REVIEW_POS)]
        if rng.random() < 0.6:
            parts.append(rng.pick(cat.review_pos))
        if rating == 4 and rng.random() < 0.5:
            parts.append(rng.pick(_REVIEW_MINOR_CON))
        elif rng.random() < 0.3:
            parts.append(rng.pick(_REVIEW_POS))
        answers = _ANSWER_POS
    elif rating == 3:
        parts = [rng.pick(_REVIEW_NEUTRAL)]
        if rng.random() < 0.5:
            parts.append(rng.pick(_REVIEW_NEUTRAL))
        answers = _ANSWER_NEUTRAL
    else:
        parts = [rng.pick(cat.review_neg)] if rng.random() < 0.6 else []
        parts.append(rng.pick(_REVIEW_NEG))
        answers = _ANSWER_NEG
    if len(parts) > 1 and parts[0] == parts[-1]:
        parts.pop()
    answer = rng.pick(answers) if rng.random() < 0.6 else None
    return rating, " ".join(parts), answer


def _make_question(rng: _Rng, cat: _Category) -> tuple[str, str | None]:
    """Return (question, answer or None)."""
    question, answers = rng.pick(cat.qa) if rng.random() < 0.6 else rng.pick(_GENERAL_QA)
    return question, (rng.pick(answers) if rng.random() < 0.8 else None)


def _past(rng: _Rng, max_days: int) -> datetime:
    """A timestamp in the ``max_days`` days before BASE_TIME (whole seconds)."""
    return BASE_TIME - _SECOND * rng.between(1, max_days * _SECONDS_PER_DAY - 1)


def _sales_days(months: int) -> list[tuple[date, float]]:
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


_DEMAND_LEVELS: Final[tuple[float, ...]] = (0.1, 0.3, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0)


# ---------------------------------------------------------------------------
# seed()
# ---------------------------------------------------------------------------

_Row = tuple[object, ...]


@dataclass(slots=True)
class _SeedData:
    cabinets: list[_Row] = field(default_factory=list)
    products: list[_Row] = field(default_factory=list)
    reviews: list[_Row] = field(default_factory=list)
    questions: list[_Row] = field(default_factory=list)
    # (product_id, cabinet_id, price) of the products that get daily sales.
    sales: list[tuple[int, int, Decimal]] = field(default_factory=list)
    next_id: int = 1

    def take_id(self) -> int:
        value = self.next_id
        self.next_id += 1
        return value


def _add_product(
    rng: _Rng,
    data: _SeedData,
    cabinet_id: int,
    cat: _Category,
    *,
    reviews: int,
    questions: int,
    with_sales: bool,
) -> None:
    """Generate one product with its reviews and questions into ``data``."""
    product_id = data.take_id()
    fields = _make_product(rng, cat)
    rating_sum = 0
    n_reviews = rng.between(0, 2 * reviews)
    for _ in range(n_reviews):
        rating, text, answer = _make_review(rng, cat)
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
        qtext, qanswer = _make_question(rng, cat)
        if qtext in asked:  # one retry, then skip: no duplicate questions per product
            qtext, qanswer = _make_question(rng, cat)
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


def _generate(
    data: _SeedData,
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
    rng = _Rng()
    for cabinet_id in range(1, cabinets + 1):
        rng.seed(base_seed + cabinet_id)
        data.cabinets.append(
            (
                cabinet_id,
                _cabinet_name(rng),
                rng.pick(_MARKETPLACES),
                rng.random() >= 0.05,
                _past(rng, 365),
            )
        )
        # A seller usually focuses on one to three categories.
        assortment = rng.take(_CATEGORIES, rng.between(1, 3))
        for _ in range(products):
            _add_product(
                rng,
                data,
                cabinet_id,
                rng.pick(assortment),
                reviews=reviews,
                questions=questions,
                with_sales=with_sales,
            )
        yield cabinet_id


async def _sales_copy_data(
    rng: _Rng,
    data: _SeedData,
    steps: Iterator[int],
    days: Sequence[tuple[date, float]],
) -> AsyncIterator[bytes]:
    """Drive the generator ``steps`` and stream the resulting sales_daily rows as COPY text.

    Generating the other tables while the server ingests sales rows overlaps
    Python and Postgres work (FKs are dropped, so load order does not matter).
    Text COPY is used for this, by far the largest, table because asyncpg's
    binary numeric encoder costs ~2 µs per value; the values here never need
    escaping (integers, ISO dates, plain decimals).
    """
    rnd = rng.random
    day_factors = [(day.isoformat(), factor) for day, factor in days]
    max_factor = max((factor for _, factor in days), default=1.0)
    lines: list[str] = []
    done = 0
    for _ in steps:
        for product_id, cabinet_id, price in data.sales[done:]:
            lam = rng.pick(_DEMAND_LEVELS) * 2.0
            # orders = int(lam * factor * u + 0.5), u in [0, 1): mean ≈ level * factor.
            tails = [f"\t{k}\t{price * k}\n" for k in range(int(lam * max_factor + 1.5))]
            prefix = f"{cabinet_id}\t{product_id}\t"
            for day, factor in day_factors:
                lines.append(prefix + day + tails[int(lam * factor * rnd() + 0.5)])
        done = len(data.sales)
        if len(lines) >= 20_000:
            yield "".join(lines).encode()
            lines.clear()
    if lines:
        yield "".join(lines).encode()


async def _drop_constraints_and_indexes(conn: asyncpg.Connection) -> None:
    """Drop FKs, secondary indexes and the sales PK before a bulk load into empty tables.

    Re-adding them afterwards validates/builds each in one pass, which is much
    cheaper than per-row RI triggers and index inserts.
    """
    for table, constraint, _ in _FOREIGN_KEYS:
        await conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {constraint}")
    for index, _, _ in _INDEXES:
        await conn.execute(f"DROP INDEX IF EXISTS {index}")
    await conn.execute(f"ALTER TABLE sales_daily DROP CONSTRAINT IF EXISTS {_SALES_PK}")


async def _restore_constraints_and_indexes(conn: asyncpg.Connection) -> None:
    await conn.execute(
        f"ALTER TABLE sales_daily ADD CONSTRAINT {_SALES_PK} PRIMARY KEY (product_id, day)"
    )
    for index, table, column in _INDEXES:
        await conn.execute(f"CREATE INDEX {index} ON {table} ({column})")
    for table, constraint, definition in _FOREIGN_KEYS:
        await conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {constraint} {definition}")


async def seed(
    conn: asyncpg.Connection,
    *,
    cabinets: int = 5,
    products: int = 50,
    reviews: int = 3,
    questions: int = 1,
    seed: int = 42,
    months: int = 3,
) -> SeedReport:
    """Create the demo schema (if needed) and replace its data with generated rows.

    ``products`` is per cabinet; ``reviews`` and ``questions`` are average
    counts per product (each product gets a deterministic random count in
    ``0..2*n``).  About 30% of products get one ``sales_daily`` row per day
    for the ``months`` calendar months before :data:`BASE_TIME`.  Existing
    demo data is truncated first, so the result depends only on the
    arguments.  Runs in one transaction; foreign keys are dropped during the
    bulk load and re-validated at the end.
    """
    counts = {
        "cabinets": cabinets,
        "products": products,
        "reviews": reviews,
        "questions": questions,
        "months": months,
    }
    for name, value in counts.items():
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    started = time.perf_counter()
    days = _sales_days(months)
    data = _SeedData()
    steps = _generate(
        data,
        seed,
        cabinets=cabinets,
        products=products,
        reviews=reviews,
        questions=questions,
        with_sales=bool(days),
    )
    sales_rng = _Rng(random.Random(seed).getrandbits(64) ^ 0x5A1E5)
    async with conn.transaction():
        await create_schema(conn)
        await conn.execute(f"TRUNCATE {', '.join(DEMO_TABLES)}")
        await _drop_constraints_and_indexes(conn)
        if days:
            await conn.copy_to_table(
                "sales_daily",
                source=_sales_copy_data(sales_rng, data, steps, days),
                columns=_SALES_COLUMNS,
                format="text",
            )
        else:
            for _ in steps:
                pass
        for table, rows, columns in (
            ("cabinets", data.cabinets, _CABINET_COLUMNS),
            ("products", data.products, _PRODUCT_COLUMNS),
            ("reviews", data.reviews, _REVIEW_COLUMNS),
            ("questions", data.questions, _QUESTION_COLUMNS),
        ):
            if rows:
                await conn.copy_records_to_table(table, records=rows, columns=columns)
        await _restore_constraints_and_indexes(conn)
        await conn.execute(f"ANALYZE {', '.join(DEMO_TABLES)}")
    return SeedReport(
        cabinets=len(data.cabinets),
        products=len(data.products),
        reviews=len(data.reviews),
        questions=len(data.questions),
        sales_rows=len(data.sales) * len(days),
        duration_s=time.perf_counter() - started,
    )


# ---------------------------------------------------------------------------
# mutate()
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Mutation:
    conn: asyncpg.Connection
    rng: _Rng
    share: float
    clock: datetime
    next_id: int
    changed: int = 0
    added: int = 0
    deleted: int = 0

    def take_id(self) -> int:
        value = self.next_id
        self.next_id += 1
        return value

    def category(self, name: str) -> _Category:
        found = _CATEGORY_BY_NAME.get(name)
        return found if found is not None else self.rng.pick(_CATEGORIES)

    def split(self, n: int) -> tuple[list[int], list[int], int]:
        """Pick row indexes to delete and to change, and how many rows to add."""
        n_delete = round(self.share * n / 3)
        n_add = round(self.share * n / 3)
        n_change = min(round(self.share * n), n - n_delete)
        picked = self.rng.sample(range(n), n_delete + n_change)
        return sorted(picked[:n_delete]), sorted(picked[n_delete:]), n_add

    async def delete(self, table: str, ids: list[int]) -> None:
        if ids:
            await self.conn.execute(f"DELETE FROM {table} WHERE id = ANY($1::bigint[])", ids)
        self.deleted += len(ids)

    async def insert(self, table: str, rows: list[_Row], columns: tuple[str, ...]) -> None:
        if rows:
            await self.conn.copy_records_to_table(table, records=rows, columns=columns)
        self.added += len(rows)


async def _mutate_products(m: _Mutation, cabinet_ids: list[int]) -> None:
    rows = await m.conn.fetch(
        "SELECT id, cabinet_id, category, title, price FROM products ORDER BY id"
    )
    to_delete, to_change, n_add = m.split(len(rows))
    await m.delete("products", [rows[i]["id"] for i in to_delete])
    updates: list[tuple[int, str, str, Decimal, int]] = []
    for i in to_change:
        row = rows[i]
        fresh = _make_product(m.rng, m.category(row["category"]))
        title = fresh.title if m.rng.random() < 0.3 else row["title"]
        factor = Decimal(m.rng.between(80, 120)).scaleb(-2)
        price = max(Decimal("1.00"), (row["price"] * factor).quantize(Decimal("0.01")))
        updates.append((row["id"], title, fresh.description, price, fresh.stock))
    if updates:
        await m.conn.execute(
            """
            UPDATE products AS p
            SET title = u.title, description = u.description, price = u.price,
                stock = u.stock, updated_at = $6
            FROM unnest($1::bigint[], $2::text[], $3::text[], $4::numeric[], $5::integer[])
                 AS u(id, title, description, price, stock)
            WHERE p.id = u.id
            """,
            *(list(column) for column in zip(*updates, strict=True)),
            m.clock,
        )
    m.changed += len(updates)
    new_rows: list[_Row] = []
    for _ in range(n_add):
        # A new product in the assortment of an existing seller (any seller if none left).
        if rows:
            sibling = m.rng.pick(rows)
            cabinet_id, cat = sibling["cabinet_id"], m.category(sibling["category"])
        else:
            cabinet_id, cat = m.rng.pick(cabinet_ids), m.rng.pick(_CATEGORIES)
        fresh = _make_product(m.rng, cat)
        new_rows.append(
            (
                m.take_id(),
                cabinet_id,
                fresh.title,
                fresh.brand,
                fresh.category,
                fresh.description,
                fresh.price,
                fresh.stock,
                None,
                m.clock,
            )
        )
    await m.insert("products", new_rows, _PRODUCT_COLUMNS)


async def _mutate_reviews(m: _Mutation, live_products: Sequence[asyncpg.Record]) -> None:
    rows = await m.conn.fetch(
        "SELECT r.id, p.category FROM reviews AS r"
        " JOIN products AS p ON p.id = r.product_id ORDER BY r.id"
    )
    to_delete, to_change, n_add = m.split(len(rows))
    await m.delete("reviews", [rows[i]["id"] for i in to_delete])
    updates: list[tuple[int, int, str, str | None]] = []
    for i in to_change:
        rating, text, answer = _make_review(m.rng, m.category(rows[i]["category"]))
        updates.append((rows[i]["id"], rating, text, answer))
    if updates:
        await m.conn.execute(
            """
            UPDATE reviews AS r
            SET rating = u.rating, text = u.text, answer = u.answer, updated_at = $5
            FROM unnest($1::bigint[], $2::smallint[], $3::text[], $4::text[])
                 AS u(id, rating, text, answer)
            WHERE r.id = u.id
            """,
            *(list(column) for column in zip(*updates, strict=True)),
            m.clock,
        )
    m.changed += len(updates)
    new_rows: list[_Row] = []
    for _ in range(n_add if live_products else 0):
        product = m.rng.pick(live_products)
        rating, text, answer = _make_review(m.rng, m.category(product["category"]))
        new_rows.append(
            (
                m.take_id(),
                product["cabinet_id"],
                product["id"],
                rating,
                text,
                answer,
                m.clock,
                m.clock,
            )
        )
    await m.insert("reviews", new_rows, _REVIEW_COLUMNS)


async def _mutate_questions(m: _Mutation, live_products: Sequence[asyncpg.Record]) -> None:
    rows = await m.conn.fetch("SELECT id, text FROM questions ORDER BY id")
    to_delete, to_change, n_add = m.split(len(rows))
    await m.delete("questions", [rows[i]["id"] for i in to_delete])
    updates: list[tuple[int, str]] = []
    for i in to_change:
        # The seller (re-)answers the question.
        pool = _QA_ANSWERS.get(rows[i]["text"], _GENERAL_QA[0][1])
        answer = f"{m.rng.pick(pool)} {m.rng.pick(_ANSWER_UPDATES)}"
        updates.append((rows[i]["id"], answer))
    if updates:
        await m.conn.execute(
            """
            UPDATE questions AS q SET answer = u.answer, updated_at = $3
            FROM unnest($1::bigint[], $2::text[]) AS u(id, answer)
            WHERE q.id = u.id
            """,
            *(list(column) for column in zip(*updates, strict=True)),
            m.clock,
        )
    m.changed += len(updates)
    new_rows: list[_Row] = []
    for _ in range(n_add if live_products else 0):
        product = m.rng.pick(live_products)
        qtext, qanswer = _make_question(m.rng, m.category(product["category"]))
        new_rows.append(
            (m.take_id(), product["cabinet_id"], product["id"], qtext, qanswer, m.clock, m.clock)
        )
    await m.insert("questions", new_rows, _QUESTION_COLUMNS)


async def mutate(conn: asyncpg.Connection, *, share: float, seed: int = 42) -> MutateReport:
    """Change, add and delete about ``share`` of the demo rows (deterministically).

    For products, reviews and questions each: about ``share`` of the rows are
    changed (products: new description, stock and price, sometimes title;
    reviews: new rating, text and answer; questions: a new seller answer),
    about ``share/3`` of the row count is added with fresh ids and about
    ``share/3`` is deleted (deleting a product cascades to its reviews,
    questions and sales rows).  Changed and added rows get one "mutation
    clock" as ``updated_at``: the latest ``updated_at`` in the demo data
    plus one hour, so every mutation moves ``max(updated_at)`` forward.  The
    result depends only on the current data and ``seed``.  Runs in one
    transaction.

    Raises:
        ValueError: if ``share`` is not in (0, 1] or the demo schema is
            missing or has no cabinets.
    """
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must be in (0, 1], got {share!r}")
    if not await is_seeded(conn):
        raise ValueError("demo schema is missing or empty: run create_schema() and seed() first")
    started = time.perf_counter()
    async with conn.transaction():
        state = await conn.fetchrow(
            """
            SELECT greatest((SELECT max(updated_at) FROM cabinets),
                            (SELECT max(updated_at) FROM products),
                            (SELECT max(updated_at) FROM reviews),
                            (SELECT max(updated_at) FROM questions)) AS clock,
                   greatest((SELECT max(id) FROM products),
                            (SELECT max(id) FROM reviews),
                            (SELECT max(id) FROM questions)) AS max_id
            """
        )
        m = _Mutation(
            conn=conn,
            rng=_Rng(random.Random(seed).getrandbits(64) ^ 0x3E7A7E),
            share=share,
            clock=max(state["clock"], BASE_TIME) + timedelta(hours=1),
            next_id=(state["max_id"] or 0) + 1,
        )
        cabinet_ids = [r["id"] for r in await conn.fetch("SELECT id FROM cabinets ORDER BY id")]
        await _mutate_products(m, cabinet_ids)
        live_products = await conn.fetch(
            "SELECT id, cabinet_id, category FROM products ORDER BY id"
        )
        await _mutate_reviews(m, live_products)
        await _mutate_questions(m, live_products)
    return MutateReport(
        changed=m.changed,
        added=m.added,
        deleted=m.deleted,
        duration_s=time.perf_counter() - started,
    )
