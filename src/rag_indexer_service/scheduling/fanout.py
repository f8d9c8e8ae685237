"""`FanOut`: one pass over every cabinet the source lists.

Per batch of cabinet ids (streamed from the source):

1. skip unchanged cabinets: the source fingerprint equals the one stored at the last successful
   run, with the same embedder, and the last run did not fail (`RAG_SKIP_UNCHANGED`);
2. queue a `schedule` run for the rest through `Dispatcher.enqueue_cabinets` (one active run per
   cabinet: a cabinet already queued or running is counted, not queued twice).

After a complete listing, cabinets that vanished from the source are purged from the index,
unless the list came back empty or shrank by more than `RAG_MAX_DELETE_SHARE` of the indexed
cabinets. One cabinet's problem is counted and the loop goes on; failures of the source, the
database or the broker stop the pass (the caller may resume it: every step is idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from rag_indexer_service.config import Settings
from rag_indexer_service.db.engine import is_connection_error, short_error
from rag_indexer_service.errors import (
    BrokerUnavailable,
    CabinetBusy,
    DatabaseUnavailable,
    SourceQueryError,
    TransientError,
)
from rag_indexer_service.indexing.sources import SqlSource
from rag_indexer_service.indexing.store import Store
from rag_indexer_service.jobs.dispatch import Dispatcher
from rag_indexer_service.runtime import Runtime
from rag_indexer_service.scheduling.report import FanOutReport

__all__ = ["Checkpoint", "FanOut"]

log = logging.getLogger(__name__)

Checkpoint = Callable[[FanOutReport], Awaitable[bool]]
"""Called after every batch with the report so far; returning False stops the pass."""

_PURGE_CHECKPOINT_EVERY = 100


class _Lanes:
    """Runs up to `width` batches at once (the database, Redis and this process overlap).

    A failed batch surfaces after the batches in flight have finished: none is cut half-way.
    """

    def __init__(self, width: int) -> None:
        self._width = max(1, width)
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, batch: Coroutine[Any, Any, None]) -> None:
        while len(self._tasks) >= self._width:
            await self._wait(asyncio.FIRST_COMPLETED)
        self._tasks.add(asyncio.create_task(batch))

    async def join(self) -> None:
        if self._tasks:
            await self._wait(asyncio.ALL_COMPLETED)

    async def _wait(self, when: str) -> None:
        done, _ = await asyncio.wait(self._tasks, return_when=when)
        self._tasks -= done
        errors = [error for task in done if not task.cancelled() and (error := task.exception())]
        if errors:
            if self._tasks:
                rest, _ = await asyncio.wait(self._tasks)
                self._tasks.clear()
                errors += [e for task in rest if not task.cancelled() and (e := task.exception())]
            for later in errors[1:]:
                log.warning("another batch failed too: %s", later)
            raise errors[0]

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()


@dataclass(frozen=True, slots=True)
class _Stored:
    fingerprint: str | None
    embedder_id: str | None
    last_run_failed: bool


class FanOut:
    def __init__(
        self,
        *,
        source: SqlSource,
        engine: AsyncEngine,
        store: Store,
        dispatcher: Dispatcher,
        settings: Settings,
        embedder_id: str,
        batch_size: int = 1000,
        concurrency: int = 3,
    ) -> None:
        self.source = source
        self.engine = engine
        self.store = store
        self.dispatcher = dispatcher
        self.settings = settings
        self.embedder_id = embedder_id
        self.batch_size = batch_size
        self.concurrency = concurrency
        self._bulk_fingerprints = True

    @classmethod
    def from_runtime(cls, rt: Runtime, dispatcher: Dispatcher, *, batch_size: int = 1000) -> FanOut:
        return cls(
            source=rt.source,
            engine=rt.db.engine,
            store=rt.store,
            dispatcher=dispatcher,
            settings=rt.settings,
            embedder_id=rt.indexer.embedder.id,
            batch_size=batch_size,
        )

    @property
    def skips_unchanged(self) -> bool:
        return self.settings.skip_unchanged and self.source.spec.fingerprint_query is not None

    async def run(self, report: FanOutReport, *, checkpoint: Checkpoint | None = None) -> None:
        """Fan out over all cabinets, filling `report`; raises when the pass cannot go on."""
        started = time.perf_counter()
        try:
            await self._check_broker()
            seen = await self._enqueue_all(report, checkpoint)
            if seen is not None:
                await self._purge_vanished(seen, report, checkpoint)
        finally:
            report.duration_s = round(time.perf_counter() - started, 3)

    # -- enqueue ---------------------------------------------------------------------------
    async def _enqueue_all(
        self, report: FanOutReport, checkpoint: Checkpoint | None
    ) -> set[int] | None:
        """Every listed cabinet id, or None if the checkpoint stopped the pass."""
        seen: set[int] = set()
        batch: list[int] = []
        lanes = _Lanes(self.concurrency)
        try:
            async with aclosing(self.source.iter_cabinet_ids()) as cabinet_ids:
                async for cabinet_id in cabinet_ids:
                    if cabinet_id in seen:
                        continue
                    seen.add(cabinet_id)
                    batch.append(cabinet_id)
                    if len(batch) >= self.batch_size:
                        await lanes.submit(self._fan_out_batch(batch, report))
                        report.seen = len(seen)
                        batch = []
                        if checkpoint is not None and not await checkpoint(report):
                            await lanes.join()
                            report.interrupted = True
                            return None
            await lanes.submit(self._fan_out_batch(batch, report))
            await lanes.join()
        except asyncio.CancelledError:
            lanes.cancel()
            raise
        report.seen = len(seen)
        return seen

    async def _fan_out_batch(self, batch: Sequence[int], report: FanOutReport) -> None:
        if not batch:
            return
        targets = await self._changed(batch, report) if self.skips_unchanged else batch
        if targets:
            await self._enqueue(targets, report)

    async def _check_broker(self) -> None:
        """Fail before creating any run if Redis is down (each run would fail at once)."""
        broker = self.dispatcher.broker
        if not isinstance(broker, RedisBroker):
            return
        try:
            await asyncio.to_thread(broker.client.ping)
        except Exception as exc:
            raise BrokerUnavailable(f"broker unreachable: {type(exc).__name__}: {exc}") from exc

    async def _enqueue(self, cabinet_ids: Sequence[int], report: FanOutReport) -> None:
        try:
            result = await self.dispatcher.enqueue_cabinets(cabinet_ids, "schedule")
        except TransientError:
            raise
        except Exception as exc:
            if is_connection_error(exc):
                raise DatabaseUnavailable(f"service database: {short_error(exc)}") from exc
            if len(cabinet_ids) == 1:
                report.problem(cabinet_ids[0], f"could not queue a run: {short_error(exc)}")
                return
            # One bad id spoils a bulk statement: queue this batch one by one.
            for cabinet_id in cabinet_ids:
                await self._enqueue([cabinet_id], report)
            return
        report.enqueued += result.enqueued
        report.already_active += result.already_active

    # -- skip unchanged --------------------------------------------------------------------
    async def _stored(self, cabinet_ids: Sequence[int]) -> dict[int, _Stored]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT c.cabinet_id, c.source_fingerprint, c.embedder_id, "
                    "COALESCE(r.status = 'failed', false) "
                    "FROM rag_cabinets c LEFT JOIN rag_runs r ON r.id = c.last_run_id "
                    "WHERE c.cabinet_id = ANY(CAST(:ids AS bigint[]))"
                ),
                {"ids": list(cabinet_ids)},
            )
            return {r[0]: _Stored(r[1], r[2], r[3]) for r in rows}

    async def _changed(self, batch: Sequence[int], report: FanOutReport) -> list[int]:
        """The cabinets of `batch` that need a run; counts the others as skipped."""
        try:
            stored = await self._stored(batch)
        except Exception as exc:
            if is_connection_error(exc):
                raise DatabaseUnavailable(f"service database: {short_error(exc)}") from exc
            raise
        candidates = [
            cabinet_id
            for cabinet_id in batch
            if (state := stored.get(cabinet_id)) is not None
            and state.fingerprint is not None
            and state.embedder_id == self.embedder_id
            and not state.last_run_failed
        ]
        if not candidates:
            return list(batch)
        current = await self._fingerprints(candidates, report)
        unchanged = {
            cabinet_id
            for cabinet_id in candidates
            if current.get(cabinet_id) is not None
            and current[cabinet_id] == stored[cabinet_id].fingerprint
        }
        report.skipped += len(unchanged)
        return [cabinet_id for cabinet_id in batch if cabinet_id not in unchanged]

    async def _fingerprints(
        self, cabinet_ids: Sequence[int], report: FanOutReport
    ) -> dict[int, str | None]:
        """Current fingerprints; a cabinet whose fingerprint fails is counted and left out."""
        if self._bulk_fingerprints:
            try:
                return await self.source.fingerprints(cabinet_ids)
            except SourceQueryError as exc:
                log.warning("bulk fingerprint query failed (%s); asking cabinet by cabinet", exc)
        found: dict[int, str | None] = {}
        failed = 0
        for cabinet_id in cabinet_ids:
            try:
                found[cabinet_id] = await self.source.fingerprint(cabinet_id)
            except SourceQueryError as exc:
                failed += 1
                report.problem(cabinet_id, f"fingerprint failed, queued anyway: {exc}")
        if failed == 0 and self._bulk_fingerprints:
            # The query works per cabinet but not in bulk: stop trying the bulk form.
            self._bulk_fingerprints = False
        return found

    # -- purge -----------------------------------------------------------------------------
    async def _indexed_ids(self) -> list[int]:
        async with self.engine.connect() as conn:
            return list(await conn.scalars(text("SELECT cabinet_id FROM rag_cabinets")))

    async def _purge_vanished(
        self, seen: set[int], report: FanOutReport, checkpoint: Checkpoint | None
    ) -> None:
        indexed = await self._indexed_ids()
        vanished = [cabinet_id for cabinet_id in indexed if cabinet_id not in seen]
        if not vanished:
            return
        share = len(vanished) / len(indexed)
        if not seen:
            report.purge_refused = (
                f"the source listed no cabinets; purged none of the {len(indexed)} indexed "
                "cabinets (check the [cabinets] query and the source database)"
            )
        elif share > self.settings.max_delete_share and not self.settings.allow_mass_delete:
            report.purge_refused = (
                f"{len(vanished)} of {len(indexed)} indexed cabinets ({share:.0%}) vanished from "
                f"the source, more than RAG_MAX_DELETE_SHARE={self.settings.max_delete_share:g}; "
                "purged none (check the source, or set RAG_ALLOW_MASS_DELETE=true once)"
            )
        if report.purge_refused is not None:
            log.error("purge refused: %s", report.purge_refused)
            return
        for n, cabinet_id in enumerate(vanished, 1):
            try:
                if await self._purge_one(cabinet_id):
                    report.purged += 1
            except TransientError:
                raise
            except Exception as exc:
                if is_connection_error(exc):
                    raise DatabaseUnavailable(f"service database: {short_error(exc)}") from exc
                report.problem(cabinet_id, f"purge failed: {short_error(exc)}")
            if (
                checkpoint is not None
                and n % _PURGE_CHECKPOINT_EVERY == 0
                and not await checkpoint(report)
            ):
                report.interrupted = True
                return

    async def _purge_one(self, cabinet_id: int) -> bool:
        """Delete the index of a cabinet the source no longer lists; False if it is back or busy."""
        try:
            async with self.store.cabinet_lock(cabinet_id):
                if await self.source.cabinet_exists(cabinet_id):
                    return False
                async with self.engine.begin() as conn:
                    params = {"c": cabinet_id}
                    chunks = await conn.execute(
                        text("DELETE FROM rag_chunks WHERE cabinet_id = :c"), params
                    )
                    docs = await conn.execute(
                        text("DELETE FROM rag_documents WHERE cabinet_id = :c"), params
                    )
                    await conn.execute(
                        text("DELETE FROM rag_cabinets WHERE cabinet_id = :c"), params
                    )
        except CabinetBusy:
            log.info("cabinet %s vanished from the source but is being indexed; later", cabinet_id)
            return False
        log.info(
            "purged cabinet %s (no longer listed by the source): %s documents, %s chunks",
            cabinet_id,
            docs.rowcount,
            chunks.rowcount,
        )
        return True
