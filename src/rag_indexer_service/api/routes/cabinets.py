"""`GET /rag/cabinets` (the listing), `GET /rag/cabinets/{cabinet_id}` (index state) and
`POST .../search` (hybrid search)."""

from __future__ import annotations

import time
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query, Request

from rag_indexer_service.api.cabinet_list import CabinetFilter, CabinetSort, list_cabinets
from rag_indexer_service.api.deps import CabinetId, LedgerDep, RuntimeDep
from rag_indexer_service.api.errors import NotFound, error_responses
from rag_indexer_service.api.pagination import CURSOR_PATTERN, decode_cursor, encode_cursor
from rag_indexer_service.api.routes.base import protected_router
from rag_indexer_service.api.schemas import (
    CabinetOut,
    CabinetPage,
    SearchHitOut,
    SearchIndexOut,
    SearchRequest,
    SearchResponse,
)
from rag_indexer_service.api.views import API_PREFIX, cabinet_links, cabinet_summary, run_out
from rag_indexer_service.errors import CabinetNotIndexed
from rag_indexer_service.service import search_indexed_cabinet

__all__ = ["router"]

router = protected_router("cabinets")

MAX_PAGE = 500
DEFAULT_STALE_AFTER_S = 86400.0


@router.get(
    "/rag/cabinets",
    summary="Every cabinet the source lists, with its index state, one page at a time",
    description=(
        "Filters: `status=failed` (last finished run failed), `stale` (last success older "
        "than `stale_after_s`), `never` (never indexed successfully); `q`: id prefix. "
        "`sort=staleness` lists the most stale first (never indexed before all)."
    ),
    responses=error_responses(422, 502),
)
async def get_cabinets(
    request: Request,
    runtime: RuntimeDep,
    ledger: LedgerDep,
    status: Annotated[CabinetFilter | None, Query(description="Only these cabinets.")] = None,
    q: Annotated[
        str | None,
        Query(pattern=r"^[0-9]{1,19}$", description="Cabinet id prefix.", examples=["4"]),
    ] = None,
    sort: Annotated[CabinetSort, Query(description="`id` or `staleness`.")] = "id",
    stale_after_s: Annotated[
        float, Query(gt=0, le=10 * 365 * 86400, description="What `stale` means, in seconds.")
    ] = DEFAULT_STALE_AFTER_S,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Cabinets per page.")] = 50,
    cursor: Annotated[
        str | None,
        Query(pattern=CURSOR_PATTERN, description="`next_cursor` of the previous page (opaque)."),
    ] = None,
) -> CabinetPage:
    listing = await list_cabinets(
        source=runtime.source,
        store=runtime.store,
        ledger=ledger,
        status=status,
        id_prefix=q,
        sort=sort,
        stale_after_s=stale_after_s,
        limit=limit,
        offset=0 if cursor is None else decode_cursor(cursor),
    )
    next_cursor = None if listing.next_offset is None else encode_cursor(listing.next_offset)
    next_url = None
    if next_cursor is not None:
        params = {**request.query_params, "cursor": next_cursor}
        next_url = f"{request.url.path}?{urlencode(params)}"
    embedder_id = runtime.indexer.embedder.id
    return CabinetPage(
        cabinets=[
            cabinet_summary(c, embedder_id=embedder_id, stale_after_s=stale_after_s)
            for c in listing.cabinets
        ],
        total=listing.total,
        next_cursor=next_cursor,
        next=next_url,
    )


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
    search_index = await runtime.store.search_index_state(cabinet_id)
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
        search_index=SearchIndexOut(
            path="exact" if search_index.ann_lists is None else "ann",
            ann_lists=search_index.ann_lists,
            build_due=search_index.build_due,
        ),
        links=cabinet_links(cabinet_id),
    )


@router.post(
    "/rag/cabinets/{cabinet_id}/search",
    summary="Hybrid (vector + keyword) search in one cabinet's index",
    description=(
        "Results come from this cabinet's index only. Each hit shows why it was found: cosine "
        "`similarity`, its rank on the vector and the keyword side, the query words it "
        "contains, and the fused `score`; `min_similarity` drops weak vector-only hits. "
        "409 `embedder_mismatch`: the index was built by another embedder than this "
        "service's (its next run rebuilds it)."
    ),
    responses=error_responses(404, 409, 413, 422, 502),
)
async def search_cabinet(
    cabinet_id: CabinetId, body: SearchRequest, runtime: RuntimeDep
) -> SearchResponse:
    started = time.perf_counter()
    try:
        hits = await search_indexed_cabinet(
            source=runtime.source,
            store=runtime.store,
            indexer=runtime.indexer,
            cabinet_id=cabinet_id,
            query=body.query,
            k=body.k,
            min_similarity=body.min_similarity,
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
                similarity=round(h.similarity, 6),
                vector_rank=h.vector_rank,
                text_rank=h.text_rank,
                matched_terms=list(h.matched_terms),
                expansions=list(h.expansions),
                kind_match=h.kind_match,
            )
            for h in hits
        ],
    )
