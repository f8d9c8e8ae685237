"""Actors, retries and bookkeeping with a StubBroker and a real in-process Dramatiq worker,
against real Postgres. Faults are injected in the real source database."""

from __future__ import annotations

import asyncpg
import pytest

from rag_indexer_service.config import Settings
from rag_indexer_service.jobs.broker import QUEUE_MANUAL, build_broker
from rag_indexer_service.jobs.dispatch import Dispatcher, DispatchOptions
from rag_indexer_service.runs import Ledger
from tests.helpers import add_cabinet, wait_for_run

FLAKY_SOURCE = """
CREATE SEQUENCE flaky_calls;
CREATE TABLE flaky (failures int NOT NULL);
CREATE FUNCTION flaky_gate() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    -- nextval survives the rollback that the exception causes
    IF nextval('flaky_calls') <= (SELECT failures FROM flaky) THEN
        RAISE EXCEPTION 'source is restarting' USING ERRCODE = '57P03';
    END IF;
    RETURN true;
END $$;
"""


async def make_source_flaky(conn: asyncpg.Connection, failures: int) -> None:
    """The next `failures` source queries fail like a server that cannot accept connections."""
    await conn.execute(FLAKY_SOURCE)
    await conn.execute("INSERT INTO flaky VALUES ($1)", failures)
    await conn.execute(
        "CREATE VIEW src_docs_gated AS SELECT * FROM src_docs WHERE (SELECT flaky_gate())"
    )


@pytest.fixture
def flaky_settings(worker_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    path = tmp_path_factory.mktemp("flaky") / "sources.toml"
    text = worker_settings.sources_file.read_text().replace("FROM src_docs", "FROM src_docs_gated")
    path.write_text(text)
    return worker_settings.model_copy(update={"sources_file": path})


async def test_successful_run_fills_the_counters(
    dispatcher: Dispatcher, ledger: Ledger, source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 1, docs=12)

    result = await dispatcher.trigger(1, "manual")
    run = await wait_for_run(ledger, result.run.id)

    assert result.created and run.status == "succeeded" and run.attempt == 1
    assert run.counters["docs_added"] == 12 and run.counters["chunks_embedded"] == 12
    assert run.progress_done == 12 and run.error is None and run.finished_at is not None


async def test_unknown_cabinet_fails_after_one_attempt(
    dispatcher: Dispatcher, ledger: Ledger
) -> None:
    result = await dispatcher.trigger(404, "manual")
    run = await wait_for_run(ledger, result.run.id)

    assert run.status == "failed" and run.attempt == 1
    assert run.error == "cabinet 404 is not listed by the source"


async def test_a_forced_run_is_recorded_and_stays_forced_when_its_message_is_re_sent(
    dispatcher: Dispatcher, ledger: Ledger, source_conn: asyncpg.Connection
) -> None:
    # Given an indexed cabinet whose source has not changed since
    await add_cabinet(source_conn, 1, docs=3)
    first = await wait_for_run(ledger, (await dispatcher.trigger(1, "manual")).run.id)
    unforced = await wait_for_run(ledger, (await dispatcher.trigger(1, "manual")).run.id)
    assert first.status == unforced.status == "succeeded"
    assert unforced.counters["scan_skipped"] is True and not unforced.forced

    # When a forced run is requested
    forced = await wait_for_run(ledger, (await dispatcher.trigger(1, "manual", force=True)).run.id)

    # Then the ledger says so and the run scanned
    assert forced.status == "succeeded" and forced.forced
    assert forced.counters["scan_skipped"] is False

    # ... and a forced run whose message was never sent is still forced when it is re-sent
    lost, created = await ledger.request(1, "manual", QUEUE_MANUAL, force=True)
    assert created and lost.forced
    assert await dispatcher.send_unsent(older_than_s=0) == 1
    resent = await wait_for_run(ledger, lost.id)
    assert resent.status == "succeeded" and resent.counters["scan_skipped"] is False


@pytest.mark.parametrize("failures, status, attempts", [(2, "succeeded", 3), (9, "failed", 4)])
async def test_transient_source_errors_are_retried(
    flaky_settings: Settings,
    source_conn: asyncpg.Connection,
    failures: int,
    status: str,
    attempts: int,
) -> None:
    import dramatiq

    from rag_indexer_service.jobs.worker import setup_worker
    from rag_indexer_service.runtime import open_runtime

    await add_cabinet(source_conn, 1, docs=5)
    await make_source_flaky(source_conn, failures)
    broker = build_broker(flaky_settings, allow_stub=True)
    setup_worker(broker, flaky_settings)
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=1)
    worker.start()
    try:
        async with open_runtime(flaky_settings) as rt:
            ledger = Ledger(rt.db.engine)
            result = await Dispatcher(
                broker, ledger, DispatchOptions.from_settings(flaky_settings)
            ).trigger(1, "manual")
            run = await wait_for_run(ledger, result.run.id)
    finally:
        worker.stop()
        broker.close()

    assert run.status == status and run.attempt == attempts
    if status == "failed":
        assert run.error is not None and "RAG_SOURCE_DATABASE_URL" in run.error


REFUSING_CABINETS = """
CREATE FUNCTION rag_test_refuse_value() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The index's own state (its embedder), not the ledger's last_run_id: a data exception.
    IF NEW.embedder_id IS NOT NULL AND (TG_OP = 'INSERT' OR OLD.embedder_id IS NULL) THEN
        RAISE EXCEPTION 'value refused' USING ERRCODE = '22023';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER rag_test_refuse_value BEFORE INSERT OR UPDATE ON rag_cabinets
    FOR EACH ROW EXECUTE FUNCTION rag_test_refuse_value();
"""


async def test_a_value_postgres_refuses_outside_a_document_is_not_retried(
    dispatcher: Dispatcher, ledger: Ledger, source_conn: asyncpg.Connection
) -> None:
    # Given the service database refusing a value the run writes for its cabinet (not for
    # one document, which would fail only that document)
    await add_cabinet(source_conn, 1, docs=3)
    await source_conn.execute(REFUSING_CABINETS)

    run = await wait_for_run(ledger, (await dispatcher.trigger(1, "manual")).run.id)

    # then the same data would fail the same way: one attempt, one sentence
    assert run.status == "failed" and run.attempt == 1
    assert run.error == (
        "cabinet 1: Postgres refused a value while writing the index; see the worker log"
    )
