"""Unauthenticated operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from rag_indexer_service.api.deps import ContextDep
from rag_indexer_service.api.errors import ApiError, error_responses
from rag_indexer_service.api.probes import PROBE_TIMEOUT_S, ping_database
from rag_indexer_service.api.schemas import HealthOut, ReadyOut
from rag_indexer_service.db.engine import short_error

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])


class NotReady(ApiError):
    status_code = 503
    code = "not_ready"


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> HealthOut:
    return HealthOut(status="ok")


async def _check(name: str, probe: asyncio.Future[None] | asyncio.Task[None]) -> str | None:
    try:
        await probe
    except TimeoutError:
        return f"{name} did not answer within {PROBE_TIMEOUT_S:g} s"
    except Exception as exc:
        log.warning("readyz: %s unreachable: %s", name, short_error(exc))
        return f"{name} unreachable"
    return None


@router.get(
    "/readyz",
    summary="Readiness: the database and the broker are reachable",
    responses=error_responses(503),
)
async def readyz(context: ContextDep) -> ReadyOut:
    db = context.runtime.db
    checks = {
        "database": asyncio.ensure_future(ping_database(db.engine)),
        "broker": asyncio.ensure_future(
            asyncio.wait_for(asyncio.to_thread(context.probe.ping), PROBE_TIMEOUT_S)
        ),
    }
    if db.source_engine is not db.engine:
        checks["source"] = asyncio.ensure_future(ping_database(db.source_engine))
    problems = [p for p in [await _check(n, f) for n, f in checks.items()] if p is not None]
    if problems:
        raise NotReady("not ready: " + "; ".join(problems))
    return ReadyOut(status="ready", checks=dict.fromkeys(checks, "ok"))


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format.",
            "content": {
                CONTENT_TYPE_LATEST.split(";")[0]: {
                    "schema": {"type": "string"},
                    "example": 'rag_runs{status="queued",trigger="manual"} 3.0\n',
                }
            },
        },
        **error_responses(503),
    },
)
async def metrics(context: ContextDep) -> Response:
    await context.metrics.refresh(context.runtime.db.engine, context.runtime.store, context.probe)
    return Response(context.metrics.render(), media_type=CONTENT_TYPE_LATEST)
