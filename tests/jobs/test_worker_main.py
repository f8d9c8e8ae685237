"""The module `dramatiq` loads in a worker process: a broken start is one line and exit 2."""

from __future__ import annotations

import runpy

import pytest
from dramatiq.brokers.redis import RedisBroker


def test_a_changed_dramatiq_stops_the_worker_at_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a Redis broker URL and a Dramatiq without the private method the fast path calls
    monkeypatch.setenv("RAG_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.delattr(RedisBroker, "_max_unpack_size")

    # When dramatiq loads the worker module
    with pytest.raises(SystemExit) as stopped:
        runpy.run_module("rag_indexer_service.jobs.worker_main")

    # Then it exits 2 with the reason, before declaring any actor
    assert stopped.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: dramatiq ") and "RedisBroker._max_unpack_size()" in line
