"""`rag_runs` records every counter of `IndexReport`: also whether the scan was skipped
(unchanged fingerprint) and whether the run rebuilt the index for a new embedder.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE rag_runs ADD COLUMN scan_skipped boolean, ADD COLUMN rebuild boolean")


def downgrade() -> None:
    op.execute("ALTER TABLE rag_runs DROP COLUMN scan_skipped, DROP COLUMN rebuild")
