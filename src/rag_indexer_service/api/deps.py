"""`Annotated` dependency aliases: routes declare what they need, not how it is found.

The providers are `async def` on purpose: FastAPI runs plain `def` dependencies in a thread
pool, a thread hop per dependency per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request, Security

from rag_indexer_service.api.auth import require_api_key
from rag_indexer_service.api.context import ApiContext
from rag_indexer_service.api.errors import MAX_INT64
from rag_indexer_service.config import Settings
from rag_indexer_service.errors import DatabaseUnavailable
from rag_indexer_service.jobs.dispatch import Dispatcher
from rag_indexer_service.runs import Ledger
from rag_indexer_service.runs.reader import RunReader
from rag_indexer_service.runtime import Runtime

__all__ = [
    "ApiKeyDep",
    "CabinetId",
    "ContextDep",
    "DispatcherDep",
    "LedgerDep",
    "RunId",
    "RunReaderDep",
    "RuntimeDep",
    "SettingsDep",
]


async def get_context(request: Request) -> ApiContext:
    context: ApiContext | None = getattr(request.app.state, "context", None)
    if context is None:  # lifespan not (yet) run: nothing is connected
        raise DatabaseUnavailable("the API has not finished starting")
    return context


ContextDep = Annotated[ApiContext, Depends(get_context)]


async def get_settings(context: ContextDep) -> Settings:
    return context.settings


async def get_runtime(context: ContextDep) -> Runtime:
    return context.runtime


async def get_ledger(context: ContextDep) -> Ledger:
    return context.ledger


async def get_dispatcher(context: ContextDep) -> Dispatcher:
    return context.dispatcher


async def get_run_reader(context: ContextDep) -> RunReader:
    return context.runs


SettingsDep = Annotated[Settings, Depends(get_settings)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
LedgerDep = Annotated[Ledger, Depends(get_ledger)]
DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]
RunReaderDep = Annotated[RunReader, Depends(get_run_reader)]
ApiKeyDep = Annotated[str, Security(require_api_key)]

CabinetId = Annotated[
    int,
    Path(
        ge=1,
        le=MAX_INT64,
        description="The seller cabinet's id in the source (positive 64-bit integer).",
        examples=[42],
    ),
]
RunId = Annotated[
    int,
    Path(ge=1, le=MAX_INT64, description="The run's id (positive 64-bit integer).", examples=[17]),
]
