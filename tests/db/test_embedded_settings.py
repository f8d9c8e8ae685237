"""The embedded server takes its settings (shared_buffers) from ours, at the next start.

Each look runs in a child process, which starts the server and, as its last client, stops it
when it exits: the next child starts it again with whatever the settings say then.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = """
import asyncio, sys
from pathlib import Path
import asyncpg
from rag_indexer_service.db.embedded import start_embedded_postgres
from rag_indexer_service.db.engine import asyncpg_dsn

url = start_embedded_postgres(Path(sys.argv[1]), shared_buffers_mb=int(sys.argv[2]))

async def main() -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    print(await conn.fetchval("SHOW shared_buffers"))
    await conn.close()

asyncio.run(main())
"""


def shared_buffers_after_start(data_dir: Path, mb: int) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(data_dir), str(mb)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_shared_buffers_follow_the_setting_from_the_first_start_on(tmp_path: Path) -> None:
    # Given a new data directory: the server created in it starts with our value
    assert shared_buffers_after_start(tmp_path, 48) == "48MB"
    # When the setting changes, the next start applies it, and postgresql.conf includes
    # our file once however often it starts
    assert shared_buffers_after_start(tmp_path, 64) == "64MB"
    conf = (tmp_path / "pg" / "postgresql.conf").read_text()
    assert conf.count("include_if_exists = 'rag-indexer.conf'") == 1
