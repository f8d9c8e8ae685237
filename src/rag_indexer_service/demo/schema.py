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
    "sales_monthly",
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
    # Not truncated by seed(): a reseeded cabinet counts one more change, so its fingerprint
    # never repeats one of the data it replaced.
    """
    CREATE TABLE IF NOT EXISTS cabinet_changes (
        cabinet_id bigint PRIMARY KEY,
        changes    bigint NOT NULL
    )
    """,
    # What a seller's warehouse keeps for reports: sales_daily summed per product and
    # calendar month, kept current by the triggers below. updated_at moves whenever a
    # summary's values do.
    """
    CREATE TABLE IF NOT EXISTS sales_monthly (
        cabinet_id       bigint NOT NULL,
        product_id       bigint NOT NULL,
        month            date NOT NULL,
        orders           bigint NOT NULL,
        revenue          numeric(16, 2) NOT NULL,
        days_with_orders integer NOT NULL,
        updated_at       timestamptz NOT NULL,
        CONSTRAINT sales_monthly_pkey PRIMARY KEY (product_id, month),
        CONSTRAINT sales_monthly_product_id_fkey FOREIGN KEY (product_id)
            REFERENCES products (id) ON DELETE CASCADE
    )
    """,
)

# sales_monthly_resummarise(product_ids, days, stamp): recompute the summaries of the months
# those daily rows fall in. A summary whose values change is stamped with the writer's
# updated_at or, when that is older than the cabinet's newest change (a late or deleted row),
# just after it, so that a read "changed after the cabinet's watermark" still finds it. Months
# left without daily rows lose their summary.
_FUNCTIONS_DDL: Final[tuple[str, ...]] = (
    """
    CREATE OR REPLACE FUNCTION sales_monthly_resummarise(
        product_ids bigint[], days date[], stamp timestamptz
    ) RETURNS void LANGUAGE sql SET search_path FROM CURRENT AS $fn$
    WITH touched AS (
        SELECT DISTINCT k.product_id, CAST(date_trunc('month', k.day) AS date) AS month
        FROM unnest(product_ids, days) AS k(product_id, day)
    ),
    summary AS (
        SELECT t.product_id, t.month, min(d.cabinet_id) AS cabinet_id,
               sum(d.orders) AS orders, sum(d.revenue) AS revenue,
               count(*) FILTER (WHERE d.orders > 0) AS days_with_orders
        FROM touched AS t
        JOIN sales_daily AS d
          ON d.product_id = t.product_id
         AND d.day >= t.month AND d.day < CAST(t.month + interval '1 month' AS date)
        GROUP BY t.product_id, t.month
    ),
    newest AS (
        SELECT c.cabinet_id, greatest(
            (SELECT max(updated_at) FROM products WHERE cabinet_id = c.cabinet_id),
            (SELECT max(updated_at) FROM reviews WHERE cabinet_id = c.cabinet_id),
            (SELECT max(updated_at) FROM questions WHERE cabinet_id = c.cabinet_id),
            (SELECT max(updated_at) FROM sales_monthly WHERE cabinet_id = c.cabinet_id)
        ) AS at
        FROM (SELECT DISTINCT cabinet_id FROM summary) AS c
    ),
    clock AS (
        SELECT cabinet_id,
               CASE WHEN stamp >= at THEN stamp ELSE at + interval '1 microsecond' END AS at
        FROM newest
    ),
    gone AS (
        DELETE FROM sales_monthly AS m USING touched AS t
        WHERE m.product_id = t.product_id AND m.month = t.month
          AND NOT EXISTS (
              SELECT 1 FROM summary AS s WHERE (s.product_id, s.month) = (t.product_id, t.month)
          )
    )
    INSERT INTO sales_monthly AS m
        (cabinet_id, product_id, month, orders, revenue, days_with_orders, updated_at)
    SELECT s.cabinet_id, s.product_id, s.month, s.orders, s.revenue, s.days_with_orders, c.at
    FROM summary AS s JOIN clock AS c USING (cabinet_id)
    ON CONFLICT (product_id, month) DO UPDATE SET
        cabinet_id = EXCLUDED.cabinet_id, orders = EXCLUDED.orders,
        revenue = EXCLUDED.revenue, days_with_orders = EXCLUDED.days_with_orders,
        updated_at = EXCLUDED.updated_at
    WHERE (m.cabinet_id, m.orders, m.revenue, m.days_with_orders)
          IS DISTINCT FROM
          (EXCLUDED.cabinet_id, EXCLUDED.orders, EXCLUDED.revenue, EXCLUDED.days_with_orders)
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION sales_daily_inserted() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $fn$
    BEGIN
        PERFORM sales_monthly_resummarise(array_agg(product_id), array_agg(day),
                                          max(updated_at))
        FROM new_rows;
        RETURN NULL;
    END
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION sales_daily_updated() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $fn$
    BEGIN
        PERFORM sales_monthly_resummarise(array_agg(product_id), array_agg(day),
                                          max(updated_at))
        FROM (SELECT product_id, day, CAST(NULL AS timestamptz) AS updated_at FROM old_rows
              UNION ALL
              SELECT product_id, day, updated_at FROM new_rows) AS changed;
        RETURN NULL;
    END
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION sales_daily_deleted() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $fn$
    BEGIN
        PERFORM sales_monthly_resummarise(array_agg(product_id), array_agg(day), NULL)
        FROM old_rows;
        RETURN NULL;
    END
    $fn$
    """,
)

