"""`Settings`: every knob of the service, read once from `RAG_*` variables and passed down."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from rag_indexer_service.errors import ConfigError

__all__ = ["ENV_PREFIX", "Settings", "default_sources_file", "load_settings"]

ENV_PREFIX = "RAG_"
_POSTGRES_DRIVERS = {"postgresql", "postgresql+asyncpg", "postgres", "postgresql+psycopg"}


def default_sources_file() -> Path:
    return Path(str(resources.files("rag_indexer_service") / "demo_sources.toml"))


def _normalise_postgres_url(value: str | None) -> str | None:
    """Accept `postgresql://`, `postgres://` or `postgresql+asyncpg://`; return the asyncpg form."""
    if value is None or value.strip() == "":
        return None
    try:
        url: URL = make_url(value.strip())
    except ArgumentError:
        raise ValueError(
            "not a database URL (expected postgresql+asyncpg://user:pass@host/db)"
        ) from None
    if url.drivername not in _POSTGRES_DRIVERS:
        raise ValueError(f"unsupported scheme {url.drivername!r} (expected postgresql+asyncpg://)")
    if not url.database:
        raise ValueError("the URL names no database (expected postgresql+asyncpg://user@host/db)")
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


class Settings(BaseSettings):
    """Configuration of every process. Build it once with `load_settings()`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    database_url: str | None = Field(
        default=None,
        description="Service database (postgresql+asyncpg://…); unset: embedded in DATA_DIR.",
    )
    source_database_url: str | None = Field(
        default=None, description="Database the sources file queries. Unset: the service database."
    )
    data_dir: Path = Field(
        default=Path(".rag-indexer"),
        description="Where the embedded Postgres and generated files live.",
    )
    sources_file: Path = Field(
        default_factory=default_sources_file,
        description="TOML file with the cabinet and document queries. Default: the demo schema.",
    )
    embedder: Literal["hashing"] = Field(
        default="hashing", description="Embedding provider: `hashing` (offline, deterministic)."
    )
    embedding_dim: Annotated[int, Field(ge=8, le=16000)] = Field(
        default=384, description="Vector size of the hashing embedder."
    )
    chunk_size_chars: Annotated[int, Field(ge=100, le=100_000)] = Field(
        default=1200, description="Target chunk length in characters."
    )
    chunk_overlap_chars: Annotated[int, Field(ge=0)] = Field(
        default=200, description="Characters repeated between consecutive chunks of a document."
    )
    batch_size_docs: Annotated[int, Field(ge=1, le=100_000)] = Field(
        default=500, description="Documents compared and written per transaction."
    )
    source_fetch_rows: Annotated[int, Field(ge=1, le=100_000)] = Field(
        default=1000, description="Rows fetched per round trip from the source's cursor."
    )
    embed_batch_size: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=256, description="Texts per embedding call."
    )
    max_delete_share: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        default=0.5,
        description="Most a run may delete of a cabinet's documents (mass-delete guard).",
    )
    mass_delete_min_docs: Annotated[int, Field(ge=0)] = Field(
        default=20, description="The share guard applies to cabinets with at least this many docs."
    )
    allow_mass_delete: bool = Field(
        default=False, description="Disable the mass-delete guard (one-off cleanups)."
    )
    broker_url: str | None = Field(
        default=None,
        description="Redis for Dramatiq (redis://host:6379/0). Required by worker and scheduler.",
    )
    max_retries: Annotated[int, Field(ge=0, le=100)] = Field(
        default=3, description="Retries of a run after a transient failure."
    )
    retry_min_backoff_s: Annotated[float, Field(gt=0)] = Field(
        default=60.0, description="First retry delay; doubles (with jitter) after each failure."
    )
    retry_max_backoff_s: Annotated[float, Field(gt=0)] = Field(
        default=3600.0, description="Longest delay between two attempts."
    )
    run_time_limit_s: Annotated[float, Field(gt=0)] = Field(
        default=3600.0, description="An attempt running longer is interrupted and retried."
    )
    message_max_age_s: Annotated[float, Field(gt=0)] = Field(
        default=86400.0, description="A message older than this is dropped and its run failed."
    )
    heartbeat_interval_s: Annotated[float, Field(gt=0)] = Field(
        default=5.0, description="How often a running run records progress and a heartbeat."
    )
    stale_run_after_s: Annotated[float, Field(gt=0)] = Field(
        default=120.0, description="A running run without heartbeat this long is taken over."
    )
    redrive_queued_after_s: Annotated[float, Field(gt=0)] = Field(
        default=900.0, description="A queued run whose message is lost is re-sent after this."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of every process."
    )

    @field_validator("database_url", "source_database_url", mode="before")
    @classmethod
    def _check_url(cls, value: Any) -> str | None:
        return _normalise_postgres_url(value if value is None else str(value))

    @field_validator("broker_url", mode="before")
    @classmethod
    def _check_broker_url(cls, value: Any) -> str | None:
        if value is None or str(value).strip() == "":
            return None
        text = str(value).strip()
        if not text.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected redis://host:port/db (or rediss://, unix://)")
        return text

    @field_validator("sources_file")
    @classmethod
    def _check_sources_file(cls, value: Path) -> Path:
        if not value.is_file():
            raise ValueError(f"{value} does not exist or is not a file")
        try:
            value.open("rb").close()
        except OSError as exc:
            raise ValueError(f"{value} is not readable: {exc.strerror}") from None
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_chunking(self) -> Settings:
        if self.stale_run_after_s < 3 * self.heartbeat_interval_s:
            raise ValueError("RAG_STALE_RUN_AFTER_S must be at least 3 × RAG_HEARTBEAT_INTERVAL_S")
        if self.chunk_overlap_chars >= self.chunk_size_chars // 2:
            raise ValueError(
                "RAG_CHUNK_OVERLAP_CHARS must be less than half of RAG_CHUNK_SIZE_CHARS"
            )
        return self


def load_settings(**overrides: Any) -> Settings:
    """Build `Settings` from the environment and `overrides`, or raise a one-line error."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            name = f"{ENV_PREFIX}{where.upper()}" if where else "settings"
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {message}" if where else message)
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
