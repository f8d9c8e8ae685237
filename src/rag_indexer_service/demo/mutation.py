"""``mutate()``: change, add and delete a share of the demo rows, for incremental re-indexing."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import asyncpg  # type: ignore[import-untyped,unused-ignore]

from rag_indexer_service.demo.catalogue import Catalogue, Category, load_catalogue
from rag_indexer_service.demo.generate import (
    BASE_TIME,
    Rng,
    Row,
    make_product,
    make_question,
    make_review,
)
from rag_indexer_service.demo.schema import (
    PRODUCT_COLUMNS,
    QUESTION_COLUMNS,
    REVIEW_COLUMNS,
    is_seeded,
)

__all__ = ["MutateReport", "mutate"]


@dataclass(frozen=True, slots=True)
class MutateReport:
    """Rows touched by :func:`mutate`.

    Counts are summed over products, reviews and questions.  ``deleted``
    counts explicitly deleted rows only, not the reviews, questions and
    sales rows removed by ``ON DELETE CASCADE`` together with a product.
    ``sales_changed`` counts corrected ``sales_daily`` rows.
    """

    changed: int
    added: int
    deleted: int
    duration_s: float
    sales_changed: int = 0


@dataclass(slots=True)
class _Mutation:
    conn: asyncpg.Connection
    rng: Rng
    catalogue: Catalogue
    share: float
    clock: datetime
    next_id: int
    changed: int = 0
    added: int = 0
    deleted: int = 0
    sales_changed: int = 0

    def take_id(self) -> int:
        value = self.next_id
        self.next_id += 1
        return value

    def category(self, name: str) -> Category:
        found = self.catalogue.category_by_name.get(name)
        return found if found is not None else self.rng.pick(self.catalogue.categories)

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

    async def insert(self, table: str, rows: list[Row], columns: tuple[str, ...]) -> None:
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
        fresh = make_product(m.rng, m.catalogue, m.category(row["category"]))
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
    new_rows: list[Row] = []
    for _ in range(n_add):
        # A new product in the assortment of an existing seller (any seller if none left).
        if rows:
            sibling = m.rng.pick(rows)
            cabinet_id, cat = sibling["cabinet_id"], m.category(sibling["category"])
        else:
            cabinet_id, cat = m.rng.pick(cabinet_ids), m.rng.pick(m.catalogue.categories)
        fresh = make_product(m.rng, m.catalogue, cat)
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
    await m.insert("products", new_rows, PRODUCT_COLUMNS)


async def _mutate_reviews(m: _Mutation, live_products: Sequence[asyncpg.Record]) -> None:
    rows = await m.conn.fetch(
        "SELECT r.id, p.category FROM reviews AS r"
        " JOIN products AS p ON p.id = r.product_id ORDER BY r.id"
    )
    to_delete, to_change, n_add = m.split(len(rows))
    await m.delete("reviews", [rows[i]["id"] for i in to_delete])
    updates: list[tuple[int, int, str, str | None]] = []
    for i in to_change:
        rating, text, answer = make_review(m.rng, m.catalogue, m.category(rows[i]["category"]))
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
    new_rows: list[Row] = []
    for _ in range(n_add if live_products else 0):
        product = m.rng.pick(live_products)
        rating, text, answer = make_review(m.rng, m.catalogue, m.category(product["category"]))
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
    await m.insert("reviews", new_rows, REVIEW_COLUMNS)


async def _mutate_questions(m: _Mutation, live_products: Sequence[asyncpg.Record]) -> None:
    rows = await m.conn.fetch("SELECT id, text FROM questions ORDER BY id")
    to_delete, to_change, n_add = m.split(len(rows))
    await m.delete("questions", [rows[i]["id"] for i in to_delete])
    updates: list[tuple[int, str]] = []
    for i in to_change:
        # The seller (re-)answers the question.
        pool = m.catalogue.qa_answers.get(rows[i]["text"], m.catalogue.general_qa[0][1])
        answer = f"{m.rng.pick(pool)} {m.rng.pick(m.catalogue.answer_updates)}"
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
    new_rows: list[Row] = []
    for _ in range(n_add if live_products else 0):
        product = m.rng.pick(live_products)
        qtext, qanswer = make_question(m.rng, m.catalogue, m.category(product["category"]))
        new_rows.append(
            (m.take_id(), product["cabinet_id"], product["id"], qtext, qanswer, m.clock, m.clock)
        )
    await m.insert("questions", new_rows, QUESTION_COLUMNS)


async def _mutate_sales(m: _Mutation) -> None:
    """A late correction of one day's orders in about ``share`` of the products' sales
    series (the triggers re-summarise their months)."""
    series = await m.conn.fetch(
        "SELECT product_id, max(day) AS last_day, min(revenue / nullif(orders, 0)) AS price"
        " FROM sales_daily GROUP BY product_id ORDER BY product_id"
    )
    picked = sorted(m.rng.sample(range(len(series)), round(m.share * len(series))))
    updates: list[tuple[int, object, int, Decimal]] = []
    for i in picked:
        row = series[i]
        day = row["last_day"] - timedelta(days=m.rng.between(0, 27))
        orders = m.rng.between(0, 9)
        price = row["price"] if row["price"] is not None else Decimal("100.00")
        updates.append((row["product_id"], day, orders, price * orders))
    if updates:
        await m.conn.execute(
            """
            UPDATE sales_daily AS s
            SET orders = u.orders, revenue = u.revenue, updated_at = $5
            FROM unnest($1::bigint[], $2::date[], $3::integer[], $4::numeric[])
                 AS u(product_id, day, orders, revenue)
            WHERE (s.product_id, s.day) = (u.product_id, u.day)
            """,
            *(list(column) for column in zip(*updates, strict=True)),
            m.clock,
        )
    m.sales_changed += len(updates)


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
    transaction.  About ``share`` of the products' daily sales series get one
    day's orders corrected (``sales_changed``).

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
                            (SELECT max(updated_at) FROM questions),
                            (SELECT max(updated_at) FROM sales_monthly)) AS clock,
                   greatest((SELECT max(id) FROM products),
                            (SELECT max(id) FROM reviews),
                            (SELECT max(id) FROM questions)) AS max_id
            """
        )
        m = _Mutation(
            conn=conn,
            rng=Rng(random.Random(seed).getrandbits(64) ^ 0x3E7A7E),
            catalogue=load_catalogue(),
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
        await _mutate_sales(m)
    return MutateReport(
        changed=m.changed,
        added=m.added,
        deleted=m.deleted,
        duration_s=time.perf_counter() - started,
        sales_changed=m.sales_changed,
    )
