"""The HTTP API (FastAPI): manual triggers, run status, cabinet state, search, health, metrics."""

from __future__ import annotations

from rag_indexer_service.api.app import create_app, create_app_from_env

__all__ = ["create_app", "create_app_from_env"]
