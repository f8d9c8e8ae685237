"""The scheduler treats a cabinets query that lists non-integer ids as permanent: one clear
line, the tick recorded as failed (finished, with its error), never re-walked (real process)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg

from rag_indexer_service.db.engine import asyncpg_dsn
from tests.conftest import SOURCE_TOML
from tests.helpers import add_cabinet

BIN = Path(sys.executable).parent
LISTED = "SELECT id AS cabinet_id FROM src_cabinets WHERE active ORDER BY id"
REASON = (
    "cabinets.query returned cabinet_id '1-x', which is not a positive 64-bit integer; "
    "check the query in RAG_SOURCES_FILE"
)


async def test_non_integer_cabinet_ids_fail_the_tick_once_and_for_good(
    worker_env: dict[str, str], source_conn: asyncpg.Connection, tmp_path: Path
) -> None:
    await add_cabinet(source_conn, 1, docs=1)
    broken = tmp_path / "broken.toml"
    broken.write_text(
        SOURCE_TOML.replace(LISTED, "SELECT id::text || '-x' AS cabinet_id FROM src_cabinets")
    )
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "rag-indexer"),
        "scheduler",
        "--once",
        env={**worker_env, "RAG_SOURCES_FILE": str(broken)},
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)

    assert proc.returncode == 1
    assert f"fan-out failed after 0 cabinets: {REASON} (not retried: fix the cause)" in (
        err.decode()
    )
    conn = await asyncpg.connect(asyncpg_dsn(worker_env["RAG_DATABASE_URL"]))
    try:
        ticks = await conn.fetch("SELECT finished_at, error FROM rag_schedule_ticks")
    finally:
        await conn.close()
    assert [(t["finished_at"] is not None, t["error"]) for t in ticks] == [(True, REASON)]
