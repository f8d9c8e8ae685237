"""The module `dramatiq` loads in each worker process (`rag-indexer worker` points it here).

It builds the broker from `RAG_*` settings and declares the actors on it; connections to
Postgres and Redis open later, on each worker's event loop. A worker process forked by
Dramatiq's parent ends when that parent dies (`parent_watch`), and leaves the embedded
Postgres when it shuts down (`LeaveEmbeddedPostgres`: it ends without `atexit`).
"""

from __future__ import annotations

import multiprocessing

from rag_indexer_service.jobs.parent_watch import exit_with_parent

# Before the heavy imports below (seconds on a busy machine): a worker process whose parent
# is killed while it starts must not finish starting up as an orphan.
_parent = multiprocessing.parent_process()
if _parent is not None and _parent.pid is not None:
    exit_with_parent(_parent.pid)

import logging  # noqa: E402
import sys  # noqa: E402

import dramatiq  # noqa: E402

from rag_indexer_service.config import load_settings  # noqa: E402
from rag_indexer_service.errors import ConfigError  # noqa: E402
from rag_indexer_service.jobs.broker import build_broker  # noqa: E402
from rag_indexer_service.jobs.worker import (  # noqa: E402
    LeaveEmbeddedPostgres,
    RunBookkeeping,
    setup_worker,
)
from rag_indexer_service.logs import configure_logging, quiet_chatty_libraries  # noqa: E402

__all__ = ["broker"]

try:
    _settings = load_settings()
    broker = build_broker(_settings)
except ConfigError as exc:
    print(f"error: {exc}", file=sys.stderr)
    raise SystemExit(2) from None
if _settings.log_format == "json":  # Dramatiq's CLI owns the root logger's text format
    configure_logging(_settings.log_level, "json", package_only=True)
else:
    logging.getLogger("rag_indexer_service").setLevel(_settings.log_level)
quiet_chatty_libraries(_settings.log_level)
dramatiq.set_broker(broker)
setup_worker(broker, _settings)
broker.add_middleware(LeaveEmbeddedPostgres(), before=RunBookkeeping)
