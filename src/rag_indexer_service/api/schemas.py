"""Request and response bodies of the HTTP API, with the examples its OpenAPI shows."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from rag_indexer_service.indexing.report import COUNTER_TYPES
from rag_indexer_service.runs import RunStatus, Trigger

__all__ = [
    "BulkTriggerResponse",
    "CabinetOut",
    "CabinetPage",
    "CabinetSummary",
    "HealthOut",
    "Progress",
    "ReadyOut",
    "RunCounters",
    "RunFailure",
    "RunLinks",
    "RunOut",
    "RunPage",
    "SchedulerInstance",
    "SchedulerOut",
    "SearchHitOut",
    "SearchIndexOut",
    "SearchRequest",
    "SearchResponse",
    "TickOut",
    "TriggerResponse",
]

MAX_QUERY_CHARS = 1000
MAX_K = 50

_T = "2026-11-28T12:00:00.000000Z"
_T_START = "2026-11-28T12:00:00.250000Z"
_T_BEAT = "2026-11-28T12:00:10.250000Z"


_FORCED = "True when the run scans even if the source's fingerprint is unchanged."


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class RunLinks(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    self_: str = Field(alias="self", description="This run.")
    cabinet: str = Field(description="The run's cabinet.")


class TriggerResponse(BaseModel):
    """The cabinet's run: a new one, or the active one this request joined."""

    model_config = _examples(
        {
            "run_id": 17,
            "cabinet_id": 42,
            "status": "queued",
            "trigger": "manual",
            "deduplicated": False,
            "rerun_requested": False,
            "forced": False,
            "queued_at": _T,
            "links": {"self": "/api/v1/rag/runs/17", "cabinet": "/api/v1/rag/cabinets/42"},
        }
    )

    run_id: int
    cabinet_id: int
    status: RunStatus
    trigger: Trigger = Field(description="Who asked for the run (the first request's trigger).")
    deduplicated: bool = Field(
        description="True when the cabinet already had an active run and no new one was made."
    )
    rerun_requested: bool = Field(
        description="True when the active run was already running: one follow-up run will "
        "index what changed meanwhile."
    )
    forced: bool = Field(description=_FORCED)
    queued_at: dt.datetime
    links: RunLinks


class BulkTriggerResponse(BaseModel):
    model_config = _examples(
        {"requested": 1200, "enqueued": 1187, "already_active": 13, "queue": "rag-manual"}
    )

    requested: int = Field(description="Cabinets the source lists.")
    enqueued: int = Field(description="New runs queued.")
    already_active: int = Field(description="Cabinets that already had an active run.")
    queue: str = Field(description="Broker queue the new runs were sent to.")


class Progress(BaseModel):
    done: int = Field(description="Documents scanned so far in the current attempt.")
    total: int | None = Field(description="Documents expected (from the previous index).")
    percent: float | None = Field(description="done / total × 100, when total is known.")
    eta_s: float | None = Field(
        description="Estimated seconds left after `heartbeat_at`, while running with a known "
        "total and some progress (a rough linear estimate)."
    )
    eta_at: dt.datetime | None = Field(description="Estimated finish time.")


if TYPE_CHECKING:

    class RunCounters(BaseModel):
        def __init__(self, **counters: int | bool | None) -> None: ...

else:
    RunCounters = create_model(
        "RunCounters",
        __doc__="What the run did: `IndexReport`'s counters, null until it succeeded.",
        __config__=ConfigDict(extra="forbid"),
        **{name: (kind | None, None) for name, kind in COUNTER_TYPES.items()},
    )


class RunFailure(BaseModel):
    kind: str
    doc_id: str
    reason: str


_RUN_EXAMPLE: dict[str, Any] = {
    "run_id": 17,
    "cabinet_id": 42,
    "trigger": "manual",
    "status": "running",
    "queue": "rag-manual",
    "attempt": 1,
    "rerun_requested": False,
    "forced": False,
    "follow_up_of": None,
    "counters": dict.fromkeys(COUNTER_TYPES),
    "mode": None,
    "full_reason": None,
    "progress": {
        "done": 500,
        "total": 2000,
        "percent": 25.0,
        "eta_s": 30.0,
        "eta_at": "2026-11-28T12:00:40.250000Z",
    },
    "duration_s": None,
    "error": None,
    "failures": [],
    "queued_at": _T,
    "sent_at": _T,
    "started_at": _T_START,
    "heartbeat_at": _T_BEAT,
    "finished_at": None,
    "updated_at": _T_BEAT,
    "links": {"self": "/api/v1/rag/runs/17", "cabinet": "/api/v1/rag/cabinets/42"},
}


