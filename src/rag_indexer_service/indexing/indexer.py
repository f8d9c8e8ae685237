"""`RAGIndexer.index_cabinet()`: bring one cabinet's index in line with its source.

1. Take the cabinet's advisory lock (a second concurrent run gets `CabinetBusy`).
   If the source's fingerprint (a cheap "has anything changed" value that also covers the
   sources file and chunk settings) equals the one stored at the last success, stop: nothing
   to do (`scan_skipped`). `force=True` scans anyway.
2. Choose how to read (`delta.py`): a source with delta queries (`DeltaReads`) is read from
   its per-kind watermarks, minus an overlap (`delta`); otherwise, and periodically as the
   safety net, everything is read (`full`). The report and the ledger say which, and why.
3. Stream the documents read; per batch, compare content and metadata hashes with the
   ledger: unchanged costs nothing, a metadata-only change rewrites metadata, a content change
   re-chunks and embeds only chunks whose text is new (others keep their vectors).
4. Gather the changed documents across batches; write them in transactions of a target size.
5. Only after everything was read, delete documents the source no longer has (a delta run
   learns which from the `ids_query` of its kinds), unless that looks like a broken source
   (mass-delete guard). Then, and only then, advance the watermarks.

This module decides (skip, read mode, generation, what to save); steps 3 and 4 are
`batches.py` (`BatchPipeline.scan()`), step 5 is `deletions.py`, the knobs `index_options.py`.

Vectors come, in this order, from the document's own unchanged chunks, the embedding cache
(identical text anywhere, same embedder), and the embedder. A run with another embedder than
the one that built the index rebuilds it into a new generation that replaces the old one
atomically when complete (`generations.py`); searches meanwhile read the old one, and a
search with an embedder other than the index's is refused (`EmbedderMismatch`).

A big cabinet's search indexes (`store/ann.py`) are the caller's, after the run
(`IndexStore.search_index_state`, `refresh_ann_index`): the worker queues their build as a job of
its own. Only a rebuild builds the new generation's here, before its swap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing

import numpy as np
from sqlalchemy.exc import DBAPIError

from rag_indexer_service.canonical import digest
from rag_indexer_service.errors import CabinetNotFound, EmbedderMismatch
from rag_indexer_service.indexing.batches import (
    BatchPipeline,
    ProgressCallback,
    check_not_all_failed,
)
from rag_indexer_service.indexing.deletions import delete_gone
from rag_indexer_service.indexing.delta import ReadPlan, choose_read
from rag_indexer_service.indexing.embedders import Embedder, Vectors
from rag_indexer_service.indexing.index_options import IndexOptions
from rag_indexer_service.indexing.report import IndexReport
from rag_indexer_service.indexing.sources import CabinetSource, DeltaReads, SourceDocument
from rag_indexer_service.indexing.store import CabinetState, GenerationPlan, IndexStore, SearchHit
from rag_indexer_service.indexing.store.keyword_query import KeywordQuery, build_keyword_query
from rag_indexer_service.indexing.synonyms import Synonyms
from rag_indexer_service.indexing.usage import EmbeddingUsage, metering

__all__ = ["IndexOptions", "ProgressCallback", "RAGIndexer"]

log = logging.getLogger(__name__)

EXPANSION_WEIGHT = 1.0
"""How far a query's vector moves towards its synonyms' (1: as far as its own words)."""


class RAGIndexer:
    """Indexes cabinets from a `CabinetSource` into an `IndexStore` with an `Embedder`."""

    def __init__(
        self,
        *,
        source: CabinetSource,
        store: IndexStore,
        embedder: Embedder,
        options: IndexOptions | None = None,
        synonyms: Synonyms | None = None,
    ) -> None:
        self.source = source
        self.store = store
        self.embedder = embedder
        self.synonyms = synonyms
        self.options = options or IndexOptions()
        self.cache = store.embedding_cache() if self.options.embedding_cache else None
        self._pruned_at: float | None = None
        self._batches = BatchPipeline(
            store=store, embedder=embedder, cache=self.cache, options=self.options
        )

    async def index_cabinet(
        self,
        cabinet_id: int,
        *,
        progress: ProgressCallback | None = None,
        allow_mass_delete: bool | None = None,
        force: bool = False,
    ) -> IndexReport:
        started = time.perf_counter()
        report = IndexReport(cabinet_id=cabinet_id)
        delta = self.source if isinstance(self.source, DeltaReads) else None
        async with self.store.cabinet_lock(cabinet_id):
            # One after the other: on one pooled connection, not three to open in a new process.
            if not await self.source.cabinet_exists(cabinet_id):
                raise CabinetNotFound(cabinet_id)
            fingerprint = await self.source.fingerprint(cabinet_id)
            state = await self.store.cabinet_state(cabinet_id)
            if state is not None and await self._unchanged(
                cabinet_id, delta, state, fingerprint, force=force
            ):
                # The usual run of a scheduled cabinet: nothing to prepare, count or write.
                await self.store.mark_unchanged(cabinet_id)
                report.scan_skipped = True
                report.mode = "skipped"
                report.docs_unchanged = state.document_count
                report.duration_s = round(time.perf_counter() - started, 3)
                self._log_report(report)
                return report
            plan = await self.store.prepare_generation(cabinet_id, self.embedder.id)
            if plan.rebuild:
                log.info(
                    "cabinet %s: indexed with %s, embedding with %s: rebuilding into generation "
                    "%s (generation %s keeps serving until it is complete)",
                    cabinet_id,
                    state.embedder_id if state else None,
                    self.embedder.id,
                    plan.generation,
                    plan.serving,
                )
            report.rebuild = plan.rebuild
            read = await self._choose_read(cabinet_id, delta, plan, force=force)
            if (
                not force
                and not read.overrides_skip
                and not plan.rebuild
                and fingerprint is not None
                and state is not None
                and state.source_fingerprint == fingerprint
            ):
                report.scan_skipped = True
                report.mode = "skipped"
                report.docs_unchanged = state.document_count
                await self.store.save_cabinet_state(
                    cabinet_id,
                    embedder_id=self.embedder.id,
                    fingerprint=fingerprint,
                    success=True,
                    generation=plan.generation,
                )
                report.duration_s = round(time.perf_counter() - started, 3)
                self._log_report(report)
                return report
            total = state.document_count if state and state.document_count else None
            allow = (
                self.options.allow_mass_delete if allow_mass_delete is None else allow_mass_delete
            )
            report.mode, report.full_reason = read.mode, read.full_reason
            clock = (
                await delta.watermark(cabinet_id)
                if delta is not None and delta.delta_kinds
                else None
            )
            counts: tuple[int, int] | None = None
            with metering() as usage:
                try:
                    if delta is not None and read.mode == "delta":
                        documents = self._delta_documents(cabinet_id, delta, read)
                    else:
                        documents = self.source.iter_documents(cabinet_id)
                    seen = await self._batches.scan(
                        cabinet_id,
                        documents,
                        report,
                        plan,
                        total=total,
                        progress=progress,
                        batch_size=(
                            self.options.delta_batch_size_docs
                            if read.mode == "delta"
                            else self.options.batch_size_docs
                        ),
                    )
                    if read.mode == "full":
                        check_not_all_failed(report)
                    indexed = self.store.indexed_documents(cabinet_id, generation=plan.serving)
                    if delta is not None and read.mode == "delta":
                        # What the source has now and what the index has: two databases.
                        _, serving = await asyncio.gather(
                            self._present(cabinet_id, delta, seen, report), indexed
                        )
                    else:
                        serving = await indexed
                    counts = await delete_gone(
                        self.store,
                        self.options,
                        cabinet_id,
                        seen,
                        serving,
                        report,
                        plan,
                        allow_mass_delete=allow,
                    )
                except BaseException:
                    if not plan.rebuild:
                        await self._recount(cabinet_id, state, plan)
                    raise
                finally:
                    _record_usage(report, usage)
            if plan.rebuild:
                # Before the swap, so the new generation answers fast from its first search
                # (otherwise the search indexes are the caller's: `IndexStore.search_index_state`).
                await self._refresh_ann_index(cabinet_id)
                await self.store.activate_generation(
                    cabinet_id,
                    plan.generation,
                    embedder_id=self.embedder.id,
                    fingerprint=fingerprint,
                )
            else:
                await self.store.save_cabinet_state(
                    cabinet_id,
                    embedder_id=self.embedder.id,
                    fingerprint=fingerprint,
                    success=True,
                    generation=plan.generation,
                    counts=counts,
                )
            if delta is not None and clock is not None:
                await self.store.advance_watermarks(
                    cabinet_id,
                    generation=plan.generation,
                    kinds=sorted(delta.delta_kinds),
                    since=clock,
                    config_digest=self._read_digest(delta),
                    full=read.mode == "full",
                )
        await self._prune_cache()
        report.duration_s = round(time.perf_counter() - started, 3)
        self._log_report(report)
        return report

    async def _unchanged(
        self,
        cabinet_id: int,
        delta: DeltaReads | None,
        state: CabinetState,
        fingerprint: str | None,
        *,
        force: bool,
    ) -> bool:
        """The source says nothing changed since the last success, the index is this
        embedder's with no generation to build or retire, and no reconciliation is due by
        age (which the fingerprint, made from the same `updated_at`s, cannot stand for)."""
        if (
            force
            or fingerprint is None
            or state.source_fingerprint != fingerprint
            or state.embedder_id != self.embedder.id
            or state.building_generation is not None
            or state.retired_generation is not None
        ):
            return False
        plan = GenerationPlan(
            state.active_generation, rebuild=False, serving=state.active_generation
        )
        return not (await self._choose_read(cabinet_id, delta, plan, force=False)).overrides_skip

    @staticmethod
    def _log_report(report: IndexReport) -> None:
        log.info(
            "indexed cabinet %s: %s",
            report.cabinet_id,
            report.summary(),
            extra={"fields": {"event": "cabinet_indexed", **report.log_fields()}},
        )

    async def _recount(
        self, cabinet_id: int, state: CabinetState | None, plan: GenerationPlan
    ) -> None:
        """After a failed scan, make the cabinet's counts those of the batches it committed
        (its fingerprint stays: the next run scans again)."""
        try:
            await self.store.save_cabinet_state(
                cabinet_id,
                embedder_id=(state.embedder_id if state else None) or self.embedder.id,
                fingerprint=None if state is None else state.source_fingerprint,
                success=False,
                generation=plan.generation,
            )
        except Exception as exc:
            log.warning("cabinet %s: could not recount after a failure: %s", cabinet_id, exc)

    def _read_digest(self, delta: DeltaReads) -> str:
        return digest({"source": delta.config_digest, "embedder": self.embedder.id})

    async def _choose_read(
        self, cabinet_id: int, delta: DeltaReads | None, plan: GenerationPlan, *, force: bool
    ) -> ReadPlan:
        if delta is None or not delta.delta_kinds:
            return choose_read(
                delta_kinds=(),
                watermarks={},
                config_digest="",
                force=force,
                rebuild=plan.rebuild,
                every_runs=self.options.full_scan_every_runs,
                max_age_s=self.options.full_scan_max_age_s,
                overlap_s=self.options.delta_overlap_s,
            )
        return choose_read(
            delta_kinds=delta.delta_kinds,
            watermarks=await self.store.watermarks(cabinet_id, generation=plan.generation),
            config_digest=self._read_digest(delta),
            force=force,
            rebuild=plan.rebuild,
            every_runs=self.options.full_scan_every_runs,
            max_age_s=self.options.full_scan_max_age_s,
            overlap_s=self.options.delta_overlap_s,
        )

    async def _delta_documents(
        self, cabinet_id: int, delta: DeltaReads, read: ReadPlan
    ) -> AsyncGenerator[SourceDocument, None]:
        """Changed documents of delta kinds, every document of the others."""
        for kind in delta.kind_names:
            async with aclosing(
                delta.iter_kind(cabinet_id, kind, since=read.since.get(kind))
            ) as documents:
                async for doc in documents:
                    yield doc

    async def _present(
        self,
        cabinet_id: int,
        delta: DeltaReads,
        seen: dict[str, set[str]],
        report: IndexReport,
    ) -> None:
        """After a delta read: add to `seen` what the source has now (`ids_query` of delta
        kinds), for the deletion diff. Documents not read count as unchanged."""
        kinds = sorted(delta.delta_kinds)
        found = await asyncio.gather(*(delta.kind_ids(cabinet_id, kind) for kind in kinds))
        for kind, ids in zip(kinds, found, strict=True):
            present = seen.setdefault(kind, set())
            before = len(present)
            present.update(ids)
            report.docs_unchanged += len(present) - before

    async def search(
        self, cabinet_id: int, query: str, *, k: int = 10, min_similarity: float | None = None
    ) -> list[SearchHit]:
        """Hybrid search in the cabinet's index; refused if another embedder built it.

        The store searches only an index built by this embedder, so the state is read only
        when nothing came back: to tell "nothing found" from "built by another embedder"."""
        keywords = build_keyword_query(query, self.synonyms)
        hits = await self.store.search(
            cabinet_id,
            query_text=query,
            query_vector=await self.query_vector(query, keywords),
            k=k,
            embedder_id=self.embedder.id,
            min_similarity=min_similarity,
            keyword_query=keywords,
        )
        if not hits:
            self._check_embedder(cabinet_id, await self.store.cabinet_state(cabinet_id))
        return hits

    async def query_vector(self, query: str, keywords: KeywordQuery) -> Vectors:
        """The query's vector; with synonyms, moved towards the vector of its expansions
        (at `EXPANSION_WEIGHT`), so the vector side looks where the keyword side does."""
        expanded = keywords.expansion_text()
        vectors: Vectors = await self.embedder.embed([query, expanded] if expanded else [query])
        mixed: Vectors = vectors[0] + EXPANSION_WEIGHT * vectors[1] if expanded else vectors[0]
        norm = float(np.linalg.norm(mixed))
        return mixed / norm if norm else mixed

    async def _refresh_ann_index(self, cabinet_id: int) -> None:
        # The index only speeds searches up (they scan exactly without it): a failed build
        # must not fail the run; the next run retries it.
        try:
            await self.store.refresh_ann_index(cabinet_id, building=True)
        except DBAPIError:
            log.warning("cabinet %s: building the ANN index failed", cabinet_id, exc_info=True)

    def _check_embedder(self, cabinet_id: int, state: CabinetState | None) -> None:
        if state is None or state.embedder_id in (None, self.embedder.id):
            return
        if state.building_embedder_id == self.embedder.id:
            after = f"a rebuild with {self.embedder.id} is under way and replaces it when complete"
        else:
            after = f"the cabinet's next indexing run with {self.embedder.id} rebuilds it"
        raise EmbedderMismatch(
            f"cabinet {cabinet_id} is indexed with {state.embedder_id}, but this process embeds "
            f"queries with {self.embedder.id}: their vectors cannot be compared; {after} "
            "(or search with the embedder settings the index was built with)"
        )

    async def _prune_cache(self) -> None:
        if self.cache is None:
            return
        now = time.monotonic()
        if self._pruned_at is not None and now - self._pruned_at < self.options.cache_prune_every_s:
            return
        self._pruned_at = now
        try:
            pruned = await self.cache.prune(
                max_age_s=self.options.cache_max_age_s, max_rows=self.options.cache_max_rows
            )
        except Exception:
            log.warning("pruning the embedding cache failed", exc_info=True)
            return
        if pruned:
            log.info("embedding cache: pruned %s entries", pruned)


def _record_usage(report: IndexReport, usage: EmbeddingUsage) -> None:
    report.embedding_requests = usage.requests
    report.embedding_tokens = usage.tokens
    report.embedding_retries = usage.retries
    report.embedding_throttled_ms = round(usage.throttled_s * 1000)
    report.embedding_cache_hits = usage.cache_hits
    report.embedding_truncated = usage.truncated
