"""Scheduler: tick claims (exactly one fan-out per tick) and scheduler heartbeats.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE rag_schedule_ticks (
            tick_at           timestamptz PRIMARY KEY,
            claimed_by        text        NOT NULL,
            claimed_at        timestamptz NOT NULL DEFAULT now(),
            finished_at       timestamptz,
            cabinets_seen     integer     NOT NULL DEFAULT 0,
            cabinets_enqueued integer     NOT NULL DEFAULT 0,
            cabinets_skipped  integer     NOT NULL DEFAULT 0,
            cabinets_active   integer     NOT NULL DEFAULT 0,
            cabinets_purged   integer     NOT NULL DEFAULT 0,
            error             text
        )
        """
    )
    op.execute(
        """
        CREATE TABLE rag_scheduler_heartbeats (
            scheduler_id   text PRIMARY KEY,
            started_at     timestamptz NOT NULL DEFAULT now(),
            heartbeat_at   timestamptz NOT NULL DEFAULT now(),
            last_tick_at   timestamptz,
            next_tick_at   timestamptz,
            last_reaper_at timestamptz,
            last_reaper    jsonb
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE rag_scheduler_heartbeats")
    op.execute("DROP TABLE rag_schedule_ticks")
