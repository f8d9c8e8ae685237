"""`Settings`: every knob of the service, read once from `RAG_*` variables and passed down."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from rag_indexer_service.cron import check_timezone, crontab_trigger
from rag_indexer_service.errors import ConfigError

__all__ = [
    "ENV_PREFIX",
    "OPENAI_NATIVE_DIMS",
    "Settings",
    "default_sources_file",
    "load_settings",
]

ENV_PREFIX = "RAG_"
_POSTGRES_DRIVERS = {"postgresql", "postgresql+asyncpg", "postgres", "postgresql+psycopg"}
# Native vector sizes of models we know; others need RAG_EMBEDDING_DIM or RAG_OPENAI_DIMENSIONS.
OPENAI_NATIVE_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
_PLACEHOLDER_SECRETS = {
    "changeme",
    "change-me",
    "change_me",
    "changethis",
    "placeholder",
    "your-api-key",
    "your_api_key",
    "sk-...",
    "sk-xxx",
    "xxx",
    "todo",
}


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
    embedded_pg_shared_buffers_mb: Annotated[int, Field(ge=16, le=262_144)] = Field(
        default=512,
        description="shared_buffers of the embedded Postgres (ignored with DATABASE_URL; "
        "Postgres' own default is 128): room for big cabinets' full-text indexes and hot rows. "
        "Applied when the server starts; memory is taken as it is used.",
    )
    sources_file: Path = Field(
        default_factory=default_sources_file,
        description="TOML file with the cabinet and document queries. Default: the demo schema.",
    )
    embedder: Literal["navec", "hashing", "openai"] = Field(
        default="navec",
        description="Embedding provider: `navec` (offline Russian word vectors from the natasha "
        "wheel: meaning, not only letters; 384 d, ~180 MiB RAM), `hashing` (offline, letters "
        "only, no memory) or `openai` (any server speaking POST /v1/embeddings).",
    )
    embedding_dim: Annotated[int, Field(ge=8, le=16000)] = Field(
        default=384,
        description="Vector size of the hashing embedder; with `openai`, the native size of a "
        "model the service does not know (e.g. 768 for nomic-embed-text). Not sent to the API.",
    )
    openai_base_url: str = Field(
        default="https://api.openai.com/v1",
        description="Base URL of the OpenAI-compatible API (…/v1); POST {base}/embeddings.",
    )
    openai_api_key: SecretStr | None = Field(
        default=None, description="Bearer key for the embedding API (required with `openai`)."
    )
    openai_model: str = Field(
        default="text-embedding-3-small", description="Embedding model name sent to the API."
    )
    openai_dimensions: Annotated[int, Field(ge=8, le=16000)] | None = Field(
        default=None,
        description="Ask for vectors of this size (the API's `dimensions`; text-embedding-3 and "
        "other Matryoshka models). Unset: the model's native size.",
    )
    embedding_concurrency: Annotated[int, Field(ge=1, le=256)] = Field(
        default=4, description="Embedding requests in flight per process."
    )
    embedding_rpm: Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        description="Requests per minute to the embedding API across all processes (Redis when "
        "RAG_BROKER_URL is set, else per process). Unset: no limit.",
    )
    embedding_tpm: Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        description="Estimated tokens per minute to the embedding API across all processes.",
    )
    embedding_rate_window_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=60.0,
        description="Sliding window the RPM/TPM limits are enforced over (scaled to its length).",
    )
    embedding_max_tokens_per_input: Annotated[int, Field(ge=16)] = Field(
        default=8191, description="Longer inputs are truncated (estimated tokens, UTF-8 bytes/3)."
    )
    embedding_max_tokens_per_request: Annotated[int, Field(ge=16)] = Field(
        default=100_000, description="Estimated tokens per embedding request (OpenAI allows 300k)."
    )
    embedding_timeout_s: Annotated[float, Field(gt=0)] = Field(
        default=60.0, description="Timeout of one embedding request."
    )
    embedding_max_attempts: Annotated[int, Field(ge=1, le=50)] = Field(
        default=6,
        description="Attempts per embedding request on 429/5xx/timeouts before the run fails "
        "with a transient error (and the worker retries the run later).",
    )
    embedding_backoff_base_s: Annotated[float, Field(ge=0)] = Field(
        default=0.5, description="First retry delay of an embedding request; doubles, jittered."
    )
    embedding_backoff_max_s: Annotated[float, Field(ge=0)] = Field(
        default=30.0, description="Longest delay between two attempts of an embedding request."
    )
    embedding_max_retry_after_s: Annotated[float, Field(ge=0)] = Field(
        default=120.0,
        description="A Retry-After longer than this ends the attempt at once (transient error); "
        "the worker's own retry backoff takes over.",
    )
    embedding_cache: bool = Field(
        default=True,
        description="Reuse vectors of identical text across documents and cabinets "
        "(rag_embedding_cache; used with `openai` only: the offline embedders are faster).",
    )
    embedding_cache_max_age_days: Annotated[float, Field(gt=0)] = Field(
        default=30.0, description="Cache entries unused this long are pruned."
    )
    embedding_cache_max_rows: Annotated[int, Field(ge=1)] = Field(
        default=1_000_000, description="Beyond this many entries the least recently used go."
    )
    chunk_size_chars: Annotated[int, Field(ge=100, le=100_000)] = Field(
        default=1200, description="Target chunk length in characters."
    )
    chunk_overlap_chars: Annotated[int, Field(ge=0)] = Field(
        default=200, description="Characters repeated between consecutive chunks of a document."
    )
    batch_size_docs: Annotated[int, Field(ge=1, le=100_000)] = Field(
        default=500, description="Documents read and compared with the index per batch."
    )
    delta_batch_size_docs: Annotated[int, Field(ge=1, le=100_000)] = Field(
        default=2000,
        description="Documents compared with the index per batch in a delta run (they are "
        "only the changed ones: larger batches, fewer round trips).",
    )
    write_batch_docs: Annotated[int, Field(ge=1, le=100_000)] = Field(
        default=1000,
        description="Changed documents gathered (across batches) into one write transaction.",
    )
    write_batch_chunks: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        default=4000,
        description="Chunks gathered into one write transaction (whichever limit comes first).",
    )
    delta_overlap_s: Annotated[float, Field(ge=0.0)] = Field(
        default=300.0,
        description="Delta reads start this long before the watermark (clock skew, long "
        "transactions in the source).",
    )
    full_scan_every_runs: Annotated[int, Field(ge=1)] = Field(
        default=48,
        description="A cabinet with delta queries is read in full after this many delta runs.",
    )
    full_scan_max_age_s: Annotated[float, Field(gt=0.0)] = Field(
        default=86400.0,
        description="A cabinet with delta queries is read in full once its last full read "
        "is older than this.",
    )
    source_fetch_rows: Annotated[int, Field(ge=1, le=100_000)] = Field(
        default=1000, description="Rows fetched per round trip from the source's cursor."
    )
    embed_batch_size: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=256, description="Texts per embedding call."
    )
    search_ann_min_chunks: Annotated[int, Field(ge=1)] = Field(
        default=10_000,
        description="Cabinets with at least this many chunks get an ANN (IVFFlat) and a "
        "full-text index of their own, built concurrently by a job the worker queues after "
        "the run (rag-indexes); smaller ones are searched exactly.",
    )
    search_probes_factor: Annotated[float, Field(gt=0.0, le=1000.0)] = Field(
        default=2.5,
        description="A search reads this times the square root of an ANN index's lists "
        "(ivfflat.probes), and lists holding at least 7,000 vectors: recall against speed.",
    )
    search_keyword_candidates: Annotated[int, Field(ge=50, le=100_000)] = Field(
        default=200,
        description="At most this many keyword matches are ranked per search (bounds the cost "
        "of words found in most of a big cabinet).",
    )
    search_synonyms: bool = Field(
        default=True,
        description="Expand the keyword side of each search with synonyms (marketplace "
        'vocabulary: "мобильник" also finds "смартфон", "Найк" finds "Nike"); '
        "query time only, no reindex.",
    )
    search_synonyms_file: Path | None = Field(
        default=None,
        description="TOML file of synonyms to use instead of the packaged ones (same format as "
        "`indexing/data/synonyms.toml`); checked at start, a malformed one is refused.",
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
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="`text`: one readable line per event; `json`: one JSON object per line "
        "(same facts as fields, for log shippers).",
    )
    schedule_cron: str = Field(
        default="0 */6 * * *", description="When the scheduler fans out (crontab, 5 fields)."
    )
    schedule_timezone: str = Field(
        default="UTC", description="Time zone of RAG_SCHEDULE_CRON (IANA name)."
    )
    schedule_misfire_grace_s: Annotated[int, Field(ge=1, le=7 * 86400)] = Field(
        default=3600, description="A tick missed by up to this long (restart, downtime) still runs."
    )
    skip_unchanged: bool = Field(
        default=True,
        description="Scheduled fan-out skips cabinets whose source fingerprint is unchanged.",
    )
    reaper_interval_s: Annotated[float, Field(gt=0)] = Field(
        default=60.0, description="How often the scheduler re-drives lost or stalled runs."
    )
    api_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), repr=False, description="Keys the HTTP API accepts (comma separated)."
    )
    api_keys_file: Path | None = Field(
        default=None, description="File with more API keys, one per line (# starts a comment)."
    )
    api_auth: Literal["enabled", "disabled"] = Field(
        default="enabled", description="`disabled` serves the HTTP API without keys (explicit)."
    )
    api_host: str = Field(default="127.0.0.1", description="Address `rag-indexer api` binds.")
    api_port: Annotated[int, Field(ge=1, le=65535)] = Field(
        default=8000, description="Port `rag-indexer api` listens on."
    )
    api_max_body_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=256 * 1024,
        description="Largest request body the HTTP API reads (413 above; bodies are JSON).",
    )
    api_read_timeout_s: Annotated[float, Field(gt=0)] = Field(
        default=10.0,
        description="A request's head, and then its body, must arrive within this (else 408).",
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

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        items = value.split(",") if isinstance(value, str) else value
        if isinstance(items, list | tuple):
            return tuple(str(item).strip() for item in items if str(item).strip())
        return items

    @field_validator("api_keys_file", mode="before")
    @classmethod
    def _no_empty_path(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip() == "" else value

    @field_validator("openai_base_url", mode="before")
    @classmethod
    def _check_openai_base_url(cls, value: Any) -> str:
        text = str(value).strip().rstrip("/")
        if not text.startswith(("http://", "https://")):
            raise ValueError("expected http(s)://host/v1")
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

    @field_validator("schedule_timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        check_timezone(value.strip())
        return value.strip()

    @field_validator("schedule_cron")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        crontab_trigger(value.strip())
        return " ".join(value.split())

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
        if self.embedder == "openai":
            self._check_openai()
        return self

    def _check_openai(self) -> None:
        key = "" if self.openai_api_key is None else self.openai_api_key.get_secret_value()
        if not key.strip():
            raise ValueError("RAG_OPENAI_API_KEY is required with RAG_EMBEDDER=openai")
        if key.strip().lower() in _PLACEHOLDER_SECRETS or key.strip().startswith("<"):
            raise ValueError("RAG_OPENAI_API_KEY is a placeholder; set the real key")
        known = self.openai_model in OPENAI_NATIVE_DIMS
        if not (known or self.openai_dimensions or "embedding_dim" in self.model_fields_set):
            raise ValueError(
                f"the vector size of RAG_OPENAI_MODEL={self.openai_model!r} is not known; set "
                "RAG_EMBEDDING_DIM to its native size (or RAG_OPENAI_DIMENSIONS to request one)"
            )


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
