"""rag-indexer-service: keeps per-cabinet RAG indexes in Postgres + pgvector fresh.

Layers, each importing only those above it:

    config, errors, cron, canonical, logs  settings, the error tree, crontab, digests, logging
    db                                engine factory, migrations, locks, connection errors
    indexing                          sources, embedders, chunking, the indexer, the store
    runs                              the run ledger (`rag_runs`)
    runtime, jobs                     open_runtime(); broker, dispatch, run execution, workers
    service, scheduling               front-end service functions; cron fan-out and reaper
    api, ui, cli, allinone            the front ends and the all-in-one process

`demo` (the demo source database and its catalogue data) stands apart: standard library and
asyncpg only; `rag-indexer demo` and `up --demo` seed it.

Each table has one owner: `indexing.store` (cabinets, documents, chunks, embedding cache,
watermarks), `runs` (runs), `scheduling.ticks` (ticks), `scheduling.heartbeats` (scheduler
heartbeats).
"""

__version__ = "0.1.0"
