"""`open_database()`: the one place that turns settings into ready connections.

It starts the embedded server when no URL is configured, ensures pgvector, applies pending
migrations and returns a `Database` holding the service engine and the source engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from pgvector.asyncpg import register_vector
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from rag_indexer_service.config import Settings
from rag_indexer_service.db.embedded import start_embedded_postgres
from rag_indexer_service.db.migrate import upgrade_schema
from rag_indexer_service.errors import ConfigError, DatabaseUnavailable, RagIndexerError

__all__ = [
    "Database",
    "asyncpg_dsn",
    "database_errors",
    "describe_url",
    "is_connection_error",
    "is_data_error",
    "open_database",
    "short_error",
]

log = logging.getLogger(__name__)

_CONNECT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
)


def is_connection_error(exc: BaseException) -> bool:
    """True when `exc` means "the server could not be reached", not "the query is wrong"."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, InterfaceError | OperationalError | DBAPIError):
        return is_connection_error(exc.orig) if exc.orig is not None else True
    cause = getattr(exc, "__cause__", None)
    if isinstance(exc, _CONNECT_ERRORS):
        return True
    return cause is not None and cause is not exc and is_connection_error(cause)


_DATA_SQLSTATE_CLASSES = ("22", "54")  # data exception, program limit exceeded


def is_data_error(exc: BaseException) -> bool:
    """True when Postgres (or the driver, encoding a parameter) refused a *value*: retrying the
    same data cannot help, but the rest of a batch may well be fine."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, UnicodeError | asyncpg.exceptions._base.DataError):
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_DATA_SQLSTATE_CLASSES):
            return True
        orig = current.orig if isinstance(current, DBAPIError) else None
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return False


@contextmanager
def database_errors(what: str = "service database") -> Iterator[None]:
    """Turn "the server could not be reached" inside the block into `DatabaseUnavailable`
    (`"{what}: {driver's first line}"`); our own errors and query errors pass unchanged."""
    try:
        yield
    except RagIndexerError:
        raise
    except Exception as exc:
        if is_connection_error(exc):
            raise DatabaseUnavailable(f"{what}: {short_error(exc)}") from exc
        raise


def short_error(exc: BaseException) -> str:
    """The driver's own first line for a database error (no SQL, no parameters)."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def describe_url(url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _ensure_pgvector(url: str) -> None:
    with database_errors(f"cannot connect to {describe_url(url)}"):
        conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except asyncpg.PostgresError as exc:
        raise ConfigError(
            f"the database {describe_url(url)} has no pgvector extension ({exc}); "
            "install pgvector on that server or use a pgvector image"
        ) from None
    finally:
        await conn.close()


def _build_engine(url: str, *, pool_size: int, search: bool = False) -> AsyncEngine:
    """An engine whose connections know pgvector's types. `search`: the search pool
    (`store/search.py`): autocommit from the start; last in, first out, so an idle service's
    searches find the session settings of the side they run set on the connection they get;
    no ping at checkout (a search retries once on new connections instead); and no overflow:
    the store admits half as many searches at once as the pool holds (each holds two
    connections: `SearchOptions.searches_at_once`), so none waits on another for its second."""
    # Autocommit from the start also makes a pre-ping one round trip (`;`), not three
    # (SQLAlchemy's asyncpg dialect wraps it in BEGIN and ROLLBACK otherwise).
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0 if search else pool_size,
        pool_pre_ping=not search,
        pool_use_lifo=search,
        **({"isolation_level": "AUTOCOMMIT"} if search else {}),
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _register_vector(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.run_async(register_vector)

    return engine


@dataclass(slots=True)
class Database:
    """The service engine, the engine the source queries run on (often the same), and a pool
    of the service database for searches only, in autocommit: they set session settings of
    their own (`indexing/store/search.py`), which must not reach the indexer's statements.
    Its connections open on a process's first search, so a worker never opens one."""

    url: str
    engine: AsyncEngine
    source_url: str
    source_engine: AsyncEngine
    search_engine: AsyncEngine

    async def warm(self, connections: int) -> None:
        """Open `connections` pooled connections now (each costs a connect, authentication
        and pgvector's type lookups), so the first run does not wait for them."""
        engines = [self.engine] + (
            [self.source_engine] if self.source_engine is not self.engine else []
        )
        async with contextlib.AsyncExitStack() as stack:
            await asyncio.gather(
                *(
                    stack.enter_async_context(e.connect())
                    for e in engines
                    for _ in range(connections)
                )
            )

    async def close(self) -> None:
        await self.engine.dispose()
        await self.search_engine.dispose()
        if self.source_engine is not self.engine:
            await self.source_engine.dispose()


async def open_database(
    settings: Settings, *, migrate: bool = True, pool_size: int = 5
) -> Database:
    """Connect (starting the embedded server if needed), ensure pgvector and the schema."""
    url = settings.database_url
    if url is None:
        url = await asyncio.to_thread(
            start_embedded_postgres,
            settings.data_dir,
            shared_buffers_mb=settings.embedded_pg_shared_buffers_mb,
        )
    await _ensure_pgvector(url)
    engine = _build_engine(url, pool_size=pool_size)
    try:
        with database_errors(f"cannot connect to {describe_url(url)}"):
            if migrate:
                await upgrade_schema(engine)
    except Exception:
        await engine.dispose()
        raise
    source_url = settings.source_database_url or url
    source_engine = (
        engine
        if source_url == url
        else create_async_engine(source_url, pool_size=2, max_overflow=2, pool_pre_ping=True)
    )
    return Database(
        url=url,
        engine=engine,
        source_url=source_url,
        source_engine=source_engine,
        # a search runs its two sides at once, each on a connection (`store/search.py`): as
        # many searches at once as the engine had connections, as many connections as it had
        # with its overflow
        search_engine=_build_engine(url, pool_size=2 * pool_size, search=True),
    )
