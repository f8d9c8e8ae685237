"""Process entry points for Dramatiq workers; all logic lives in `rag_indexer_service`."""
