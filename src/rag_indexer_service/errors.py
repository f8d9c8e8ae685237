"""The package's error tree.

    RagIndexerError
    ├── PermanentError            retrying cannot help: fix the input or the config
    │   ├── ConfigError           a setting or the sources file is invalid
    │   ├── CabinetNotFound       the source does not list this cabinet
    │   ├── CabinetNotIndexed     the source lists it, but it has no index yet (nothing to search)
    │   ├── SourceQueryError      a configured source query is broken (bad SQL, missing column)
    │   ├── SourceSuspicious      the scan would delete too much of the index; nothing was deleted
    │   ├── DocumentsFailed       every document of a cabinet failed to render or to be stored
    │   ├── EmbeddingRejected     the embedding API refused the request (key, model, vector size)
    │   └── EmbedderMismatch      the cabinet's index was built by another embedder
    └── TransientError            the outside world failed; the same call may succeed later
        ├── SourceUnavailable     the source database cannot be reached
        ├── DatabaseUnavailable   the service database cannot be reached
        ├── EmbeddingUnavailable  the embedding provider failed or throttled
        ├── BrokerUnavailable     the message broker (Redis) cannot be reached
        └── CabinetBusy           another process is indexing this cabinet right now

Workers retry `TransientError` only; the API maps each branch to one HTTP status.
"""

from __future__ import annotations

__all__ = [
    "BrokerUnavailable",
    "CabinetBusy",
    "CabinetNotFound",
    "CabinetNotIndexed",
    "ConfigError",
    "DatabaseUnavailable",
    "DocumentsFailed",
    "EmbedderMismatch",
    "EmbeddingRejected",
    "EmbeddingUnavailable",
    "PermanentError",
    "RagIndexerError",
    "SourceQueryError",
    "SourceSuspicious",
    "SourceUnavailable",
    "TransientError",
]


class RagIndexerError(Exception):
    """Root of every error this package raises on purpose."""


class PermanentError(RagIndexerError):
    """Retrying will not help."""


class TransientError(RagIndexerError):
    """The same call may succeed later."""


class ConfigError(PermanentError):
    """A setting or the sources file is invalid."""


class CabinetNotFound(PermanentError):
    def __init__(self, cabinet_id: int) -> None:
        super().__init__(f"cabinet {cabinet_id} is not listed by the source")
        self.cabinet_id = cabinet_id


class CabinetNotIndexed(PermanentError):
    def __init__(self, cabinet_id: int, *, hint: str | None = None) -> None:
        super().__init__(f"cabinet {cabinet_id} has no index yet" + (f"; {hint}" if hint else ""))
        self.cabinet_id = cabinet_id


class SourceQueryError(PermanentError):
    """A configured source query failed for a reason other than connectivity."""


class SourceSuspicious(PermanentError):
    """The scan would delete too much of the index; nothing was deleted."""


class DocumentsFailed(PermanentError):
    """Every document of a cabinet failed: the sources file cannot work for it."""


class EmbeddingRejected(PermanentError):
    """The embedding API refused the request or answered nonsense; retrying cannot help."""


class EmbedderMismatch(PermanentError):
    """The cabinet's index was built by another embedder than the one asked to search it."""


class SourceUnavailable(TransientError):
    """The source database cannot be reached."""


class DatabaseUnavailable(TransientError):
    """The service database cannot be reached."""


class EmbeddingUnavailable(TransientError):
    """The embedding provider failed or throttled."""


class BrokerUnavailable(TransientError):
    """The message broker (Redis) cannot be reached."""


class CabinetBusy(TransientError):
    def __init__(self, cabinet_id: int) -> None:
        super().__init__(f"cabinet {cabinet_id} is being indexed by another process")
        self.cabinet_id = cabinet_id
