"""`serve()`: run the API under uvicorn (what `rag-indexer api` calls).

uvicorn gets the factory's import string, so every worker process (`--workers N`) builds its
own app, broker and connection pool after it started.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import uvicorn
import uvicorn.config

from rag_indexer_service.api.app import check_api_settings
from rag_indexer_service.api.protocol import HeadLimits, limited_protocol
from rag_indexer_service.config import Settings
from rag_indexer_service.indexing.source_check import check_sources
from rag_indexer_service.logs import TEXT_FORMAT, LogFormat

__all__ = ["APP_FACTORY", "log_config", "serve"]

APP_FACTORY = "rag_indexer_service.api.app:create_app_from_env"
WORKER_HEALTHCHECK_S = 60
"""How long uvicorn's supervisor (`--workers N`) waits for a server process to answer its
ping. Its default, 5 s, is less than a loaded machine takes to start one (the process imports
the whole service before it can answer): each was killed and replaced, forever."""


def log_config(level: str, log_format: LogFormat = "text") -> dict[str, Any]:
    """uvicorn's logging config plus our package's loggers (request logs included)."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["formatters"]["plain"] = (
        {"()": "rag_indexer_service.logs.JsonFormatter"}
        if log_format == "json"
        else {"format": TEXT_FORMAT}
    )
    config["handlers"]["plain"] = {
        "formatter": "plain",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["rag_indexer_service"] = {
        "handlers": ["plain"],
        "level": level,
        "propagate": False,
    }
    return config


def serve(settings: Settings, *, host: str | None, port: int | None, workers: int) -> None:
    """Check the settings (one-line `ConfigError`), then serve until stopped."""
    check_api_settings(settings)
    asyncio.run(check_sources(settings))
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        log_config=log_config(settings.log_level, settings.log_format),
        log_level=settings.log_level.lower(),
        access_log=False,  # RequestObserver writes one structured line per request
        lifespan="on",
        timeout_graceful_shutdown=30,
        http=limited_protocol(HeadLimits(timeout_s=settings.api_read_timeout_s)),
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
    )
