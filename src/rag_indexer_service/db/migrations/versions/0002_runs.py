"""Run ledger: one row per indexing run, at most one active run per cabinet.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE rag_runs (
            id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            cabinet_id         bigint  NOT NULL,
            trigger            text    NOT NULL
                               CHECK (trigger IN ('schedule', 'manual', 'cli')),
            status             text    NOT NULL DEFAULT 'queued'
                               CHECK (status IN ('queued', 'running', 'retrying',
                                                 'succeeded', 'failed', 'skipped')),
            queue              text    NOT NULL,
            attempt            integer NOT NULL DEFAULT 0,
            rerun_requested    boolean NOT NULL DEFAULT false,
            follow_up_of       bigint  REFERENCES rag_runs (id) ON DELETE SET NULL,
            message_key        text,
            worker_id          text,
            docs_seen          integer,
            docs_added         integer,
            docs_updated       integer,
            docs_metadata_only integer,
            docs_unchanged     integer,
            docs_deleted       integer,
            docs_failed        integer,
            chunks_embedded    integer,
            chunks_reused      integer,
            chunks_deleted     integer,
            duration_s         double precision,
            failures           jsonb,
            progress_done      integer NOT NULL DEFAULT 0,
            progress_total     integer,
            error              text,
            queued_at          timestamptz NOT NULL DEFAULT now(),
            sent_at            timestamptz,
            started_at         timestamptz,
            heartbeat_at       timestamptz,
            finished_at        timestamptz,
            updated_at         timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX rag_runs_one_active_per_cabinet ON rag_runs (cabinet_id) "
        "WHERE status IN ('queued', 'running', 'retrying')"
    )
    op.execute("CREATE INDEX rag_runs_cabinet_idx ON rag_runs (cabinet_id, id DESC)")
    op.execute(
        "CREATE INDEX rag_runs_active_idx ON rag_runs (status, updated_at) "
        "WHERE status IN ('queued', 'running', 'retrying')"
    )
    op.execute("ALTER TABLE rag_cabinets ADD COLUMN last_run_id bigint")


def downgrade() -> None:
    op.execute("ALTER TABLE rag_cabinets DROP COLUMN last_run_id")
    op.execute("DROP TABLE rag_runs")
