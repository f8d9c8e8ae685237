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
        f"sources file {worker_env['RAG_SOURCES_FILE']}: OK, every query runs and returns "
        "every column it needs",
        "cabinet 7, kind note, doc 'd0':",
        "    Товар 0",
        "",
        "    Описание товара номер 0. Хорошее качество.",
        '    metadata: {"tag": "a", "price": 0.0}',
    ]


NOTE_COLUMNS = "SELECT id, title, body, tag, price FROM src_docs"
DELTA_TOML = (
    SOURCE_TOML
    + f'changed_query = "{NOTE_COLUMNS} WHERE cabinet_id = :cabinet_id AND :since < now()"\n'
    + "ids_query = 'SELECT id FROM src_docs WHERE cabinet_id = :cabinet_id'\n"
)
BROKEN = {
    "fingerprint": DELTA_TOML.replace("max(version)", "max(versio)"),
    "ids_query": DELTA_TOML.replace("SELECT id FROM src_docs", "SELECT id FROM src_docz"),
    "ids_query column": DELTA_TOML.replace("SELECT id FROM src_docs", "SELECT title FROM src_docs"),
    "changed_query column": DELTA_TOML.replace(
        f'"{NOTE_COLUMNS} WHERE', '"SELECT id, title, tag, price FROM src_docs WHERE'
    ),
}
VERDICTS = {
    "fingerprint": "error: RAG_SOURCES_FILE: cabinets.fingerprint cannot be run: ",
    "ids_query": "error: RAG_SOURCES_FILE: kinds.note.ids_query cannot be run: ",
    "ids_query column": (
        "error: RAG_SOURCES_FILE: kinds.note.id_column names column 'id', which "
        "kinds.note.ids_query does not return (it returns: title)"
    ),
    "changed_query column": (
        "error: RAG_SOURCES_FILE: kinds.note.template names column 'body', which "
        "kinds.note.changed_query does not return (it returns: id, title, tag, price)"
    ),
}


async def test_sources_check_runs_every_query_and_refuses_one_that_cannot_run(
    worker_env: dict[str, str], source_conn: asyncpg.Connection, tmp_path: Path
) -> None:
    await add_cabinet(source_conn, 7, docs=1)
    verdicts = {}
    for name, toml in {"good": DELTA_TOML, **BROKEN}.items():
        assert name == "good" or toml != DELTA_TOML, name
        path = tmp_path / f"{name.replace(' ', '-')}.toml"
        path.write_text(toml)
        code, out, err = await rag_indexer(
            {**worker_env, "RAG_SOURCES_FILE": str(path)}, "sources", "check"
        )
        verdicts[name] = (code, (out if code == 0 else err).strip().splitlines()[0])

    assert verdicts.pop("good")[0] == 0
    for name, (code, line) in verdicts.items():
        assert code == 1 and line.startswith(VERDICTS[name]), (name, line)


async def test_sources_check_for_a_cabinet_the_source_does_not_list_says_so(
    worker_env: dict[str, str],
) -> None:
    code, _, err = await rag_indexer(worker_env, "sources", "check", "--cabinet", "404")

    assert (code, err.strip()) == (1, "error: cabinet 404 is not listed by the source")
