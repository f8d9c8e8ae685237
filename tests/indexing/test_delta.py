"""Delta runs on the demo source: watermarks, deletions by ids, the full reconciliation."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from rag_indexer_service import demo
from rag_indexer_service.config import Settings
from rag_indexer_service.db.engine import asyncpg_dsn
from rag_indexer_service.errors import SourceQueryError, SourceSuspicious
from rag_indexer_service.runtime import Runtime, open_runtime

SOURCES = Path(demo.__file__).parent.parent / "demo_sources.toml"
RAG = str(Path(sys.executable).with_name("rag-indexer"))


@pytest.fixture
async def demo_db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """The demo marketplace (two cabinets) in the test database's public schema."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    await demo.seed(conn, cabinets=2, products=30, reviews=2, questions=1, months=2)
    yield conn
    await conn.close()


def demo_settings(settings: Settings, **overrides: Any) -> Settings:
    return settings.model_copy(update={"sources_file": SOURCES, **overrides})


async def index_rows(rt: Runtime, cabinet_id: int) -> list[tuple[Any, ...]]:
    return [
        (c.generation, c.kind, c.doc_id, c.chunk_no, c.content, c.embedding.to_list())
        for c in await rt.store.chunks(cabinet_id)
    ]


async def test_a_delta_run_indexes_edits_inserts_and_deletions_like_a_full_run(
    settings: Settings, demo_db: asyncpg.Connection
) -> None:
    async with open_runtime(demo_settings(settings)) as rt:
        # Given a cabinet indexed in full, then a mutated source (edits, inserts, deletions)
        first = await rt.indexer.index_cabinet(1)
        await demo.mutate(demo_db, share=0.3, seed=7)

        # When the next run reads only what changed
        delta = await rt.indexer.index_cabinet(1)
        by_delta = await index_rows(rt, 1)

        # Then it did a delta read and its index equals a full rebuild's, row for row
        assert (first.mode, first.full_reason) == ("full", "no watermark yet")
        assert delta.mode == "delta" and delta.full_reason is None
        assert 0 < delta.docs_seen < first.docs_seen
        assert delta.docs_added and delta.docs_updated and delta.docs_deleted
        await rt.store.drop_cabinet(1)
        full = await rt.indexer.index_cabinet(1)
        assert full.mode == "full"
        assert by_delta == await index_rows(rt, 1)
        assert (
            delta.docs_unchanged
            + delta.docs_added
            + delta.docs_updated
            + (delta.docs_metadata_only)
            == full.docs_added
        )


async def test_an_edit_without_a_new_updated_at_is_caught_by_the_next_reconciliation(
    settings: Settings, demo_db: asyncpg.Connection
) -> None:
    async with open_runtime(demo_settings(settings, full_scan_every_runs=2)) as rt:
        await rt.indexer.index_cabinet(1)
        sneaky = await demo_db.fetchval("SELECT min(id) FROM products WHERE cabinet_id = 1")
        await demo_db.execute(
            "UPDATE products SET description = 'Тихая правка' WHERE id = $1", sneaky
        )

        async def bump() -> None:  # an ordinary edit elsewhere, so the fingerprint moves
            await demo_db.execute(
                "UPDATE products SET stock = stock + 1, updated_at = updated_at + interval '1 day'"
                " WHERE id = (SELECT max(id) FROM products WHERE cabinet_id = 1)"
            )

        async def indexed_text() -> str:
            return "".join(
                c.content
                for c in await rt.store.chunks(1)
                if (c.kind, c.doc_id) == ("product", str(sneaky))
            )

        await bump()
        delta = await rt.indexer.index_cabinet(1)
        assert delta.mode == "delta" and "Тихая правка" not in await indexed_text()

        await bump()
        reconciled = await rt.indexer.index_cabinet(1)
        assert (reconciled.mode, reconciled.full_reason) == ("full", "every 2 runs")
        assert reconciled.docs_updated >= 2 and "Тихая правка" in await indexed_text()


async def marks(rt: Runtime, cabinet_id: int) -> dict[str, tuple[Any, ...]]:
    found = await rt.store.watermarks(cabinet_id, generation=0)
    return {k: (m.since, m.delta_runs, m.config_digest) for k, m in found.items()}


async def test_a_failed_delta_run_leaves_the_watermark_where_it_was(
    settings: Settings, demo_db: asyncpg.Connection
) -> None:
    async with open_runtime(demo_settings(settings)) as rt:
        await rt.indexer.index_cabinet(1)
        before = await marks(rt, 1)
        # Most products vanish (with their reviews, questions and sales): the guard refuses
        await demo_db.execute(
            "DELETE FROM products WHERE cabinet_id = 1 AND id NOT IN "
            "(SELECT id FROM products WHERE cabinet_id = 1 ORDER BY id LIMIT 3)"
        )
        await demo_db.execute(
            "UPDATE products SET updated_at = updated_at + interval '400 days' WHERE cabinet_id = 1"
        )

        with pytest.raises(SourceSuspicious):
            await rt.indexer.index_cabinet(1)

        assert await marks(rt, 1) == before
        allowed = await rt.indexer.index_cabinet(1, allow_mass_delete=True)
        assert allowed.mode == "delta" and allowed.docs_deleted > 0
        after = await marks(rt, 1)
        assert set(after) == set(before)
        assert all(after[k][0] > before[k][0] and after[k][1] == 1 for k in after)


