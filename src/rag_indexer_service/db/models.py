"""The service's own tables (prefix `rag_`). Alembic migrations are the source of truth for
the DDL; these Core tables are the typed handle queries are written against."""

from __future__ import annotations

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR

__all__ = ["cabinets", "chunks", "documents", "embedding_cache", "metadata"]

metadata = MetaData()

cabinets = Table(
    "rag_cabinets",
    metadata,
    Column("cabinet_id", BigInteger, primary_key=True),
    Column("embedder_id", Text),
    Column("source_fingerprint", Text),
    Column("document_count", Integer, nullable=False, server_default="0"),
    Column("chunk_count", Integer, nullable=False, server_default="0"),
    Column("last_indexed_at", DateTime(timezone=True)),
    Column("last_success_at", DateTime(timezone=True)),
    Column("last_run_id", BigInteger),
    Column("active_generation", Integer, nullable=False, server_default="0"),
    Column("building_generation", Integer),
    Column("building_embedder_id", Text),
    Column("retired_generation", Integer),
)

documents = Table(
    "rag_documents",
    metadata,
    Column("cabinet_id", BigInteger, primary_key=True),
    Column("generation", Integer, primary_key=True, server_default="0"),
    Column("kind", Text, primary_key=True),
    Column("doc_id", Text, primary_key=True),
    Column("content_hash", Text, nullable=False),
    Column("meta_hash", Text, nullable=False),
    Column("chunk_count", Integer, nullable=False),
    Column("indexed_at", DateTime(timezone=True), nullable=False),
)

chunks = Table(
    "rag_chunks",
    metadata,
    Column("cabinet_id", BigInteger, primary_key=True),
    Column("generation", Integer, primary_key=True, server_default="0"),
    Column("kind", Text, primary_key=True),
    Column("doc_id", Text, primary_key=True),
    Column("chunk_no", Integer, primary_key=True),
    Column("content", Text, nullable=False),
    Column("content_hash", Text, nullable=False),
    Column("metadata", JSONB, nullable=False),
    Column("embedding", Vector(), nullable=False),
    Column("tsv", TSVECTOR),
)

embedding_cache = Table(
    "rag_embedding_cache",
    metadata,
    Column("embedder_id", Text, primary_key=True),
    Column("text_hash", Text, primary_key=True),
    Column("embedding", Vector(), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=False),
)
