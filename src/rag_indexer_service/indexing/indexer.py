"""`RAGIndexer.index_cabinet()`: bring one cabinet's index in line with its source.

1. Take the cabinet's advisory lock (a second concurrent run gets `CabinetBusy`).
2. Stream the source's documents; per batch, compare content and metadata hashes with the
   ledger: unchanged costs nothing, a metadata-only change rewrites metadata, a content change
   re-chunks and embeds only chunks whose text is new (others keep their vectors).
3. Write each batch in one transaction.
4. Only after the whole scan succeeded, delete documents the source no longer has, unless that
   looks like a broken source (mass-delete guard).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass

from rag_indexer_service.config import Settings
from rag_indexer_service.errors import CabinetNotFound, SourceSuspicious
from rag_indexer_service.indexing.chunking import split_text
from rag_indexer_service.indexing.embedders import Embedder
from rag_indexer_service.indexing.report import DocFailure, IndexReport
from rag_indexer_service.indexing.sources import CabinetSource, SourceDocument
from rag_indexer_service.indexing.store import ChunkRow, DocumentWrite, SearchHit, Store

__all__ = ["IndexOptions", "ProgressCallback", "RAGIndexer"]

log = logging.getLogger(__name__)

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
    embed_batch_size: int = 256
    max_delete_share: float = 0.5
    mass_delete_min_docs: int = 20
    allow_mass_delete: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> IndexOptions:
        return cls(
            chunk_size_chars=settings.chunk_size_chars,
            chunk_overlap_chars=settings.chunk_overlap_chars,
            batch_size_docs=settings.batch_size_docs,
            embed_batch_size=settings.embed_batch_size,
            max_delete_share=settings.max_delete_share,
            mass_delete_min_docs=settings.mass_delete_min_docs,
            allow_mass_delete=settings.allow_mass_delete,
        )


class RAGIndexer:
    """Indexes cabinets from a `CabinetSource` into the pgvector `Store` with an `Embedder`."""

    def __init__(
        self,
        *,
        source: CabinetSource,
        store: Store,
        embedder: Embedder,
        options: IndexOptions | None = None,
    ) -> None:
        self.source = source
        self.store = store
        self.embedder = embedder
        self.options = options or IndexOptions()

    async def index_cabinet(
        self,
        cabinet_id: int,
        *,
        progress: ProgressCallback | None = None,
        allow_mass_delete: bool | None = None,
    ) -> IndexReport:
        started = time.perf_counter()
        report = IndexReport(cabinet_id=cabinet_id)
        if not await self.source.cabinet_exists(cabinet_id):
            raise CabinetNotFound(cabinet_id)
        async with self.store.cabinet_lock(cabinet_id):
            fingerprint = await self.source.fingerprint(cabinet_id)
            state = await self.store.cabinet_state(cabinet_id)
            rebuild = state is not None and state.embedder_id not in (None, self.embedder.id)
            total = state.document_count if state and state.document_count else None
            seen = await self._scan(
                cabinet_id, report, rebuild=rebuild, total=total, progress=progress
            )
            allow = (
                self.options.allow_mass_delete if allow_mass_delete is None else allow_mass_delete
            )
            await self._delete_gone(cabinet_id, seen, report, allow_mass_delete=allow)
            await self.store.save_cabinet_state(
                cabinet_id, embedder_id=self.embedder.id, fingerprint=fingerprint, success=True
            )
        report.duration_s = round(time.perf_counter() - started, 3)
        log.info(
            "indexed cabinet %s: %s",
            cabinet_id,
            {k: v for k, v in report.to_dict().items() if k not in ("failures", "cabinet_id")},
        )
        return report

    async def search(self, cabinet_id: int, query: str, *, k: int = 10) -> list[SearchHit]:
        vectors = await self.embedder.embed([query])
        return await self.store.search(cabinet_id, query_text=query, query_vector=vectors[0], k=k)

    async def _scan(
        self,
        cabinet_id: int,
        report: IndexReport,
        *,
        rebuild: bool,
        total: int | None,
        progress: ProgressCallback | None,
    ) -> set[tuple[str, str]]:
        seen: set[tuple[str, str]] = set()
        batch: list[SourceDocument] = []

        async def flush() -> None:
            await self._process_batch(cabinet_id, batch, report, rebuild=rebuild)
            batch.clear()
            if progress is not None:
                progress(report.docs_seen, max(total, report.docs_seen) if total else None)

        async with aclosing(self.source.iter_documents(cabinet_id)) as documents:
            async for doc in documents:
                report.docs_seen += 1
                key = (doc.kind, doc.doc_id)
                if doc.error is not None:
                    # Keep whatever is indexed for it: a rendering problem is not a deletion.
                    seen.add(key)
                    self._fail(report, doc, doc.error)
                    continue
                if key in seen:
                    self._fail(report, doc, "duplicate doc_id in source; first occurrence kept")
                    continue
                seen.add(key)
                if batch and (
                    batch[0].kind != doc.kind or len(batch) >= self.options.batch_size_docs
                ):
                    await flush()
                batch.append(doc)
        if batch or progress is not None:
            await flush()
        return seen

    @staticmethod
    def _fail(report: IndexReport, doc: SourceDocument, reason: str) -> None:
        report.docs_failed += 1
        if len(report.failures) < 100:
            report.failures.append(DocFailure(doc.kind, doc.doc_id, reason))

    async def _process_batch(
        self,
        cabinet_id: int,
        batch: Sequence[SourceDocument],
        report: IndexReport,
        *,
        rebuild: bool,
    ) -> None:
        if not batch:
            return
        kind = batch[0].kind
        known = await self.store.document_hashes(cabinet_id, kind, [d.doc_id for d in batch])
        writes: list[DocumentWrite] = []
        to_chunk: list[tuple[SourceDocument, str, str]] = []
        for doc in batch:
            content_hash, meta_hash = _hash(doc.text), _meta_hash(doc.metadata)
            old = known.get(doc.doc_id)
            if old is None:
                report.docs_added += 1
            elif old[0] != content_hash or rebuild:
                report.docs_updated += 1
            elif old[1] != meta_hash:
                report.docs_metadata_only += 1
                writes.append(
                    DocumentWrite(kind, doc.doc_id, content_hash, meta_hash, doc.metadata, None)
                )
                continue
            else:
                report.docs_unchanged += 1
                continue
            to_chunk.append((doc, content_hash, meta_hash))
        if to_chunk:
            writes.extend(
                await self._chunk_and_embed(
                    cabinet_id, kind, to_chunk, known, report, rebuild=rebuild
                )
            )
        await self.store.write_batch(cabinet_id, writes)

    async def _chunk_and_embed(
        self,
        cabinet_id: int,
        kind: str,
        docs: Sequence[tuple[SourceDocument, str, str]],
        known: dict[str, tuple[str, str, int]],
        report: IndexReport,
        *,
        rebuild: bool,
    ) -> list[DocumentWrite]:
        updated_ids = [doc.doc_id for doc, _, _ in docs if doc.doc_id in known]
        reusable = {} if rebuild else await self.store.chunk_vectors(cabinet_id, kind, updated_ids)
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
        hashes, texts = list(missing), list(missing.values())
        step = self.options.embed_batch_size
        for start in range(0, len(texts), step):
            embedded = await self.embedder.embed(texts[start : start + step])
            vectors.update(zip(hashes[start : start + step], embedded, strict=True))
        report.chunks_embedded += len(texts)

        writes = []
        for (doc, content_hash, meta_hash), chunks in zip(docs, pieces, strict=True):
            rows = []
            for number, chunk in enumerate(chunks):
                h = _hash(chunk)
                if h in reusable:
                    report.chunks_reused += 1
                rows.append(ChunkRow(number, chunk, h, vectors[h]))
            old = known.get(doc.doc_id)
            if old is not None:
                report.chunks_deleted += max(0, old[2] - len(rows))
            writes.append(
                DocumentWrite(kind, doc.doc_id, content_hash, meta_hash, doc.metadata, rows)
            )
        return writes

    async def _delete_gone(
        self,
        cabinet_id: int,
        seen: set[tuple[str, str]],
        report: IndexReport,
        *,
        allow_mass_delete: bool,
    ) -> None:
        indexed = 0
        gone: list[tuple[str, str]] = []
        async with aclosing(self.store.iter_document_keys(cabinet_id)) as keys:
            async for kind, doc_id, _ in keys:
                indexed += 1
                if (kind, doc_id) not in seen:
                    gone.append((kind, doc_id))
        if not gone:
            return
        if not allow_mass_delete:
            if not seen:
                raise SourceSuspicious(
                    f"the source returned no documents for cabinet {cabinet_id}, which has "
                    f"{indexed} indexed; refusing to delete them (set RAG_ALLOW_MASS_DELETE=true "
                    "or pass --allow-mass-delete if this is intended)"
                )
            share = len(gone) / indexed
            if (
                indexed >= self.options.mass_delete_min_docs
                and share > self.options.max_delete_share
            ):
                raise SourceSuspicious(
                    f"cabinet {cabinet_id}: the source no longer has {len(gone)} of {indexed} "
                    f"indexed documents ({share:.0%} > RAG_MAX_DELETE_SHARE="
                    f"{self.options.max_delete_share:.0%}); refusing to delete them"
                )
        report.chunks_deleted += await self.store.delete_documents(cabinet_id, gone)
        report.docs_deleted += len(gone)
