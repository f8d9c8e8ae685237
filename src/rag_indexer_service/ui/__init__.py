"""The operator console: server-rendered pages under `/ui`, served by the API process.

    /ui              overview: runs per hour, queues, active runs, schedulers, failures
    /ui/cabinets     every cabinet with its index state; /ui/cabinets/{id}: one, with search
    /ui/runs         the ledger; /ui/runs/{id}: one run, live while it is active
    /ui/login        an API key in, a signed session cookie out (see `session.py`)

Templates and assets are package data; nothing is loaded from another origin. The few lines of
`static/console.js` refresh the `data-refresh` parts of a page and nothing else.

Owns no SQL: pages read through the API's views and context (runtime, ledger, dispatcher) and
trigger through `service`. May import `api` (auth, views, schemas, deps), `service`, `runs`,
`scheduling` (operator records), `errors`; installed by `api.app`.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import RedirectResponse

from rag_indexer_service.api.auth import ApiKeyAuth
from rag_indexer_service.ui import login, pages
from rag_indexer_service.ui.guard import (
    Console,
    CsrfRejected,
    LoginRequired,
    refuse_csrf,
    send_to_login,
)
from rag_indexer_service.ui.render import Renderer
from rag_indexer_service.ui.session import SessionCodec

__all__ = ["CONSOLE_PATH", "install_console"]

CONSOLE_PATH = "/ui"


async def _home() -> RedirectResponse:
    return RedirectResponse(CONSOLE_PATH, status_code=307)


def install_console(app: FastAPI, auth: ApiKeyAuth) -> None:
    app.state.console = Console(renderer=Renderer(), sessions=SessionCodec(auth))
    app.add_exception_handler(LoginRequired, send_to_login)
    app.add_exception_handler(CsrfRejected, refuse_csrf)
    app.mount(
        f"{CONSOLE_PATH}/static",
        StaticFiles(packages=[("rag_indexer_service.ui", "static")]),
        name="console-static",
    )
    app.include_router(login.router)
    app.include_router(pages.router)
    app.add_api_route("/", _home, include_in_schema=False)
