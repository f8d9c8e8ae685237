"""The FastAPI app factory. Nothing connects at import or in `create_app`: the lifespan opens
the runtime (database, source, store, indexer) on the event loop uvicorn serves with.

    uvicorn --factory rag_indexer_service.api.app:create_app_from_env    (or `rag-indexer api`)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import dramatiq
from fastapi import FastAPI

from rag_indexer_service import __version__
from rag_indexer_service.api.auth import API_KEY_HEADER, build_auth
from rag_indexer_service.api.context import ApiContext
from rag_indexer_service.api.docs import install_docs
from rag_indexer_service.api.errors import install_error_handlers
from rag_indexer_service.api.guard import BodyLimits, RequestGuard
from rag_indexer_service.api.metrics import ApiMetrics
from rag_indexer_service.api.middleware import RequestObserver
from rag_indexer_service.api.probes import BrokerProbe
from rag_indexer_service.api.routes import ROUTERS
from rag_indexer_service.config import Settings, load_settings
from rag_indexer_service.db.embedded import leave_embedded_postgres
from rag_indexer_service.jobs.broker import build_broker
from rag_indexer_service.jobs.dispatch import Dispatcher, DispatchOptions
from rag_indexer_service.logs import configure_logging
from rag_indexer_service.runs import Ledger
from rag_indexer_service.runs.reader import RunReader
from rag_indexer_service.runtime import open_runtime
from rag_indexer_service.ui import install_console

__all__ = ["API_POOL_SIZE", "check_api_settings", "create_app", "create_app_from_env"]

log = logging.getLogger(__name__)

API_POOL_SIZE = 10

_DESCRIPTION = f"""
Keeps per-cabinet RAG indexes in sync with their source data: ask for index runs, follow
them, search an index.

**Authentication.** Every `/api/v1` route needs an API key, sent as `{API_KEY_HEADER}: <key>`
or `Authorization: Bearer <key>`. `/healthz`, `/readyz` and `/metrics` are open.

**Errors.** Every error has the body `{{"error": {{"code": "...", "message": "..."}}}}`.
`503` answers (database, broker or source unreachable) carry `Retry-After`.

**Console.** The same process serves an operator console at `/ui` (log in with an API key).
"""

_TAGS = [
    {"name": "indexing", "description": "Ask the workers to (re)index cabinets."},
    {"name": "runs", "description": "Follow index runs recorded in the ledger."},
    {"name": "cabinets", "description": "Index state and search of one cabinet."},
    {"name": "scheduler", "description": "What the scheduler daemons recorded."},
    {"name": "operations", "description": "Health, readiness and metrics (no API key)."},
]


def check_api_settings(settings: Settings) -> None:
    """Raise the `ConfigError` `create_app` would raise, without building anything."""
    build_auth(settings)
    build_broker(settings).close()


def create_app(
    settings: Settings,
    *,
    broker: dramatiq.Broker | None = None,
    owns_process: bool = False,
) -> FastAPI:
    """Build the app; `broker` defaults to the Redis broker of `RAG_BROKER_URL`. With
    `owns_process` (`rag-indexer api`) the lifespan's end is the process's end: it leaves the
    embedded Postgres there, as uvicorn then dies of the SIGTERM it re-raises, without `atexit`.

    Raises `ConfigError` when no API key is configured (unless `RAG_API_AUTH=disabled`) or no
    broker URL is set.
    """
    auth = build_auth(settings)
    owns_broker = broker is None
    the_broker = build_broker(settings) if broker is None else broker
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        probe = BrokerProbe(the_broker)
        try:
            async with open_runtime(settings, pool_size=API_POOL_SIZE) as runtime:
                ledger = Ledger(runtime.db.engine)
                runs = await RunReader.open(runtime.db.url, max_size=API_POOL_SIZE)
                app.state.context = ApiContext(
                    settings=settings,
                    runtime=runtime,
                    ledger=ledger,
                    runs=runs,
                    dispatcher=Dispatcher(
                        the_broker, ledger, DispatchOptions.from_settings(settings)
                    ),
                    broker=the_broker,
                    metrics=metrics,
                    probe=probe,
                )
                log.info("API ready (auth %s)", "on" if auth.enabled else "OFF")
                try:
                    yield
                finally:
                    app.state.context = None
                    await runs.close()
        finally:
            probe.close()
            if owns_broker:
                the_broker.close()
            if owns_process:
                await asyncio.to_thread(leave_embedded_postgres)

    app = FastAPI(
        title="rag-indexer-service",
        version=__version__,
        description=_DESCRIPTION,
        openapi_tags=_TAGS,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_docs(app)
    app.state.auth = auth
    app.state.context = None
    install_error_handlers(app)
    limits = BodyLimits(
        max_bytes=settings.api_max_body_bytes, timeout_s=settings.api_read_timeout_s
    )
    app.add_middleware(RequestGuard, auth=auth, limits=limits)
    app.add_middleware(RequestObserver, metrics=metrics)  # outermost: observes refusals too
    for router in ROUTERS:
        app.include_router(router)
    install_console(app, auth)
    return app


def create_app_from_env() -> FastAPI:
    """The uvicorn factory: settings from `RAG_*`, logging to stderr if nobody set it up."""
    settings = load_settings()
    package_logger = logging.getLogger("rag_indexer_service")
    if not package_logger.handlers and not logging.getLogger().handlers:
        configure_logging(settings.log_level, settings.log_format)
    package_logger.setLevel(settings.log_level)
    return create_app(settings, owns_process=True)