class RunOut(BaseModel):
    """One indexing run as the ledger records it."""

    model_config = _examples(_RUN_EXAMPLE)

    run_id: int
    cabinet_id: int
    trigger: Trigger
    status: RunStatus
    queue: str
    attempt: int = Field(description="Attempts started so far (0 while queued).")
    rerun_requested: bool
    forced: bool = Field(description=_FORCED)
    follow_up_of: int | None = Field(description="The run this one follows up, if any.")
    counters: RunCounters = Field(description="What the run did (set when it succeeded).")
    mode: Literal["delta", "full", "skipped"] | None = Field(
        description="How the run read the source (set when it succeeded): only rows changed "
        "since the watermarks, everything, or nothing (fingerprint unchanged)."
    )
    full_reason: str | None = Field(description="Why the run read the source in full.")
    progress: Progress
    duration_s: float | None
    error: str | None = Field(description="Why the last attempt failed.")
    failures: list[RunFailure] = Field(
        description="Documents that could not be indexed (first 100)."
    )
    queued_at: dt.datetime
    sent_at: dt.datetime | None
    started_at: dt.datetime | None
    heartbeat_at: dt.datetime | None
    finished_at: dt.datetime | None
    updated_at: dt.datetime
    links: RunLinks


class RunPage(BaseModel):
    model_config = _examples(
        {"runs": [_RUN_EXAMPLE], "next_cursor": "h", "next": "/api/v1/rag/runs?limit=1&cursor=h"}
    )

    runs: list[RunOut] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        description="Opaque token for the next page (pass as `cursor`); null on the last page."
    )
    next: str | None = Field(description="URL of the next page, with the same filters.")


class SearchIndexOut(BaseModel):
    """How searches read the cabinet's index now."""

    path: Literal["ann", "exact"] = Field(
        description="`ann`: through the cabinet's own IVFFlat index; `exact`: a scan of its "
        "vectors (below RAG_SEARCH_ANN_MIN_CHUNKS chunks, or until its index is built)."
    )
    ann_lists: int | None = Field(description="The ANN index's lists (null: `exact`).")
    build_due: bool = Field(
        description="An index of the cabinet is to be built, rebuilt or dropped: the "
        "`rag-indexes` job a worker queued after its last run does it (searches meanwhile go "
        "by `path`); if that job was lost or failed for good, the cabinet's next run queues "
        "it again (the scheduler's next tick runs a big cabinet missing its indexes even if "
        "unchanged)."
    )


class CabinetOut(BaseModel):
    """A cabinet's index as this service holds it."""

    model_config = _examples(
        {
            "cabinet_id": 42,
            "in_source": True,
            "indexed": True,
            "documents": 1834,
            "chunks": 2210,
            "embedder_id": "hashing-v1-384",
            "embedder_current": True,
            "source_fingerprint": "1834:17",
            "last_indexed_at": _T,
            "last_success_at": _T,
            "staleness_s": 3600.5,
            "last_run": {**_RUN_EXAMPLE, "status": "succeeded"},
            "active_run": None,
            "search_index": {"path": "exact", "ann_lists": None, "build_due": False},
            "links": {
                "self": "/api/v1/rag/cabinets/42",
                "runs": "/api/v1/rag/runs?cabinet_id=42",
                "search": "/api/v1/rag/cabinets/42/search",
                "index": "/api/v1/rag/index/42",
            },
        }
    )

    cabinet_id: int
    in_source: bool = Field(description="Whether the source lists the cabinet now.")
    indexed: bool = Field(description="Whether an index run of the cabinet ever succeeded.")
    documents: int
    chunks: int
    embedder_id: str | None = Field(description="Embedder the index was built with.")
    embedder_current: bool | None = Field(
        description="Whether that is this service's embedder (false: the next run rebuilds)."
    )
    source_fingerprint: str | None
    last_indexed_at: dt.datetime | None
    last_success_at: dt.datetime | None
    staleness_s: float | None = Field(description="Seconds since the last successful run.")
    last_run: RunOut | None = Field(description="The cabinet's last finished run.")
    active_run: RunOut | None = Field(description="The queued or running run, if any.")
    search_index: SearchIndexOut
    links: dict[str, str] = Field(
        description="`self`; `runs` (its ledger); `search` (POST); `index` (POST: a run)."
    )


class SearchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"query": "кроссовки для бега", "k": 5, "min_similarity": 0.2}]
        },
    )

    query: str = Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        pattern=r"^[^\x00]*[^\s\x00][^\x00]*$",
        description="What to look for (1..1000 characters, not only spaces).",
    )
    k: int = Field(default=5, ge=1, le=MAX_K, description="How many results (1..50).")
    min_similarity: float | None = Field(
        default=None,
        strict=True,  # a number, not `false` or "0.3"
        ge=-1.0,
        le=1.0,
        description=(
            "Drop hits the keyword side did not find whose cosine similarity to the query is "
            "below this; an empty result then means nothing relevant. Unset: keep all."
        ),
    )

    @field_validator("query")
    @classmethod
    def _encodable(cls, value: str) -> str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text") from None
        return value


class SearchHitOut(BaseModel):
    kind: str = Field(description="Document kind (from the sources file).")
    doc_id: str
    chunk_no: int
    score: float = Field(
        description="Weighted reciprocal-rank fusion: 1.5 / (60 + keyword rank) + "
        "1 / (60 + vector rank), plus 1/60 when the query names or suggests the hit's kind."
    )
    content: str
    metadata: dict[str, Any]
    similarity: float = Field(
        description="Cosine similarity of the chunk's vector to the query's (-1..1)."
    )
    vector_rank: int | None = Field(
        description="Rank among the vector side's candidates (null: not among them)."
    )
    text_rank: int | None = Field(
        description="Rank among the keyword matches (null: the chunk does not match the query)."
    )
    matched_terms: list[str] = Field(
        description="Query words that occur in the chunk in some inflected form (in query order)."
    )
    expansions: list[str] = Field(
        default_factory=list,
        description='Synonyms the chunk was found by, as "query words → synonym".',
    )
    kind_match: bool = Field(
        default=False,
        description=(
            'The query names the hit\'s kind ("отзывы о доставке" and a review) or suggests '
            'it ("проблемы с размером": a complaint, so a review).'
        ),
    )


class SearchResponse(BaseModel):
    model_config = _examples(
        {
            "cabinet_id": 42,
            "query": "кроссовки для бега",
            "k": 5,
            "took_ms": 4.2,
            "results": [
                {
                    "kind": "product",
                    "doc_id": "1001",
                    "chunk_no": 0,
                    "score": 0.0410,
                    "content": "Кроссовки беговые ...",
                    "metadata": {"brand": "Nord", "price": 4990},
                    "similarity": 0.61,
                    "vector_rank": 1,
                    "text_rank": 1,
                    "matched_terms": ["кроссовки"],
                    "expansions": ["для бега → беговые"],
                    "kind_match": False,
                }
            ],
        }
    )

    cabinet_id: int
    query: str
    k: int
    took_ms: float
    results: list[SearchHitOut]


class TickOut(BaseModel):
    tick_at: dt.datetime
    claimed_by: str
    claimed_at: dt.datetime
    finished_at: dt.datetime | None
    cabinets_seen: int
    cabinets_enqueued: int
    cabinets_skipped: int
    cabinets_active: int
    cabinets_purged: int
    error: str | None


class SchedulerInstance(BaseModel):
    scheduler_id: str
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    heartbeat_age_s: float = Field(description="Seconds since its last heartbeat.")
    alive: bool = Field(
        description="Not stopped, and beaten within 3 × RAG_REAPER_INTERVAL_S "
        "(as `rag-indexer status` decides)."
    )
    stopped_at: dt.datetime | None = Field(description="When it stopped cleanly, if it did.")
    gone_since: dt.datetime | None = Field(
        description="Not alive: when it stopped, or its last heartbeat; null while alive."
    )
    last_tick_at: dt.datetime | None
    next_tick_at: dt.datetime | None
    last_reaper_at: dt.datetime | None
    last_reaper: dict[str, Any] | None


