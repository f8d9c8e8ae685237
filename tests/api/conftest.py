"""Fixtures of the API tests: the app on the real database with a StubBroker (consumed by an
in-process worker, or idle), httpx clients over ASGI, and a real `rag-indexer api` process."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import dramatiq
import httpx
import pytest
from fastapi import FastAPI

from rag_indexer_service.api import create_app
from rag_indexer_service.config import Settings
from rag_indexer_service.jobs.broker import build_broker

API_KEY = "test-key-0123456789abcdef"
OTHER_KEY = "other-key-0123456789abcdef"

Spawn = Callable[..., subprocess.Popen[bytes]]


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """Run the app's lifespan (what uvicorn does at startup and shutdown)."""
    async with app.router.lifespan_context(app):
        yield app


def asgi_client(app: FastAPI, *, key: str | None = API_KEY) -> httpx.AsyncClient:
    headers = {} if key is None else {"X-API-Key": key}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://api.test", headers=headers)


@pytest.fixture
def api_settings(worker_settings: Settings) -> Settings:
    return worker_settings.model_copy(update={"api_keys": (API_KEY, OTHER_KEY)})


@pytest.fixture
async def app(api_settings: Settings, stub_worker: dramatiq.Broker) -> AsyncIterator[FastAPI]:
    """The app; its runs are executed by an in-process worker."""
    async with running(create_app(api_settings, broker=stub_worker)) as started:
        yield started


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as c:
        yield c


@pytest.fixture
def idle_broker(api_settings: Settings) -> Iterator[dramatiq.Broker]:
    """A StubBroker nobody consumes: runs stay queued, messages can be counted."""
    broker = build_broker(api_settings, allow_stub=True)
    yield broker
    broker.close()


@pytest.fixture
async def idle_client(
    api_settings: Settings, idle_broker: dramatiq.Broker
) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        running(create_app(api_settings, broker=idle_broker)) as started,
        asgi_client(started) as c,
    ):
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(base_url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as c:
        while True:
            assert proc.poll() is None, f"rag-indexer api exited with {proc.returncode}"
            try:
                if (await c.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{base_url} not ready after {timeout_s}s")
            await asyncio.sleep(0.1)


@pytest.fixture
async def api_server(spawn: Spawn, worker_env: dict[str, str]) -> str:
    """A real `rag-indexer api` process on a free port (same database and Redis as the test)."""
    port = free_port()
    proc = spawn("api", "--port", str(port), env={**worker_env, "RAG_API_KEYS": API_KEY})
    base_url = f"http://127.0.0.1:{port}"
    await wait_ready(base_url, proc)
    return base_url
