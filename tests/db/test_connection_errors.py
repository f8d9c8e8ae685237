"""`database_errors()`: the one place a connection failure becomes `DatabaseUnavailable`
(the worker, a run's execution, the fan-out and the run reader all go through it). No server
is needed: a real connection to a port nobody listens on is refused."""

from __future__ import annotations

import socket

import asyncpg
import pytest

from rag_indexer_service.db.engine import database_errors
from rag_indexer_service.errors import CabinetNotFound, DatabaseUnavailable, TransientError


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _connect_to_nothing() -> None:
    await asyncpg.connect(host="127.0.0.1", port=_closed_port(), user="x", timeout=5)


async def test_a_refused_connection_is_database_unavailable_naming_what() -> None:
    with (
        pytest.raises(DatabaseUnavailable) as caught,
        database_errors("service database unreachable during run"),
    ):
        await _connect_to_nothing()
    message = str(caught.value)
    assert message.startswith("service database unreachable during run: ")
    assert "\n" not in message
    assert isinstance(caught.value, TransientError)  # retried, not failed for good
    assert isinstance(caught.value.__cause__, OSError)


async def test_our_own_errors_and_other_errors_pass_unchanged() -> None:
    with pytest.raises(CabinetNotFound), database_errors():
        raise CabinetNotFound(7)
    with pytest.raises(ValueError, match="not a connection problem"), database_errors():
        raise ValueError("not a connection problem")