# Every write to the tables documents are made of counts one change of each cabinet it
# touched (cabinet_changes): the sources file's fingerprint reads one row instead of
# aggregating the cabinet. The counter row is shared by the cabinet's writers, which a demo
# can afford; a busier source might aggregate its (cabinet_id, updated_at) indexes instead.
_COUNTER_DDL: Final[tuple[str, ...]] = tuple(
    f"""
    CREATE OR REPLACE FUNCTION cabinet_changes_{name}() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $fn$
    BEGIN
        INSERT INTO cabinet_changes AS c (cabinet_id, changes)
        SELECT DISTINCT cabinet_id, 1 FROM ({rows}) AS touched
        ON CONFLICT (cabinet_id) DO UPDATE SET changes = c.changes + 1;
        RETURN NULL;
    END
    $fn$
    """
    for name, rows in (
        ("new", "SELECT cabinet_id FROM new_rows"),
        ("old", "SELECT cabinet_id FROM old_rows"),
        ("both", "SELECT cabinet_id FROM old_rows UNION ALL SELECT cabinet_id FROM new_rows"),
    )
)

# (trigger name, table, event, REFERENCING clause, function); statement-level, so a bulk
# write runs each once.
_TRIGGERS: Final[tuple[tuple[str, str, str, str, str], ...]] = (
    (
        "sales_daily_inserted",
        "sales_daily",
        "INSERT",
        "NEW TABLE AS new_rows",
        "sales_daily_inserted",
    ),
    (
        "sales_daily_updated",
        "sales_daily",
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "sales_daily_updated",
    ),
    (
        "sales_daily_deleted",
        "sales_daily",
        "DELETE",
        "OLD TABLE AS old_rows",
        "sales_daily_deleted",
    ),
    *(
        (f"{table}_counted_{event.lower()}", table, event, referencing, f"cabinet_changes_{name}")
        for table in ("products", "reviews", "questions", "sales_monthly")
        for event, referencing, name in (
            ("INSERT", "NEW TABLE AS new_rows", "new"),
            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows", "both"),
            ("DELETE", "OLD TABLE AS old_rows", "old"),
        )
    ),
)

_SUMMARISE_ALL: Final = """
INSERT INTO sales_monthly
    (cabinet_id, product_id, month, orders, revenue, days_with_orders, updated_at)
SELECT min(cabinet_id), product_id, CAST(date_trunc('month', day) AS date),
       sum(orders), sum(revenue), count(*) FILTER (WHERE orders > 0), max(updated_at)
FROM sales_daily
GROUP BY product_id, CAST(date_trunc('month', day) AS date)
"""

