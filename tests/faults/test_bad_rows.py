"""One bad row fails only itself: values Postgres cannot store (NUL, lone surrogates), NULLs,
1 MB strings and right-to-left text in every column of a kind, through a real run on the real
database. Every good row is indexed, every bad row is in `failures`, the counters are exact."""

from __future__ import annotations

import itertools
import json
import textwrap
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from rag_indexer_service.config import Settings
from rag_indexer_service.errors import DocumentsFailed
from rag_indexer_service.indexing.sources import MAX_METADATA_CHARS
from rag_indexer_service.indexing.storable import MAX_ID_BYTES, shown, storable
from rag_indexer_service.jobs.execution import run_inline
from rag_indexer_service.runs import Ledger
from rag_indexer_service.runtime import Runtime, open_runtime
from tests.helpers import add_cabinet

COLUMNS = ("id", "title", "body", "tag", "price")
# Every column is `json`, which Postgres stores verbatim: NUL and surrogate escapes included,
# decoded by the driver into exactly the Python strings a hostile source would hand over.
HOSTILE_DDL = """
CREATE TABLE hostile_docs (
    cabinet_id bigint NOT NULL, n integer NOT NULL,
    id json, title json, body json, tag json, price json
)
"""
HOSTILE_TOML = textwrap.dedent(
    """
    [cabinets]
    query = "SELECT DISTINCT cabinet_id FROM hostile_docs"

    [kinds.note]
    query = '''SELECT id, title, body, tag, price FROM hostile_docs
               WHERE cabinet_id = :cabinet_id ORDER BY n'''
    id_column = "id"
    template = "{title}\\n\\n{body}"
    metadata = ["tag", "price"]
    """
)
MEGABYTE = "ж" * 2**19 + "z" * 2**19  # 1 MiB of characters, 1.5 MiB of UTF-8


@pytest.fixture
async def hostile_runtime(
    settings: Settings, source_conn: asyncpg.Connection, tmp_path: Path
) -> AsyncIterator[Runtime]:
    await source_conn.execute(HOSTILE_DDL)
    path = tmp_path / "hostile.toml"
    path.write_text(HOSTILE_TOML)
    async with open_runtime(settings.model_copy(update={"sources_file": path})) as rt:
        yield rt


async def insert_rows(
    conn: asyncpg.Connection, cabinet_id: int, rows: Sequence[dict[str, Any]]
) -> None:
    await conn.executemany(
        "INSERT INTO hostile_docs VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [
            (cabinet_id, n, *(None if row[c] is None else json.dumps(row[c]) for c in COLUMNS))
            for n, row in enumerate(rows)
        ],
    )


def expected_outcome(rows: Sequence[dict[str, Any]]) -> tuple[set[str], list[str]]:
    """The oracle: (doc ids indexed, doc ids failed, as `failures` shows them)."""
    good: set[str] = set()
    seen: set[str] = set()
    failed: list[str] = []
    for row in rows:
        if row["id"] is None:
            failed.append("")
            continue
        doc_id = str(row["id"])
        unstorable = not doc_id or storable(doc_id) != doc_id or len(doc_id.encode()) > MAX_ID_BYTES
        if unstorable:
            failed.append(shown(doc_id))
            continue
        title, body = ("" if row[c] is None else row[c] for c in ("title", "body"))
        text_ = storable(f"{title}\n\n{body}").strip()
        meta_chars = sum(len(storable(row[c])) for c in ("tag", "price") if isinstance(row[c], str))
        if doc_id in seen or not text_ or meta_chars > MAX_METADATA_CHARS:
            failed.append(shown(doc_id))
            seen.add(doc_id)
            continue
        seen.add(doc_id)
        good.add(doc_id)
    return good, failed


async def index_state(rt: Runtime, cabinet_id: int) -> tuple[set[str], int, int, int, int]:
    async with rt.db.engine.connect() as conn:
        ids = {
            r[0]
            for r in await conn.execute(
                text("SELECT doc_id FROM rag_documents WHERE cabinet_id = :c"), {"c": cabinet_id}
            )
        }
        chunks = await conn.scalar(
            text("SELECT count(*) FROM rag_chunks WHERE cabinet_id = :c"), {"c": cabinet_id}
        )
        ledger_chunks = await conn.scalar(
            text("SELECT coalesce(sum(chunk_count), 0) FROM rag_documents WHERE cabinet_id = :c"),
            {"c": cabinet_id},
        )
        counted = (
            await conn.execute(
                text("SELECT document_count, chunk_count FROM rag_cabinets WHERE cabinet_id = :c"),
                {"c": cabinet_id},
            )
        ).one()
    return ids, int(chunks or 0), int(ledger_chunks or 0), counted[0], counted[1]


async def check_run(
    rt: Runtime, conn: asyncpg.Connection, cabinet_id: int, rows: Sequence[dict[str, Any]]
) -> None:
    await insert_rows(conn, cabinet_id, rows)
    good, failed = expected_outcome(rows)

    try:
        run, report = await run_inline(rt, cabinet_id)
    except DocumentsFailed:
        assert not good, "the run failed although some rows were good"
        run = (await Ledger(rt.db.engine).list_runs(cabinet_id=cabinet_id, limit=1))[0]
        assert run.status == "failed" and run.attempt == 1  # a data problem is not retried
        return

    assert run.status == "succeeded"
    indexed, chunks, ledger_chunks, documents, cabinet_chunks = await index_state(rt, cabinet_id)
    assert indexed == good
    assert sorted(f.doc_id for f in report.failures) == sorted(failed)
    assert report.docs_seen == len(rows)
    assert (report.docs_added, report.docs_failed) == (len(good), len(failed))
    assert chunks == ledger_chunks == cabinet_chunks and documents == len(good)