async def test_a_delta_run_failing_mid_read_keeps_the_watermark_and_loses_nothing(
    settings: Settings, demo_db: asyncpg.Connection
) -> None:
    async with open_runtime(demo_settings(settings)) as rt:
        # Given an indexed cabinet, then a mutation, and a source table gone mid-way
        await rt.indexer.index_cabinet(1)
        before = await marks(rt, 1)
        await demo.mutate(demo_db, share=0.3, seed=9)
        await demo_db.execute("ALTER TABLE questions RENAME TO questions_away")

        # When a delta run fails reading the questions (after products and reviews)
        with pytest.raises(SourceQueryError):
            await rt.indexer.index_cabinet(1)

        # Then the watermarks stay, and the next run reads the same changes again: what the
        # failed run committed counts as unchanged, the rest is indexed, as a full run would
        assert await marks(rt, 1) == before
        await demo_db.execute("ALTER TABLE questions_away RENAME TO questions")
        retried = await rt.indexer.index_cabinet(1)
        assert retried.mode == "delta" and retried.docs_unchanged > 0
        by_delta = await index_rows(rt, 1)
        await rt.store.drop_cabinet(1)
        await rt.indexer.index_cabinet(1)
        assert by_delta == await index_rows(rt, 1)


def rag(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [RAG, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    [report] = json.loads(done.stdout)
    assert isinstance(report, dict)
    return report


async def test_watermarks_survive_a_new_process_and_belong_to_one_generation(
    worker_env: dict[str, str], settings: Settings, demo_db: asyncpg.Connection
) -> None:
    env = {k: v for k, v in worker_env.items() if k != "RAG_BROKER_URL"}
    env["RAG_SOURCES_FILE"] = str(SOURCES)
    # Given a full run in one process, then a change
    assert rag(env, "index", "2", "--json")["mode"] == "full"
    await demo.mutate(demo_db, share=0.2, seed=3)

    # When another process indexes, it reads from the first one's watermark
    second = rag(env, "index", "2", "--json")
    assert (second["mode"], second["full_reason"]) == ("delta", None)

    # And a rebuild for another embedder reads in full into its own generation
    rebuilt = rag({**env, "RAG_EMBEDDING_DIM": "48"}, "index", "2", "--json")
    assert rebuilt["rebuild"]
    assert (rebuilt["mode"], rebuilt["full_reason"]) == ("full", "rebuild for a new embedder")
    async with open_runtime(demo_settings(settings, embedding_dim=48)) as rt:
        state = await rt.store.cabinet_state(2)
        assert state is not None and state.active_generation == 1
        assert await rt.store.watermarks(2, generation=0) == {}
        marks = await rt.store.watermarks(2, generation=1)
        assert set(marks) == {"product", "review", "question", "sales_month"}
        await demo.mutate(demo_db, share=0.2, seed=4)
        assert (await rt.indexer.index_cabinet(2)).mode == "delta"


async def transactions_that_wrote(rt: Runtime, cabinet_id: int, doc_ids: list[str]) -> int:
    """How many transactions wrote the current rows of these documents (their `xmin`s)."""
    async with rt.db.engine.connect() as conn:
        found = await conn.scalar(
            text(
                "SELECT count(DISTINCT CAST(xmin AS text)) FROM ("
                " SELECT xmin FROM rag_documents WHERE cabinet_id = :c AND doc_id = ANY(:ids)"
                " UNION ALL"
                " SELECT xmin FROM rag_chunks WHERE cabinet_id = :c AND doc_id = ANY(:ids)) AS w"
            ),
            {"c": cabinet_id, "ids": doc_ids},
        )
    return int(found)


@pytest.mark.parametrize("force", [False, True], ids=["delta", "full"])
async def test_two_hundred_changed_documents_are_written_in_one_or_two_transactions(
    settings: Settings, database_url: str, force: bool
) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        # Given a cabinet of ~2,000 documents read in batches of 50 (40+ batches)
        await demo.seed(conn, cabinets=1, products=400, reviews=3, questions=1, months=1)
        async with open_runtime(demo_settings(settings, batch_size_docs=50)) as rt:
            first = await rt.indexer.index_cabinet(1)
            assert first.docs_seen >= 2000
            # And 200 reviews edited, spread over the whole scan
            edited = await conn.fetch(
                "UPDATE reviews SET text = text || ' (дополнено)', updated_at = $1"
                " WHERE id IN (SELECT id FROM reviews WHERE cabinet_id = 1"
                "  ORDER BY id % 5, id LIMIT 200) RETURNING id",
                demo.BASE_TIME + dt.timedelta(days=1),
            )
            assert len(edited) == 200

            # When the next run indexes them (by delta, or scanning everything)
            report = await rt.indexer.index_cabinet(1, force=force)

            # Then they were written by one or two transactions, not one per batch
            assert report.mode == ("full" if force else "delta")
            assert report.docs_updated == 200
            written = await transactions_that_wrote(rt, 1, [str(r["id"]) for r in edited])
            assert 1 <= written <= 2
    finally:
        await conn.close()
