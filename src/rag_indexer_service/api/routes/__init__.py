"""Route modules: `ops` (unauthenticated health and metrics) and the `/api/v1` modules."""

from __future__ import annotations

from fastapi import APIRouter

from rag_indexer_service.api.routes import cabinets, index, ops, runs, scheduler

__all__ = ["ROUTERS"]

ROUTERS: tuple[APIRouter, ...] = (
    ops.router,
    index.router,
    runs.router,
    cabinets.router,
    scheduler.router,
)
