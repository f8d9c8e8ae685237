"""Delta-read watermarks: per (cabinet, generation, kind), how far `changed_query` has read.

A watermark is what the source's `watermark()` said when the last successful run of that
generation started reading (the indexer subtracts a safety overlap before using it).
`full_at` and `delta_runs` say when the generation was last reconciled in full and how
many delta runs followed; `config_digest` is what the sources file, chunk settings and
embedder were then: any change means the next run reads in full. Rows are written only
after a run succeeded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["Watermark", "Watermarks", "delete_watermarks"]


@dataclass(frozen=True, slots=True)
class Watermark:
    kind: str
    since: dt.datetime
    """The source's watermark when the last successful run started reading this kind."""
    config_digest: str
    full_age_s: float
    """Seconds (our database's clock) since the last full reconciliation."""
    delta_runs: int
    """Delta runs since that reconciliation."""


async def delete_watermarks(
    conn: AsyncConnection, cabinet_id: int, *, generation: int | None = None
) -> None:
    where = "cabinet_id = :c" + ("" if generation is None else " AND generation = :g")
    await conn.execute(
        text(f"DELETE FROM rag_watermarks WHERE {where}"), {"c": cabinet_id, "g": generation}
    )


class Watermarks:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def read(self, cabinet_id: int, *, generation: int) -> dict[str, Watermark]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT kind, since, config_digest, "
                    "EXTRACT(EPOCH FROM now() - full_at)::float8, delta_runs "
                    "FROM rag_watermarks WHERE cabinet_id = :c AND generation = :g"
                ),
                {"c": cabinet_id, "g": generation},
            )
            return {row[0]: Watermark(*row) for row in rows}

    async def advance(
        self,
        cabinet_id: int,
        *,
        generation: int,
        kinds: Sequence[str],
        since: dt.datetime,
        config_digest: str,
        full: bool,
    ) -> None:
        """Record a successful run: `kinds` were read up to `since`; a `full` run resets the
        reconciliation clock. Watermarks of other kinds of the generation are dropped."""
        async with self._engine.begin() as conn:
            await conn.execute(
                text(
                    "DELETE FROM rag_watermarks WHERE cabinet_id = :c AND generation = :g "
                    "AND NOT kind = ANY(CAST(:kinds AS text[]))"
                ),
                {"c": cabinet_id, "g": generation, "kinds": list(kinds)},
            )
            if not kinds:
                return
            await conn.execute(
                text(
                    "INSERT INTO rag_watermarks AS w (cabinet_id, generation, kind, since, "
                    "config_digest, full_at, delta_runs) "
                    "SELECT :c, :g, k, :since, :digest, now(), 0 "
                    "FROM unnest(CAST(:kinds AS text[])) AS k "
                    "ON CONFLICT (cabinet_id, generation, kind) DO UPDATE SET "
                    "since = EXCLUDED.since, config_digest = EXCLUDED.config_digest, "
                    "full_at = CASE WHEN :full THEN now() ELSE w.full_at END, "
                    "delta_runs = CASE WHEN :full THEN 0 ELSE w.delta_runs + 1 END, "
                    "updated_at = now()"
                ),
                {
                    "c": cabinet_id,
                    "g": generation,
                    "kinds": list(kinds),
                    "since": since,
                    "digest": config_digest,
                    "full": full,
                },
            )
