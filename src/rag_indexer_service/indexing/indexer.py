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

Vectors come, in this order, from the document's own unchanged chunks, the embedding cache
(identical text anywhere, same embedder), and the embedder. A run with another embedder than
the one that built the index rebuilds it into a new generation that replaces the old one
atomically when complete (`generations.py`); searches meanwhile read the old one, and a
search with an embedder other than the index's is refused (`EmbedderMismatch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass

import numpy as np
from sqlalchemy.exc import DBAPIError

from rag_indexer_service.canonical import digest
from rag_indexer_service.config import Settings
from rag_indexer_service.db.engine import is_data_error, short_error
from rag_indexer_service.errors import (
    CabinetNotFound,
    DocumentsFailed,
    EmbedderMismatch,
    SourceSuspicious,
)
from rag_indexer_service.indexing.chunking import split_text
from rag_indexer_service.indexing.delta import ReadPlan, choose_read
from rag_indexer_service.indexing.embedders import Embedder, Vectors
from rag_indexer_service.indexing.report import DocFailure, IndexReport
from rag_indexer_service.indexing.sources import CabinetSource, DeltaReads, SourceDocument
from rag_indexer_service.indexing.storable import shown
from rag_indexer_service.indexing.store import (
    CabinetState,
    ChunkRow,
    DocumentWrite,
    GenerationPlan,
    IndexStore,
    SearchHit,
)
from rag_indexer_service.indexing.store.keyword_query import KeywordQuery, build_keyword_query
from rag_indexer_service.indexing.synonyms import Synonyms
from rag_indexer_service.indexing.usage import EmbeddingUsage, current_usage, metering

__all__ = ["IndexOptions", "ProgressCallback", "RAGIndexer"]

log = logging.getLogger(__name__)

EXPANSION_WEIGHT = 1.0
"""How far a query's vector moves towards its synonyms' (1: as far as its own words)."""

ProgressCallback = Callable[[int, int | None], None]
"""Called as `progress(docs_done, docs_total_estimate_or_None)` after every batch."""


def _hash(value: str) -> str:
    return hashlib.blake2b(value.encode("utf-8"), digest_size=16).hexdigest()


def _meta_hash(metadata: Mapping[str, object]) -> str:
    return _hash(json.dumps(metadata, sort_keys=True, ensure_ascii=False))


