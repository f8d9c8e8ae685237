"""rag-indexer-service: keeps per-cabinet RAG indexes in Postgres + pgvector fresh.

Layers, each importing only those above it:

    config, errors, cron, canonical   settings, the error tree, crontab, canonical digests
    db                                engine factory, migrations, locks, connection errors
    indexing                          sources, embedders, chunking, the indexer, the store
    runs                              the run ledger (`rag_runs`)
    runtime, tasks (+ broker modules) open_runtime(); dispatch, run execution, workers
    service, scheduling               front-end service functions; cron fan-out and reaper
    api, cli, allinone                the front ends and the all-in-one process

Each table has one owner: `indexing.store` (cabinets, documents, chunks, embedding cache),
`runs` (runs), `scheduling.ticks` (ticks), `scheduling.heartbeats` (scheduler heartbeats).
"""

__version__ = "0.1.0"
