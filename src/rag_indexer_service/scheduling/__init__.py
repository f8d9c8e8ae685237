"""Scheduling: the cron fan-out over all cabinets (once per tick across replicas), the reaper,
and what the scheduler records for operators.

    report.py   FanOutReport: counters of one fan-out, as data
    ticks.py    tick claims, scheduler heartbeats, `scheduler_status()` (tables of migration 0003)
    fanout.py   FanOut: list cabinets, skip unchanged, enqueue in bulk, purge vanished cabinets
    scheduler.py  Scheduler: the fan-out job (tick claim + FanOut) and the reaper job
    daemon.py   `run_scheduler()`: the `rag-indexer scheduler` process (APScheduler, signals)

Crontab parsing (with cron's weekday numbering) lives in `rag_indexer_service.cron`.
"""

from __future__ import annotations

from rag_indexer_service.scheduling.daemon import run_scheduler, serve
from rag_indexer_service.scheduling.fanout import FanOut
from rag_indexer_service.scheduling.report import FanOutReport
from rag_indexer_service.scheduling.scheduler import Scheduler, default_scheduler_id
from rag_indexer_service.scheduling.ticks import (
    Heartbeats,
    SchedulerHeartbeat,
    SchedulerStatus,
    Tick,
    TickClaims,
    scheduler_status,
)

__all__ = [
    "FanOut",
    "FanOutReport",
    "Heartbeats",
    "Scheduler",
    "SchedulerHeartbeat",
    "SchedulerStatus",
    "Tick",
    "TickClaims",
    "default_scheduler_id",
    "run_scheduler",
    "scheduler_status",
    "serve",
]
