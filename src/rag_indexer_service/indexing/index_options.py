"""`IndexOptions`: what the indexer takes from the settings (and nothing else of them)."""

from __future__ import annotations

from dataclasses import dataclass

from rag_indexer_service.config import Settings

__all__ = ["IndexOptions"]


@dataclass(frozen=True, slots=True)
class IndexOptions:
    chunk_size_chars: int = 1200
    chunk_overlap_chars: int = 200
    batch_size_docs: int = 500
    delta_batch_size_docs: int = 2000
    write_batch_docs: int = 1000
    write_batch_chunks: int = 4000
    embed_batch_size: int = 256
    max_delete_share: float = 0.5
    mass_delete_min_docs: int = 20
    allow_mass_delete: bool = False
    embedding_cache: bool = False
    cache_max_age_s: float = 30 * 86400.0
    cache_max_rows: int = 1_000_000
    cache_prune_every_s: float = 3600.0
    delta_overlap_s: float = 300.0
    full_scan_every_runs: int = 48
    full_scan_max_age_s: float = 86400.0

    @classmethod
    def from_settings(cls, settings: Settings) -> IndexOptions:
        return cls(
            chunk_size_chars=settings.chunk_size_chars,
            chunk_overlap_chars=settings.chunk_overlap_chars,
            batch_size_docs=settings.batch_size_docs,
            delta_batch_size_docs=settings.delta_batch_size_docs,
            write_batch_docs=settings.write_batch_docs,
            write_batch_chunks=settings.write_batch_chunks,
            embed_batch_size=settings.embed_batch_size,
            max_delete_share=settings.max_delete_share,
            mass_delete_min_docs=settings.mass_delete_min_docs,
            allow_mass_delete=settings.allow_mass_delete,
            # The offline embedders compute a vector faster than the cache could look it up.
            embedding_cache=settings.embedding_cache and settings.embedder == "openai",
            cache_max_age_s=settings.embedding_cache_max_age_days * 86400.0,
            cache_max_rows=settings.embedding_cache_max_rows,
            delta_overlap_s=settings.delta_overlap_s,
            full_scan_every_runs=settings.full_scan_every_runs,
            full_scan_max_age_s=settings.full_scan_max_age_s,
        )
