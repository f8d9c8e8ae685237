"""The deletion diff (step 5 of `indexer.py`): after a scan, delete what the source no longer
has, unless that looks like a broken source (the mass-delete guard: `SourceSuspicious`)."""

from __future__ import annotations

from collections.abc import Mapping

from rag_indexer_service.errors import SourceSuspicious
from rag_indexer_service.indexing.index_options import IndexOptions
from rag_indexer_service.indexing.report import IndexReport
from rag_indexer_service.indexing.store import GenerationPlan, IndexStore

__all__ = ["delete_gone"]


async def delete_gone(
    store: IndexStore,
    options: IndexOptions,
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
        _guard(options, cabinet_id, len(gone), indexed, seen)
    if not plan.rebuild:
        deleted_chunks = await store.delete_documents(cabinet_id, gone, generation=plan.generation)
        report.chunks_deleted += deleted_chunks
        report.docs_deleted += len(gone)
        return indexed - len(gone), chunks - deleted_chunks
    report.docs_deleted += len(gone)
    report.chunks_deleted += gone_chunks
    stale = [
        (kind, doc_id)
        for kind, (doc_ids, _) in (
            await store.indexed_documents(cabinet_id, generation=plan.generation)
        ).items()
        for doc_id in doc_ids
        if doc_id not in seen.get(kind, nothing)
    ]
    await store.delete_documents(cabinet_id, stale, generation=plan.generation)
    return None


def _guard(
    options: IndexOptions, cabinet_id: int, gone: int, indexed: int, seen: Mapping[str, set[str]]
) -> None:
    if not any(seen.values()):
        raise SourceSuspicious(
            f"the source returned no documents for cabinet {cabinet_id}, which has "
            f"{indexed} indexed; refusing to delete them (set RAG_ALLOW_MASS_DELETE=true "
            "or pass --allow-mass-delete if this is intended)"
        )
    share = gone / indexed
    if indexed >= options.mass_delete_min_docs and share > options.max_delete_share:
        raise SourceSuspicious(
            f"cabinet {cabinet_id}: the source no longer has {gone} of {indexed} "
            f"indexed documents ({share:.0%} > RAG_MAX_DELETE_SHARE="
            f"{options.max_delete_share:.0%}); refusing to delete them"
        )
