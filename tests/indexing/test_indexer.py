"""RAGIndexer.index_cabinet against a real Postgres + pgvector and a real SQL source."""

from __future__ import annotations

import asyncio
import itertools

import asyncpg
import pytest

from rag_indexer_service.config import Settings
from rag_indexer_service.errors import CabinetBusy, CabinetNotFound, SourceSuspicious
from rag_indexer_service.runtime import Runtime, open_runtime
from tests.helpers import add_cabinet

LONG_BODY = "\n\n".join(
    " ".join(f"Абзац {p}, предложение {s}: кроссовки для бега по асфальту." for s in range(6))
    for p in range(6)
)


async def chunk_rows(rt: Runtime, cabinet_id: int) -> list[tuple[str, int, str]]:
    return [(c.doc_id, c.chunk_no, c.content) for c in await rt.store.chunks(cabinet_id)]


async def test_first_index_adds_every_document(
    runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 1, docs=30)

    report = await runtime.indexer.index_cabinet(1)

    assert (report.docs_seen, report.docs_added, report.docs_unchanged) == (30, 30, 0)
    assert report.chunks_embedded == 30 and report.chunks_reused == 0
    assert len(await chunk_rows(runtime, 1)) == 30
    state = await runtime.store.cabinet_state(1)
    assert state is not None and (state.document_count, state.chunk_count) == (30, 30)


async def test_reindex_of_unchanged_source_embeds_nothing(
    runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 1, docs=30)
    await runtime.indexer.index_cabinet(1)

    report = await runtime.indexer.index_cabinet(1, force=True)

    assert not report.scan_skipped and report.docs_seen == report.docs_unchanged == 30
    assert report.docs_added == report.docs_updated == report.docs_deleted == 0
    assert report.chunks_embedded == 0


async def test_unchanged_fingerprint_skips_the_scan(
    runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 1, docs=30)
    await runtime.indexer.index_cabinet(1)
    # A change the fingerprint does not see (no version bump) stays unseen until forced.
    await source_conn.execute("UPDATE src_docs SET body = 'новое' WHERE id = 'd1'")

    skipped = await runtime.indexer.index_cabinet(1)
    forced = await runtime.indexer.index_cabinet(1, force=True)

    assert skipped.scan_skipped and skipped.docs_seen == 0 and skipped.docs_unchanged == 30
    assert not forced.scan_skipped and forced.docs_updated == 1


async def test_changed_sources_file_is_not_unchanged(
    settings: Settings, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 1, docs=3)
    async with open_runtime(settings) as rt:
        await rt.indexer.index_cabinet(1)
    retemplated = settings.sources_file.read_text().replace(
        'template = "{title}', 'template = "Заметка: {title}'
    )
    settings.sources_file.write_text(retemplated)

    async with open_runtime(settings) as rt:
        report = await rt.indexer.index_cabinet(1)

    assert not report.scan_skipped and report.docs_updated == 3


async def test_changed_document_embeds_only_its_changed_chunks(
    runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 1, docs=5)
    await source_conn.execute("UPDATE src_docs SET body = $1 WHERE id = 'd1'", LONG_BODY)
    first = await runtime.indexer.index_cabinet(1)
    long_chunks = first.chunks_embedded - 4
    assert long_chunks > 3
    before = {(d, n): c for d, n, c in await chunk_rows(runtime, 1)}

    edited = LONG_BODY.replace("Абзац 5, предложение 5", "Абзац 5, предложение ПЯТЬ")
    await source_conn.execute(
        "UPDATE src_docs SET body = $1, version = version + 1 WHERE id = 'd1'", edited
    )
    report = await runtime.indexer.index_cabinet(1)

    assert report.docs_updated == 1 and report.docs_unchanged == 4
    assert report.chunks_embedded == 1
    assert report.chunks_reused == long_chunks - 1
    after = {(d, n): c for d, n, c in await chunk_rows(runtime, 1)}
    assert [k for k in after if after[k] != before.get(k)] == [("d1", long_chunks - 1)]


async def test_metadata_only_change_updates_metadata_without_embedding(
    runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 1, docs=3)
    await runtime.indexer.index_cabinet(1)

    await source_conn.execute(
        "UPDATE src_docs SET tag = 'b', price = 999, version = version + 1 WHERE id = 'd2'"
    )
    report = await runtime.indexer.index_cabinet(1)

    assert report.docs_metadata_only == 1 and report.chunks_embedded == 0
    hits = await runtime.indexer.search(1, "Товар 2", k=1)
    assert hits[0].doc_id == "d2" and hits[0].metadata == {"tag": "b", "price": 999.0}


async def test_document_deleted_at_source_is_removed(
    runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 1, docs=30)
    await runtime.indexer.index_cabinet(1)

    await source_conn.execute("DELETE FROM src_docs WHERE id IN ('d3', 'd7')")
    report = await runtime.indexer.index_cabinet(1)

    assert (report.docs_deleted, report.chunks_deleted, report.docs_unchanged) == (2, 2, 28)
    doc_ids = {d for d, _, _ in await chunk_rows(runtime, 1)}
    assert "d3" not in doc_ids and "d7" not in doc_ids and len(doc_ids) == 28