# (index name, table, columns).  The product_id indexes keep ON DELETE CASCADE
# from products cheap.
_INDEXES: Final[tuple[tuple[str, str, str], ...]] = (
    ("products_cabinet_id_idx", "products", "cabinet_id"),
    ("reviews_cabinet_id_idx", "reviews", "cabinet_id"),
    ("reviews_product_id_idx", "reviews", "product_id"),
    ("questions_cabinet_id_idx", "questions", "cabinet_id"),
    ("questions_product_id_idx", "questions", "product_id"),
    ("sales_daily_cabinet_id_idx", "sales_daily", "cabinet_id"),
    ("sales_monthly_cabinet_id_idx", "sales_monthly", "cabinet_id"),
    # Delta reads (`changed_query` in demo_sources.toml): a cabinet's rows changed since.
    ("products_cabinet_updated_idx", "products", "cabinet_id, updated_at"),
    ("reviews_cabinet_updated_idx", "reviews", "cabinet_id, updated_at"),
    ("questions_cabinet_updated_idx", "questions", "cabinet_id, updated_at"),
    ("sales_daily_cabinet_updated_idx", "sales_daily", "cabinet_id, updated_at"),
    ("sales_monthly_cabinet_updated_idx", "sales_monthly", "cabinet_id, updated_at"),
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
    (
        "sales_monthly",
        "sales_monthly_product_id_fkey",
        "FOREIGN KEY (product_id) REFERENCES products (id) ON DELETE CASCADE",
    ),
)

# (table, primary key name, columns); dropped for the bulk load like the indexes.
_BULK_PKS: Final[tuple[tuple[str, str, str], ...]] = (
    ("sales_daily", "sales_daily_pkey", "product_id, day"),
    ("sales_monthly", "sales_monthly_pkey", "product_id, month"),
)

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


async def _create_triggers(conn: asyncpg.Connection) -> None:
    for name, table, event, referencing, function in _TRIGGERS:
        await conn.execute(
            f"CREATE OR REPLACE TRIGGER {name} AFTER {event} ON {table} "
            f"REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )


async def create_schema(conn: asyncpg.Connection) -> None:
    """Create the demo tables and indexes if they do not exist (idempotent)."""
    for ddl in _TABLES_DDL:
        await conn.execute(ddl)
    for index, table, column in _INDEXES:
        await conn.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {table} ({column})")
    for ddl in (*_FUNCTIONS_DDL, *_COUNTER_DDL):
        await conn.execute(ddl)
    await _create_triggers(conn)


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
    """Drop FKs, secondary indexes, the sales PKs and triggers before a bulk load into empty
    tables.

    Re-adding them afterwards validates/builds each in one pass, which is much
    cheaper than per-row RI triggers and index inserts; ``sales_monthly`` is
    summarised once from the loaded ``sales_daily``.
    """
    for name, table, _, _, _ in _TRIGGERS:
        await conn.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    for table, constraint, _ in _FOREIGN_KEYS:
        await conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {constraint}")
    for index, _, _ in _INDEXES:
        await conn.execute(f"DROP INDEX IF EXISTS {index}")
    for table, pk, _ in _BULK_PKS:
        await conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {pk}")


async def restore_constraints_and_indexes(conn: asyncpg.Connection) -> None:
    await conn.execute(_SUMMARISE_ALL)
    await conn.execute(
        "INSERT INTO cabinet_changes AS c (cabinet_id, changes) SELECT id, 1 FROM cabinets "
        "ON CONFLICT (cabinet_id) DO UPDATE SET changes = c.changes + 1"
    )
    for table, pk, columns in _BULK_PKS:
        await conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {pk} PRIMARY KEY ({columns})")
    for index, table, column in _INDEXES:
        await conn.execute(f"CREATE INDEX {index} ON {table} ({column})")
    for table, constraint, definition in _FOREIGN_KEYS:
        await conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {constraint} {definition}")
    await _create_triggers(conn)
