"""Index runs as Dramatiq jobs: the broker, sending runs to it, and the worker that runs them.

Owns the broker, its queues and actors, and its Redis keys (nobody else reads them):

    broker.py          `build_broker()`, queue and actor names, `queue_for(trigger)`
    redis_fast_path.py many messages into Redis in one round trip; the only module that
                       uses Dramatiq's private Redis surface, checked at broker build
    dispatch.py        `Dispatcher`: ledger row first, then the message; bulk enqueue; redrive
    execution.py       `execute_claimed_run()`, `run_inline()`, retry and error classification
    worker.py          `setup_worker()`: the actors, `WorkerContext`, `RunBookkeeping` middleware
    worker_main.py     the module `dramatiq` loads in each worker process
    parent_watch.py    a worker process ends when Dramatiq's parent dies

May import `config`, `errors`, `logs`, `db`, `runs` (the ledger), `runtime` and `indexing`;
never `api`, `ui`, `scheduling`, `cli` or `allinone`, which import it.
"""
