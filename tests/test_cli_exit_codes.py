"""Exit codes as a contract: every command exits 0 on success; on failure it exits non-zero
(2: fix the command line; 1: the command could not do it) with one line on stderr starting `error:`.

Each row runs the installed `rag-indexer` as a subprocess. Rows marked `data` get a database
where cabinet 5 is indexed and cabinet 6 is listed by the source but not indexed yet.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import pytest

from rag_indexer_service.jobs.execution import run_inline
from rag_indexer_service.runtime import Runtime
from tests.helpers import add_cabinet, rag

NO_DATABASE = "postgresql+asyncpg://nobody@127.0.0.1:1/none"
DEMO_SMALL = ("demo", "seed", "--cabinets", "1", "--products", "2", "--reviews", "1")


@dataclass(frozen=True)
class Row:
    args: tuple[str, ...]
    code: int
    shows: str
    """Expected in stdout on success, in the one stderr line on failure."""
    data: bool = False
    env: tuple[tuple[str, str | None], ...] = ()
    """Environment changes (None: unset the variable)."""
    before: tuple[str, ...] = ()
    """A command that must succeed first."""


ROWS = {
    # index
    "index ok": Row(("index", "6"), 0, "cabinet 6 (run ", data=True),
    "index unknown cabinet": Row(
        ("index", "404"), 1, "error: cabinet 404 is not listed by the source"
    ),
    "index one of two unknown": Row(
        ("index", "6", "404"), 1, "error: cabinet 404 is not listed by the source", data=True
    ),
    "index bad id": Row(("index", "abc"), 2, "error: cabinet id 'abc' is not an integer"),
    "index negative id": Row(
        ("index", "-3"), 2, "error: cabinet id -3 must be a positive 64-bit integer"
    ),
    "index id too big": Row(
        ("index", "9223372036854775808"), 2, "must be a positive 64-bit integer"
    ),
    "index nothing": Row(("index",), 2, "error: give cabinet ids or --all"),
    # index --queue
    "queue ok": Row(("index", "6", "--queue", "--json"), 0, '"status": "queued"', data=True),
    "queue unknown cabinet": Row(
        ("index", "404", "--queue"), 1, "error: cabinet 404 is not listed by the source"
    ),
    "queue without broker": Row(
        ("index", "6", "--queue"), 1, "rag-indexer up", env=(("RAG_BROKER_URL", None),)
    ),
    "queue forced": Row(
        ("index", "6", "--queue", "--force", "--json"), 0, '"forced": true', data=True
    ),
    "queue with --allow-mass-delete": Row(
        ("index", "6", "--queue", "--allow-mass-delete"), 2, "applies to inline runs only"
    ),
    # search
    "search ok": Row(("search", "5", "Товар 1", "-k", "1"), 0, "note/d1", data=True),
    "search unknown cabinet": Row(
        ("search", "404", "что-нибудь"), 1, "error: cabinet 404 is not listed by the source"
    ),
    "search not indexed": Row(
        ("search", "6", "что-нибудь"),
        1,
        "error: cabinet 6 has no index yet; run: rag-indexer index 6",
        data=True,
    ),
    "search empty query": Row(("search", "1", "   "), 2, "error: the query is empty"),
    # runs
    "runs ok": Row(("runs", "--cabinet", "5"), 0, "succeeded", data=True),
    "runs bad status": Row(("runs", "--status", "lost"), 2, "error: unknown status 'lost'"),
    "runs bad cabinet": Row(("runs", "--cabinet", "x"), 2, "error: cabinet id 'x'"),
    # status
    "status ok": Row(("status",), 0, "runs: ", data=True),
    "status no database": Row(
        ("status",), 1, "error: cannot connect", env=(("RAG_DATABASE_URL", NO_DATABASE),)
    ),
    # scheduler (its success path runs in tests/scheduling and tests/e2e)
    "scheduler bad tick": Row(
        ("scheduler", "--once", "--tick-at", "noon"), 2, "error: --tick-at 'noon' is not an ISO"
    ),
    "scheduler tick without once": Row(
        ("scheduler", "--tick-at", "2026-01-01T00:00:00Z"), 2, "applies to --once only"
    ),
    # db upgrade
    "db upgrade ok": Row(("db", "upgrade"), 0, "schema at revision"),
    "db upgrade no database": Row(
        ("db", "upgrade"), 1, "error: cannot connect", env=(("RAG_DATABASE_URL", NO_DATABASE),)
    ),
    # demo seed
    "demo seed ok": Row(DEMO_SMALL, 0, "seeded 1 cabinets"),
    "demo seed bad count": Row(("demo", "seed", "--cabinets", "0"), 2, "error: "),
    "demo mutate ok": Row(
        ("demo", "seed", "--mutate", "0.5"), 0, "mutated demo data", before=DEMO_SMALL
    ),
    "demo mutate unseeded": Row(
        ("demo", "seed", "--mutate", "0.5"), 2, "error: demo schema is missing or empty"
    ),
}


@pytest.fixture
async def prepared(runtime: Runtime, source_conn: asyncpg.Connection) -> None:
    await add_cabinet(source_conn, 5, docs=3)
    await add_cabinet(source_conn, 6, docs=2)
    await run_inline(runtime, 5)


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_each_command_exit_code_and_output(
    row: Row, worker_env: dict[str, str], request: pytest.FixtureRequest
) -> None:
    if row.data:
        request.getfixturevalue("prepared")
    env = dict(worker_env)
    for name, value in row.env:
        env.pop(name, None)
        if value is not None:
            env[name] = value
    if row.before:
        first = rag(env, *row.before)
        assert first.returncode == 0, first.stderr

    result = rag(env, *row.args)

    assert result.returncode == row.code, result.stdout + result.stderr
    if row.code == 0:
        assert row.shows in result.stdout, result.stdout
        assert "error" not in result.stderr, result.stderr
    else:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert row.shows in lines[0]
