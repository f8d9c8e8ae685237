"""`/ui/login` and `/ui/logout`: an API key in, a session cookie out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from rag_indexer_service.ui.guard import ConsoleDep, SessionDep, read_form, verify_post

__all__ = ["router"]

router = APIRouter(prefix="/ui", include_in_schema=False)


def _safe_next(raw: str | None) -> str:
    """Only a path inside the console (no `//host`, no scheme): no open redirect."""
    if raw and raw.startswith("/ui") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return "/ui"


@router.get("/login")
async def login_page(request: Request, console: ConsoleDep) -> Response:
    next_path = _safe_next(request.query_params.get("next"))
    if console.sessions.read(request) is not None:
        return RedirectResponse(next_path, status_code=303)
    return console.renderer.page("login.html", next=next_path, error=None)


@router.post("/login")
async def login(request: Request, console: ConsoleDep) -> Response:
    form = await read_form(request)
    next_path = _safe_next(form.get("next"))
    session = console.sessions.login(form.get("key", "").strip())
    if session is None:
        return console.renderer.page(
            "login.html", status_code=401, next=next_path, error="This API key is not accepted."
        )
    response = RedirectResponse(next_path, status_code=303)
    console.sessions.store(response, request, session)
    return response


@router.post("/logout")
async def logout(request: Request, console: ConsoleDep, session: SessionDep) -> Response:
    await verify_post(request, session)
    response = RedirectResponse("/ui/login", status_code=303)
    console.sessions.clear(response)
    return response
