"""Where documents come from.

`CabinetSource` is what the indexer and the fan-out need (`BulkFingerprints` optionally);
`build_source()` picks the implementation. `SqlSource` implements both with queries from a TOML
sources file (`RAG_SOURCES_FILE`):

    [cabinets]
    query = "SELECT id AS cabinet_id FROM cabinets WHERE is_active"
    fingerprint = "SELECT max(updated_at)::text FROM products WHERE cabinet_id = :cabinet_id"

    [kinds.product]
    query = "SELECT id, title, price FROM products WHERE cabinet_id = :cabinet_id"
    id_column = "id"
    template = "{title}: {price} ₽"
    metadata = ["title", "price"]

`:cabinet_id` is always a bound parameter. Rows stream through a server-side cursor.

A kind may also say how to read only what changed (`DeltaReads`): a `changed_query` with
`:cabinet_id` and `:since` (a timestamptz: rows changed after it, same columns as `query`)
and an `ids_query` returning the `id_column` of every row that exists now (deletions are
found by diffing those ids with the index, without rendering anything).
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import string
import tomllib
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import RowMapping, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from rag_indexer_service.canonical import digest
from rag_indexer_service.config import Settings
from rag_indexer_service.db.engine import describe_url, is_connection_error, short_error
from rag_indexer_service.errors import (
    ConfigError,
    SourceQueryError,
    SourceUnavailable,
)
from rag_indexer_service.indexing.storable import shown, storable, unstorable_id

__all__ = [
    "BulkFingerprints",
    "CabinetSource",
    "DeltaReads",
    "DocumentKind",
    "RenderError",
    "SourceDocument",
    "SourceSpec",
    "SqlSource",
    "build_source",
    "load_source_spec",
]

JsonValue = str | int | float | bool | None
MAX_METADATA_CHARS = 32 * 1024
_CABINET_PARAM = re.compile(r"(?<![:\w]):cabinet_id\b")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_SINCE_PARAM = re.compile(r"(?<![:\w]):since\b")


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """One document as the source has it: rendered text plus metadata, or why it could not be."""

    kind: str
    doc_id: str
    text: str
    metadata: dict[str, JsonValue]
    error: str | None = None


class CabinetSource(Protocol):
    @property
    def has_fingerprints(self) -> bool:
        """False: `fingerprint()` is always None (nothing can be skipped as unchanged)."""
        ...

    def iter_cabinet_ids(self) -> AsyncGenerator[int, None]: ...

    async def cabinet_exists(self, cabinet_id: int) -> bool: ...

    async def fingerprint(self, cabinet_id: int) -> str | None:
        """A cheap value that changes whenever the cabinet's documents (or how they are made)
        change; None if the source cannot tell."""
        ...

    def iter_documents(self, cabinet_id: int) -> AsyncGenerator[SourceDocument, None]: ...

    async def check(self) -> None:
        """Raise a one-line `ConfigError` if the configuration cannot work (at start)."""
        ...


@runtime_checkable
class BulkFingerprints(Protocol):
    """Optional: `fingerprint()` of many cabinets in one call (the fan-out prefers it)."""

    async def fingerprints(self, cabinet_ids: Sequence[int]) -> dict[int, str | None]: ...


@runtime_checkable
class DeltaReads(Protocol):
    """Optional: read only the rows of a kind changed since a time, and the ids that exist."""

    @property
    def kind_names(self) -> tuple[str, ...]: ...

    @property
    def delta_kinds(self) -> frozenset[str]:
        """Kinds with `changed_query` and `ids_query` (others are always read in full)."""
        ...

    @property
    def config_digest(self) -> str:
        """Changes whenever the queries, templates or index settings do."""
        ...

    async def watermark(self, cabinet_id: int) -> dt.datetime:
        """Taken before a read: rows changed after it are the next delta read's. The newest
        change time of the cabinet's rows (`[cabinets] watermark`), or the source's clock."""
        ...

    def iter_kind(
        self, cabinet_id: int, kind: str, *, since: dt.datetime | None = None
    ) -> AsyncGenerator[SourceDocument, None]:
        """The kind's documents (`since`: only those changed after it)."""
        ...

    async def kind_ids(self, cabinet_id: int, kind: str) -> list[str]:
        """The `id_column` of every row of the kind that exists now, as text."""
        ...


class RenderError(ValueError):
    """A row could not be turned into text."""


