"""Render the `RAG_*` settings as the Markdown table the README carries (kept in sync by a test).

python -m rag_indexer_service.settings_doc
"""

from __future__ import annotations

from pathlib import Path

from pydantic.fields import FieldInfo

from rag_indexer_service.config import ENV_PREFIX, Settings

__all__ = ["BEGIN", "END", "settings_table"]

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


if __name__ == "__main__":
    print(settings_table())
