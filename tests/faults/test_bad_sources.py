"""A sources file that cannot work is refused when it is loaded: every process stops with one
line naming the kind and the column; `rag-indexer sources check` says the same, or shows a
rendered document per kind."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg

from tests.conftest import SOURCE_TOML
from tests.helpers import add_cabinet

BIN = Path(sys.executable).parent
REFUSAL = (
    "error: RAG_SOURCES_FILE: kinds.note.template names column 'titel', which "
    "kinds.note.query does not return (it returns: id, title, body, tag, price)"
)


async def rag_indexer(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "rag-indexer"),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_a_template_naming_a_missing_column_stops_every_process_with_one_line(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text(SOURCE_TOML.replace("{title}", "{titel}"))
    env = {**worker_env, "RAG_SOURCES_FILE": str(broken), "RAG_API_KEYS": "k" * 20}

    results = await asyncio.gather(
        rag_indexer(env, "sources", "check"),
        rag_indexer(env, "worker", "--processes", "1"),
        rag_indexer(env, "api", "--port", "1"),
    )

    for code, _, err in results:
        assert (code, err.strip().splitlines()[-1:]) == (1, [REFUSAL]), err


async def test_sources_check_prints_a_rendered_document_per_kind(
    worker_env: dict[str, str], source_conn: asyncpg.Connection
) -> None:
    await add_cabinet(source_conn, 7, docs=3)

    code, out, err = await rag_indexer(worker_env, "sources", "check")

    assert code == 0, err
    assert out.splitlines() == [
        f"sources file {worker_env['RAG_SOURCES_FILE']}: OK, every column it names is returned",
        "cabinet 7, kind note, doc 'd0':",
        "    Товар 0",
        "",
        "    Описание товара номер 0. Хорошее качество.",
        '    metadata: {"tag": "a", "price": 0.0}',
    ]