@dataclass(frozen=True, slots=True)
class DocumentKind:
    name: str
    query: str
    id_column: str
    template: str
    metadata: tuple[str, ...] = ()
    template_fields: frozenset[str] = field(default_factory=frozenset)
    changed_query: str | None = None
    ids_query: str | None = None

    def render(self, row: Mapping[Any, Any]) -> SourceDocument:
        """The row as a document, storable by Postgres (see `storable`), or why it cannot be."""
        doc_id = _id_text(row[self.id_column])
        problem = unstorable_id(doc_id)
        if problem is not None:
            return SourceDocument(self.name, shown(doc_id), "", {}, error=problem)
        try:
            # NULL renders as an empty string; str.format_map is C-fast.
            values = {key: "" if value is None else value for key, value in row.items()}
            body = storable(self.template.format_map(values)).strip()
            if not body:
                raise RenderError("rendered text is empty")
            meta = {name: _json_value(row[name]) for name in self.metadata}
            meta_chars = sum(len(v) for v in meta.values() if isinstance(v, str))
            if meta_chars > MAX_METADATA_CHARS:
                raise RenderError(
                    f"metadata values hold {meta_chars} characters, more than "
                    f"{MAX_METADATA_CHARS} (they are copied into every chunk)"
                )
        except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            return SourceDocument(self.name, doc_id, "", {}, error=reason)
        return SourceDocument(self.name, doc_id, body, meta)


@dataclass(frozen=True, slots=True)
class SourceSpec:
    cabinets_query: str
    fingerprint_query: str | None
    kinds: tuple[DocumentKind, ...]
    watermark_query: str | None = None
    """`[cabinets] watermark`: the newest change time of the cabinet's rows (default: the
    source's clock). Delta reads start from it, minus the overlap."""


def _id_text(value: Any) -> str:
    if value is None:
        raise RenderError("id column is NULL")
    return str(value)


_MAX_CABINET_ID = 2**63 - 1


