"""API keys: every `/api/v1` route needs one (X-API-Key or Bearer); health routes do not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dramatiq
import httpx
import pytest
from fastapi import FastAPI

from rag_indexer_service.api import create_app
from rag_indexer_service.config import Settings
from rag_indexer_service.errors import ConfigError
from tests.api.conftest import API_KEY, OTHER_KEY, asgi_client, running
from tests.helpers import flat_routes

OPEN_PATHS = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc"}


def protected_requests(app: FastAPI) -> list[tuple[str, str]]:
    found = []
    for route in flat_routes(app.routes):
        path = getattr(route, "path", "")
        if path in OPEN_PATHS or path.startswith(("/docs", "/ui")) or path == "/":
            continue  # the console's pages need a session instead (tests/ui)
        for method in sorted(getattr(route, "methods", set()) - {"HEAD"}):
            found.append((method, path.replace("{cabinet_id}", "1").replace("{run_id}", "1")))
    return found


def request_kwargs(method: str, path: str) -> dict[str, Any]:
    return {"json": {"query": "x"}} if path.endswith("/search") else {}


async def test_every_api_route_is_protected(app: FastAPI) -> None:
    requests = protected_requests(app)
    assert len(requests) == 8 and all(path.startswith("/api/v1/") for _, path in requests)
    async with asgi_client(app, key=None) as anonymous, asgi_client(app, key="x" * 20) as wrong:
        for method, path in requests:
            missing = await anonymous.request(method, path, **request_kwargs(method, path))
            rejected = await wrong.request(method, path, **request_kwargs(method, path))

            assert missing.status_code == 401, (method, path)
            assert missing.headers["WWW-Authenticate"].startswith("Bearer")
            assert missing.json()["error"]["code"] == "unauthorized"
            assert rejected.status_code == 401, (method, path)
            assert rejected.json() == {
                "error": {"code": "unauthorized", "message": "the API key is not accepted"}
            }


async def test_bearer_and_every_configured_key_are_accepted(app: FastAPI) -> None:
    async with asgi_client(app, key=None) as c:
        for headers in (
            {"Authorization": f"Bearer {API_KEY}"},
            {"X-API-Key": OTHER_KEY},
        ):
            response = await c.get("/api/v1/rag/runs", headers=headers)
            assert response.status_code == 200, headers


async def test_health_routes_need_no_key(app: FastAPI) -> None:
    async with asgi_client(app, key=None) as c:
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
            assert (await c.get(path)).status_code == 200, path


def test_no_keys_configured_refuses_to_build_the_app(worker_settings: Settings) -> None:
    with pytest.raises(ConfigError, match="no API keys configured: set RAG_API_KEYS"):
        create_app(worker_settings)


def test_short_keys_are_refused(worker_settings: Settings) -> None:
    with pytest.raises(ConfigError, match="shorter than 16 characters"):
        create_app(worker_settings.model_copy(update={"api_keys": ("short",)}))


async def test_auth_disabled_explicitly_lets_requests_through(
    worker_settings: Settings, stub_worker: dramatiq.Broker
) -> None:
    settings = worker_settings.model_copy(update={"api_auth": "disabled"})
    app = create_app(settings, broker=stub_worker)
    async with running(app), asgi_client(app, key=None) as c:
        assert (await c.get("/api/v1/rag/runs")).status_code == 200


async def test_keys_file_is_read_with_comments(
    worker_settings: Settings, stub_worker: dramatiq.Broker, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"# operators\n{API_KEY}  # ops team\n\n")
    settings = worker_settings.model_copy(update={"api_keys_file": keys})
    app = create_app(settings, broker=stub_worker)
    async with running(app), asgi_client(app) as good, asgi_client(app, key=OTHER_KEY) as bad:
        assert (await good.get("/api/v1/rag/runs")).status_code == 200
        assert (await bad.get("/api/v1/rag/runs")).status_code == 401


def test_an_unreadable_keys_file_is_a_config_error(
    worker_settings: Settings, tmp_path: Path
) -> None:
    settings = worker_settings.model_copy(update={"api_keys_file": tmp_path / "missing"})
    with pytest.raises(ConfigError, match="RAG_API_KEYS_FILE: cannot read"):
        create_app(settings)


async def test_keys_from_the_environment_are_split_on_commas(
    monkeypatch: pytest.MonkeyPatch, worker_settings: Settings
) -> None:
    from rag_indexer_service.config import load_settings

    monkeypatch.setenv("RAG_API_KEYS", f" {API_KEY} ,, {OTHER_KEY} ")
    settings = load_settings(sources_file=worker_settings.sources_file)

    assert settings.api_keys == (API_KEY, OTHER_KEY)
    assert API_KEY not in repr(settings)


async def test_wrong_key_answer_does_not_depend_on_the_key(app: FastAPI) -> None:
    bodies = set()
    for key in ("y" * 20, API_KEY[:-1] + "X", API_KEY + "X"):
        async with asgi_client(app, key=key) as c:
            response: httpx.Response = await c.get("/api/v1/rag/runs")
            bodies.add((response.status_code, response.text))
    assert len(bodies) == 1
