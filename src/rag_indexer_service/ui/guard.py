"""What every console request passes: a session (else the login page), and for POSTs a
same-origin, CSRF-token-carrying form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl, quote, urlsplit

from fastapi import Depends, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from rag_indexer_service.ui.render import HEADERS, Renderer
from rag_indexer_service.ui.session import Session, SessionCodec

__all__ = [
    "MAX_FORM_BYTES",
    "Console",
    "ConsoleDep",
    "CsrfRejected",
    "LoginRequired",
    "SessionDep",
    "console_of",
    "read_form",
    "refuse_csrf",
    "send_to_login",
    "verify_post",
]

MAX_FORM_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class Console:
    renderer: Renderer
    sessions: SessionCodec


class LoginRequired(Exception):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


class CsrfRejected(Exception):
    pass


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


async def _console(request: Request) -> Console:
    return console_of(request)


ConsoleDep = Annotated[Console, Depends(_console)]


async def _session(request: Request, console: ConsoleDep) -> Session:
    session = console.sessions.read(request)
    if session is None:
        query = f"?{request.url.query}" if request.url.query else ""
        raise LoginRequired(request.url.path + query)
    request.state.console_session = session
    return session


SessionDep = Annotated[Session, Depends(_session)]


async def read_form(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body (what the console's forms send)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise CsrfRejected("form too large")
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def same_origin(request: Request) -> bool:
    """A browser's POST names its page's origin; it must be this server's."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host")


async def verify_post(request: Request, session: Session) -> dict[str, str]:
    form = await read_form(request)
    if not same_origin(request) or not session.csrf_matches(form.get("csrf")):
        raise CsrfRejected("the form's CSRF token or origin does not match this session")
    return form


def send_to_login(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    if request.url.path.startswith("/ui/live/") or request.method != "GET":
        return HTMLResponse("login required", status_code=401, headers=HEADERS)
    return RedirectResponse(f"/ui/login?next={quote(exc.path, safe='')}", status_code=303)


def refuse_csrf(request: Request, exc: Exception) -> Response:
    return console_of(request).renderer.page(
        "refused.html",
        status_code=403,
        reason="This form is stale or did not come from this console. Reload the page and try "
        "again.",
    )
