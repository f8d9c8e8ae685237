"""`rag_runs.forced`: a forced run (scan even if the source's fingerprint is unchanged) says so
in the ledger, and a re-sent or recovered run keeps it; `rerun_forced`: a force request that
found the run already running forces its follow-up.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE rag_runs ADD COLUMN forced boolean NOT NULL DEFAULT false, "
        "ADD COLUMN rerun_forced boolean NOT NULL DEFAULT false"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE rag_runs DROP COLUMN forced, DROP COLUMN rerun_forced")
