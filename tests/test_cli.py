"""The `rag-indexer` command line, run as a real subprocess against the test database."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import termios
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from rag_indexer_service.runtime import Runtime
from rag_indexer_service.scheduling import Heartbeats
from tests.helpers import RAG, add_cabinet, rag


@pytest.fixture
def cli_env(worker_env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in worker_env.items() if k != "RAG_BROKER_URL"}


async def test_index_then_search_then_runs(
    cli_env: dict[str, str], source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 5, docs=4)

    indexed = rag(cli_env, "index", "5", "--json")
    found = rag(cli_env, "search", "5", "Товар 2", "-k", "1", "--json")
    runs = rag(cli_env, "runs", "--cabinet", "5", "--json")

    assert indexed.returncode == 0, indexed.stderr
    [report] = json.loads(indexed.stdout)
    assert report["cabinet_id"] == 5 and report["docs_added"] == 4 and report["run_id"] > 0
    assert json.loads(found.stdout)[0]["doc_id"] == "d2"
    [run] = json.loads(runs.stdout)
    assert run["run_id"] == report["run_id"] and run["trigger"] == "cli"
    assert run["status"] == "succeeded" and run["docs_added"] == 4


async def test_a_second_cli_run_in_a_new_process_skips_the_unchanged_cabinet(
    cli_env: dict[str, str], source_conn: asyncpg.Connection
) -> None:
    """Each CLI run is its own process with its own hash seed: the fingerprint still matches."""
    await add_cabinet(source_conn, 6, docs=3)

    first = rag({**cli_env, "PYTHONHASHSEED": "1"}, "index", "6", "--json")
    second = rag({**cli_env, "PYTHONHASHSEED": "2"}, "index", "6", "--json")

    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    [scanned], [skipped] = json.loads(first.stdout), json.loads(second.stdout)
    assert scanned["scan_skipped"] is False and scanned["docs_added"] == 3
    assert skipped["scan_skipped"] is True and skipped["chunks_embedded"] == 0
    assert (scanned["mode"], skipped["mode"]) == ("full", "skipped")


async def test_piped_report_lines_are_not_cut_at_80_columns(
    cli_env: dict[str, str], source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 7, docs=2)

    first = rag(cli_env, "index", "7")
    second = rag(cli_env, "index", "7")

    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    [line] = second.stdout.splitlines()
    assert line.startswith("cabinet 7 (run ") and line.endswith(" s") and len(line) > 80


async def test_the_runs_table_says_how_each_run_read_the_source(
    cli_env: dict[str, str], source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 8, docs=2)
    for args in ((), (), ("--force",)):
        assert rag(cli_env, "index", "8", *args).returncode == 0

    table = rag({**cli_env, "COLUMNS": "300"}, "runs", "--cabinet", "8")

    assert table.returncode == 0, table.stderr
    rows = [line for line in table.stdout.splitlines() if line.lstrip()[:1].isdigit()]
    # The test source has no delta queries: every scan is a full one.
    assert [re.findall(r"(full \(no delta queries\)(?: forced)?|skipped)", r) for r in rows] == [
        ["full (no delta queries) forced"],
        ["skipped"],
        ["full (no delta queries)"],
    ], table.stdout


def rag_in_terminal(env: dict[str, str], columns: int, *args: str) -> str:
    """`rag-indexer ARGS` with its stdout on a real terminal (a pty) `columns` wide."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}
    with subprocess.Popen(
        [RAG, *args], env={**env, "NO_COLOR": "1"}, stdout=follower, stderr=subprocess.PIPE
    ) as proc:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the command is done
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    os.close(leader)
    text = b"".join(chunks).decode().replace("\r\n", "\n")
    return re.sub(r"\x1b\[[0-9;]*m", "", text)  # bold headers


