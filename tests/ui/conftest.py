"""Fixtures of the console tests: those of the API tests, plus (test_browser.py) the console
served over real HTTP on the demo data, and a headless Chromium driven by Selenium."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
from collections.abc import AsyncIterator, Iterator

import asyncpg
import dramatiq
import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from rag_indexer_service import demo
from rag_indexer_service.api import create_app
from rag_indexer_service.config import Settings, default_sources_file
from rag_indexer_service.jobs.broker import build_broker
from rag_indexer_service.jobs.execution import run_inline
from rag_indexer_service.jobs.worker import setup_worker
from rag_indexer_service.runtime import open_runtime
from tests.api.conftest import API_KEY, api_settings, idle_broker

__all__ = ["api_settings", "browser", "console_url", "demo_settings", "idle_broker"]

CHROMIUM = os.environ.get("RAG_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("RAG_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
DEMO_CABINETS = 5
SHOES_CABINET = 4  # the demo's sports sellers are cabinets 4 and 5


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # leave pytest's signal handling alone
        yield


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def demo_settings(worker_settings: Settings, source_conn: asyncpg.Connection) -> Settings:
    """The packaged demo source, seeded small and indexed once (as `up --demo` leaves it)."""
    await demo.create_schema(source_conn)
    await demo.seed(source_conn, cabinets=DEMO_CABINETS, products=20, reviews=2, questions=1)
    settings = worker_settings.model_copy(
        update={"sources_file": default_sources_file(), "api_keys": (API_KEY,)}
    )
    async with open_runtime(settings) as rt:
        for cabinet_id in range(1, DEMO_CABINETS + 1):
            run, _ = await run_inline(rt, cabinet_id)
            assert run.status == "succeeded", run.error
    return settings


@pytest.fixture
async def console_url(demo_settings: Settings) -> AsyncIterator[str]:
    """The app on a real port, with an in-process worker consuming its broker."""
    broker: dramatiq.Broker = build_broker(demo_settings, allow_stub=True)
    setup_worker(broker, demo_settings)
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=2)
    worker.start()
    port = _free_port()
    server = _Server(
        uvicorn.Config(
            create_app(demo_settings, broker=broker),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), "the console did not start"
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving
        await asyncio.to_thread(worker.stop)
        broker.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    """Debian's chromium and chromium-driver (scripts/test installs them)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        assert shutil.which(path), f"{path} is missing: apt-get install chromium chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        "--lang=en-US",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