@dataclass(frozen=True, slots=True)
class IndexOptions:
    chunk_size_chars: int = 1200
    chunk_overlap_chars: int = 200
    batch_size_docs: int = 500
    delta_batch_size_docs: int = 2000
    write_batch_docs: int = 1000
    write_batch_chunks: int = 4000
    embed_batch_size: int = 256
    max_delete_share: float = 0.5
    mass_delete_min_docs: int = 20
    allow_mass_delete: bool = False
    embedding_cache: bool = False
    cache_max_age_s: float = 30 * 86400.0
    cache_max_rows: int = 1_000_000
    cache_prune_every_s: float = 3600.0
    delta_overlap_s: float = 300.0
    full_scan_every_runs: int = 48
    full_scan_max_age_s: float = 86400.0

    @classmethod
    def from_settings(cls, settings: Settings) -> IndexOptions:
        return cls(
            chunk_size_chars=settings.chunk_size_chars,
            chunk_overlap_chars=settings.chunk_overlap_chars,
            batch_size_docs=settings.batch_size_docs,
            delta_batch_size_docs=settings.delta_batch_size_docs,
            write_batch_docs=settings.write_batch_docs,
            write_batch_chunks=settings.write_batch_chunks,
            embed_batch_size=settings.embed_batch_size,
            max_delete_share=settings.max_delete_share,
            mass_delete_min_docs=settings.mass_delete_min_docs,
            allow_mass_delete=settings.allow_mass_delete,
            # The offline embedders compute a vector faster than the cache could look it up.
            embedding_cache=settings.embedding_cache and settings.embedder == "openai",
            cache_max_age_s=settings.embedding_cache_max_age_days * 86400.0,
            cache_max_rows=settings.embedding_cache_max_rows,
            delta_overlap_s=settings.delta_overlap_s,
            full_scan_every_runs=settings.full_scan_every_runs,
            full_scan_max_age_s=settings.full_scan_max_age_s,
        )


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
                # The usual run of a scheduled cabinet: nothing to prepare, count or write
                # (the ANN index, if a build failed or the threshold moved, is retried).
                await self.store.mark_unchanged(cabinet_id)
                await self._refresh_ann_index(cabinet_id)
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
                await self._refresh_ann_index(cabinet_id)
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
                    seen = await self._scan(
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
                        _check_not_all_failed(report)
                    indexed = self.store.indexed_documents(cabinet_id, generation=plan.serving)
                    if delta is not None and read.mode == "delta":
                        # What the source has now and what the index has: two databases.
                        _, serving = await asyncio.gather(
                            self._present(cabinet_id, delta, seen, report), indexed
                        )
                    else:
                        serving = await indexed
                    counts = await self._delete_gone(
                        cabinet_id, seen, serving, report, plan, allow_mass_delete=allow
                    )
                except BaseException:
                    if not plan.rebuild:
                        await self._recount(cabinet_id, state, plan)
                    raise
                finally:
                    _record_usage(report, usage)
            if plan.rebuild:
                # Before the swap, so the new generation answers fast from its first search.
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
            await self._refresh_ann_index(cabinet_id)
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
            await self.store.refresh_ann_index(cabinet_id)
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

    async def _scan(
        self,
        cabinet_id: int,
        documents: AsyncGenerator[SourceDocument, None],
        report: IndexReport,
        plan: GenerationPlan,
        *,
        total: int | None,
        progress: ProgressCallback | None,
        batch_size: int,
    ) -> dict[str, set[str]]:
        """Read, compare and write; returns the doc_ids read, by kind."""
        seen: dict[str, set[str]] = {}
        batch: list[SourceDocument] = []
        # Writes are gathered across batches and sized by what changed (documents or chunks),
        # not by what was read. A write (COPY, full-text vectors: Postgres's CPU) overlaps the
        # next batches' read, hashing and embedding (ours). At most one write is in flight.
        pending: list[DocumentWrite] = []
        pending_tallies: dict[tuple[str, str], Counter[str]] = {}
        pending_chunks = 0
        writing: asyncio.Task[None] | None = None

        async def write() -> None:
            nonlocal writing, pending, pending_tallies, pending_chunks
            if writing is not None:
                await writing
                writing = None
            if pending:
                writing = asyncio.create_task(
                    self._write(cabinet_id, pending, pending_tallies, report, plan)
                )
                pending, pending_tallies, pending_chunks = [], {}, 0

        async def flush() -> None:
            nonlocal pending_chunks
            tallies: dict[str, Counter[str]] = {}
            kind = batch[0].kind if batch else ""
            writes = await self._process_batch(cabinet_id, batch, report, plan, tallies)
            batch.clear()
            pending.extend(writes)
            pending_chunks += sum(len(w.chunks or ()) for w in writes)
            pending_tallies.update(((kind, d), t) for d, t in tallies.items())
            if (
                len(pending) >= self.options.write_batch_docs
                or pending_chunks >= self.options.write_batch_chunks
            ):
                await write()
            if progress is not None:
                progress(report.docs_seen, max(total, report.docs_seen) if total else None)

        try:
            await self._read(documents, report, seen, batch, flush, batch_size)
            if batch or progress is not None:
                await flush()
            await write()
            if writing is not None:
                await writing
        except BaseException as exc:
            await _settle(writing, cancel=isinstance(exc, asyncio.CancelledError))
            raise
        return seen

    async def _read(
        self,
        documents_in: AsyncGenerator[SourceDocument, None],
        report: IndexReport,
        seen: dict[str, set[str]],
        batch: list[SourceDocument],
        flush: Callable[[], Awaitable[None]],
        batch_size: int,
    ) -> None:
        """Stream the source into `batch`, calling `flush` whenever a batch is complete."""
        async with aclosing(documents_in) as documents:
            async for doc in documents:
                report.docs_seen += 1
                of_kind = seen.get(doc.kind)
                if of_kind is None:
                    of_kind = seen[doc.kind] = set()
                if doc.error is not None:
                    # Keep whatever is indexed for it: a rendering problem is not a deletion.
                    of_kind.add(doc.doc_id)
                    self._fail(report, doc.kind, doc.doc_id, doc.error)
                    continue
                if doc.doc_id in of_kind:
                    reason = "duplicate doc_id in source; first occurrence kept"
                    self._fail(report, doc.kind, doc.doc_id, reason)
                    continue
                of_kind.add(doc.doc_id)
                if batch and (batch[0].kind != doc.kind or len(batch) >= batch_size):
                    await flush()
                batch.append(doc)

    async def _write(
        self,
        cabinet_id: int,
        writes: Sequence[DocumentWrite],
        tallies: Mapping[tuple[str, str], Counter[str]],
        report: IndexReport,
        plan: GenerationPlan,
    ) -> None:
        """Write a batch; if Postgres refuses a value in it, write its documents one by one so
        that only the refused ones fail (their counts move to `docs_failed`)."""
        try:
            await self.store.write_batch(cabinet_id, writes, generation=plan.generation)
            return
        except Exception as exc:
            if not is_data_error(exc):
                raise
            log.warning(
                "cabinet %s: Postgres refused a value in a batch of %s documents (%s); "
                "writing them one by one",
                cabinet_id,
                len(writes),
                short_error(exc),
            )
        for write in writes:
            try:
                await self.store.write_batch(cabinet_id, [write], generation=plan.generation)
            except Exception as exc:
                if not is_data_error(exc):
                    raise
                for counter, count in tallies.get((write.kind, write.doc_id), Counter()).items():
                    setattr(report, counter, getattr(report, counter) - count)
                reason = f"Postgres cannot store a value of this document: {short_error(exc)}"
                self._fail(report, write.kind, write.doc_id, reason)

    @staticmethod
    def _fail(report: IndexReport, kind: str, doc_id: str, reason: str) -> None:
        report.docs_failed += 1
        if len(report.failures) < 100:
            report.failures.append(DocFailure(kind, shown(doc_id), shown(reason, 500)))

    async def _process_batch(
        self,
        cabinet_id: int,
        batch: Sequence[SourceDocument],
        report: IndexReport,
        plan: GenerationPlan,
        tallies: dict[str, Counter[str]],
    ) -> list[DocumentWrite]:
        """Compare a batch with the index; what has to be written, embedded where needed.
        `tallies` receives what each written document added to the report's counters."""
        if not batch:
            return []
        kind = batch[0].kind
        doc_ids = [d.doc_id for d in batch]
        known = await self.store.document_hashes(
            cabinet_id, kind, doc_ids, generation=plan.generation
        )
        serving = (
            await self.store.document_hashes(cabinet_id, kind, doc_ids, generation=plan.serving)
            if plan.rebuild
            else known
        )
        writes: list[DocumentWrite] = []
        to_chunk: list[tuple[SourceDocument, str, str]] = []
        for doc in batch:
            content_hash, meta_hash = _hash(doc.text), _meta_hash(doc.metadata)
            old = known.get(doc.doc_id)
            if old is None:
                # In a rebuild, a document the serving generation has is rebuilt: updated.
                outcome = "docs_updated" if doc.doc_id in serving else "docs_added"
            elif old[0] != content_hash:
                outcome = "docs_updated"
            elif old[1] != meta_hash:
                outcome = "docs_metadata_only"
            else:
                report.docs_unchanged += 1
                continue
            setattr(report, outcome, getattr(report, outcome) + 1)
            tallies[doc.doc_id] = Counter({outcome: 1})
            if outcome == "docs_metadata_only":
                writes.append(
                    DocumentWrite(kind, doc.doc_id, content_hash, meta_hash, doc.metadata, None)
                )
            else:
                to_chunk.append((doc, content_hash, meta_hash))
        if to_chunk:
            writes.extend(
                await self._chunk_and_embed(
                    cabinet_id, kind, to_chunk, known, report, plan, tallies
                )
            )
        return writes

    async def _chunk_and_embed(
        self,
        cabinet_id: int,
        kind: str,
        docs: Sequence[tuple[SourceDocument, str, str]],
        known: dict[str, tuple[str, str, int]],
        report: IndexReport,
        plan: GenerationPlan,
        tallies: dict[str, Counter[str]],
    ) -> list[DocumentWrite]:
        # Only vectors of the generation being written are reusable: same embedder.
        updated_ids = [doc.doc_id for doc, _, _ in docs if doc.doc_id in known]
        reusable = await self.store.chunk_vectors(
            cabinet_id, kind, updated_ids, generation=plan.generation
        )
        pieces = [
            split_text(
                doc.text,
                size=self.options.chunk_size_chars,
                overlap=self.options.chunk_overlap_chars,
            )
            for doc, _, _ in docs
        ]
        vectors: dict[str, object] = {}
        missing: dict[str, str] = {}
        for chunks in pieces:
            for chunk in chunks:
                h = _hash(chunk)
                if h in reusable:
                    vectors[h] = reusable[h]
                else:
                    missing.setdefault(h, chunk)
        vectors.update(await self._vectors_for(missing, report))

        writes = []
        for (doc, content_hash, meta_hash), chunks in zip(docs, pieces, strict=True):
            rows = []
            tally = tallies[doc.doc_id]
            for number, chunk in enumerate(chunks):
                h = _hash(chunk)
                if h in reusable:
                    tally["chunks_reused"] += 1
                rows.append(ChunkRow(number, chunk, h, vectors[h]))
            old = known.get(doc.doc_id)
            if old is not None:
                tally["chunks_deleted"] += max(0, old[2] - len(rows))
            report.chunks_reused += tally["chunks_reused"]
            report.chunks_deleted += tally["chunks_deleted"]
            writes.append(
                DocumentWrite(kind, doc.doc_id, content_hash, meta_hash, doc.metadata, rows)
            )
        return writes

    async def _vectors_for(self, texts: dict[str, str], report: IndexReport) -> dict[str, object]:
        """`hash -> vector` for `hash -> text`: from the cache where it has them, else embedded
        (in one call: the embedder batches and parallelises) and then cached."""
        vectors: dict[str, object] = {}
        if self.cache is not None and texts:
            vectors.update(await self.cache.get(self.embedder.id, list(texts)))
            current_usage().cache_hits += len(vectors)
        hashes = [h for h in texts if h not in vectors]
        if not hashes:
            return vectors
        embedded = await self.embedder.embed([texts[h] for h in hashes])
        report.chunks_embedded += len(hashes)
        fresh = dict(zip(hashes, embedded, strict=True))
        if self.cache is not None:
            await self.cache.put(self.embedder.id, fresh)
        vectors.update(fresh)
        return vectors

    async def _delete_gone(
        self,
        cabinet_id: int,
        seen: dict[str, set[str]],
        serving: Mapping[str, tuple[list[str], list[int]]],
        report: IndexReport,
        plan: GenerationPlan,
        *,
        allow_mass_delete: bool,
    ) -> tuple[int, int] | None:
        """Delete what the source no longer has (guarded): documents of the serving generation
        (`serving`: per kind, its doc_ids and chunk counts) not in `seen`. In a rebuild, the
        guard compares with the serving generation, which the swap retires whole; the new one
        only sheds documents an earlier attempt of the rebuild wrote and the source has dropped
        since. Returns the generation's document and chunk counts after the deletion (not for
        a rebuild)."""
        indexed = chunks = 0
        gone: list[tuple[str, str]] = []
        gone_chunks = 0
        nothing: set[str] = set()
        for kind, (doc_ids, chunk_counts) in serving.items():
            present = seen.get(kind, nothing)
            indexed += len(doc_ids)
            chunks += sum(chunk_counts)
            for doc_id, chunk_count in zip(doc_ids, chunk_counts, strict=True):
                if doc_id not in present:
                    gone.append((kind, doc_id))
                    gone_chunks += chunk_count
        if gone and not allow_mass_delete:
            self._guard(cabinet_id, len(gone), indexed, seen)
        if not plan.rebuild:
            deleted_chunks = await self.store.delete_documents(
                cabinet_id, gone, generation=plan.generation
            )
            report.chunks_deleted += deleted_chunks
            report.docs_deleted += len(gone)
            return indexed - len(gone), chunks - deleted_chunks
        report.docs_deleted += len(gone)
        report.chunks_deleted += gone_chunks
        stale = [
            (kind, doc_id)
            for kind, (doc_ids, _) in (
                await self.store.indexed_documents(cabinet_id, generation=plan.generation)
            ).items()
            for doc_id in doc_ids
            if doc_id not in seen.get(kind, nothing)
        ]
        await self.store.delete_documents(cabinet_id, stale, generation=plan.generation)
        return None

    def _guard(
        self, cabinet_id: int, gone: int, indexed: int, seen: Mapping[str, set[str]]
    ) -> None:
        if not any(seen.values()):
            raise SourceSuspicious(
                f"the source returned no documents for cabinet {cabinet_id}, which has "
                f"{indexed} indexed; refusing to delete them (set RAG_ALLOW_MASS_DELETE=true "
                "or pass --allow-mass-delete if this is intended)"
            )
        share = gone / indexed
        if indexed >= self.options.mass_delete_min_docs and share > self.options.max_delete_share:
            raise SourceSuspicious(
                f"cabinet {cabinet_id}: the source no longer has {gone} of {indexed} "
                f"indexed documents ({share:.0%} > RAG_MAX_DELETE_SHARE="
                f"{self.options.max_delete_share:.0%}); refusing to delete them"
            )


def _check_not_all_failed(report: IndexReport) -> None:
    """A scan in which every document failed indexed nothing: the run has failed."""
    if not report.docs_seen or report.docs_failed < report.docs_seen:
        return
    first = report.failures[0]
    raise DocumentsFailed(
        f"every one of the {report.docs_seen} documents of cabinet {report.cabinet_id} "
        f"failed, e.g. {first.kind} {first.doc_id!r}: {first.reason}; check the templates, "
        "metadata and id_column of RAG_SOURCES_FILE (`rag-indexer sources check`)"
    )


async def _settle(writing: asyncio.Task[None] | None, *, cancel: bool) -> None:
    """After a failed scan: a batch being written is complete and consistent, so let it commit
    (the next attempt then finds it unchanged), unless the run itself is being cancelled."""
    if writing is None or writing.done():
        return
    if cancel:
        writing.cancel()
    with contextlib.suppress(BaseException if cancel else Exception):
        await writing


def _record_usage(report: IndexReport, usage: EmbeddingUsage) -> None:
    report.embedding_requests = usage.requests
    report.embedding_tokens = usage.tokens
    report.embedding_retries = usage.retries
    report.embedding_throttled_ms = round(usage.throttled_s * 1000)
    report.embedding_cache_hits = usage.cache_hits
    report.embedding_truncated = usage.truncated
