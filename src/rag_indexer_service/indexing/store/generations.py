"""Generations of a cabinet's index: how an embedder change swaps in a rebuilt index.

`rag_cabinets.active_generation` names the rows searches read; `embedder_id` says which
embedder built them. A run with the same embedder writes into the active generation (the
incremental path). A run with another embedder writes a new `building_generation`, invisible
to searches, and `activate()` flips the pointer in one transaction when the rebuild is
complete; the previous generation becomes `retired_generation` and is deleted right after
(or by the cabinet's next run, if the process died in between). A failed rebuild leaves the
old generation serving; the next run with the same embedder resumes the rebuild.

Every method runs under the cabinet's advisory lock (`PgVectorStore.cabinet_lock`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rag_indexer_service.indexing.store.rows import delete_rows
from rag_indexer_service.indexing.store.watermarks import delete_watermarks

__all__ = ["STATE_COLUMNS", "CabinetState", "GenerationPlan", "Generations"]

STATE_COLUMNS = (
    "embedder_id, source_fingerprint, document_count, chunk_count, active_generation, "
    "building_generation, building_embedder_id, retired_generation"
)


@dataclass(frozen=True, slots=True)
class CabinetState:
    embedder_id: str | None
    """The embedder of the generation searches read."""
    source_fingerprint: str | None
    document_count: int
    chunk_count: int
    active_generation: int = 0
    building_generation: int | None = None
    """A rebuild for another embedder under way (or failed, to be resumed), not yet visible."""
    building_embedder_id: str | None = None
    retired_generation: int | None = None
    """Replaced by a rebuild but not deleted yet (the next prepared run deletes it)."""


@dataclass(frozen=True, slots=True)
class GenerationPlan:
    """Where one run writes."""

    generation: int
    rebuild: bool
    """True: `generation` is a new one for a new embedder, to be activated at the end."""
    serving: int
    """The generation searches read while the run works."""


async def _drop(conn: AsyncConnection, cabinet_id: int, generation: int) -> None:
    await delete_rows(conn, cabinet_id, generation=generation)
    await delete_watermarks(conn, cabinet_id, generation=generation)


class Generations:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def prepare(self, cabinet_id: int, embedder_id: str) -> GenerationPlan:
        """Choose the generation a run with `embedder_id` writes into, cleaning leftovers."""
        async with self._engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO rag_cabinets (cabinet_id) VALUES (:c) "
                    "ON CONFLICT (cabinet_id) DO NOTHING"
                ),
                {"c": cabinet_id},
            )
            row = (
                await conn.execute(
                    text(
                        "SELECT embedder_id, active_generation, building_generation, "
                        "building_embedder_id, retired_generation FROM rag_cabinets "
                        "WHERE cabinet_id = :c FOR UPDATE"
                    ),
                    {"c": cabinet_id},
                )
            ).one()
            current, active, building, building_for, retired = row
            if retired is not None:
                await _drop(conn, cabinet_id, retired)
            if current is not None and current != embedder_id:
                if building is not None and building_for == embedder_id:
                    plan = GenerationPlan(building, rebuild=True, serving=active)
                else:
                    if building is not None:
                        await _drop(conn, cabinet_id, building)
                    fresh = max(active, building or 0, retired or 0) + 1
                    plan = GenerationPlan(fresh, rebuild=True, serving=active)
            else:
                # First run (claim the active generation for this embedder) or the usual one;
                # a rebuild left for another embedder is no longer wanted.
                if building is not None:
                    await _drop(conn, cabinet_id, building)
                plan = GenerationPlan(active, rebuild=False, serving=active)
            await conn.execute(
                text(
                    "UPDATE rag_cabinets SET embedder_id = COALESCE(embedder_id, :e), "
                    "building_generation = :b, building_embedder_id = :be, "
                    "retired_generation = NULL WHERE cabinet_id = :c"
                ),
                {
                    "c": cabinet_id,
                    "e": embedder_id,
                    "b": plan.generation if plan.rebuild else None,
                    "be": embedder_id if plan.rebuild else None,
                },
            )
        return plan

    async def activate(
        self, cabinet_id: int, generation: int, *, embedder_id: str, fingerprint: str | None
    ) -> CabinetState:
        """Make the built `generation` the one searches read (one transaction), then delete
        the generation it replaces."""
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    text(
                        "UPDATE rag_cabinets c SET retired_generation = c.active_generation, "
                        "active_generation = :g, embedder_id = :e, building_generation = NULL, "
                        "building_embedder_id = NULL, source_fingerprint = :f, "
                        "document_count = d.docs, chunk_count = d.chunks, "
                        "last_indexed_at = now(), last_success_at = now() "
                        "FROM (SELECT count(*) AS docs, COALESCE(sum(chunk_count), 0) AS chunks "
                        "      FROM rag_documents WHERE cabinet_id = :c AND generation = :g) d "
                        "WHERE c.cabinet_id = :c AND c.building_generation = :g "
                        f"RETURNING {', '.join('c.' + n for n in STATE_COLUMNS.split(', '))}"
                    ),
                    {"c": cabinet_id, "g": generation, "e": embedder_id, "f": fingerprint},
                )
            ).one()
        await self.drop_retired(cabinet_id)
        return CabinetState(*row)

    async def drop_retired(self, cabinet_id: int) -> None:
        """Delete the generation a swap replaced, if it is still there."""
        async with self._engine.begin() as conn:
            retired = await conn.scalar(
                text(
                    "SELECT retired_generation FROM rag_cabinets WHERE cabinet_id = :c FOR UPDATE"
                ),
                {"c": cabinet_id},
            )
            if retired is None:
                return
            await _drop(conn, cabinet_id, retired)
            await conn.execute(
                text("UPDATE rag_cabinets SET retired_generation = NULL WHERE cabinet_id = :c"),
                {"c": cabinet_id},
            )
