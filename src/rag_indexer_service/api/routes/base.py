"""`protected_router()`: the router of an `/api/v1` module (API key, common error answers).

Each module's routes carry the full path (prefix applied here, not by a parent router), so a
route's `path` is the URL template everywhere: in logs, metrics labels and the OpenAPI.
"""

from __future__ import annotations

from fastapi import APIRouter, Security

from rag_indexer_service.api.auth import require_api_key
from rag_indexer_service.api.errors import error_responses
from rag_indexer_service.api.views import API_PREFIX

__all__ = ["protected_router"]


def protected_router(tag: str) -> APIRouter:
    return APIRouter(
        prefix=API_PREFIX,
        tags=[tag],
        dependencies=[Security(require_api_key)],
        responses=error_responses(401, 500, 503),
    )
