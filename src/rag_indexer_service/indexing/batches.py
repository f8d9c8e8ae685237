"""One scan of a cabinet: stream its documents in batches, compare each batch with the index,
chunk and embed what changed, and write the changes (steps 3 and 4 of `indexer.py`).

`BatchPipeline.scan()` returns the doc_ids it read, by kind, for the deletion diff
(`deletions.py`). Writes are gathered across batches and sized by what changed; at most one
is in flight while the next batches are read and embedded. If Postgres refuses a value in a
write, its documents are written one by one so that only the refused ones fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing

from rag_indexer_service.db.engine import is_data_error, short_error
from rag_indexer_service.errors import DocumentsFailed
from rag_indexer_service.indexing.chunking import split_text
from rag_indexer_service.indexing.embedders import Embedder
from rag_indexer_service.indexing.index_options import IndexOptions
from rag_indexer_service.indexing.report import DocFailure, IndexReport
from rag_indexer_service.indexing.sources import SourceDocument
from rag_indexer_service.indexing.storable import shown
from rag_indexer_service.indexing.store import (
    ChunkRow,
    DocumentWrite,
    GenerationPlan,
    IndexStore,
    VectorCache,
)
from rag_indexer_service.indexing.usage import current_usage

__all__ = ["BatchPipeline", "ProgressCallback", "check_not_all_failed"]

# The indexer's logger: operators filter on it, and its lines read as one run's.
log = logging.getLogger("rag_indexer_service.indexing.indexer")

ProgressCallback = Callable[[int, int | None], None]
"""Called as `progress(docs_done, docs_total_estimate_or_None)` after every batch."""


def _hash(value: str) -> str:
    return hashlib.blake2b(value.encode("utf-8"), digest_size=16).hexdigest()


def _meta_hash(metadata: Mapping[str, object]) -> str:
    return _hash(json.dumps(metadata, sort_keys=True, ensure_ascii=False))


class BatchPipeline:
    """Reads, compares, embeds and writes the documents of one scan."""

    def __init__(
        self,
        *,
        store: IndexStore,
        embedder: Embedder,
        cache: VectorCache | None,
        options: IndexOptions,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.cache = cache
        self.options = options

    async def scan(
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


def check_not_all_failed(report: IndexReport) -> None:
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
