"""The console at the HTTP level: login, the session cookie's flags, CSRF, logout, and pages
that work only with a session. The browser tests (test_browser.py) drive the same pages."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import dramatiq
import httpx
import pytest
from fastapi import FastAPI

from rag_indexer_service.api import create_app
from rag_indexer_service.config import Settings
from rag_indexer_service.ui.session import COOKIE_NAME
from tests.api.conftest import API_KEY, asgi_client, running
from tests.helpers import add_cabinet, add_schedulers, flat_routes

PAGES = ("/ui", "/ui/cabinets", "/ui/runs", "/ui/cabinets/7", "/ui/live/overview")


@pytest.fixture
async def console(api_settings: Settings, idle_broker: dramatiq.Broker) -> AsyncIterator[FastAPI]:
    async with running(create_app(api_settings, broker=idle_broker)) as app:
        yield app


@asynccontextmanager
async def logged_in(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app, key=None) as client:
        response = await client.post("/ui/login", data={"key": API_KEY, "next": "/ui/cabinets"})
        assert response.status_code == 303 and response.headers["location"] == "/ui/cabinets"
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def test_every_page_needs_a_session(console: FastAPI) -> None:
    async with asgi_client(console, key=API_KEY) as client:  # an API key header is not a login
        for path in PAGES:
            response = await client.get(path)
            if path.startswith("/ui/live/"):
                assert response.status_code == 401, path
            else:
                assert response.status_code == 303, path
                assert response.headers["location"].startswith("/ui/login?next=%2Fui")
        post = await client.post("/ui/cabinets/7/runs", data={"csrf": "x"})
        assert post.status_code == 401


async def test_every_console_route_but_login_is_guarded(console: FastAPI) -> None:
    routes = [
        (method, re.sub(r"\{cabinet\}|\{run\}|\{path:path\}", "7", getattr(route, "path", "")))
        for route in flat_routes(console.routes)
        if getattr(route, "path", "").startswith("/ui/")
        and getattr(route, "path", "") != "/ui/login"
        for method in getattr(route, "methods", set()) - {"HEAD"}
    ]
    assert len(routes) >= 9
    async with asgi_client(console, key=API_KEY) as client:
        for method, path in routes:
            response = await client.request(method, path)
            assert response.status_code in (303, 401), (method, path)
            assert response.status_code == 401 or "/ui/login" in response.headers["location"]


async def test_login_sets_a_signed_httponly_samesite_cookie(console: FastAPI) -> None:
    async with asgi_client(console, key=None) as client:
        wrong = await client.post("/ui/login", data={"key": "not-the-key-at-all-0000"})
        assert wrong.status_code == 401 and "not accepted" in wrong.text
        assert COOKIE_NAME not in wrong.headers.get("set-cookie", "")

        good = await client.post("/ui/login", data={"key": API_KEY, "next": "//evil.example/x"})

    assert good.status_code == 303 and good.headers["location"] == "/ui"
    cookie = good.headers["set-cookie"]
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert {"httponly", "samesite", "path", "max-age"} <= flags
    assert "samesite=lax" in cookie.lower() and "path=/ui" in cookie.lower()
    assert "secure" not in flags  # plain http here; Secure is set when served over https
    assert API_KEY not in cookie


async def test_pages_render_with_a_session_and_russian_text(
    console: FastAPI, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 7, docs=2)
    async with logged_in(console) as client:
        for path in PAGES:
            response = await client.get(path)
            assert response.status_code == 200, (path, response.text[:300])
            assert response.headers["content-type"] == "text/html; charset=utf-8"
            assert "default-src 'self'" in response.headers["content-security-policy"]
        searched = await client.get("/ui/cabinets/7", params={"q": "кроссовки"})
        assert searched.status_code == 200 and 'value="кроссовки"' in searched.text


async def test_posts_need_the_sessions_csrf_token_and_origin(
    console: FastAPI, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 7, docs=2)
    async with logged_in(console) as client:
        token = csrf_of((await client.get("/ui/cabinets/7")).text)

        missing = await client.post("/ui/cabinets/7/runs", data={})
        forged = await client.post("/ui/cabinets/7/runs", data={"csrf": token + "x"})
        foreign = await client.post(
            "/ui/cabinets/7/runs", data={"csrf": token}, headers={"Origin": "http://evil.test"}
        )
        assert [r.status_code for r in (missing, forged, foreign)] == [403, 403, 403]
        assert (await client.get("/ui/runs")).text.count('href="/ui/runs/') == 0

        queued = await client.post(
            "/ui/cabinets/7/runs", data={"csrf": token}, headers={"Origin": "http://api.test"}
        )
        assert queued.status_code == 303
        run_page = await client.get(queued.headers["location"])
        assert run_page.status_code == 200 and "queued" in run_page.text

        assert (await client.post("/ui/logout", data={"csrf": "wrong"})).status_code == 403
        out = await client.post("/ui/logout", data={"csrf": token})
        assert out.status_code == 303 and out.headers["location"] == "/ui/login"
        assert (
            "max-age=0" in out.headers["set-cookie"].lower()
            or "expires" in out.headers["set-cookie"].lower()
        )
        assert (await client.get("/ui")).status_code == 303


async def test_bad_addresses_and_filters_get_a_console_page_not_json_nor_every_row(
    console: FastAPI, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 7, docs=2)
    async with logged_in(console) as client:
        token = csrf_of((await client.get("/ui/cabinets/7")).text)
        queued = await client.post("/ui/cabinets/7/runs", data={"csrf": token})
        run_link = f'href="{queued.headers["location"]}"'
        assert run_link in (await client.get("/ui/runs")).text

        for path, code, says in (
            ("/ui/cabinets/abc", 404, "&#39;abc&#39; is not a cabinet id"),
            ("/ui/cabinets/0", 404, "&#39;0&#39; is not a cabinet id"),
            ("/ui/runs/abc", 404, "&#39;abc&#39; is not a run id"),
            ("/ui/live/runs/abc", 404, "no such run"),
            ("/ui/live/cabinets/x", 404, "no such cabinet"),
            ("/ui/nowhere/at/all", 404, "no console page at /ui/nowhere/at/all"),
            ("/ui/runs?cabinet=abc", 400, "&#39;abc&#39; is not a cabinet id"),
            ("/ui/runs?cabinet_id=-1", 400, "&#39;-1&#39; is not a cabinet id"),
            ("/ui/runs?status=done", 400, "&#39;done&#39; is not a run status"),
            ("/ui/cabinets?q=abc", 400, "&#39;abc&#39; is not the start of a cabinet id"),
            ("/ui/cabinets?status=broken", 400, "&#39;broken&#39; is not a filter"),
        ):
            page = await client.get(path)
            assert (page.status_code, page.headers["content-type"]) == (
                code,
                "text/html; charset=utf-8",
            ), path
            assert says in page.text, (path, page.text[-800:])
            if not path.startswith("/ui/live/"):  # a page of the console, with its navigation
                assert 'id="logout"' in page.text, path
            assert run_link not in page.text and 'href="/ui/cabinets/7"' not in page.text, path
        # `cabinet` is the CLI's name for the filter (`runs --cabinet`): it works here too
        assert run_link in (await client.get("/ui/runs?cabinet=7")).text
        assert run_link not in (await client.get("/ui/runs?cabinet=8")).text
        bad_post = await client.post("/ui/cabinets/abc/runs", data={"csrf": token})
        assert bad_post.status_code == 404 and "is not a cabinet id" in bad_post.text


async def test_a_tampered_cookie_or_a_removed_key_ends_the_session(
    api_settings: Settings, idle_broker: dramatiq.Broker, console: FastAPI
) -> None:
    async with logged_in(console) as client:
        cookie = client.cookies[COOKIE_NAME]
    async with asgi_client(console, key=None) as tampered:
        tampered.cookies.set(COOKIE_NAME, cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB"))
        assert (await tampered.get("/ui")).status_code == 303

    rotated = api_settings.model_copy(update={"api_keys": ("a-new-key-0123456789abcdef",)})
    async with (
        running(create_app(rotated, broker=idle_broker)) as app,
        asgi_client(app, key=None) as after_rotation,
    ):
        after_rotation.cookies.set(COOKIE_NAME, cookie)
        assert (await after_rotation.get("/ui")).status_code == 303


async def test_probes_stay_open_and_docs_are_served_from_this_process(console: FastAPI) -> None:
    async with asgi_client(console, key=None) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/")).headers["location"] == "/ui"
        for path in ("/docs", "/redoc"):
            page = await client.get(path)
            assert page.status_code == 200
            assert page.headers["content-security-policy"].startswith("default-src 'self'")
            assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
            assert assets and all(a.startswith("/") for a in assets), assets
            for asset in assets:
                assert (await client.get(asset)).status_code == 200, asset


async def test_queueing_a_cabinet_the_source_does_not_list_is_refused_without_a_run(
    console: FastAPI, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 7, docs=1)
    async with logged_in(console) as client:
        token = csrf_of((await client.get("/ui/cabinets/7")).text)
        refused = await client.post(
            "/ui/cabinets/99/runs", data={"csrf": token}, headers={"Origin": "http://api.test"}
        )
        assert refused.status_code == 404
        assert "The source does not list cabinet 99." in refused.text
        assert (await client.get("/ui/runs")).text.count('href="/ui/runs/') == 0


async def test_the_overview_marks_schedulers_without_a_recent_heartbeat_as_gone(
    console: FastAPI, source_conn: asyncpg.Connection
) -> None:
    await add_schedulers(source_conn)
    async with logged_in(console) as client:
        html = (await client.get("/ui")).text

    replicas = {
        m.group(1): m.group(2) for m in re.finditer(r"<code>([^<]+)</code>(.*?)</dl>", html, re.S)
    }
    assert "gone" not in replicas["beating:1"] and "next tick" in replicas["beating:1"]
    assert "gone since" in replicas["silent:2"] and "(no heartbeat)" in replicas["silent:2"]
    assert "gone since" in replicas["stopped:3"] and "(stopped)" in replicas["stopped:3"]
