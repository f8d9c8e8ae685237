"""Every error the API returns, in one place and one shape: `{"error": {"code", "message"}}`.

    package error (errors.py)      HTTP
    CabinetNotFound                404 cabinet_not_found
    CabinetNotIndexed              404 cabinet_not_indexed
    CabinetBusy, SourceSuspicious  409
    EmbedderMismatch               409 embedder_mismatch
    SourceQueryError               502 source_query_failed
    EmbeddingRejected              502 embedding_rejected
    ConfigError / other permanent  500 configuration_error / 400 bad_request
    *Unavailable (transient)       503 with Retry-After
    database connection lost       503 database_unavailable
    request validation             422 validation_error (a body that is not UTF-8 JSON too)
    body too large / too slow      413 body_too_large / 408 request_timeout (api/guard.py)
    unknown route / method         404 not_found / 405 method_not_allowed
    anything else                  500 internal_error (traceback in the log only)

Messages of 5xx answers are fixed sentences: the details (hosts, driver messages) go to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag_indexer_service.db.engine import is_connection_error
from rag_indexer_service.errors import (
    BrokerUnavailable,
    CabinetBusy,
    CabinetNotFound,
    CabinetNotIndexed,
    ConfigError,
    DatabaseUnavailable,
    EmbedderMismatch,
    EmbeddingRejected,
    EmbeddingUnavailable,
    PermanentError,
    RagIndexerError,
    SourceQueryError,
    SourceSuspicious,
    SourceUnavailable,
    TransientError,
)

__all__ = [
    "MAX_INT64",
    "ApiError",
    "ErrorBody",
    "ErrorDetail",
    "NotFound",
    "Unauthorized",
    "error_response",
    "error_responses",
    "install_error_handlers",
    "status_for",
]

log = logging.getLogger(__name__)

MAX_INT64 = 2**63 - 1
RETRY_AFTER_S = 5


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """The body of every error answer."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"error": {"code": "cabinet_not_found", "message": "cabinet 42 is not listed"}}
            ]
        }
    )

    error: ErrorDetail


