"""rag-indexer-service: keeps per-cabinet RAG indexes in Postgres + pgvector fresh."""

__version__ = "0.1.0"
