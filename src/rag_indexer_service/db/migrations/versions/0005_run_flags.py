"""`rag_runs` records every counter of `IndexReport`: also whether the scan was skipped
(unchanged fingerprint) and whether the run rebuilt the index for a new embedder.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE rag_runs ADD COLUMN scan_skipped boolean, ADD COLUMN rebuild boolean")


def downgrade() -> None:
    op.execute("ALTER TABLE rag_runs DROP COLUMN scan_skipped, DROP COLUMN rebuild")
