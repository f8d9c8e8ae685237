"""The console in a real headless Chromium: log in, see the demo cabinets, queue a full run
and watch its progress bar reach the end, search, log out and be refused; and no page loads
anything from another origin.

Selenium blocks, so each scenario runs in a thread while the test's event loop serves the
console. With RAG_SCREENSHOTS_DIR set, the main pages are saved there as PNG (docs/).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.api.conftest import API_KEY
from tests.ui.conftest import DEMO_CABINETS, SHOES_CABINET

WAIT_S = 30.0
SHOTS = os.environ.get("RAG_SCREENSHOTS_DIR")


def wait_until(check: Callable[[], object], what: str, timeout_s: float = WAIT_S) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            found = check()
        except Exception:  # the element is being replaced by a refresh
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def shoot(driver: webdriver.Chrome, name: str) -> None:
    """The whole page (up to 1600 px high) as `RAG_SCREENSHOTS_DIR/console-<name>.png`."""
    if not SHOTS:
        return
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    metrics = {"width": 1280, "height": min(height, 1600), "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    driver.save_screenshot(str(Path(SHOTS) / f"console-{name}.png"))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def log_in(driver: webdriver.Chrome, base: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{base}/ui/cabinets")
    assert "/ui/login" in driver.current_url
    driver.find_element(By.ID, "key").send_keys(API_KEY)
    driver.find_element(By.ID, "login").click()
    wait_until(lambda: driver.current_url.endswith("/ui/cabinets"), "the cabinets page")


def scenario(driver: webdriver.Chrome, base: str) -> None:
    log_in(driver, base)
    rows = driver.find_elements(By.CSS_SELECTOR, "#cabinets tbody tr")
    assert [r.find_element(By.TAG_NAME, "a").text for r in rows] == [
        str(n) for n in range(1, DEMO_CABINETS + 1)
    ]
    assert "never" not in rows[0].text and "succeeded" in rows[0].text
    shoot(driver, "cabinets")

    rows[1].find_element(By.TAG_NAME, "a").click()
    wait_until(lambda: driver.find_element(By.ID, "queue-full-run"), "the cabinet page")
    documents = int(driver.find_element(By.ID, "documents").text.replace("\u202f", ""))
    driver.find_element(By.ID, "queue-full-run").click()

    wait_until(lambda: "/ui/runs/" in driver.current_url, "the run page")
    wait_until(
        lambda: driver.find_element(By.ID, "run-live").get_attribute("data-status") == "succeeded",
        "the run to succeed",
    )
    bar = driver.find_element(By.CSS_SELECTOR, "#run-live progress")
    assert bar.get_attribute("value") == bar.get_attribute("max") == str(documents)
    counters = driver.find_element(By.CSS_SELECTOR, "table.counters").text
    assert f"docs seen {documents}" in counters.replace("\u202f", "")
    assert "scan skipped no" in counters
    assert driver.find_element(By.ID, "run-forced").text == "forced"
    assert driver.find_element(By.ID, "run-mode").text == "full read (forced)"
    shoot(driver, "run")

    driver.get(f"{base}/ui/cabinets/{SHOES_CABINET}")
    driver.find_element(By.ID, "search").send_keys("кроссовки для бега")
    driver.find_element(By.ID, "search-go").click()
    hits = wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "#hits li.hit"), "hits")
    assert isinstance(hits, list) and hits
    assert "score" in hits[0].text and "vector rank" in hits[0].text
    assert "Кроссовки" in hits[0].text  # the demo's running shoes, found in Russian
    shoot(driver, "cabinet")

    driver.get(f"{base}/ui")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Overview"
    assert "rag-manual" in driver.find_element(By.ID, "overview-live").text
    shoot(driver, "overview")
    driver.get(f"{base}/ui/runs")

    driver.find_element(By.ID, "logout").click()
    wait_until(lambda: "/ui/login" in driver.current_url, "the login page")
    driver.get(f"{base}/ui/runs")
    assert "/ui/login" in driver.current_url
    assert not driver.find_elements(By.CSS_SELECTOR, "table.grid")


_LOADED = (
    "return performance.getEntriesByType('resource').map(e => e.name)"
    ".concat([...document.querySelectorAll('[src], link[href]')].map(e => e.src || e.href))"
)
_REFERENCED = (
    "return [...document.querySelectorAll('[src], [href], [action]')]"
    ".map(e => e.src || e.href || e.action)"
    ".concat(performance.getEntriesByType('resource').map(e => e.name))"
)


def resources_elsewhere(driver: webdriver.Chrome, base: str, *, links: bool = True) -> list[str]:
    """What the page loaded from another origin (and, with `links`, links or posts to)."""
    origin = urlsplit(base).netloc
    loaded = driver.execute_script(_REFERENCED if links else _LOADED)
    return [
        url
        for url in loaded
        if isinstance(url, str)
        and urlsplit(url).scheme in ("http", "https", "ws", "wss")
        and urlsplit(url).netloc != origin
    ]


def no_external_references(driver: webdriver.Chrome, base: str) -> None:
    log_in(driver, base)
    for path in ("/ui", "/ui/cabinets", "/ui/cabinets/1?q=товар", "/ui/runs", "/ui/runs/1"):
        driver.get_log("browser")
        driver.get(base + path)
        assert not resources_elsewhere(driver, base), path
    for path, ready in (("/docs", ".swagger-ui .info"), ("/redoc", "redoc-wrap, .redoc-wrap")):
        driver.get(base + path)
        wait_until(lambda r=ready: driver.find_elements(By.CSS_SELECTOR, r), f"{path} rendered")
        # Swagger UI and ReDoc link to their projects' sites; nothing may be loaded from there.
        # ReDoc asks for a remote logo: the page's CSP refuses it (and the browser says so).
        refused = " ".join(
            e["message"]
            for e in driver.get_log("browser")
            if "Content Security Policy" in e["message"]
        )
        elsewhere = resources_elsewhere(driver, base, links=False)
        assert all(f"'{url}'" in refused for url in elsewhere), (path, elsewhere)


async def test_operator_flow_in_a_real_browser(browser: webdriver.Chrome, console_url: str) -> None:
    await asyncio.to_thread(scenario, browser, console_url)


async def test_no_page_loads_anything_from_another_origin(
    browser: webdriver.Chrome, console_url: str
) -> None:
    await asyncio.to_thread(no_external_references, browser, console_url)
