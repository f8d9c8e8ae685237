"""Tests for `rag_indexer_service.demo` and `demo_sources.toml` against a real Postgres.

Every test gets `demo_conn`: an asyncpg connection to the test's fresh database whose
`search_path` is a new schema, so the demo tables never meet the test source tables.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import string
import tomllib
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from rag_indexer_service import demo
from rag_indexer_service.db.engine import asyncpg_dsn

SOURCES_FILE = Path(demo.__file__).parent.parent / "demo_sources.toml"
CONTENT_TABLES = ("products", "reviews", "questions")


@pytest.fixture
async def demo_conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """An asyncpg connection working in a fresh schema of the test's database."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url), timeout=10)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(f"SET search_path TO {schema}")
        yield conn
    finally:
        await conn.close()


# --------------------------------------------------------------------------- helpers


async def _count(conn: asyncpg.Connection, table: str) -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))


async def _checksum(conn: asyncpg.Connection, table: str, *, where: str = "") -> str:
    order = {"sales_daily": "product_id, day", "sales_monthly": "product_id, month"}.get(
        table, "id"
    )
    return str(
        await conn.fetchval(
            f"SELECT md5(coalesce(string_agg(CAST(t AS text), '|' ORDER BY {order}), ''))"
            f" FROM {table} AS t {where}"
        )
    )


async def _all_checksums(conn: asyncpg.Connection) -> dict[str, str]:
    return {table: await _checksum(conn, table) for table in demo.DEMO_TABLES}


async def _cabinet_content(conn: asyncpg.Connection, cabinet_id: int) -> tuple[str, ...]:
    where = f"WHERE cabinet_id = {int(cabinet_id)}"
    return tuple(
        [await _checksum(conn, table, where=where) for table in CONTENT_TABLES]
        + [await _checksum(conn, "sales_monthly", where=where)]
    )


def _load_sources() -> dict[str, Any]:
    return tomllib.loads(SOURCES_FILE.read_text(encoding="utf-8"))


def _positional(sql: str) -> str:
    return sql.replace(":cabinet_id", "$1")


def _template_fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


