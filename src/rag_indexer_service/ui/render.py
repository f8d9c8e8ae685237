"""The console's Jinja2 environment (packaged templates, autoescaped) and its filters."""

from __future__ import annotations

import datetime as dt
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

from rag_indexer_service.ui.charts import run_duration_s

__all__ = ["HEADERS", "Renderer", "human_duration"]

HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 120:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} d {hours % 24} h"


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return "–"
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(value: bool | int | float | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.1f}".replace(",", "\u202f")
    return f"{value:,}".replace(",", "\u202f")


class Renderer:
    def __init__(self) -> None:
        self.env = Environment(
            loader=PackageLoader("rag_indexer_service.ui", "templates"),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            when=_when, secs=human_duration, num=_number, run_duration=run_duration_s
        )

    def page(self, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        now = dt.datetime.now(dt.UTC)

        def ago(value: dt.datetime | None) -> str:
            if value is None:
                return "never"
            delta = (now - value).total_seconds()
            if delta < 0:
                return "in " + human_duration(-delta)
            return human_duration(delta) + " ago"

        html = self.env.get_template(name).render(now=now, ago=ago, **context)
        return HTMLResponse(html, status_code=status_code, headers=HEADERS)
