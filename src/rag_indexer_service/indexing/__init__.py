"""Indexing: from a cabinet's source documents to chunks and vectors in the store.

    sources.py        CabinetSource (+ BulkFingerprints, DeltaReads) protocol, SqlSource,
                      build_source()
    embedders.py      Embedder protocol, HashingEmbedder, build_embedder()
    openai_*.py, ratelimit.py, retrying.py, tokens.py, usage.py   the OpenAI-compatible embedder
    chunking.py       split_text()
    indexer.py        RAGIndexer.index_cabinet(): skip or scan, read mode, generation, state
    batches.py        BatchPipeline.scan(): read in batches, compare, chunk, embed, write
    deletions.py      delete_gone(): the deletion diff and its mass-delete guard
    index_options.py  IndexOptions: what the indexer takes from the settings
    delta.py          choose_read(): a delta or a full read, and why
    report.py         IndexReport: what a run did, as data
    store/            IndexStore protocol and PgVectorStore: the only SQL on the index tables

May import: `config`, `errors`, `db`, `canonical`. Not `runs`, `jobs`, `scheduling`, `api` or
`cli` (they import this package). The indexer depends on the protocols, never on `SqlSource` or
`PgVectorStore`.
"""