def _cabinet_id(value: Any) -> int:
    """A listed cabinet id, or a `SourceQueryError`: a query listing other ids is broken."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value)
    elif isinstance(value, float | decimal.Decimal) and math.isfinite(value):
        number = int(value) if value == int(value) else None
    if number is None or not 0 < number <= _MAX_CABINET_ID:
        raise SourceQueryError(
            f"cabinets.query returned cabinet_id {shown(repr(value), 60)}, which is not a "
            "positive 64-bit integer; check the query in RAG_SOURCES_FILE"
        )
    return number


def _json_value(value: Any) -> JsonValue:
    """A metadata value jsonb can hold: no NUL, no surrogates, no NaN or infinities."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, float | decimal.Decimal):
        number = float(value)
        return number if math.isfinite(number) else str(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    return storable(str(value))


def _template_fields(template: str) -> frozenset[str]:
    names = set()
    for _, name, _, _ in string.Formatter().parse(template):
        if name:
            names.add(name.split(".")[0].split("[")[0])
    return frozenset(names)


def _require_str(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"RAG_SOURCES_FILE: {where}.{key} must be a non-empty string")
    return value


def _delta_queries(table: Mapping[str, Any], where: str) -> tuple[str | None, str | None]:
    if "changed_query" not in table and "ids_query" not in table:
        return None, None
    if "changed_query" not in table or "ids_query" not in table:
        raise ConfigError(
            f"RAG_SOURCES_FILE: {where} needs both changed_query and ids_query, or neither"
        )
    changed = _require_str(table, "changed_query", where)
    ids = _require_str(table, "ids_query", where)
    if not _CABINET_PARAM.search(changed) or not _SINCE_PARAM.search(changed):
        raise ConfigError(
            f"RAG_SOURCES_FILE: {where}.changed_query must use :cabinet_id and :since"
        )
    if not _CABINET_PARAM.search(ids):
        raise ConfigError(f"RAG_SOURCES_FILE: {where}.ids_query must filter by :cabinet_id")
    return changed, ids


def load_source_spec(path: Path) -> SourceSpec:
    """Parse and check a sources file; any problem is one `ConfigError` line."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"RAG_SOURCES_FILE: cannot read {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"RAG_SOURCES_FILE: {path} is not valid TOML: {exc}") from None
    cabinets = raw.get("cabinets")
    if not isinstance(cabinets, dict):
        raise ConfigError(f"RAG_SOURCES_FILE: {path} has no [cabinets] table")
    cabinets_query = _require_str(cabinets, "query", "cabinets")
    fingerprint = cabinets.get("fingerprint")
    if fingerprint is not None and ":cabinet_id" not in str(fingerprint):
        raise ConfigError("RAG_SOURCES_FILE: cabinets.fingerprint must use :cabinet_id")
    kinds_raw = raw.get("kinds")
    if not isinstance(kinds_raw, dict) or not kinds_raw:
        raise ConfigError(f"RAG_SOURCES_FILE: {path} defines no [kinds.<name>] tables")
    kinds = []
    for name, table in kinds_raw.items():
        where = f"kinds.{name}"
        if not isinstance(table, dict):
            raise ConfigError(f"RAG_SOURCES_FILE: {where} must be a table")
        query = _require_str(table, "query", where)
        if ":cabinet_id" not in query:
            raise ConfigError(f"RAG_SOURCES_FILE: {where}.query must filter by :cabinet_id")
        meta = table.get("metadata", [])
        if not isinstance(meta, list) or not all(isinstance(m, str) for m in meta):
            raise ConfigError(f"RAG_SOURCES_FILE: {where}.metadata must be a list of column names")
        template = _require_str(table, "template", where)
        try:
            fields = _template_fields(template)
        except ValueError as exc:
            raise ConfigError(f"RAG_SOURCES_FILE: {where}.template is malformed: {exc}") from None
        changed, ids = _delta_queries(table, where)
        kinds.append(
            DocumentKind(
                name=name,
                query=query,
                id_column=_require_str(table, "id_column", where),
                template=template,
                metadata=tuple(meta),
                template_fields=fields,
                changed_query=changed,
                ids_query=ids,
            )
        )
    watermark = cabinets.get("watermark")
    if watermark is not None and not _CABINET_PARAM.search(str(watermark)):
        raise ConfigError("RAG_SOURCES_FILE: cabinets.watermark must use :cabinet_id")
    return SourceSpec(cabinets_query, fingerprint, tuple(kinds), watermark)


class SqlSource:
    """Reads cabinets and documents with the queries of a `SourceSpec`."""

    def __init__(
        self,
        engine: AsyncEngine,
        spec: SourceSpec,
        *,
        fetch_rows: int = 1000,
        fingerprint_salt: str = "",
    ) -> None:
        self._engine = engine
        self._spec = spec
        self._fetch_rows = fetch_rows
        self._config_digest = digest({"spec": spec, "salt": fingerprint_salt})

    @property
    def config_digest(self) -> str:
        """Changes whenever the queries, templates or `fingerprint_salt` (index settings) do."""
        return self._config_digest

    def _stamp(self, raw: Any) -> str | None:
        """A fingerprint also changes when the way documents are made from rows changes."""
        return None if raw is None else f"{self._config_digest}/{raw}"

    @property
    def spec(self) -> SourceSpec:
        return self._spec

    @property
    def has_fingerprints(self) -> bool:
        return self._spec.fingerprint_query is not None

    def _fail(self, exc: BaseException, what: str) -> Exception:
        if is_connection_error(exc):
            where = describe_url(self._engine.url.render_as_string(hide_password=False))
            return SourceUnavailable(
                f"source database {where} unreachable while {what}: {short_error(exc)}"
            )
        return SourceQueryError(f"source query for {what} failed: {short_error(exc)}")

    async def _stream(
        self, sql: str, params: dict[str, Any], what: str, *, fetch_rows: int | None = None
    ) -> AsyncGenerator[RowMapping, None]:
        size = fetch_rows or self._fetch_rows
        try:
            async with self._engine.connect() as conn:
                result = await conn.stream(text(sql).execution_options(yield_per=size), params)
                async for rows in result.mappings().partitions(size):
                    for row in rows:
                        yield row
        except (SQLAlchemyError, OSError) as exc:
            raise self._fail(exc, what) from exc

    async def check(self) -> None:
        """Every column the templates, `metadata` and `id_column` name is one the queries
        return (each query described with `LIMIT 0`; see `source_check`)."""
        from rag_indexer_service.indexing.source_check import check_source_columns

        await check_source_columns(self._engine, self._spec)

    async def iter_cabinet_ids(self) -> AsyncGenerator[int, None]:
        async for row in self._stream(self._spec.cabinets_query, {}, "listing cabinets"):
            yield _cabinet_id(row["cabinet_id"])

    async def cabinet_exists(self, cabinet_id: int) -> bool:
        sql = f"SELECT 1 FROM ({self._spec.cabinets_query}) AS c WHERE c.cabinet_id = :cabinet_id"
        try:
            async with self._engine.connect() as conn:
                found = await conn.scalar(text(sql), {"cabinet_id": cabinet_id})
        except (SQLAlchemyError, OSError) as exc:
            raise self._fail(exc, f"looking up cabinet {cabinet_id}") from exc
        return found is not None

    async def fingerprint(self, cabinet_id: int) -> str | None:
        if self._spec.fingerprint_query is None:
            return None
        try:
            async with self._engine.connect() as conn:
                value = await conn.scalar(
                    text(self._spec.fingerprint_query), {"cabinet_id": cabinet_id}
                )
        except (SQLAlchemyError, OSError) as exc:
            raise self._fail(exc, f"fingerprinting cabinet {cabinet_id}") from exc
        return self._stamp(value)

    async def fingerprints(self, cabinet_ids: Sequence[int]) -> dict[int, str | None]:
        """`fingerprint()` of many cabinets in one query (the query runs once per id, LATERAL)."""
        if self._spec.fingerprint_query is None or not cabinet_ids:
            return dict.fromkeys(cabinet_ids)
        query = _CABINET_PARAM.sub("rag_fp_ids.cabinet_id", self._spec.fingerprint_query)
        sql = (
            "SELECT rag_fp_ids.cabinet_id, rag_fp.* "
            "FROM unnest(CAST(:rag_fp_ids AS bigint[])) AS rag_fp_ids(cabinet_id) "
            f"LEFT JOIN LATERAL ({query.strip().rstrip(';')}) AS rag_fp ON true"
        )
        found: dict[int, str | None] = {}
        try:
            async with self._engine.connect() as conn:
                for row in await conn.execute(text(sql), {"rag_fp_ids": list(cabinet_ids)}):
                    found.setdefault(int(row[0]), self._stamp(row[1]))
        except (SQLAlchemyError, OSError) as exc:
            raise self._fail(exc, f"fingerprinting {len(cabinet_ids)} cabinets") from exc
        return found

    @property
    def kind_names(self) -> tuple[str, ...]:
        return tuple(kind.name for kind in self._spec.kinds)

    @property
    def delta_kinds(self) -> frozenset[str]:
        return frozenset(k.name for k in self._spec.kinds if k.changed_query and k.ids_query)

    def _kind(self, name: str) -> DocumentKind:
        for kind in self._spec.kinds:
            if kind.name == name:
                return kind
        raise KeyError(name)

    async def watermark(self, cabinet_id: int) -> dt.datetime:
        sql = self._spec.watermark_query or "SELECT statement_timestamp()"
        try:
            async with self._engine.connect() as conn:
                value = await conn.scalar(text(sql), {"cabinet_id": cabinet_id})
        except (SQLAlchemyError, OSError) as exc:
            raise self._fail(exc, f"reading the watermark of cabinet {cabinet_id}") from exc
        if value is None:  # no rows yet: whatever comes next is newer
            return _EPOCH
        if not isinstance(value, dt.datetime):
            raise SourceQueryError(
                f"cabinets.watermark returned {type(value).__name__}, not a timestamp"
            )
        return value

    async def iter_documents(self, cabinet_id: int) -> AsyncGenerator[SourceDocument, None]:
        for kind in self._spec.kinds:
            async for doc in self.iter_kind(cabinet_id, kind.name):
                yield doc

    async def kind_ids(self, cabinet_id: int, kind: str) -> list[str]:
        spec = self._kind(kind)
        if spec.ids_query is None:
            raise ValueError(f"kind {kind!r} has no ids_query")
        # One array value instead of a row per id: a delta run's cost is these round trips.
        column = 'rag_ids."' + spec.id_column.replace('"', '""') + '"'
        sql = (
            f"SELECT array_agg(CAST({column} AS text)) "
            f"FROM ({spec.ids_query.strip().rstrip(';')}) AS rag_ids WHERE {column} IS NOT NULL"
        )
        try:
            async with self._engine.connect() as conn:
                ids = await conn.scalar(text(sql), {"cabinet_id": cabinet_id})
        except (SQLAlchemyError, OSError) as exc:
            raise self._fail(exc, f"ids of kind {kind!r} of cabinet {cabinet_id}") from exc
        return list(ids or ())

    async def iter_kind(
        self, cabinet_id: int, kind: str, *, since: dt.datetime | None = None
    ) -> AsyncGenerator[SourceDocument, None]:
        spec = self._kind(kind)
        what = f"kind {kind!r} of cabinet {cabinet_id}"
        params: dict[str, Any] = {"cabinet_id": cabinet_id}
        query = spec.query
        if since is not None:
            if spec.changed_query is None:
                raise ValueError(f"kind {kind!r} has no changed_query")
            query, params["since"] = spec.changed_query, since
            what = f"changes of {what}"
        async for doc in self._render_rows(spec, query, params, what):
            yield doc

    async def _render_rows(
        self, kind: DocumentKind, query: str, params: dict[str, Any], what: str
    ) -> AsyncGenerator[SourceDocument, None]:
        checked = False
        async for row in self._stream(query, params, what):
            if not checked:
                missing = ({kind.id_column} | set(kind.metadata)) - set(row.keys())
                if missing:
                    raise SourceQueryError(
                        f"source query for {what} returns no column(s) {sorted(missing)}"
                    )
                checked = True
            try:
                yield kind.render(row)
            except RenderError as exc:
                yield SourceDocument(kind.name, "", "", {}, error=str(exc))


def build_source(settings: Settings, engine: AsyncEngine) -> CabinetSource:
    """The source `settings` describe, reading through `engine` (the source database)."""
    return SqlSource(
        engine,
        load_source_spec(settings.sources_file),
        fetch_rows=settings.source_fetch_rows,
        # Documents are chunked differently after these change: not "unchanged" any more.
        fingerprint_salt=f"chunks:{settings.chunk_size_chars}/{settings.chunk_overlap_chars}",
    )
