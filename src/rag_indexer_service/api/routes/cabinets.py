"""`GET /rag/cabinets/{cabinet_id}` (index state) and `POST .../search` (hybrid search)."""

from __future__ import annotations

import time

from rag_indexer_service.api.deps import CabinetId, LedgerDep, RuntimeDep
from rag_indexer_service.api.errors import NotFound, error_responses
from rag_indexer_service.api.routes.base import protected_router
from rag_indexer_service.api.schemas import CabinetOut, SearchHitOut, SearchRequest, SearchResponse
from rag_indexer_service.api.views import API_PREFIX, run_out
from rag_indexer_service.errors import CabinetNotIndexed
from rag_indexer_service.service import search_indexed_cabinet

__all__ = ["router"]

router = protected_router("cabinets")


@router.get(
    "/rag/cabinets/{cabinet_id}",
    summary="A cabinet's index: documents, chunks, embedder, last success, staleness",
    responses=error_responses(404, 422, 502),
)
async def get_cabinet(cabinet_id: CabinetId, runtime: RuntimeDep, ledger: LedgerDep) -> CabinetOut:
    record = await runtime.store.cabinet_record(cabinet_id)
    in_source = await runtime.source.cabinet_exists(cabinet_id)
    if record is None and not in_source:
        raise NotFound(
            f"cabinet {cabinet_id} is neither indexed nor listed by the source",
            code="cabinet_not_found",
        )
    last_run = None
    if record is not None and record.last_run_id is not None:
        last_run = await ledger.get(record.last_run_id)
    active_run = await ledger.active_run(cabinet_id)
    embedder_id = None if record is None else record.embedder_id
    return CabinetOut(
        cabinet_id=cabinet_id,
        in_source=in_source,
        indexed=record is not None and record.last_success_at is not None,
        documents=0 if record is None else record.document_count,
        chunks=0 if record is None else record.chunk_count,
        embedder_id=embedder_id,
        embedder_current=None
        if embedder_id is None
        else embedder_id == runtime.indexer.embedder.id,
        source_fingerprint=None if record is None else record.source_fingerprint,
        last_indexed_at=None if record is None else record.last_indexed_at,
        last_success_at=None if record is None else record.last_success_at,
        staleness_s=None
        if record is None or record.staleness_s is None
        else round(record.staleness_s, 3),
        last_run=None if last_run is None else run_out(last_run),
        active_run=None if active_run is None else run_out(active_run),
        links={"runs": f"{API_PREFIX}/rag/runs?cabinet_id={cabinet_id}"},
    )


@router.post(
    "/rag/cabinets/{cabinet_id}/search",
    summary="Hybrid (vector + keyword) search in one cabinet's index",
    description=(
        "Results come from this cabinet's index only. 409 `embedder_mismatch`: the index was "
        "built by another embedder than this service's (its next run rebuilds it)."
    ),
    responses=error_responses(404, 409, 413, 422, 502),
)
async def search_cabinet(
    cabinet_id: CabinetId, body: SearchRequest, runtime: RuntimeDep
) -> SearchResponse:
    started = time.perf_counter()
    try:
        hits = await search_indexed_cabinet(
            store=runtime.store,
            indexer=runtime.indexer,
            cabinet_id=cabinet_id,
            query=body.query,
            k=body.k,
        )
    except CabinetNotIndexed as exc:
        raise NotFound(
            f"{exc}; POST {API_PREFIX}/rag/index/{cabinet_id}", code="cabinet_not_indexed"
        ) from None
    return SearchResponse(
        cabinet_id=cabinet_id,
        query=body.query,
        k=body.k,
        took_ms=round((time.perf_counter() - started) * 1000, 2),
        results=[
            SearchHitOut(
                kind=h.kind,
                doc_id=h.doc_id,
                chunk_no=h.chunk_no,
                score=round(h.score, 6),
                content=h.content,
                metadata=h.metadata,
                vector_rank=h.vector_rank,
                text_rank=h.text_rank,
            )
            for h in hits
        ],
    )
