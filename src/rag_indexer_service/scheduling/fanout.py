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

from rag_indexer_service.config import Settings
from rag_indexer_service.db.engine import database_errors, short_error
from rag_indexer_service.errors import (
    BrokerUnavailable,
    CabinetBusy,
    SourceQueryError,
    TransientError,
)
from rag_indexer_service.indexing.sources import BulkFingerprints, CabinetSource
from rag_indexer_service.indexing.store import IndexStore
from rag_indexer_service.jobs.dispatch import Dispatcher
from rag_indexer_service.runs import Ledger
from rag_indexer_service.runtime import Runtime
from rag_indexer_service.scheduling.report import FanOutReport

__all__ = ["Checkpoint", "FanOut", "FanOutOptions"]

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
class FanOutOptions:
    skip_unchanged: bool = True
    max_delete_share: float = 0.5
    allow_mass_delete: bool = False
    batch_size: int = 1000
    concurrency: int = 3

    @classmethod
    def from_settings(cls, settings: Settings, *, batch_size: int = 1000) -> FanOutOptions:
        return cls(
            skip_unchanged=settings.skip_unchanged,
            max_delete_share=settings.max_delete_share,
            allow_mass_delete=settings.allow_mass_delete,
            batch_size=batch_size,
        )


@dataclass(frozen=True, slots=True)
class _Stored:
    fingerprint: str | None
    embedder_id: str | None
    last_run_failed: bool


class FanOut:
    def __init__(
        self,
        *,
        source: CabinetSource,
        store: IndexStore,
        ledger: Ledger,
        dispatcher: Dispatcher,
        embedder_id: str,
        options: FanOutOptions | None = None,
    ) -> None:
        self.source = source
        self.store = store
        self.ledger = ledger
        self.dispatcher = dispatcher
        self.embedder_id = embedder_id
        self.options = options or FanOutOptions()
        self._bulk_fingerprints = isinstance(source, BulkFingerprints)

    @classmethod
    def from_runtime(cls, rt: Runtime, dispatcher: Dispatcher, *, batch_size: int = 1000) -> FanOut:
        return cls(
            source=rt.source,
            store=rt.store,
            ledger=Ledger(rt.db.engine),
            dispatcher=dispatcher,
            embedder_id=rt.indexer.embedder.id,
            options=FanOutOptions.from_settings(rt.settings, batch_size=batch_size),
        )

    @property
    def skips_unchanged(self) -> bool:
        return self.options.skip_unchanged and self.source.has_fingerprints

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
        lanes = _Lanes(self.options.concurrency)
        try:
            async with aclosing(self.source.iter_cabinet_ids()) as cabinet_ids:
                async for cabinet_id in cabinet_ids:
                    if cabinet_id in seen:
                        continue
                    seen.add(cabinet_id)
                    batch.append(cabinet_id)
                    if len(batch) >= self.options.batch_size:
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
            with database_errors():
                result = await self.dispatcher.enqueue_cabinets(cabinet_ids, "schedule")
        except TransientError:
            raise
        except Exception as exc:
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
        states = await self.store.skip_states(cabinet_ids)
        last_runs = [s.last_run_id for s in states.values() if s.last_run_id is not None]
        failed = await self.ledger.failed(last_runs) if last_runs else set()
        return {
            cabinet_id: _Stored(s.fingerprint, s.embedder_id, s.last_run_id in failed)
            for cabinet_id, s in states.items()
        }

    async def _changed(self, batch: Sequence[int], report: FanOutReport) -> list[int]:
        """The cabinets of `batch` that need a run; counts the others as skipped."""
        with database_errors():
            stored = await self._stored(batch)
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
        if unchanged:
            # one whose search index build was lost or failed gets a run (a skip), after
            # which the worker queues the build again
            with database_errors():
                unchanged -= await self.store.missing_search_indexes(sorted(unchanged))
        report.skipped += len(unchanged)
        return [cabinet_id for cabinet_id in batch if cabinet_id not in unchanged]

    async def _fingerprints(
        self, cabinet_ids: Sequence[int], report: FanOutReport
    ) -> dict[int, str | None]:
        """Current fingerprints; a cabinet whose fingerprint fails is counted and left out."""
        if self._bulk_fingerprints and isinstance(self.source, BulkFingerprints):
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
    async def _purge_vanished(
        self, seen: set[int], report: FanOutReport, checkpoint: Checkpoint | None
    ) -> None:
        indexed = await self.store.indexed_cabinet_ids()
        vanished = [cabinet_id for cabinet_id in indexed if cabinet_id not in seen]
        if not vanished:
            return
        share = len(vanished) / len(indexed)
        if not seen:
            report.purge_refused = (
                f"the source listed no cabinets; purged none of the {len(indexed)} indexed "
                "cabinets (check the [cabinets] query and the source database)"
            )
        elif share > self.options.max_delete_share and not self.options.allow_mass_delete:
            report.purge_refused = (
                f"{len(vanished)} of {len(indexed)} indexed cabinets ({share:.0%}) vanished from "
                f"the source, more than RAG_MAX_DELETE_SHARE={self.options.max_delete_share:g}; "
                "purged none (check the source, or set RAG_ALLOW_MASS_DELETE=true once)"
            )
        if report.purge_refused is not None:
            log.error("purge refused: %s", report.purge_refused)
            return
        for n, cabinet_id in enumerate(vanished, 1):
            try:
                with database_errors():
                    if await self._purge_one(cabinet_id):
                        report.purged += 1
            except TransientError:
                raise
            except Exception as exc:
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
                dropped = await self.store.drop_cabinet(cabinet_id)
        except CabinetBusy:
            log.info("cabinet %s vanished from the source but is being indexed; later", cabinet_id)
            return False
        log.info(
            "purged cabinet %s (no longer listed by the source): %s documents, %s chunks",
            cabinet_id,
            dropped.documents,
            dropped.chunks,
        )
        return True
