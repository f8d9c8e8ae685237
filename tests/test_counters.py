"""One definition of a run's counters: `IndexReport`'s fields. The ledger's columns, `Run`, the
API's `RunCounters`, `runs --json` and the CLI's table all agree with it."""

from __future__ import annotations

import dataclasses
import json

from sqlalchemy import text

from rag_indexer_service.api.schemas import RunCounters
from rag_indexer_service.api.views import run_out
from rag_indexer_service.indexing.report import COUNTER_FIELDS, COUNTER_TYPES, IndexReport
from rag_indexer_service.runs import Ledger
from rag_indexer_service.runtime import Runtime
from tests.helpers import rag

SQL_TYPES = {int: {"integer", "bigint"}, bool: {"boolean"}}


def every_counter_set(cabinet_id: int) -> IndexReport:
    """A report whose counters all differ from each other and from their defaults."""
    values = {
        name: True if kind is bool else 100 + n
        for n, (name, kind) in enumerate(COUNTER_TYPES.items())
    }
    return IndexReport(cabinet_id=cabinet_id, **values)  # type: ignore[arg-type]


def test_the_counters_are_the_reports_fields_but_identity_duration_and_failures() -> None:
    names = [f.name for f in dataclasses.fields(IndexReport)]

    assert list(COUNTER_FIELDS) == [
        n for n in names if n not in ("cabinet_id", "duration_s", "failures", "mode", "full_reason")
    ]
    assert {"scan_skipped", "rebuild", "chunks_embedded", "embedding_tokens"} <= set(COUNTER_FIELDS)
    assert COUNTER_TYPES["scan_skipped"] is bool and COUNTER_TYPES["docs_added"] is int


def test_the_api_schema_has_every_counter_with_its_type() -> None:
    schema = RunCounters.model_json_schema()["properties"]

    assert list(schema) == list(COUNTER_FIELDS)
    for name, kind in COUNTER_TYPES.items():
        types = {option.get("type") for option in schema[name]["anyOf"]}
        assert types == {"integer" if kind is int else "boolean", "null"}, name


async def test_the_ledger_has_a_column_of_the_right_type_for_every_counter(
    runtime: Runtime,
) -> None:
    async with runtime.db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'rag_runs'"
            )
        )
        columns = {r.column_name: r.data_type for r in rows}

    for name, kind in COUNTER_TYPES.items():
        assert columns.get(name) in SQL_TYPES[kind], (name, columns.get(name))


async def test_every_counter_goes_through_the_ledger_the_api_and_the_cli(
    ledger: Ledger, worker_env: dict[str, str]
) -> None:
    report = every_counter_set(5)
    run, _ = await ledger.request(5, "cli", "rag-manual")
    await ledger.start_attempt(run.id, worker_id="w", stale_after_s=60)
    await ledger.succeed(run.id, report, worker_id="w")
    expected = {name: getattr(report, name) for name in COUNTER_FIELDS}

    stored = await ledger.get(run.id)
    listed = rag(worker_env, "runs", "--json")
    table = rag(worker_env, "runs")

    assert stored is not None and stored.counters == expected
    assert run_out(stored).counters.model_dump() == expected
    assert listed.returncode == 0 and table.returncode == 0, listed.stderr + table.stderr
    [shown] = json.loads(listed.stdout)
    assert {name: shown[name] for name in COUNTER_FIELDS} == expected
    assert "scan_skipped" in table.stdout and "rebuild" in table.stdout
