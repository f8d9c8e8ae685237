"""Scheduling: the cron fan-out over all cabinets (once per tick across replicas), the reaper,
and what the scheduler records for operators.

    report.py   FanOutReport: counters of one fan-out, as data
    ticks.py    the scheduler's ledger: the only SQL on `rag_schedule_ticks`;
                `scheduler_status()`, `scheduler_records()` (what operators read)
    heartbeats.py  the only SQL on `rag_scheduler_heartbeats`
    fanout.py   FanOut: list cabinets, skip unchanged, enqueue in bulk, purge vanished cabinets
    scheduler.py  Scheduler: the fan-out job (tick claim + FanOut) and the reaper job
    daemon.py   `run_scheduler()`: the `rag-indexer scheduler` process (APScheduler, signals)

Crontab parsing (with cron's weekday numbering) lives in `rag_indexer_service.cron`.

May import: `runtime`, `runs` (the ledger), `indexing.sources` and `indexing.store` through their
protocols, `jobs` (the dispatcher and the broker), `db`, `cron`, `config`, `errors`. No SQL on
the index or run tables: those are the store's and the ledger's. Not imported by `indexing`,
`runs` or `jobs` (the API and the console read `ticks` only).
"""

from __future__ import annotations

from rag_indexer_service.scheduling.daemon import run_scheduler, serve
from rag_indexer_service.scheduling.fanout import FanOut, FanOutOptions
from rag_indexer_service.scheduling.heartbeats import Heartbeats, SchedulerHeartbeat
from rag_indexer_service.scheduling.report import FanOutReport
from rag_indexer_service.scheduling.scheduler import (
    Scheduler,
    SchedulerOptions,
    default_scheduler_id,
)
from rag_indexer_service.scheduling.ticks import (
    SchedulerRecords,
    SchedulerStatus,
    Tick,
    TickClaims,
    scheduler_records,
    scheduler_status,
)

__all__ = [
    "FanOut",
    "FanOutOptions",
    "FanOutReport",
    "Heartbeats",
    "Scheduler",
    "SchedulerHeartbeat",
    "SchedulerOptions",
    "SchedulerRecords",
    "SchedulerStatus",
    "Tick",
    "TickClaims",
    "default_scheduler_id",
    "run_scheduler",
    "scheduler_records",
    "scheduler_status",
    "serve",
]
