"""Embeddings: index generations (safe embedder changes), the embedding cache, usage counters.

- `rag_documents` and `rag_chunks` get a `generation`; `rag_cabinets.active_generation` names
  the one searches read. A rebuild for a new embedder writes `building_generation`, then one
  transaction flips the pointer; the old generation (`retired_generation`) is deleted after.
- `rag_embedding_cache`: vectors by (embedder id, text hash), pruned by `last_used_at`.
- `rag_runs` records what embedding cost.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_RUN_COUNTERS = (
    "embedding_requests",
    "embedding_tokens",
    "embedding_retries",
    "embedding_throttled_ms",
    "embedding_cache_hits",
    "embedding_truncated",
)


def upgrade() -> None:
    for table, key in (
        ("rag_documents", "cabinet_id, generation, kind, doc_id"),
        ("rag_chunks", "cabinet_id, generation, kind, doc_id, chunk_no"),
    ):
        op.execute(f"ALTER TABLE {table} ADD COLUMN generation integer NOT NULL DEFAULT 0")
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({key})")
    op.execute(
        "ALTER TABLE rag_cabinets "
        "ADD COLUMN active_generation integer NOT NULL DEFAULT 0, "
        "ADD COLUMN building_generation integer, "
        "ADD COLUMN building_embedder_id text, "
        "ADD COLUMN retired_generation integer"
    )
    op.execute(
        """
        CREATE TABLE rag_embedding_cache (
            embedder_id  text        NOT NULL,
            text_hash    text        NOT NULL,
            embedding    vector      NOT NULL,
            created_at   timestamptz NOT NULL DEFAULT now(),
            last_used_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (embedder_id, text_hash)
        )
        """
    )
    op.execute(
        "CREATE INDEX rag_embedding_cache_last_used_idx ON rag_embedding_cache (last_used_at)"
    )
    op.execute("ALTER TABLE rag_runs " + ", ".join(f"ADD COLUMN {c} bigint" for c in _RUN_COUNTERS))


def downgrade() -> None:
    op.execute("ALTER TABLE rag_runs " + ", ".join(f"DROP COLUMN {c}" for c in _RUN_COUNTERS))
    op.execute("DROP TABLE rag_embedding_cache")
    for table, key in (
        ("rag_documents", "cabinet_id, kind, doc_id"),
        ("rag_chunks", "cabinet_id, kind, doc_id, chunk_no"),
    ):
        op.execute(
            f"DELETE FROM {table} x USING rag_cabinets c "
            "WHERE c.cabinet_id = x.cabinet_id AND x.generation <> c.active_generation"
        )
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")
        op.execute(f"ALTER TABLE {table} DROP COLUMN generation")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({key})")
    op.execute(
        "ALTER TABLE rag_cabinets DROP COLUMN active_generation, DROP COLUMN building_generation, "
        "DROP COLUMN building_embedder_id, DROP COLUMN retired_generation"
    )
