"""The run ledger (`rag_runs`): every indexing run, whoever started it, and its fate.

    queued ──► running ──► succeeded
       ▲          │  └───► failed
       │          ▼
       └──── retrying ──► running …        skipped: the scheduler chose not to run it

A partial unique index makes "at most one queued/running/retrying run per cabinet" a fact of
the database. A request while a run is queued returns that run; while one is running, it sets
`rerun_requested`, and finishing that run queues exactly one follow-up. Transitions are single
conditional UPDATEs, so a redelivered message or a second worker cannot move a run twice.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rag_indexer_service.indexing.report import IndexReport
from rag_indexer_service.indexing.store.cabinets import record_last_run
from rag_indexer_service.runs.model import COUNTER_FIELDS, RUN_STATUSES, Run, RunStatus, Trigger

__all__ = ["Ledger"]

_ACTIVE_SQL = "('queued', 'running', 'retrying')"


class Ledger:
    """Typed operations on `rag_runs`. Every method is one short transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _one(self, conn: AsyncConnection, sql: str, params: dict[str, Any]) -> Run | None:
        row = (await conn.execute(text(sql), params)).first()
        return None if row is None else Run.from_row(row)

    async def get(self, run_id: int) -> Run | None:
        async with self._engine.connect() as conn:
            return await self._one(conn, "SELECT * FROM rag_runs WHERE id = :id", {"id": run_id})

    async def active_run(self, cabinet_id: int) -> Run | None:
        async with self._engine.connect() as conn:
            return await self._one(
                conn,
                f"SELECT * FROM rag_runs WHERE cabinet_id = :c AND status IN {_ACTIVE_SQL}",
                {"c": cabinet_id},
            )

    async def failed(self, run_ids: Sequence[int]) -> set[int]:
        """Which of these runs ended `failed`."""
        async with self._engine.connect() as conn:
            rows = await conn.scalars(
                text(
                    "SELECT id FROM rag_runs WHERE id = ANY(CAST(:ids AS bigint[])) "
                    "AND status = 'failed'"
                ),
                {"ids": list(run_ids)},
            )
            return set(rows)

    async def count_by_status(self) -> dict[str, int]:
        """Runs in each status (every status present, 0 if none)."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(text("SELECT status, count(*) FROM rag_runs GROUP BY status"))
            return {status: 0 for status in RUN_STATUSES} | {r[0]: int(r[1]) for r in rows}

    async def list_runs(
        self,
        *,
        cabinet_id: int | None = None,
        status: RunStatus | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[Run]:
        """Newest first; `before_id` continues a previous page."""
        where = ["TRUE"]
        params: dict[str, Any] = {"limit": limit}
        if cabinet_id is not None:
            where.append("cabinet_id = :c")
            params["c"] = cabinet_id
        if status is not None:
            where.append("status = :s")
            params["s"] = status
        if before_id is not None:
            where.append("id < :before")
            params["before"] = before_id
        sql = f"SELECT * FROM rag_runs WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT :limit"
        async with self._engine.connect() as conn:
            return [Run.from_row(r) for r in await conn.execute(text(sql), params)]

    async def get_many(self, run_ids: Sequence[int]) -> dict[int, Run]:
        """`run_id -> Run` for those of `run_ids` that exist."""
        if not run_ids:
            return {}
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT * FROM rag_runs WHERE id = ANY(CAST(:ids AS bigint[]))"),
                {"ids": list(run_ids)},
            )
            return {run.id: run for run in map(Run.from_row, rows)}

    async def active_runs(
        self, *, cabinet_ids: Sequence[int] | None = None, limit: int = 1000
    ) -> list[Run]:
        """Queued, running and retrying runs (of these cabinets), oldest first."""
        where = f"status IN {_ACTIVE_SQL}"
        params: dict[str, Any] = {"limit": limit}
        if cabinet_ids is not None:
            where += " AND cabinet_id = ANY(CAST(:c AS bigint[]))"
            params["c"] = list(cabinet_ids)
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                text(f"SELECT * FROM rag_runs WHERE {where} ORDER BY id LIMIT :limit"), params
            )
            return [Run.from_row(r) for r in rows]

    async def hourly_status_counts(self, *, hours: int = 24) -> list[tuple[dt.datetime, str, int]]:
        """`(hour, status, runs)` of the runs queued in the last `hours` hours (database clock),
        oldest hour first; hours without runs are absent."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT date_trunc('hour', queued_at) AS hour, status, count(*) "
                    "FROM rag_runs WHERE queued_at > now() - make_interval(hours => :h) "
                    "GROUP BY 1, 2 ORDER BY 1, 2"
                ),
                {"h": hours},
            )
            return [(r[0], r[1], int(r[2])) for r in rows]

    async def request(
        self, cabinet_id: int, trigger: Trigger, queue: str, *, force: bool = False
    ) -> tuple[Run, bool]:
        """The cabinet's active run, or a new queued one: `(run, created)`.

        A run already `running` gets `rerun_requested`, so what changed during it is indexed
        by exactly one follow-up run. `force`: the run scans even if the source's fingerprint
        is unchanged; a run that has not started scanning yet (queued, retrying) becomes
        forced, and a running one's follow-up will be.
        """
        while True:
            async with self._engine.begin() as conn:
                created = await self._one(
                    conn,
                    "INSERT INTO rag_runs (cabinet_id, trigger, queue, forced) "
                    "VALUES (:c, :t, :q, :f) "
                    f"ON CONFLICT (cabinet_id) WHERE status IN {_ACTIVE_SQL} DO NOTHING "
                    "RETURNING *",
                    {"c": cabinet_id, "t": trigger, "q": queue, "f": force},
                )
                if created is not None:
                    return created, True
                existing = await self._one(
                    conn,
                    "UPDATE rag_runs SET rerun_requested = rerun_requested OR status = 'running', "
                    "forced = forced OR (:f AND status <> 'running'), "
                    "rerun_forced = rerun_forced OR (:f AND status = 'running'), "
                    "updated_at = now() "
                    f"WHERE cabinet_id = :c AND status IN {_ACTIVE_SQL} RETURNING *",
                    {"c": cabinet_id, "f": force},
                )
                if existing is not None:
                    return existing, False
            # The active run finished between the two statements: try again.

    async def request_many_ids(
        self, cabinet_ids: Sequence[int], trigger: Trigger, queue: str, *, force: bool = False
    ) -> tuple[list[int], int]:
        """Queue a run for each cabinet without one active (the bulk path): returns
        `(new run ids, number of cabinets that already had an active run)`. With `force`,
        the active ones are forced as `request` would force them."""
        async with self._engine.begin() as conn:
            if force:
                await conn.execute(
                    text(
                        "UPDATE rag_runs SET forced = forced OR status <> 'running', "
                        "rerun_requested = rerun_requested OR status = 'running', "
                        "rerun_forced = rerun_forced OR status = 'running', updated_at = now() "
                        "WHERE cabinet_id = ANY(CAST(:ids AS bigint[])) "
                        f"AND status IN {_ACTIVE_SQL}"
                    ),
                    {"ids": list(cabinet_ids)},
                )
            created = list(
                await conn.scalars(
                    text(
                        # Cabinets with an active run are left out before the INSERT: each
                        # row it is given takes a run id, even one ON CONFLICT then drops.
                        "INSERT INTO rag_runs (cabinet_id, trigger, queue, forced) "
                        "SELECT DISTINCT c, :t, :q, CAST(:f AS boolean) "
                        "FROM unnest(CAST(:ids AS bigint[])) AS u(c) "
                        "WHERE NOT EXISTS (SELECT 1 FROM rag_runs a WHERE a.cabinet_id = u.c "
                        f"AND a.status IN {_ACTIVE_SQL}) "
                        f"ON CONFLICT (cabinet_id) WHERE status IN {_ACTIVE_SQL} DO NOTHING "
                        "RETURNING id"
                    ),
                    {"ids": list(cabinet_ids), "t": trigger, "q": queue, "f": force},
                )
            )
        return created, len(set(cabinet_ids)) - len(created)

    async def mark_sent(self, run_ids: Sequence[int], message_keys: Sequence[str | None]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE rag_runs r SET sent_at = now(), message_key = u.k, updated_at = now() "
                    "FROM unnest(CAST(:ids AS bigint[]), CAST(:keys AS text[])) AS u(id, k) "
                    "WHERE r.id = u.id"
                ),
                {"ids": list(run_ids), "keys": list(message_keys)},
            )

    async def start_attempt(
        self,
        run_id: int,
        *,
        worker_id: str,
        stale_after_s: float,
        ended: tuple[str, int] | None = None,
    ) -> Run | None:
        """Claim the run for this worker, or None if it is finished or live elsewhere.

        `ended = (worker_id, attempt)` names an attempt known to be over (the one this retry
        follows) whose failure could not be recorded: still `running` under it, the run is
        taken over at once instead of after `stale_after_s`.
        """
        owner, attempt = ended or ("", -1)
        async with self._engine.begin() as conn:
            return await self._one(
                conn,
                "UPDATE rag_runs SET status = 'running', attempt = attempt + 1, "
                "worker_id = :w, started_at = COALESCE(started_at, now()), "
                "heartbeat_at = now(), progress_done = 0, updated_at = now() "
                "WHERE id = :id AND (status IN ('queued', 'retrying') OR (status = 'running' "
                "AND (heartbeat_at < now() - make_interval(secs => :stale) "
                "OR (worker_id = :owner AND attempt = :attempt)))) RETURNING *",
                {
                    "id": run_id,
                    "w": worker_id,
                    "stale": stale_after_s,
                    "owner": owner,
                    "attempt": attempt,
                },
            )

    async def heartbeat(self, run_id: int, *, worker_id: str, done: int, total: int | None) -> bool:
        """Record progress; False if the run is no longer this worker's."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                text(
                    "UPDATE rag_runs SET heartbeat_at = now(), progress_done = :d, "
                    "progress_total = :t, updated_at = now() "
                    "WHERE id = :id AND status = 'running' AND worker_id = :w"
                ),
                {"id": run_id, "w": worker_id, "d": done, "t": total},
            )
            return bool(result.rowcount)

    async def succeed(self, run_id: int, report: IndexReport, *, worker_id: str) -> Run | None:
        """Mark succeeded with the report's counters; returns the follow-up run, if one is due."""
        params: dict[str, Any] = {
            "id": run_id,
            "w": worker_id,
            "duration": report.duration_s,
            "failures": json.dumps(
                [{"kind": f.kind, "doc_id": f.doc_id, "reason": f.reason} for f in report.failures],
                ensure_ascii=False,
            ),
            "mode": report.mode,
            "full_reason": report.full_reason,
            **{name: getattr(report, name) for name in COUNTER_FIELDS},
        }
        assignments = ", ".join(f"{name} = :{name}" for name in COUNTER_FIELDS)
        async with self._engine.begin() as conn:
            run = await self._one(
                conn,
                f"UPDATE rag_runs SET status = 'succeeded', {assignments}, "
                "mode = :mode, full_reason = :full_reason, "
                "duration_s = :duration, failures = CAST(:failures AS jsonb), error = NULL, "
                "progress_done = :docs_seen, progress_total = :docs_seen, "
                "finished_at = now(), updated_at = now() "
                "WHERE id = :id AND status = 'running' AND worker_id = :w RETURNING *",
                params,
            )
            return await self._after_finish(conn, run)

    async def fail(
        self, run_id: int, error: str, *, retrying: bool, worker_id: str | None = None
    ) -> Run | None:
        """Record a failed attempt: `retrying` if another attempt is coming, else `failed`.

        Returns the follow-up run if the run ended for good and a rerun was requested.
        """
        status = "retrying" if retrying else "failed"
        owner = "" if worker_id is None else "AND worker_id = :w"
        async with self._engine.begin() as conn:
            run = await self._one(
                conn,
                f"UPDATE rag_runs SET status = '{status}', error = :e, updated_at = now(), "
                f"finished_at = CASE WHEN '{status}' = 'failed' THEN now() END "
                f"WHERE id = :id AND status IN {_ACTIVE_SQL} {owner} RETURNING *",
                {"id": run_id, "e": error[:4000], "w": worker_id},
            )
            return None if retrying else await self._after_finish(conn, run)

    async def _after_finish(self, conn: AsyncConnection, run: Run | None) -> Run | None:
        if run is None:
            return None
        # The store's pointer to the cabinet's last run, in this run's transaction.
        await record_last_run(conn, run.cabinet_id, run.id)
        if not run.rerun_requested:
            return None
        try:
            async with conn.begin_nested():
                return await self._one(
                    conn,
                    "INSERT INTO rag_runs (cabinet_id, trigger, queue, follow_up_of, forced) "
                    "VALUES (:c, :t, :q, :parent, :f) RETURNING *",
                    {
                        "c": run.cabinet_id,
                        "t": run.trigger,
                        "q": run.queue,
                        "parent": run.id,
                        "f": run.rerun_forced,
                    },
                )
        except IntegrityError:
            return None  # someone queued a new run already; it will see the latest data

    async def unsent(self, *, older_than_s: float, limit: int = 500) -> list[Run]:
        """Queued runs whose message was never sent: requested by a process without a broker
        (`index --queue` next to `rag-indexer up`), or whose sender died before sending."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT * FROM rag_runs WHERE status = 'queued' AND sent_at IS NULL "
                    "AND queued_at < now() - make_interval(secs => :age) ORDER BY id LIMIT :limit"
                ),
                {"age": older_than_s, "limit": limit},
            )
            return [Run.from_row(r) for r in rows]

    async def stale_runs(
        self, *, queued_after_s: float, stale_after_s: float, retrying_after_s: float
    ) -> list[Run]:
        """Active runs that may have lost their message or their worker."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT * FROM rag_runs WHERE "
                    "(status = 'queued' AND COALESCE(sent_at, queued_at) "
                    "  < now() - make_interval(secs => :queued)) "
                    "OR (status = 'running' AND heartbeat_at "
                    "  < now() - make_interval(secs => :stale)) "
                    "OR (status = 'retrying' AND updated_at "
                    "  < now() - make_interval(secs => :retrying)) "
                    "ORDER BY id"
                ),
                {"queued": queued_after_s, "stale": stale_after_s, "retrying": retrying_after_s},
            )
            return [Run.from_row(r) for r in rows]

    async def interrupt(self, worker_id: str, reason: str) -> list[int]:
        """Runs this worker still has `running` (it is stopping): back to `retrying`."""
        async with self._engine.begin() as conn:
            rows = await conn.execute(
                text(
                    "UPDATE rag_runs SET status = 'retrying', error = :e, updated_at = now() "
                    "WHERE status = 'running' AND worker_id = :w RETURNING id"
                ),
                {"w": worker_id, "e": reason},
            )
            return [int(r[0]) for r in rows]

    async def requeue_lost(self, run_id: int, reason: str) -> Run | None:
        """Put a run whose worker vanished back to `retrying` (so a new message may claim it)."""
        async with self._engine.begin() as conn:
            return await self._one(
                conn,
                "UPDATE rag_runs SET status = 'retrying', error = :e, updated_at = now() "
                "WHERE id = :id AND status = 'running' RETURNING *",
                {"id": run_id, "e": reason},
            )
