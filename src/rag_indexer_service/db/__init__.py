"""Service database: engine factory, embedded server, schema and migrations."""

from rag_indexer_service.db.engine import Database, open_database

__all__ = ["Database", "open_database"]
