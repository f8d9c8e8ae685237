"""Delta runs: per (cabinet, generation, kind) watermarks, and the mode each run used.

- `rag_watermarks`: how far a kind's `changed_query` has read (the source's clock when the
  last successful run started reading), plus the bookkeeping that decides when the next run
  reconciles in full (`full_at`, `delta_runs`, the sources/embedder digest it was read with).
- `rag_runs.mode` (`delta`, `full`, `skipped`) and `rag_runs.full_reason`.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE rag_watermarks (
            cabinet_id     bigint      NOT NULL,
            generation     integer     NOT NULL,
            kind           text        NOT NULL,
            since          timestamptz NOT NULL,
            config_digest  text        NOT NULL,
            full_at        timestamptz NOT NULL,
            delta_runs     integer     NOT NULL DEFAULT 0,
            updated_at     timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (cabinet_id, generation, kind)
        )
        """
    )
    op.execute("ALTER TABLE rag_runs ADD COLUMN mode text, ADD COLUMN full_reason text")


def downgrade() -> None:
    op.execute("ALTER TABLE rag_runs DROP COLUMN mode, DROP COLUMN full_reason")
    op.execute("DROP TABLE rag_watermarks")
