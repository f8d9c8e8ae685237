"""`ApiContext`: what the API's lifespan opened, shared by every request of one process."""

from __future__ import annotations

from dataclasses import dataclass

import dramatiq

from rag_indexer_service.api.metrics import ApiMetrics
from rag_indexer_service.api.probes import BrokerProbe
from rag_indexer_service.config import Settings
from rag_indexer_service.jobs.dispatch import Dispatcher
from rag_indexer_service.runs import Ledger
from rag_indexer_service.runs.reader import RunReader
from rag_indexer_service.runtime import Runtime

__all__ = ["ApiContext"]


@dataclass(frozen=True, slots=True)
class ApiContext:
    settings: Settings
    runtime: Runtime
    ledger: Ledger
    runs: RunReader
    dispatcher: Dispatcher
    broker: dramatiq.Broker
    metrics: ApiMetrics
    probe: BrokerProbe
