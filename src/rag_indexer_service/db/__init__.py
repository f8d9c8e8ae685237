"""Service database plumbing: engine factory (`open_database`), embedded server, migrations,
advisory locks (`locks.py`), connection-error translation (`engine.database_errors`) and row
mapping (`mapping.py`). Owns no table's queries: the store, the run ledger and the scheduler's
ticks module do.

May import: `config`, `errors`. Imported by everything that talks to Postgres.
"""

from rag_indexer_service.db.engine import Database, open_database

__all__ = ["Database", "open_database"]
