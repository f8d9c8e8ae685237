"""`rag-indexer up`: the API, a Dramatiq worker and the scheduler in one process.

    embedded Postgres (RAG_DATA_DIR)   in-process broker (or Redis with RAG_BROKER_URL)
              │                                   │
      uvicorn (the API) ── scheduler (cron + reaper) ── dramatiq Worker (2 threads)

Runs queued in the ledger by another process without a broker (`rag-indexer index ID --queue`
with no RAG_BROKER_URL) are picked up within about a second.

Everything shares one `Settings`. Without `RAG_API_KEYS`, a key is generated once and kept in
`RAG_DATA_DIR/api-key` (mode 0600). Ctrl-C stops the API, the scheduler and the worker; a run
still in flight is recorded as interrupted and re-driven at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Iterator

import asyncpg
import dramatiq
import uvicorn
from dramatiq.brokers.stub import StubBroker

from rag_indexer_service import demo
from rag_indexer_service.api.app import create_app
from rag_indexer_service.api.protocol import HeadLimits, limited_protocol
from rag_indexer_service.config import Settings
from rag_indexer_service.db.engine import asyncpg_dsn
from rag_indexer_service.errors import ConfigError
from rag_indexer_service.jobs.broker import build_broker
from rag_indexer_service.jobs.dispatch import Dispatcher, DispatchOptions
from rag_indexer_service.jobs.worker import setup_worker
from rag_indexer_service.runs import Ledger
from rag_indexer_service.runtime import Runtime, open_runtime
from rag_indexer_service.scheduling.daemon import serve as serve_scheduler
from rag_indexer_service.scheduling.scheduler import (
    ALL_IN_ONE_PREFIX,
    Scheduler,
    default_scheduler_id,
)

__all__ = ["API_KEY_FILE", "ensure_api_key", "run_all_in_one"]

log = logging.getLogger(__name__)

API_KEY_FILE = "api-key"
WORKER_THREADS = 2
WORKER_STOP_TIMEOUT_S = 10.0
DEMO_CABINETS = 5
PICK_UP_INTERVAL_S = 0.5
PICK_UP_MIN_AGE_S = 1.0
"""A run this young may still be on its way from its own sender: leave it to that sender."""
DEMO_POLL_S = 0.5


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: this process stops everything in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def ensure_api_key(settings: Settings) -> tuple[Settings, str | None]:
    """Settings with an API key: the configured ones, else one kept in the data directory.

    Returns the settings and the generated key (None when keys were configured).
    """
    if settings.api_keys or settings.api_keys_file or settings.api_auth == "disabled":
        return settings, None
    path = settings.data_dir / API_KEY_FILE
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(32) + "\n")
        key = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(
            f"RAG_DATA_DIR: cannot keep the API key in {path}: {exc.strerror}"
        ) from None
    if not key:
        raise ConfigError(f"RAG_DATA_DIR: {path} is empty; delete it to generate a new key")
    return settings.model_copy(update={"api_keys": (key,)}), key


def _check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} on {host} is already in use (choose another with --port)"
                ) from None
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


async def _seed_demo(source_url: str) -> None:
    """Seed the demo source unless it has data."""
    conn = await asyncpg.connect(asyncpg_dsn(source_url))
    try:
        if await demo.is_seeded(conn):
            return
        await demo.create_schema(conn)
        await demo.seed(conn, cabinets=DEMO_CABINETS, products=50, reviews=3, questions=1)
        log.info("seeded the demo source (%s cabinets)", DEMO_CABINETS)
    finally:
        await conn.close()


def _base_url(host: str, port: int) -> str:
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    return f"http://{shown}:{port}"


def _banner(settings: Settings, host: str, port: int, key: str | None, *, demo: bool) -> str:
    base = _base_url(host, port)
    if key is not None:
        key_line = f"  API key   {key}  (kept in {settings.data_dir / API_KEY_FILE})"
        header = f"-H 'X-API-Key: {key}' "
    else:
        key_line = "  API key   as configured (RAG_API_KEYS / RAG_API_KEYS_FILE)"
        header = "-H 'X-API-Key: <your key>' " if settings.api_auth == "enabled" else ""
    lines = [
        "rag-indexer is up",
        f"  console   {base}/ui  (log in with the API key)",
        key_line,
        f"  API docs  {base}/docs",
        f"  metrics   {base}/metrics",
        "  try       curl -X POST " + header + f"{base}/api/v1/rag/index/1",
        # quoted: an unquoted `?` is a glob in zsh ("no matches found")
        "            curl " + header + f"'{base}/api/v1/rag/runs?limit=5'",
        "  stop      Ctrl-C",
    ]
    if demo:
        lines.append("the demo cabinets are being indexed; a line follows when they are done")
    return "\n".join(lines)


async def _announce_demo(
    rt: Runtime, ledger: Ledger, base: str, started: float, *, demo: bool
) -> None:
    """Print one line once no run is active any more (the demo's first index is complete)."""
    if not demo:
        return
    while await ledger.active_runs(limit=1):
        await asyncio.sleep(DEMO_POLL_S)
    ids = [cabinet async for cabinet in rt.source.iter_cabinet_ids()]
    rows = await rt.store.cabinet_records(ids)
    indexed = [row for row in rows.values() if row.last_success_at is not None]
    documents = sum(row.document_count for row in indexed)
    took_s = time.monotonic() - started
    print(
        f"demo indexed: {len(indexed)} of {len(ids)} cabinets, {documents} documents, "
        f"{took_s:.1f} s after start; browse them at {base}/ui/cabinets",
        flush=True,
    )


async def _pick_up_unsent(dispatcher: Dispatcher) -> None:
    """Send runs queued without a message (`index --queue` from a process without a broker)
    to this process's worker."""
    while True:
        try:
            picked = await dispatcher.send_unsent(older_than_s=PICK_UP_MIN_AGE_S)
        except Exception:
            log.warning("picking up queued runs failed", exc_info=True)
        else:
            if picked:
                log.info("picked up %s run(s) queued by another process", picked)
        await asyncio.sleep(PICK_UP_INTERVAL_S)


async def run_all_in_one(
    settings: Settings, *, host: str, port: int, seed_demo: bool = False
) -> int:
    """Serve until SIGINT/SIGTERM; returns the exit status."""
    started = time.monotonic()
    _check_port(host, port)
    settings, generated_key = ensure_api_key(settings)
    broker = build_broker(settings, allow_stub=True)
    context = setup_worker(broker, settings)
    worker = dramatiq.Worker(broker, worker_threads=WORKER_THREADS, worker_timeout=200)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with open_runtime(settings, prepare_source=_seed_demo if seed_demo else None) as rt:
            ledger = Ledger(rt.db.engine)
            dispatcher = Dispatcher(broker, ledger, DispatchOptions.from_settings(settings))
            worker.start()
            if isinstance(broker, StubBroker):
                # Messages of an earlier process died with it; its runs are ours to re-drive.
                recovered = await dispatcher.redrive_stale(orphaned=True)
                if recovered.resent:
                    log.info("re-drove %s run(s) left by the previous start", recovered.resent)
            if seed_demo:
                ids = [cabinet async for cabinet in rt.source.iter_cabinet_ids()]
                queued = await dispatcher.enqueue_cabinets(ids, "manual")
                log.info("demo: queued %s of %s cabinets", queued.enqueued, queued.requested)
            app = create_app(settings, broker=broker)
            server = _Server(
                uvicorn.Config(
                    app,
                    host=host,
                    port=port,
                    log_level="warning",
                    lifespan="on",
                    http=limited_protocol(HeadLimits(timeout_s=settings.api_read_timeout_s)),
                )
            )
            scheduler = Scheduler.from_runtime(
                rt, dispatcher, scheduler_id=ALL_IN_ONE_PREFIX + default_scheduler_id()
            )
            scheduler_stopped = asyncio.Event()
            pick_up = asyncio.create_task(_pick_up_unsent(dispatcher), name="pick-up")
            tasks = [
                asyncio.create_task(server.serve(), name="api"),
                asyncio.create_task(
                    serve_scheduler(scheduler, scheduler_stopped), name="scheduler"
                ),
            ]
            waiter = asyncio.create_task(stop.wait(), name="stop")
            while not server.started and not any(t.done() for t in tasks):
                await asyncio.sleep(0.05)
            if server.started:
                print(_banner(settings, host, port, generated_key, demo=seed_demo), flush=True)
            announcer = asyncio.create_task(
                _announce_demo(rt, ledger, _base_url(host, port), started, demo=seed_demo)
            )
            done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
            announcer.cancel()
            log.info("stopping: API, scheduler, worker")
            server.should_exit = True
            scheduler_stopped.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            waiter.cancel()
            pick_up.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pick_up
            await asyncio.to_thread(worker.stop, int(WORKER_STOP_TIMEOUT_S * 1000))
            interrupted = await ledger.interrupt(
                context.worker_id, "interrupted: `rag-indexer up` stopped; re-driven at next start"
            )
            if interrupted:
                log.warning("runs %s interrupted; they resume at the next start", interrupted)
            failures = [r for r in results if isinstance(r, BaseException)]
            for failure in failures:
                log.error("component failed: %s", failure)
            return 1 if failures or waiter not in done else 0
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        broker.close()
