"""Render the `RAG_*` settings as the Markdown table the README carries (kept in sync by a test).

python -m rag_indexer_service.settings_doc              # print the table
python -m rag_indexer_service.settings_doc README.md    # rewrite README's table in place
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic.fields import FieldInfo

from rag_indexer_service.config import ENV_PREFIX, Settings

__all__ = ["BEGIN", "END", "rewrite", "settings_table"]

BEGIN = "<!-- settings-table:begin -->"
END = "<!-- settings-table:end -->"


def _default(name: str, field: FieldInfo) -> str:
    if name == "sources_file":
        return "the packaged demo sources file"
    if field.default_factory is not None:
        return ""
    value = field.default
    if value is None:
        return "unset"
    if isinstance(value, Path):
        return f"`{value}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple | list):
        return f"`{','.join(map(str, value))}`" if value else "unset"
    return f"`{value}`"


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{ENV_PREFIX}{name.upper()}` | {_default(name, field)} | {description} |")
    return "\n".join(rows)


def rewrite(path: Path) -> None:
    text = path.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{settings_table()}\n{END}{tail}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        rewrite(Path(sys.argv[1]))
    else:
        print(settings_table())
