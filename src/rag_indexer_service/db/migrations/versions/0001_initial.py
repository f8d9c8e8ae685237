"""Initial schema: documents ledger, chunks with vectors and full-text, cabinet state.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute(
        """
        CREATE TABLE rag_cabinets (
            cabinet_id         bigint PRIMARY KEY,
            embedder_id        text,
            source_fingerprint text,
            document_count     integer NOT NULL DEFAULT 0,
            chunk_count        integer NOT NULL DEFAULT 0,
            last_indexed_at    timestamptz,
            last_success_at    timestamptz
        )
        """
    )
    op.execute(
        """
        CREATE TABLE rag_documents (
            cabinet_id   bigint  NOT NULL,
            kind         text    NOT NULL,
            doc_id       text    NOT NULL,
            content_hash text    NOT NULL,
            meta_hash    text    NOT NULL,
            chunk_count  integer NOT NULL,
            indexed_at   timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (cabinet_id, kind, doc_id)
        )
        """
    )
    # The vector column has no fixed dimension so that an embedder change needs no migration;
    # searches are always scoped to one cabinet, served by the primary key prefix.
    # Postgres's `russian` text search configuration stems Latin-script words with the English
    # stemmer, so one configuration serves both languages (two would double the write cost).
    op.execute(
        """
        CREATE TABLE rag_chunks (
            cabinet_id   bigint  NOT NULL,
            kind         text    NOT NULL,
            doc_id       text    NOT NULL,
            chunk_no     integer NOT NULL,
            content      text    NOT NULL,
            content_hash text    NOT NULL,
            metadata     jsonb   NOT NULL DEFAULT '{}'::jsonb,
            embedding    vector  NOT NULL,
            tsv          tsvector GENERATED ALWAYS AS (
                to_tsvector('russian'::regconfig, content)
            ) STORED,
            PRIMARY KEY (cabinet_id, kind, doc_id, chunk_no)
        )
        """
    )
    op.execute("CREATE INDEX rag_chunks_tsv_idx ON rag_chunks USING gin (tsv)")


def downgrade() -> None:
    op.execute("DROP TABLE rag_chunks")
    op.execute("DROP TABLE rag_documents")
    op.execute("DROP TABLE rag_cabinets")
