"""`run_stats()`: what the runs of the ledger add up to, in one scan of `rag_runs` (metrics)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["DOC_CHANGES", "RUN_DURATION_BUCKETS_S", "RunStats", "run_stats"]

RUN_DURATION_BUCKETS_S = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)
DOC_CHANGES = ("added", "updated", "metadata_only", "unchanged", "deleted", "failed")


@dataclass(frozen=True, slots=True)
class RunStats:
    runs: dict[tuple[str, str], int]  # (status, trigger) -> count
    # (trigger, status) -> (cumulative bucket counts, count, sum)
    durations: dict[tuple[str, str], tuple[list[int], int, float]]
    documents: dict[str, int]  # change -> documents
    chunks_embedded: int
    chunks_reused: int


def _stats_sql() -> str:
    buckets = ", ".join(f"count(*) FILTER (WHERE d <= {bound})" for bound in RUN_DURATION_BUCKETS_S)
    sums = ", ".join(f"COALESCE(sum(docs_{change}), 0)" for change in DOC_CHANGES)
    return (
        "WITH r AS (SELECT status, trigger, docs_added, docs_updated, docs_metadata_only, "
        "docs_unchanged, docs_deleted, docs_failed, chunks_embedded, chunks_reused, "
        "CASE WHEN status IN ('succeeded', 'failed') THEN COALESCE(duration_s, "
        "EXTRACT(EPOCH FROM finished_at - started_at)::float8) END AS d FROM rag_runs) "
        f"SELECT status, trigger, count(*), count(d), COALESCE(sum(d), 0), {buckets}, {sums}, "
        "COALESCE(sum(chunks_embedded), 0), COALESCE(sum(chunks_reused), 0) "
        "FROM r GROUP BY status, trigger"
    )


async def run_stats(engine: AsyncEngine) -> RunStats:
    nb = len(RUN_DURATION_BUCKETS_S)
    runs: dict[tuple[str, str], int] = {}
    durations: dict[tuple[str, str], tuple[list[int], int, float]] = {}
    documents = dict.fromkeys(DOC_CHANGES, 0)
    embedded = reused = 0
    async with engine.connect() as conn:
        for row in await conn.execute(text(_stats_sql())):
            status, trigger, count, finished, total_s = row[0], row[1], row[2], row[3], row[4]
            runs[(status, trigger)] = int(count)
            if finished:
                durations[(trigger, status)] = (
                    [int(v) for v in row[5 : 5 + nb]],
                    int(finished),
                    float(total_s),
                )
            for change, value in zip(DOC_CHANGES, row[5 + nb : 5 + nb + 6], strict=True):
                documents[change] += int(value)
            embedded += int(row[-2])
            reused += int(row[-1])
    return RunStats(
        runs=runs,
        durations=durations,
        documents=documents,
        chunks_embedded=embedded,
        chunks_reused=reused,
    )