async def test_duplicate_ids_in_source_keep_the_first_and_report_the_rest(
    runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 1, docs=3)
    await source_conn.execute(
        "INSERT INTO src_docs (cabinet_id, id, title, body) "
        "VALUES (1, 'd1', 'Дубль', 'другой текст')"
    )

    report = await runtime.indexer.index_cabinet(1)

    assert (report.docs_seen, report.docs_added, report.docs_failed) == (4, 3, 1)
    assert report.failures[0].doc_id == "d1" and "duplicate" in report.failures[0].reason
    assert len(await chunk_rows(runtime, 1)) == 3


async def test_empty_source_for_an_indexed_cabinet_deletes_nothing(
    runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 1, docs=5)
    await runtime.indexer.index_cabinet(1)
    await source_conn.execute("DELETE FROM src_docs")

    with pytest.raises(SourceSuspicious, match="no documents"):
        await runtime.indexer.index_cabinet(1)

    assert len(await chunk_rows(runtime, 1)) == 5


async def test_mass_delete_guard_refuses_then_override_deletes(
    runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 1, docs=40)
    await runtime.indexer.index_cabinet(1)
    await source_conn.execute("DELETE FROM src_docs WHERE id::text > 'd15'")  # most of them

    with pytest.raises(SourceSuspicious, match="refusing"):
        await runtime.indexer.index_cabinet(1)
    assert len(await chunk_rows(runtime, 1)) == 40

    report = await runtime.indexer.index_cabinet(1, allow_mass_delete=True)
    remaining = await source_conn.fetchval("SELECT count(*) FROM src_docs")
    assert report.docs_deleted == 40 - remaining
    assert len(await chunk_rows(runtime, 1)) == remaining


async def test_one_bad_document_does_not_fail_the_cabinet(
    runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 1, docs=4)
    await source_conn.execute("UPDATE src_docs SET title = NULL, body = '  ' WHERE id = 'd2'")

    report = await runtime.indexer.index_cabinet(1)

    assert (report.docs_added, report.docs_failed) == (3, 1)
    assert report.failures[0].doc_id == "d2" and "empty" in report.failures[0].reason


async def test_same_text_in_two_cabinets_is_two_rows_and_search_never_crosses(
    runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 1, docs=3)
    await add_cabinet(source_conn, 2, docs=3)
    await runtime.indexer.index_cabinet(1)
    await runtime.indexer.index_cabinet(2)

    assert len(await chunk_rows(runtime, 1)) == len(await chunk_rows(runtime, 2)) == 3
    await source_conn.execute(
        "INSERT INTO src_docs (cabinet_id, id, title, body) "
        "VALUES (2, 'secret', 'Секретный', 'пылесос')"
    )
    await runtime.indexer.index_cabinet(2)
    hits = await runtime.indexer.search(1, "Секретный пылесос", k=10)
    assert hits and all(h.doc_id != "secret" for h in hits)


async def test_keyword_search_matches_russian_and_english(
    runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 1, docs=20)
    await source_conn.executemany(
        "INSERT INTO src_docs (cabinet_id, id, title, body) VALUES (1, $1, $2, $3)",
        [
            ("ru", "Чайник электрический", "Чайники из нержавеющей стали быстро кипятят воду."),
            ("en", "Wireless headphones", "Noise cancelling headphones with long battery life."),
        ],
    )
    await runtime.indexer.index_cabinet(1)

    russian = await runtime.indexer.search(1, "чайник", k=3)
    english = await runtime.indexer.search(1, "headphone", k=3)

    assert russian[0].doc_id == "ru" and russian[0].text_rank == 1
    assert english[0].doc_id == "en" and english[0].text_rank == 1


async def test_long_document_is_chunked_with_overlap(
    runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 1, docs=1)
    await source_conn.execute("UPDATE src_docs SET body = $1", LONG_BODY)

    await runtime.indexer.index_cabinet(1)

    chunks = [c for _, _, c in await chunk_rows(runtime, 1)]
    assert len(chunks) > 3 and all(len(c) <= 400 for c in chunks)
    for previous, current in itertools.pairwise(chunks):
        assert current.split("\n")[0] in previous


async def test_unknown_cabinet_is_a_permanent_error(runtime: Runtime) -> None:
    with pytest.raises(CabinetNotFound, match="cabinet 404"):
        await runtime.indexer.index_cabinet(404)


async def test_concurrent_runs_of_one_cabinet_leave_a_consistent_index(
    runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 1, docs=200)

    results = await asyncio.gather(
        *(runtime.indexer.index_cabinet(1) for _ in range(3)), return_exceptions=True
    )

    assert sum(not isinstance(r, BaseException) for r in results) >= 1
    assert all(isinstance(r, CabinetBusy) for r in results if isinstance(r, BaseException))
    rows = await chunk_rows(runtime, 1)
    assert len(rows) == len(set(rows)) == 200
    report = await runtime.indexer.index_cabinet(1)
    assert report.docs_unchanged == 200 and report.chunks_embedded == 0