async def test_the_runs_table_fits_an_80_column_terminal_with_its_durations(
    cli_env: dict[str, str], source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 9, docs=2)
    for _ in range(2):
        assert rag(cli_env, "index", "9").returncode == 0

    table = rag_in_terminal(cli_env, 80, "runs", "--cabinet", "9")

    lines = [line.rstrip() for line in table.splitlines() if line.strip()]
    assert all(len(line) <= 80 for line in lines), table
    assert "…" not in table, table  # nothing cut: ids, timestamps and durations are whole
    assert lines[0].split() == [
        "run", "cabinet", "status", "trigger", "try", "docs", "embedded", "queued", "UTC", "took"
    ], table  # fmt: skip
    row = r"\s*\d+\s+9\s+succeeded\s+cli\s+1\s+\d+\s+\d+\s+\d\d-\d\d \d\d:\d\d\s+\d+\.\ds"
    assert len([line for line in lines if re.fullmatch(row, line)]) == 2, table
    wide = rag_in_terminal(cli_env, 200, "runs", "--cabinet", "9")
    assert "read" in wide and "counters" in wide and "skipped" in wide, wide


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("RAG_DATABASE_URL", "mysql://x/y", "RAG_DATABASE_URL: unsupported scheme"),
        ("RAG_EMBEDDING_DIM", "lots", "RAG_EMBEDDING_DIM:"),
        (
            "RAG_SOURCES_FILE",
            "/nonexistent.toml",
            "RAG_SOURCES_FILE: /nonexistent.toml does not exist",
        ),
        ("RAG_BROKER_URL", "amqp://x", "RAG_BROKER_URL: expected redis://"),
    ],
)
def test_broken_config_is_one_line_naming_the_variable(
    cli_env: dict[str, str], variable: str, value: str, message: str
) -> None:
    result = rag({**cli_env, variable: value}, "index", "1")

    assert result.returncode != 0
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_unreachable_database_is_one_line(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "RAG_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none"}

    result = rag(env, "index", "1")

    assert result.returncode == 1
    assert result.stderr.startswith(
        "error: cannot connect to postgresql+asyncpg://nobody@127.0.0.1:1/none"
    )
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_mass_delete_guard_names_the_override(cli_env: dict[str, str], tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('[cabinets]\nquery = "SELECT 1 AS cabinet_id"\n')

    result = rag({**cli_env, "RAG_SOURCES_FILE": str(broken)}, "index", "1")

    assert result.returncode == 1
    assert "RAG_SOURCES_FILE: " in result.stderr and "defines no [kinds.<name>]" in result.stderr


async def test_status_shows_only_recently_beating_schedulers_as_alive(
    cli_env: dict[str, str], runtime: Runtime
) -> None:
    beats = Heartbeats(runtime.db.engine)
    for scheduler_id in ("host:1", "host:2", "host:3"):
        await beats.started(scheduler_id, schedule="0 */6 * * * (UTC)", next_tick_at=None)
    await beats.stopped("host:2")
    async with runtime.db.engine.begin() as conn:  # host:3 stopped beating an hour ago
        await conn.execute(
            text(
                "UPDATE rag_scheduler_heartbeats SET heartbeat_at = now() - interval '1 hour' "
                "WHERE scheduler_id = 'host:3'"
            )
        )

    shown = rag(cli_env, "status")
    as_json = rag(cli_env, "status", "--json")

    assert shown.returncode == 0 and as_json.returncode == 0, shown.stderr + as_json.stderr
    lines = {line.split()[1].rstrip(":"): line for line in shown.stdout.splitlines()[:3]}
    assert lines["host:1"].startswith("scheduler host:1 (alive, cron 0 */6 * * * (UTC))")
    assert lines["host:2"].startswith("scheduler host:2: gone since ")
    assert lines["host:2"].endswith("(stopped)")
    assert lines["host:3"].endswith("(no heartbeat)")
    alive = {s["scheduler_id"]: s["alive"] for s in json.loads(as_json.stdout)["schedulers"]}
    assert alive == {"host:1": True, "host:2": False, "host:3": False}


def test_indexing_an_unlisted_cabinet_leaves_no_run_behind(cli_env: dict[str, str]) -> None:
    """Otherwise the failed run's ledger row makes the id look known to the API and console."""
    refused = rag(cli_env, "index", "404")
    runs = rag(cli_env, "runs", "--cabinet", "404", "--json")

    assert refused.returncode == 1 and "not listed by the source" in refused.stderr
    assert runs.returncode == 0 and json.loads(runs.stdout) == []
