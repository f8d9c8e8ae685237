"""The OpenAPI document is complete: summaries, security, documented errors and examples."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from rag_indexer_service.api import create_app
from rag_indexer_service.config import Settings
from tests.api.conftest import API_KEY

ERROR_REF = "#/components/schemas/ErrorBody"


@pytest.fixture
def spec(worker_settings: Settings) -> dict[str, Any]:
    settings = worker_settings.model_copy(
        update={"api_keys": (API_KEY,), "broker_url": "redis://127.0.0.1:1/0"}
    )
    app: FastAPI = create_app(settings)  # building the schema connects to nothing
    return app.openapi()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
    ]


def test_every_endpoint_of_the_issue_is_there(spec: dict[str, Any]) -> None:
    assert {(m, p) for m, p, _ in operations(spec)} == {
        ("POST", "/api/v1/rag/index/{cabinet_id}"),
        ("POST", "/api/v1/rag/index"),
        ("GET", "/api/v1/rag/runs/{run_id}"),
        ("GET", "/api/v1/rag/runs"),
        ("GET", "/api/v1/rag/cabinets"),
        ("GET", "/api/v1/rag/cabinets/{cabinet_id}"),
        ("POST", "/api/v1/rag/cabinets/{cabinet_id}/search"),
        ("GET", "/api/v1/rag/scheduler"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
    }


def test_api_routes_need_a_key_and_document_their_errors(spec: dict[str, Any]) -> None:
    for method, path, op in operations(spec):
        assert op.get("summary"), (method, path)
        if not path.startswith("/api/v1/"):
            assert "security" not in op, path
            continue
        assert op["security"] == [{"ApiKey": []}, {"Bearer": []}], path
        statuses = set(op["responses"])
        assert {"401", "500", "503"} <= statuses, (method, path)
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in statuses, (method, path)
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_REF}, (method, path, status)
        assert "WWW-Authenticate" in op["responses"]["401"]["headers"]


def test_request_and_response_bodies_carry_examples(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for name in (
        "TriggerResponse",
        "BulkTriggerResponse",
        "RunOut",
        "RunPage",
        "CabinetOut",
        "SearchRequest",
        "SearchResponse",
        "SchedulerOut",
        "ErrorBody",
        "HealthOut",
        "ReadyOut",
    ):
        assert schemas[name].get("examples"), name
    assert "HTTPValidationError" not in schemas  # 422 has our error shape, not FastAPI's


def test_identifiers_are_bounded_positive_integers(spec: dict[str, Any]) -> None:
    for _, path, op in operations(spec):
        for param in op.get("parameters", []):
            if param["name"] in ("cabinet_id", "run_id") and param["in"] == "path":
                assert param["schema"]["minimum"] == 1, path
                assert param["schema"]["maximum"] == 2**63 - 1, path


def test_routes_with_a_body_document_the_size_limit(spec: dict[str, Any]) -> None:
    with_body = [(m, p, op) for m, p, op in operations(spec) if op.get("requestBody")]
    assert with_body
    for method, path, op in with_body:
        assert op["responses"]["413"]["content"]["application/json"]["example"] == {
            "error": {
                "code": "body_too_large",
                "message": "the request body is larger than 262144 bytes",
            }
        }, (method, path)
