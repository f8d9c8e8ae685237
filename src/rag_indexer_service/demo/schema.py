"""The demo source schema: DDL, bulk-load constraints and the column order of each table."""

from __future__ import annotations

from typing import Final

import asyncpg  # type: ignore[import-untyped,unused-ignore]

__all__ = [
    "CABINET_COLUMNS",
    "DEMO_TABLES",
    "PRODUCT_COLUMNS",
    "QUESTION_COLUMNS",
    "REVIEW_COLUMNS",
    "SALES_COLUMNS",
    "create_schema",
    "drop_constraints_and_indexes",
    "is_seeded",
    "restore_constraints_and_indexes",
]

#: Demo tables, children first (the order used for TRUNCATE).
DEMO_TABLES: Final[tuple[str, ...]] = (
    "sales_daily",
    "questions",
    "reviews",
    "products",
    "cabinets",
)


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
        updated_at  timestamptz NOT NULL,
        CONSTRAINT sales_daily_pkey PRIMARY KEY (product_id, day),
        CONSTRAINT sales_daily_product_id_fkey FOREIGN KEY (product_id)
            REFERENCES products (id) ON DELETE CASCADE
    )
    """,
)

# (index name, table, columns).  The product_id indexes keep ON DELETE CASCADE
# from products cheap.
_INDEXES: Final[tuple[tuple[str, str, str], ...]] = (
    ("products_cabinet_id_idx", "products", "cabinet_id"),
    ("reviews_cabinet_id_idx", "reviews", "cabinet_id"),
    ("reviews_product_id_idx", "reviews", "product_id"),
    ("questions_cabinet_id_idx", "questions", "cabinet_id"),
    ("questions_product_id_idx", "questions", "product_id"),
    ("sales_daily_cabinet_id_idx", "sales_daily", "cabinet_id"),
    # Delta reads (`changed_query` in demo_sources.toml): a cabinet's rows changed since.
    ("products_cabinet_updated_idx", "products", "cabinet_id, updated_at"),
    ("reviews_cabinet_updated_idx", "reviews", "cabinet_id, updated_at"),
    ("questions_cabinet_updated_idx", "questions", "cabinet_id, updated_at"),
    ("sales_daily_cabinet_updated_idx", "sales_daily", "cabinet_id, updated_at"),
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

CABINET_COLUMNS: Final = ("id", "name", "marketplace", "is_active", "updated_at")
PRODUCT_COLUMNS: Final = (
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
REVIEW_COLUMNS: Final = (
    "id",
    "cabinet_id",
    "product_id",
    "rating",
    "text",
    "answer",
    "created_at",
    "updated_at",
)
QUESTION_COLUMNS: Final = (
    "id",
    "cabinet_id",
    "product_id",
    "text",
    "answer",
    "created_at",
    "updated_at",
)
SALES_COLUMNS: Final = ("cabinet_id", "product_id", "day", "orders", "revenue", "updated_at")


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


async def drop_constraints_and_indexes(conn: asyncpg.Connection) -> None:
    """Drop FKs, secondary indexes and the sales PK before a bulk load into empty tables.

    Re-adding them afterwards validates/builds each in one pass, which is much
    cheaper than per-row RI triggers and index inserts.
    """
    for table, constraint, _ in _FOREIGN_KEYS:
        await conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {constraint}")
    for index, _, _ in _INDEXES:
        await conn.execute(f"DROP INDEX IF EXISTS {index}")
    await conn.execute(f"ALTER TABLE sales_daily DROP CONSTRAINT IF EXISTS {_SALES_PK}")


async def restore_constraints_and_indexes(conn: asyncpg.Connection) -> None:
    await conn.execute(
        f"ALTER TABLE sales_daily ADD CONSTRAINT {_SALES_PK} PRIMARY KEY (product_id, day)"
    )
    for index, table, column in _INDEXES:
        await conn.execute(f"CREATE INDEX {index} ON {table} ({column})")
    for table, constraint, definition in _FOREIGN_KEYS:
        await conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {constraint} {definition}")
