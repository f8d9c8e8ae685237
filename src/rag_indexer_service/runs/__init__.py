"""The run ledger: the only code with SQL on `rag_runs`.

    model.py    Run, RunStatus, Trigger, COUNTER_FIELDS: what a run is
    ledger.py   Ledger: request, claim, heartbeat, finish, re-drive and list runs
    reader.py   RunReader: the polled `GET /rag/runs/{id}` read, on plain asyncpg
    stats.py    run_stats(): counters over all runs (metrics)

May import: `db`, `indexing.report` (what a run records), and from the store only
`record_last_run` (the store's pointer to a cabinet's last run, written in the transaction
that finishes the run). Not `scheduling`, `api`, `cli` or the worker modules.
"""

from __future__ import annotations

from rag_indexer_service.runs.ledger import Ledger
from rag_indexer_service.runs.model import (
    ACTIVE_STATUSES,
    COUNTER_FIELDS,
    RUN_STATUSES,
    Run,
    RunStatus,
    Trigger,
)

__all__ = [
    "ACTIVE_STATUSES",
    "COUNTER_FIELDS",
    "RUN_STATUSES",
    "Ledger",
    "Run",
    "RunStatus",
    "Trigger",
]