async def test_nul_surrogates_nulls_and_huge_values_fail_only_their_own_rows(
    hostile_runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    rows = [
        {"id": "ok", "title": "Заголовок", "body": "текст", "tag": "a", "price": 1.5},
        # NUL and a lone surrogate in text and metadata: stored without them.
        {"id": "nul", "title": "a\u0000b", "body": "x\ud800y", "tag": "t\u0000", "price": "\udfff"},
        {"id": "rtl", "title": "\u202eעברית", "body": "عربى", "tag": None, "price": None},
        {"id": "big-text", "title": MEGABYTE, "body": None, "tag": "t", "price": 2},
        {"id": "a\u0000b", "title": "id with NUL", "body": "", "tag": None, "price": None},
        {"id": "x" * 2000, "title": "id too long", "body": "", "tag": None, "price": None},
        {"id": None, "title": "no id", "body": "", "tag": None, "price": None},
        {"id": "empty", "title": None, "body": " \u0000 ", "tag": None, "price": None},
        {"id": "big-meta", "title": "t", "body": "b", "tag": MEGABYTE, "price": None},
        {"id": "ok", "title": "duplicate", "body": "", "tag": None, "price": None},
    ]

    await check_run(hostile_runtime, source_conn, 1, rows)


async def test_a_run_in_which_every_document_fails_is_failed(
    hostile_runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    rows = [{"id": f"d{n}", "title": None, "body": None, "tag": None, "price": None} for n in "ab"]
    await insert_rows(source_conn, 2, rows)

    with pytest.raises(DocumentsFailed, match="every one of the 2 documents of cabinet 2 failed"):
        await run_inline(hostile_runtime, 2)

    run = (await Ledger(hostile_runtime.db.engine).list_runs(cabinet_id=2, limit=1))[0]
    assert run.status == "failed" and run.attempt == 1


_CHARS = st.characters(codec=None, categories=None) | st.sampled_from(
    ["\u0000", "\ud800", "\udfff", "\u202e", "\u200f", "ж", " ", "\n"]
)
_TEXT = st.text(_CHARS, max_size=30)
_SMALL = st.one_of(
    st.none(),
    _TEXT,
    _TEXT.map(lambda s: s + "\u0000" + s),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
)
_VALUE = st.integers(0, 24).flatmap(lambda n: st.just(MEGABYTE) if n == 0 else _SMALL)
_ROW = st.fixed_dictionaries({c: _VALUE for c in COLUMNS})
_ids = itertools.count(1000)


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(rows=st.lists(_ROW, min_size=1, max_size=6))
async def test_random_hostile_rows_fail_only_themselves(
    hostile_runtime: Runtime, source_conn: asyncpg.Connection, rows: list[dict[str, Any]]
) -> None:
    good_row = {"id": "good", "title": "t", "body": "b", "tag": "x", "price": 1}
    # A fresh cabinet per example: the examples share the database.
    await check_run(hostile_runtime, source_conn, next(_ids), [good_row, *rows])


POISON_TRIGGER = """
CREATE FUNCTION rag_test_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.content LIKE '%poison%' THEN
        RAISE EXCEPTION 'value refused' USING ERRCODE = '22023';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER rag_test_poison BEFORE INSERT ON rag_chunks
    FOR EACH ROW EXECUTE FUNCTION rag_test_poison();
"""


async def test_a_value_postgres_refuses_at_write_fails_only_its_document(
    runtime: Runtime, source_conn: asyncpg.Connection
) -> None:
    # Given Postgres refusing one document's chunk (a data exception, SQLSTATE 22023) ...
    await add_cabinet(source_conn, 3, docs=6)
    await source_conn.execute("UPDATE src_docs SET body = 'poison' WHERE id = 'd4'")
    await source_conn.execute(POISON_TRIGGER)

    # ... when the cabinet is indexed, the batch is written document by document:
    run, report = await run_inline(runtime, 3)

    indexed, chunks, ledger_chunks, documents, cabinet_chunks = await index_state(runtime, 3)
    assert run.status == "succeeded" and run.attempt == 1
    assert indexed == {"d0", "d1", "d2", "d3", "d5"}
    assert [(f.doc_id, f.reason.split(":")[0]) for f in report.failures] == [
        ("d4", "Postgres cannot store a value of this document")
    ]
    assert (report.docs_added, report.docs_failed, report.docs_seen) == (5, 1, 6)
    assert chunks == ledger_chunks == cabinet_chunks and documents == 5


REFUSE_ONE_TRIGGER = """
CREATE FUNCTION rag_test_refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.doc_id = 'd25' THEN
        RAISE EXCEPTION 'refused by a trigger';  -- P0001: not a data error, the run fails
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER rag_test_refuse_one BEFORE INSERT ON rag_documents
    FOR EACH ROW EXECUTE FUNCTION rag_test_refuse_one();
"""


async def test_a_run_failing_after_some_batches_leaves_the_counters_of_what_it_committed(
    settings: Settings, source_conn: asyncpg.Connection
) -> None:
    # Given batches of 10 documents, the third of which the service database refuses ...
    await add_cabinet(source_conn, 4, docs=40)
    await source_conn.execute(REFUSE_ONE_TRIGGER)
    small = settings.model_copy(update={"batch_size_docs": 10, "write_batch_docs": 10})

    async with open_runtime(small) as rt:
        with pytest.raises(Exception, match="refused by a trigger"):
            await run_inline(rt, 4)
        # ... the run fails, the batches before it stay committed, and the cabinet's
        # counters are exactly those rows.
        indexed, chunks, ledger_chunks, documents, cabinet_chunks = await index_state(rt, 4)

    assert 0 < len(indexed) < 40
    assert chunks == ledger_chunks == cabinet_chunks and documents == len(indexed)
