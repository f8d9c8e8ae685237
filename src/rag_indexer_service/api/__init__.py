"""The HTTP API (FastAPI): manual triggers, run status, cabinet state, search, health, metrics.

Routes stay thin over `service` functions and the runtime's components (store, ledger,
dispatcher); no SQL here. May import: `service`, `runtime`, `runs`, `jobs` (dispatcher, broker,
queue depths), `scheduling.ticks`, `indexing` (types), `ui` (the console it serves), `config`,
`errors`, `logs`, `db`. Not `cli`, `allinone` or the rest of `scheduling`.
"""

from __future__ import annotations

from rag_indexer_service.api.app import create_app, create_app_from_env

__all__ = ["create_app", "create_app_from_env"]