class ApiError(Exception):
    """An error raised by the HTTP layer itself (not by the service below it)."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})


class NotFound(ApiError):
    status_code = 404
    code = "not_found"

    def __init__(self, message: str, *, code: str = "not_found") -> None:
        super().__init__(message)
        self.code = code


class Unauthorized(ApiError):
    status_code = 401
    code = "unauthorized"


# Most specific first is not needed: lookup walks the exception's MRO.
_STATUS: dict[type[RagIndexerError], tuple[int, str]] = {
    CabinetNotFound: (404, "cabinet_not_found"),
    CabinetNotIndexed: (404, "cabinet_not_indexed"),
    CabinetBusy: (409, "cabinet_busy"),
    SourceSuspicious: (409, "source_suspicious"),
    EmbedderMismatch: (409, "embedder_mismatch"),
    SourceQueryError: (502, "source_query_failed"),
    EmbeddingRejected: (502, "embedding_rejected"),
    ConfigError: (500, "configuration_error"),
    PermanentError: (400, "bad_request"),
    SourceUnavailable: (503, "source_unavailable"),
    DatabaseUnavailable: (503, "database_unavailable"),
    EmbeddingUnavailable: (503, "embedding_unavailable"),
    BrokerUnavailable: (503, "broker_unavailable"),
    TransientError: (503, "unavailable"),
    RagIndexerError: (500, "internal_error"),
}

_PUBLIC_MESSAGE = {
    "source_query_failed": "the source database rejected a configured query; see the service log",
    "embedding_rejected": "the embedding provider rejected the request; see the service log",
    "configuration_error": "the service is misconfigured; see the service log",
    "source_unavailable": "the source database is unreachable; try again later",
    "database_unavailable": "the service database is unreachable; try again later",
    "embedding_unavailable": "the embedding provider is unavailable; try again later",
    "broker_unavailable": (
        "the message broker is unreachable, nothing was queued; try again later"
    ),
    "unavailable": "a service this API depends on is unavailable; try again later",
    "internal_error": "internal error; see the service log",
}


def status_for(exc: RagIndexerError) -> tuple[int, str]:
    """The HTTP status and error code of one of our errors."""
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 500, "internal_error"


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    extra = dict(headers or {})
    if status == 503:
        extra.setdefault("Retry-After", str(RETRY_AFTER_S))
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=extra
    )


_DESCRIPTIONS = {
    400: "The request cannot be carried out.",
    401: "No API key, or one that is not accepted.",
    404: "No such resource.",
    409: "Conflicts with work in progress.",
    413: "The request body is larger than the API reads (RAG_API_MAX_BODY_BYTES).",
    422: "The request is invalid (path, query or body).",
    500: "Internal error (details in the service log only).",
    502: "The source database or the embedding provider rejected a request.",
    503: "A dependency (database, broker, source) is unreachable; retry later.",
}
_EXAMPLES = {
    401: ("unauthorized", "missing API key: send X-API-Key or Authorization: Bearer <key>"),
    404: ("cabinet_not_found", "cabinet 42 is not listed by the source"),
    409: ("cabinet_busy", "cabinet 42 is being indexed by another process"),
    413: ("body_too_large", "the request body is larger than 262144 bytes"),
    422: ("validation_error", "path parameter cabinet_id must be a positive 64-bit integer"),
    503: ("database_unavailable", _PUBLIC_MESSAGE["database_unavailable"]),
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting the error answers of a route."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": ErrorBody, "description": _DESCRIPTIONS[status]}
        if status in _EXAMPLES:
            code, message = _EXAMPLES[status]
            entry["content"] = {
                "application/json": {"example": {"error": {"code": code, "message": message}}}
            }
        if status == 401:
            entry["headers"] = {
                "WWW-Authenticate": {
                    "description": "The scheme to authenticate with.",
                    "schema": {"type": "string"},
                }
            }
        documented[status] = entry
    return documented


# -- validation messages ---------------------------------------------------------------------
_WHERE = {"path": "path parameter", "query": "query parameter", "header": "header"}
_ID_FIELDS = {"cabinet_id", "run_id"}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _one_problem(error: Mapping[str, Any]) -> str:
    loc = [str(part) for part in error.get("loc", ())]
    source, field = (loc[0], ".".join(loc[1:])) if loc else ("request", "")
    kind = error.get("type", "")
    if kind == "json_invalid":
        return "the request body is not valid JSON"
    if source == "body" and not field:
        if kind == "missing":
            return "a JSON request body is required"
        return f"the request body must be a JSON object ({error.get('msg', 'invalid')})"
    if source in ("path", "query") and field in _ID_FIELDS and kind != "missing":
        return (
            f"{_WHERE[source]} {field} must be a positive 64-bit integer "
            f"(1..{MAX_INT64}), got {_shown(error.get('input'))}"
        )
    if field == "query" and kind == "string_pattern_mismatch":
        if "\x00" in str(error.get("input", "")):
            return "body field query must not contain NUL characters (\\u0000)"
        return "body field query must contain a character that is not a space"
    where = _WHERE.get(source, "body field" if source == "body" else source)
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where} {field}: {message}".replace(" : ", ": ")


def describe_validation(errors: Sequence[Any]) -> str:
    problems = list(dict.fromkeys(_one_problem(e) for e in errors))
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return "; ".join(problems[:5]) + more


# -- handlers --------------------------------------------------------------------------------
async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.code, exc.message, exc.headers)


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RagIndexerError)
    status, code = status_for(exc)
    if status >= 500:
        log.warning("%s %s failed: %s: %s", request.method, request.url.path, code, exc)
    return error_response(status, code, _PUBLIC_MESSAGE.get(code, str(exc)))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "validation_error", describe_validation(exc.errors()))


_HTTP_CODES = {408: "request_timeout", 413: "body_too_large"}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
        # FastAPI's answer to a body it cannot decode (not UTF-8): a body error like others.
        return error_response(422, "validation_error", "the request body is not valid JSON")
    if exc.status_code == 404:
        code, message = "not_found", f"no such resource: {request.url.path}"
    elif exc.status_code == 405:
        code = "method_not_allowed"
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        message = str(exc.detail)
    return error_response(exc.status_code, code, message, exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    if is_connection_error(exc):
        log.warning("%s %s: database unreachable: %s", request.method, request.url.path, exc)
        return error_response(503, "database_unavailable", _PUBLIC_MESSAGE["database_unavailable"])
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", _PUBLIC_MESSAGE["internal_error"])


def install_error_handlers(app: FastAPI) -> None:
    """Map every failure to the one error shape. Unexpected errors stay in the log."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RagIndexerError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Lost database connections surface as driver errors: 503, handled without a traceback.
    app.add_exception_handler(SQLAlchemyError, _unexpected)
    app.add_exception_handler(OSError, _unexpected)
    app.add_exception_handler(Exception, _unexpected)
