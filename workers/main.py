"""Worker entry point for `dramatiq workers.main` (same as `rag-indexer worker`)."""

from rag_indexer_service.jobs.worker_main import broker

__all__ = ["broker"]