class _NullAsEmpty(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        return "" if value is None else super().format_field(value, format_spec)


def _render(template: str, row: Mapping[str, Any]) -> str:
    return _NullAsEmpty().vformat(template, (), row)


async def _fingerprint(conn: asyncpg.Connection, sql: str, cabinet_id: int) -> str:
    rows = await conn.fetch(_positional(sql), cabinet_id)
    assert len(rows) == 1 and len(rows[0]) == 1
    value = rows[0][0]
    assert isinstance(value, str) and value
    return value


# --------------------------------------------------------------------------- schema / seed


async def test_is_seeded_and_create_schema_idempotent(demo_conn: asyncpg.Connection) -> None:
    assert not await demo.is_seeded(demo_conn)
    await demo.create_schema(demo_conn)
    await demo.create_schema(demo_conn)
    assert not await demo.is_seeded(demo_conn)
    await demo.seed(demo_conn, cabinets=1, products=1, reviews=0, questions=0, months=0)
    assert await demo.is_seeded(demo_conn)


async def test_seed_counts_match_report_and_tables(demo_conn: asyncpg.Connection) -> None:
    report = await demo.seed(demo_conn, cabinets=4, products=30, reviews=2, questions=1, months=2)

    assert report.cabinets == await _count(demo_conn, "cabinets") == 4
    assert report.products == await _count(demo_conn, "products") == 4 * 30
    assert report.reviews == await _count(demo_conn, "reviews")
    assert report.questions == await _count(demo_conn, "questions")
    assert report.sales_rows == await _count(demo_conn, "sales_daily")
    assert report.duration_s > 0
    # reviews / questions vary per product in 0..2n, averaging about n
    assert 0.6 * 2 * 120 < report.reviews < 1.4 * 2 * 120
    assert 0.5 * 120 < report.questions < 1.5 * 120
    per_product = await demo_conn.fetch(
        "SELECT p.id, count(r.id) AS n FROM products p LEFT JOIN reviews r ON r.product_id = p.id"
        " GROUP BY p.id"
    )
    assert max(r["n"] for r in per_product) <= 4
    assert min(r["n"] for r in per_product) == 0

    cabinet_ids = [r["id"] for r in await demo_conn.fetch("SELECT id FROM cabinets ORDER BY id")]
    assert cabinet_ids == [1, 2, 3, 4]
    # ids are unique across products, reviews and questions
    distinct_ids = await demo_conn.fetchval(
        "SELECT count(DISTINCT id) FROM (SELECT id FROM products UNION ALL"
        " SELECT id FROM reviews UNION ALL SELECT id FROM questions) AS ids"
    )
    assert distinct_ids == report.products + report.reviews + report.questions
    # children belong to the same cabinet as their product
    assert not await demo_conn.fetchval(
        "SELECT count(*) FROM reviews r JOIN products p ON p.id = r.product_id"
        " WHERE r.cabinet_id <> p.cabinet_id"
    )

    # sales: one row per day of the 2 calendar months before the base date, ~30% of products
    days = await demo_conn.fetch(
        "SELECT product_id, count(*) AS n, min(day) AS first, max(day) AS last"
        " FROM sales_daily GROUP BY product_id"
    )
    assert 0 < len(days) < report.products
    assert {(r["n"], str(r["first"]), str(r["last"])) for r in days} == {
        (61, "2025-11-01", "2025-12-31")
    }
    assert report.sales_rows == 61 * len(days)
    assert not await demo_conn.fetchval(
        "SELECT count(*) FROM sales_daily s JOIN products p ON p.id = s.product_id"
        " WHERE s.revenue <> s.orders * p.price OR s.cabinet_id <> p.cabinet_id"
    )


SUMMARY_OF_DAILY = """
SELECT min(cabinet_id) AS cabinet_id, product_id, CAST(date_trunc('month', day) AS date) AS month,
       sum(orders) AS orders, sum(revenue) AS revenue,
       count(*) FILTER (WHERE orders > 0) AS days_with_orders
FROM sales_daily GROUP BY 2, 3 ORDER BY 2, 3
"""
SUMMARY = """
SELECT cabinet_id, product_id, month, orders, revenue, days_with_orders
FROM sales_monthly ORDER BY product_id, month
"""


async def test_sales_monthly_follows_every_write_to_sales_daily(
    demo_conn: asyncpg.Connection,
) -> None:
    # Given a seeded source: the summary is that of the daily rows
    await demo.seed(demo_conn, cabinets=2, products=30, reviews=1, questions=1, months=2)
    assert await demo_conn.fetch(SUMMARY) == await demo_conn.fetch(SUMMARY_OF_DAILY)
    assert await demo_conn.fetchval("SELECT count(*) FROM sales_monthly") > 0
    stamps = await demo_conn.fetch("SELECT product_id, month, updated_at FROM sales_monthly")

    # When a mutation corrects days, deletes products and edits others (one clock)
    report = await demo.mutate(demo_conn, share=0.3, seed=2)

    # Then the summary is still that of the daily rows, and every changed month is stamped
    # with the mutation's clock, later than every seeded stamp
    assert report.sales_changed > 0
    assert await demo_conn.fetch(SUMMARY) == await demo_conn.fetch(SUMMARY_OF_DAILY)
    clock = await demo_conn.fetchval("SELECT max(updated_at) FROM products")
    moved = await demo_conn.fetch(
        "SELECT DISTINCT updated_at FROM sales_monthly WHERE updated_at > $1",
        max(r["updated_at"] for r in stamps),
    )
    assert [r["updated_at"] for r in moved] == [clock]

    # And a late row or a deletion (an older updated_at) is stamped after the cabinet's newest
    # change, so a delta read from the cabinet's watermark finds it
    key = await demo_conn.fetchrow(
        "SELECT product_id, cabinet_id, min(day) AS day FROM sales_daily WHERE orders > 0"
        " GROUP BY product_id, cabinet_id ORDER BY product_id LIMIT 1"
    )
    await demo_conn.execute(
        "DELETE FROM sales_daily WHERE (product_id, day) = ($1, $2)", key["product_id"], key["day"]
    )
    await demo_conn.execute(
        "INSERT INTO sales_daily VALUES ($1, $2, $3, 5, 500, $4)",
        key["cabinet_id"],
        key["product_id"],
        key["day"] - dt.timedelta(days=40),
        demo.BASE_TIME - dt.timedelta(days=90),
    )
    assert await demo_conn.fetch(SUMMARY) == await demo_conn.fetch(SUMMARY_OF_DAILY)
    late = await demo_conn.fetch(
        "SELECT updated_at FROM sales_monthly WHERE product_id = $1 AND updated_at > $2"
        " ORDER BY updated_at",
        key["product_id"],
        clock,
    )
    assert len(late) == 2 and late[0]["updated_at"] > clock


async def test_seed_data_looks_realistic(demo_conn: asyncpg.Connection) -> None:
    report = await demo.seed(demo_conn)  # defaults: 5 cabinets x 50 products
    stats = await demo_conn.fetchrow(
        """
        SELECT (SELECT avg(CASE WHEN answer IS NULL THEN 0 ELSE 1 END) FROM reviews)
                   AS reviews_answered,
               (SELECT avg(CASE WHEN answer IS NULL THEN 0 ELSE 1 END) FROM questions)
                   AS questions_answered,
               (SELECT avg(CASE WHEN description LIKE '%' || chr(10) || chr(10) || '%'
                                THEN 1 ELSE 0 END) FROM products) AS long_share,
               (SELECT min(rating) FROM reviews) AS min_rating,
               (SELECT max(rating) FROM reviews) AS max_rating,
               (SELECT count(DISTINCT category) FROM products) AS categories,
               (SELECT count(DISTINCT marketplace) FROM cabinets) AS marketplaces,
               (SELECT min(price) FROM products) AS min_price,
               (SELECT max(updated_at) FROM products) AS max_updated
        """
    )
    assert 0.45 < stats["reviews_answered"] < 0.75
    assert 0.65 < stats["questions_answered"] < 0.95
    assert 0.03 < stats["long_share"] < 0.2
    assert (stats["min_rating"], stats["max_rating"]) == (1, 5)
    assert stats["categories"] >= 3
    assert stats["marketplaces"] >= 2
    assert stats["min_price"] > 0
    assert stats["max_updated"] <= demo.BASE_TIME
    assert report.products == 250

    marketplaces = {r[0] for r in await demo_conn.fetch("SELECT marketplace FROM cabinets")}
    assert marketplaces <= {"wildberries", "ozon", "yandex_market"}
    # sentiment of review text follows the rating
    for sql, pool in (
        ("SELECT text FROM reviews WHERE rating <= 2", demo.load_catalogue().review_neg),
        ("SELECT text FROM reviews WHERE rating >= 4", demo.load_catalogue().review_pos),
    ):
        texts = [r["text"] for r in await demo_conn.fetch(sql)]
        assert texts
        assert all(any(phrase in text for phrase in pool) for text in texts)
    long_sentences = await demo_conn.fetchval(
        "SELECT max(array_length(regexp_split_to_array(description, '[.!?] '), 1)) FROM products"
    )
    assert long_sentences >= 8


async def test_text_is_mostly_cyrillic(demo_conn: asyncpg.Connection) -> None:
    await demo.seed(demo_conn, cabinets=3, products=40)
    parts: list[str] = []
    for sql in (
        "SELECT name FROM cabinets",
        "SELECT title || ' ' || coalesce(brand, '') || ' ' || category || ' ' || description"
        " FROM products",
        "SELECT text || ' ' || coalesce(answer, '') FROM reviews",
        "SELECT text || ' ' || coalesce(answer, '') FROM questions",
    ):
        parts.extend(r[0] for r in await demo_conn.fetch(sql))
    text = " ".join(parts)
    cyrillic = len(re.findall(r"[А-Яа-яЁё]", text))
    latin = len(re.findall(r"[A-Za-z]", text))
    assert cyrillic / (cyrillic + latin) > 0.85
    assert latin > 0  # some Latin-script brands and English words mixed in


async def test_seed_is_deterministic_and_replaces_data(demo_conn: asyncpg.Connection) -> None:
    first = await demo.seed(demo_conn, cabinets=3, products=20, seed=7)
    first_sums = await _all_checksums(demo_conn)
    again = await demo.seed(demo_conn, cabinets=3, products=20, seed=7)
    assert await _all_checksums(demo_conn) == first_sums
    assert (first.products, first.reviews, first.questions, first.sales_rows) == (
        again.products,
        again.reviews,
        again.questions,
        again.sales_rows,
    )
    assert await _count(demo_conn, "products") == 60  # replaced, not appended

    await demo.seed(demo_conn, cabinets=3, products=20, seed=8)
    other_sums = await _all_checksums(demo_conn)
    for table in ("cabinets", *CONTENT_TABLES, "sales_daily"):
        assert other_sums[table] != first_sums[table], table


async def test_seed_rejects_negative_counts(demo_conn: asyncpg.Connection) -> None:
    with pytest.raises(ValueError, match="products"):
        await demo.seed(demo_conn, products=-1)


# --------------------------------------------------------------------------- mutate


async def test_mutate_changes_adds_and_deletes_about_share(
    demo_conn: asyncpg.Connection,
) -> None:
    await demo.seed(demo_conn, cabinets=5, products=60, reviews=3, questions=1)
    before = {table: await _count(demo_conn, table) for table in CONTENT_TABLES}
    total = sum(before.values())
    max_id = await demo_conn.fetchval(
        "SELECT greatest((SELECT max(id) FROM products), (SELECT max(id) FROM reviews),"
        " (SELECT max(id) FROM questions))"
    )

    report = await demo.mutate(demo_conn, share=0.1, seed=3)

    assert report.duration_s > 0
    assert report.changed == pytest.approx(0.1 * total, rel=0.05, abs=3)
    assert report.added == pytest.approx(0.1 * total / 3, rel=0.1, abs=3)
    assert report.deleted == pytest.approx(0.1 * total / 3, rel=0.1, abs=3)
    # products (300): 30 changed, 10 added with new ids, 10 deleted
    assert await _count(demo_conn, "products") == before["products"] == 300
    new_products = await demo_conn.fetchval("SELECT count(*) FROM products WHERE id > $1", max_id)
    assert new_products == 10
    touched = await demo_conn.fetchval(
        "SELECT count(*) FROM products WHERE updated_at > $1", demo.BASE_TIME
    )
    assert touched == 30 + 10
    # all changed/added rows carry the same mutation clock, later than any seeded row
    clocks = await demo_conn.fetch(
        "SELECT DISTINCT updated_at FROM (SELECT updated_at FROM products UNION ALL"
        " SELECT updated_at FROM reviews UNION ALL SELECT updated_at FROM questions) AS u"
        " WHERE updated_at > $1",
        demo.BASE_TIME,
    )
    assert len(clocks) == 1


async def test_mutate_is_deterministic(demo_conn: asyncpg.Connection) -> None:
    await demo.seed(demo_conn, cabinets=3, products=30)
    seeded = await _all_checksums(demo_conn)
    first = await demo.mutate(demo_conn, share=0.2, seed=11)
    first_sums = await _all_checksums(demo_conn)
    assert first_sums != seeded

    await demo.seed(demo_conn, cabinets=3, products=30)
    assert await _all_checksums(demo_conn) == seeded
    second = await demo.mutate(demo_conn, share=0.2, seed=11)
    assert await _all_checksums(demo_conn) == first_sums
    assert (first.changed, first.added, first.deleted) == (
        second.changed,
        second.added,
        second.deleted,
    )

    await demo.seed(demo_conn, cabinets=3, products=30)
    await demo.mutate(demo_conn, share=0.2, seed=12)
    assert await _all_checksums(demo_conn) != first_sums


async def test_mutate_full_share_and_repeated(demo_conn: asyncpg.Connection) -> None:
    await demo.seed(demo_conn, cabinets=2, products=10, reviews=1, questions=1, months=1)
    report = await demo.mutate(demo_conn, share=1.0)
    assert report.changed > 0 and report.added > 0 and report.deleted > 0
    clock1 = await demo_conn.fetchval("SELECT max(updated_at) FROM products")
    await demo.mutate(demo_conn, share=0.5, seed=5)
    clock2 = await demo_conn.fetchval("SELECT max(updated_at) FROM products")
    assert clock2 > clock1 > demo.BASE_TIME


async def test_mutate_rejects_empty_schema_and_bad_share(demo_conn: asyncpg.Connection) -> None:
    with pytest.raises(ValueError, match="seed"):
        await demo.mutate(demo_conn, share=0.1)  # no tables at all
    await demo.create_schema(demo_conn)
    with pytest.raises(ValueError, match="seed"):
        await demo.mutate(demo_conn, share=0.1)  # tables but no cabinets
    await demo.seed(demo_conn, cabinets=1, products=3)
    for share in (0.0, -0.1, 1.01, math.nan):
        with pytest.raises(ValueError, match="share"):
            await demo.mutate(demo_conn, share=share)


# --------------------------------------------------------------------------- demo_sources.toml


def test_sources_file_shape() -> None:
    spec = _load_sources()
    cabinets = spec["cabinets"]
    assert "cabinet_id" in cabinets["query"]
    assert ":cabinet_id" in cabinets["fingerprint"]
    assert set(spec["kinds"]) == {"product", "review", "question", "sales_month"}
    queries = [cabinets["query"], cabinets["fingerprint"]]
    for name, kind in spec["kinds"].items():
        assert ":cabinet_id" in kind["query"], name
        assert isinstance(kind["id_column"], str)
        assert isinstance(kind["template"], str) and kind["template"].strip()
        assert all(isinstance(m, str) for m in kind["metadata"])
        for _, field, spec_, conversion in string.Formatter().parse(kind["template"]):
            assert not spec_ and not conversion, (name, field)
        queries.append(kind["query"])
    for sql in queries:
        # the only :name token is :cabinet_id (no ::casts a loader could mistake for binds)
        assert set(re.findall(r":+\w+", sql)) <= {":cabinet_id"}, sql


async def test_sources_queries_run_and_render(demo_conn: asyncpg.Connection) -> None:
    await demo.seed(demo_conn, cabinets=4, products=25)
    spec = _load_sources()

    active = [r["cabinet_id"] for r in await demo_conn.fetch(spec["cabinets"]["query"])]
    expected = [
        r["id"]
        for r in await demo_conn.fetch("SELECT id FROM cabinets WHERE is_active ORDER BY id")
    ]
    assert active == expected and active

    seen: dict[str, int] = dict.fromkeys(spec["kinds"], 0)
    for cabinet_id in active:
        await _fingerprint(demo_conn, spec["cabinets"]["fingerprint"], cabinet_id)
        for name, kind in spec["kinds"].items():
            stmt = await demo_conn.prepare(_positional(kind["query"]))
            columns = {attr.name for attr in stmt.get_attributes()}
            needed = {kind["id_column"], *kind["metadata"], *_template_fields(kind["template"])}
            assert needed <= columns, (name, needed - columns)
            rows = await stmt.fetch(cabinet_id)
            ids = [row[kind["id_column"]] for row in rows]
            assert len(ids) == len(set(ids)), name
            assert None not in ids
            for row in rows:
                text = _render(kind["template"], row)
                assert text.strip() and "None" not in text, (name, text)
            seen[name] += len(rows)

        sales = await demo_conn.fetchrow(
            "SELECT coalesce(sum(orders), 0) AS orders, coalesce(sum(revenue), 0) AS revenue"
            " FROM sales_daily WHERE cabinet_id = $1",
            cabinet_id,
        )
        monthly = await demo_conn.fetch(
            _positional(spec["kinds"]["sales_month"]["query"]), cabinet_id
        )
        assert sum(r["orders"] for r in monthly) == sales["orders"]
        assert sum(r["revenue"] for r in monthly) == sales["revenue"]
        assert all(re.fullmatch(r"\d+:\d{4}-\d{2}", r["id"]) for r in monthly)

    assert all(seen.values()), seen


async def test_fingerprint_tracks_changes(demo_conn: asyncpg.Connection) -> None:
    # small share over many small cabinets: some cabinets change, some do not
    await demo.seed(demo_conn, cabinets=20, products=5, reviews=1, questions=1)
    fingerprint_sql = _load_sources()["cabinets"]["fingerprint"]
    cabinet_ids = [r["id"] for r in await demo_conn.fetch("SELECT id FROM cabinets ORDER BY id")]

    before = {c: await _fingerprint(demo_conn, fingerprint_sql, c) for c in cabinet_ids}
    assert before == {c: await _fingerprint(demo_conn, fingerprint_sql, c) for c in cabinet_ids}
    content_before = {c: await _cabinet_content(demo_conn, c) for c in cabinet_ids}

    await demo.mutate(demo_conn, share=0.05, seed=1)

    changed = 0
    for c in cabinet_ids:
        content_changed = await _cabinet_content(demo_conn, c) != content_before[c]
        fingerprint_changed = await _fingerprint(demo_conn, fingerprint_sql, c) != before[c]
        assert fingerprint_changed == content_changed, c
        changed += content_changed
    assert 0 < changed < len(cabinet_ids)

    # a single-row update (with the updated_at bump) or delete is detected too
    cabinet = await demo_conn.fetchval("SELECT min(cabinet_id) FROM sales_daily")
    fp = await _fingerprint(demo_conn, fingerprint_sql, cabinet)
    await demo_conn.execute(
        "UPDATE reviews SET text = text || '!', updated_at = updated_at + interval '1 second'"
        " WHERE id = (SELECT min(id) FROM reviews WHERE cabinet_id = $1)",
        cabinet,
    )
    fp2 = await _fingerprint(demo_conn, fingerprint_sql, cabinet)
    assert fp2 != fp
    await demo_conn.execute(
        "DELETE FROM sales_daily WHERE (product_id, day) = (SELECT product_id, min(day)"
        " FROM sales_daily WHERE cabinet_id = $1 AND orders > 0"
        " GROUP BY product_id ORDER BY product_id LIMIT 1)",
        cabinet,
    )
    fp3 = await _fingerprint(demo_conn, fingerprint_sql, cabinet)
    assert fp3 != fp2

    # and a reseed never brings back a fingerprint of the data it replaced
    await demo.seed(demo_conn, cabinets=20, products=5, reviews=1, questions=1)
    assert await _fingerprint(demo_conn, fingerprint_sql, cabinet) not in {fp, fp2, fp3}