class SchedulerOut(BaseModel):
    """What the scheduler daemons recorded (nothing here is computed by the API)."""

    model_config = _examples(
        {
            "last_tick": {
                "tick_at": "2026-11-28T12:00:00Z",
                "claimed_by": "host-a:4121",
                "claimed_at": "2026-11-28T12:00:00.412Z",
                "finished_at": "2026-11-28T12:00:02.010Z",
                "cabinets_seen": 1200,
                "cabinets_enqueued": 1187,
                "cabinets_skipped": 0,
                "cabinets_active": 13,
                "cabinets_purged": 0,
                "error": None,
            },
            "next_tick_at": "2026-11-28T18:00:00Z",
            "last_reaper_at": "2026-11-28T12:05:00Z",
            "schedulers": [
                {
                    "scheduler_id": "host-a:4121",
                    "started_at": "2026-11-27T09:00:00Z",
                    "heartbeat_at": "2026-11-28T12:05:00Z",
                    "heartbeat_age_s": 4.1,
                    "alive": True,
                    "stopped_at": None,
                    "gone_since": None,
                    "last_tick_at": "2026-11-28T12:00:00Z",
                    "next_tick_at": "2026-11-28T18:00:00Z",
                    "last_reaper_at": "2026-11-28T12:05:00Z",
                    "last_reaper": {"resent": 0, "recovered": 0, "failed": 0},
                }
            ],
        }
    )

    last_tick: TickOut | None = Field(description="The newest claimed tick.")
    next_tick_at: dt.datetime | None = Field(
        description="Next tick, as the freshest scheduler set it."
    )
    last_reaper_at: dt.datetime | None
    schedulers: list[SchedulerInstance] = Field(description="Newest heartbeat first.")


class HealthOut(BaseModel):
    model_config = _examples({"status": "ok"})

    status: Literal["ok"]


class ReadyOut(BaseModel):
    model_config = _examples({"status": "ready", "checks": {"database": "ok", "broker": "ok"}})

    status: Literal["ready"]
    checks: dict[str, str]


class CabinetSummary(BaseModel):
    """One row of the cabinets listing."""

    cabinet_id: int
    indexed: bool = Field(description="Whether an index run of the cabinet ever succeeded.")
    documents: int
    chunks: int
    embedder_id: str | None
    embedder_current: bool | None = Field(
        description="Whether the index was built by this service's embedder."
    )
    last_indexed_at: dt.datetime | None
    last_success_at: dt.datetime | None
    staleness_s: float | None = Field(description="Seconds since the last successful run.")
    stale: bool = Field(description="Last success older than `stale_after_s`.")
    failing: bool = Field(description="The cabinet's last finished run failed.")
    last_run: RunOut | None = Field(description="The cabinet's last finished run.")
    active_run: RunOut | None = Field(description="The queued or running run, if any.")
    links: dict[str, str]


class CabinetPage(BaseModel):
    model_config = _examples(
        {
            "cabinets": [
                {
                    "cabinet_id": 42,
                    "indexed": True,
                    "documents": 1834,
                    "chunks": 2210,
                    "embedder_id": "hashing-v1-384",
                    "embedder_current": True,
                    "last_indexed_at": _T,
                    "last_success_at": _T,
                    "staleness_s": 3600.5,
                    "stale": False,
                    "failing": False,
                    "last_run": {**_RUN_EXAMPLE, "status": "succeeded"},
                    "active_run": None,
                    "links": {
                        "self": "/api/v1/rag/cabinets/42",
                        "runs": "/api/v1/rag/runs?cabinet_id=42",
                        "search": "/api/v1/rag/cabinets/42/search",
                        "index": "/api/v1/rag/index/42",
                    },
                }
            ],
            "total": 1200,
            "next_cursor": "1e",
            "next": "/api/v1/rag/cabinets?limit=50&cursor=1e",
        }
    )

    cabinets: list[CabinetSummary]
    total: int = Field(description="Cabinets matching the filters, over every page.")
    next_cursor: str | None = Field(
        description="Opaque token for the next page (pass as `cursor`); null on the last page."
    )
    next: str | None = Field(description="URL of the next page, with the same filters.")
