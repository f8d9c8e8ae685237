"""Log lines: readable text by default, one JSON object per line with RAG_LOG_FORMAT=json;
index reports summarised without zero counters."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import asyncpg

from rag_indexer_service.indexing.report import IndexReport
from rag_indexer_service.logs import JsonFormatter, make_formatter
from tests.helpers import add_cabinet

RAG = str(Path(sys.executable).with_name("rag-indexer"))


def record(
    message: str, *args: object, fields: dict[str, object] | None = None
) -> logging.LogRecord:
    rec = logging.LogRecord("rag_indexer_service.x", logging.INFO, __file__, 1, message, args, None)
    if fields is not None:
        rec.fields = fields
    return rec


def test_json_lines_carry_the_message_and_the_fields() -> None:
    line = JsonFormatter().format(
        record("indexed cabinet %s: %s", 3, "кроссовки", fields={"docs_seen": 281})
    )

    data = json.loads(line)
    assert data["message"] == "indexed cabinet 3: кроссовки" and data["docs_seen"] == 281
    assert data["level"] == "INFO" and data["logger"] == "rag_indexer_service.x"
    assert "кроссовки" in line  # UTF-8, not \\u escapes
    assert "docs_seen" not in make_formatter("text").format(record("m", fields={"docs_seen": 1}))


def test_a_report_summary_leaves_zeros_out() -> None:
    report = IndexReport(cabinet_id=3, docs_seen=281, docs_added=281, chunks_embedded=282)
    report.duration_s = 1.384

    assert report.summary() == "281 seen, 281 added, 282 chunks embedded in 1.38 s"
    skipped = IndexReport(cabinet_id=3, docs_unchanged=50, scan_skipped=True)
    assert skipped.summary().startswith("unchanged since the last run")


async def test_index_prints_one_line_per_cabinet(
    worker_env: dict[str, str], source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 5, docs=4)

    done = subprocess.run(
        [RAG, "index", "5"], env=worker_env, capture_output=True, text=True, timeout=120
    )
    again = subprocess.run(
        [RAG, "index", "5"], env=worker_env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == again.returncode == 0, done.stderr + again.stderr
    assert len(done.stdout.strip().splitlines()) == 1, done.stdout
    assert done.stdout.startswith("cabinet 5 (run ")
    assert "4 seen, 4 added, 4 chunks embedded in" in done.stdout and " 0 " not in done.stdout
    assert "unchanged since the last run" in again.stdout


async def test_a_process_logs_json_lines_with_fields(
    worker_env: dict[str, str], source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 5, docs=1)
    env = {**worker_env, "RAG_LOG_FORMAT": "json"}

    result = subprocess.run(
        [RAG, "scheduler", "--once"], env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert lines and all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    done = [line for line in lines if line.get("event") == "tick_done"]
    assert len(done) == 1 and done[0]["seen"] == 1 and done[0]["enqueued"] == 1
    assert (
        "done: 1 seen, 1 queued, 0 skipped as unchanged, 0 already active, 0 purged in"
        in (done[0]["message"])
    )
    assert not [line for line in lines if "{" in line["message"]], lines  # no dict as text
    status = subprocess.run(
        [RAG, "status"], env=worker_env, capture_output=True, text=True, timeout=120
    )
    # `status` names the tick's counts with the log line's words
    assert "1 seen, 1 queued, 0 skipped as unchanged, 0 already active" in status.stdout
