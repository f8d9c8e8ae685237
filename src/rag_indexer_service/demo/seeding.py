"""``seed()``: replace the demo data with freshly generated rows, bulk-loaded with COPY."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import asyncpg  # type: ignore[import-untyped,unused-ignore]

from rag_indexer_service.demo.catalogue import load_catalogue
from rag_indexer_service.demo.generate import (
    DEMAND_LEVELS,
    Rng,
    SeedData,
    generate,
    sales_days,
)
from rag_indexer_service.demo.schema import (
    CABINET_COLUMNS,
    DEMO_TABLES,
    PRODUCT_COLUMNS,
    QUESTION_COLUMNS,
    REVIEW_COLUMNS,
    SALES_COLUMNS,
    create_schema,
    drop_constraints_and_indexes,
    restore_constraints_and_indexes,
)

__all__ = ["SeedReport", "seed"]


@dataclass(frozen=True, slots=True)
class SeedReport:
    """Row counts written by :func:`seed` and the wall time it took."""

    cabinets: int
    products: int
    reviews: int
    questions: int
    sales_rows: int
    duration_s: float


async def _sales_copy_data(
    rng: Rng,
    data: SeedData,
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
    # updated_at: the end of the sales day (deterministic, never after BASE_TIME).
    day_factors = [
        (day.isoformat(), factor, f"\t{day + timedelta(days=1)}T00:00:00+00\n")
        for day, factor in days
    ]
    max_factor = max((factor for _, factor in days), default=1.0)
    lines: list[str] = []
    done = 0
    for _ in steps:
        for product_id, cabinet_id, price in data.sales[done:]:
            lam = rng.pick(DEMAND_LEVELS) * 2.0
            # orders = int(lam * factor * u + 0.5), u in [0, 1): mean ≈ level * factor.
            tails = [f"\t{k}\t{price * k}" for k in range(int(lam * max_factor + 1.5))]
            prefix = f"{cabinet_id}\t{product_id}\t"
            for day, factor, stamp in day_factors:
                lines.append(prefix + day + tails[int(lam * factor * rnd() + 0.5)] + stamp)
        done = len(data.sales)
        if len(lines) >= 20_000:
            yield "".join(lines).encode()
            lines.clear()
    if lines:
        yield "".join(lines).encode()


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
    for the ``months`` calendar months before ``BASE_TIME``.  Existing
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
    days = sales_days(months)
    data = SeedData()
    steps = generate(
        load_catalogue(),
        data,
        seed,
        cabinets=cabinets,
        products=products,
        reviews=reviews,
        questions=questions,
        with_sales=bool(days),
    )
    sales_rng = Rng(random.Random(seed).getrandbits(64) ^ 0x5A1E5)
    async with conn.transaction():
        await create_schema(conn)
        await conn.execute(f"TRUNCATE {', '.join(DEMO_TABLES)}")
        await drop_constraints_and_indexes(conn)
        if days:
            await conn.copy_to_table(
                "sales_daily",
                source=_sales_copy_data(sales_rng, data, steps, days),
                columns=SALES_COLUMNS,
                format="text",
            )
        else:
            for _ in steps:
                pass
        for table, rows, columns in (
            ("cabinets", data.cabinets, CABINET_COLUMNS),
            ("products", data.products, PRODUCT_COLUMNS),
            ("reviews", data.reviews, REVIEW_COLUMNS),
            ("questions", data.questions, QUESTION_COLUMNS),
        ):
            if rows:
                await conn.copy_records_to_table(table, records=rows, columns=columns)
        await restore_constraints_and_indexes(conn)
        await conn.execute(f"ANALYZE {', '.join(DEMO_TABLES)}")
    return SeedReport(
        cabinets=len(data.cabinets),
        products=len(data.products),
        reviews=len(data.reviews),
        questions=len(data.questions),
        sales_rows=len(data.sales) * len(days),
        duration_s=time.perf_counter() - started,
    )
