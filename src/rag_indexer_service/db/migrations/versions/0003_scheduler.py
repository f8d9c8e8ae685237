"""Scheduler: tick claims (exactly one fan-out per tick) and scheduler heartbeats.

A tick row is claimed by `INSERT … ON CONFLICT DO NOTHING`; `heartbeat_at` is refreshed after
every fan-out batch, so a claim whose owner died (or released it on shutdown: NULL) can be
taken over and the fan-out resumed. `finished_at` marks a fan-out that ran to its end.

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
            heartbeat_at      timestamptz DEFAULT now(),
            finished_at       timestamptz,
            cabinets_seen     integer     NOT NULL DEFAULT 0,
            cabinets_enqueued integer     NOT NULL DEFAULT 0,
            cabinets_skipped  integer     NOT NULL DEFAULT 0,
            cabinets_active   integer     NOT NULL DEFAULT 0,
            cabinets_purged   integer     NOT NULL DEFAULT 0,
            cabinet_errors    integer     NOT NULL DEFAULT 0,
            error             text
        )
        """
    )
    op.execute(
        "CREATE INDEX rag_schedule_ticks_unfinished_idx ON rag_schedule_ticks (tick_at) "
        "WHERE finished_at IS NULL"
    )
    op.execute(
        """
        CREATE TABLE rag_scheduler_heartbeats (
            scheduler_id   text PRIMARY KEY,
            schedule       text,
            started_at     timestamptz NOT NULL DEFAULT now(),
            heartbeat_at   timestamptz NOT NULL DEFAULT now(),
            stopped_at     timestamptz,
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
