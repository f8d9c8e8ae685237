"""compose.yml, .env.example, the Dockerfile and the README agree with the code (as far as this
machine, which has no Docker engine, can check)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from typer.main import get_command

from rag_indexer_service.cli import app
from rag_indexer_service.config import ENV_PREFIX, Settings
from rag_indexer_service.settings_doc import BEGIN, END, settings_table

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def cli_paths() -> set[tuple[str, ...]]:
    """Every command path of `rag-indexer`: ("api",), ("db", "upgrade"), ..."""
    root = get_command(app)
    paths: set[tuple[str, ...]] = set()

    def walk(command: Any, prefix: tuple[str, ...]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            paths.add((*prefix, name))
            walk(sub, (*prefix, name))

    walk(root, ())
    return paths


def test_compose_has_the_documented_services() -> None:
    services = compose()["services"]

    assert set(services) == {"postgres", "redis", "migrate", "api", "worker", "scheduler"}
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["api"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert "pgvector" in services["postgres"]["image"]


def test_every_compose_command_is_a_real_cli_subcommand() -> None:
    paths = cli_paths()
    for name, service in compose()["services"].items():
        if "build" not in service:
            continue
        words = [w for w in service["command"] if not w.startswith("-")]
        assert tuple(words[:2]) in paths or tuple(words[:1]) in paths, (name, words)


def test_every_env_var_in_compose_and_env_example_is_a_real_setting() -> None:
    used: set[str] = set()
    for service in compose()["services"].values():
        used |= {k for k in service.get("environment", {}) if k.startswith(ENV_PREFIX)}
    example = (ROOT / ".env.example").read_text()
    used |= set(re.findall(r"^#?\s*(RAG_[A-Z_]+)=", example, flags=re.MULTILINE))

    assert used and used <= SETTINGS, used - SETTINGS


def test_dockerfile_runs_the_cli_as_a_non_root_user_with_a_healthcheck() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert 'ENTRYPOINT ["rag-indexer"]' in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, flags=re.MULTILINE)
    assert "HEALTHCHECK" in dockerfile and "/healthz" in dockerfile


def test_readme_settings_table_matches_the_settings_class() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split(BEGIN, 1)[1].split(END, 1)[0].strip()

    assert table == settings_table(), "run: python -m rag_indexer_service.settings_doc README.md"


def test_readme_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    paths = cli_paths()
    mentioned = set(re.findall(r"rag-indexer ((?:[a-z]+)(?: [a-z]+)?)", readme))

    for phrase in mentioned:
        words = tuple(phrase.split())
        assert words in paths or words[:1] in paths, phrase


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()

    assert "scripts/test" in readme and "exec bash scripts/test" in ci
