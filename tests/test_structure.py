"""The shape the package docstrings promise, checked on the source: each `rag_*` table has
one owner (the only modules with SQL on it), packages import only what they may, every
package says what it owns and may import, and test modules share helpers through
`tests/helpers.py`, never by importing another test module. No database needed."""

from __future__ import annotations

import ast
import importlib.metadata
import re
from pathlib import Path

import dramatiq
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import rag_indexer_service
from rag_indexer_service.jobs.redis_fast_path import VERIFIED_DRAMATIQ

PACKAGE = Path(rag_indexer_service.__file__).parent
TESTS = Path(__file__).parent

# table -> the package (or module) that alone may hold SQL on it
OWNERS = {
    "rag_cabinets": "indexing/store/",
    "rag_documents": "indexing/store/",
    "rag_chunks": "indexing/store/",
    "rag_embedding_cache": "indexing/store/",
    "rag_watermarks": "indexing/store/",
    "rag_runs": "runs/",
    "rag_schedule_ticks": "scheduling/ticks.py",
    "rag_scheduler_heartbeats": "scheduling/heartbeats.py",
}
_SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|FROM|JOIN|INTO|TRUNCATE|LOCK|COPY)\b")

# package -> packages it must never import (the layers of `rag_indexer_service/__init__.py`)
FORBIDDEN = {
    "db": ("indexing", "runs", "runtime", "jobs", "service", "scheduling", "api", "ui", "cli"),
    "indexing": ("runs", "runtime", "jobs", "service", "scheduling", "api", "ui", "cli"),
    "runs": ("runtime", "jobs", "service", "scheduling", "api", "ui", "cli", "allinone"),
    "jobs": ("service", "scheduling", "api", "ui", "cli", "allinone"),
    "scheduling": ("service", "api", "ui", "cli", "allinone"),
    "api": ("cli", "allinone"),
    "demo": ("config", "db", "indexing", "runs", "jobs", "scheduling", "api", "ui", "cli"),
}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _sql_strings(tree: ast.Module) -> list[str]:
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                found.append(node.value)
        elif isinstance(node, ast.JoinedStr):
            found.append(
                "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            )
    return [s for s in found if _SQL.search(s)]


def sql_modules_by_table() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {table: set() for table in OWNERS}
    for path in _modules():
        for sql in _sql_strings(ast.parse(path.read_text(encoding="utf-8"))):
            for table in OWNERS:
                if re.search(rf"\b{table}\b", sql):
                    found[table].add(_rel(path))
    return found


def test_each_rag_table_has_sql_only_in_its_owner() -> None:
    found = sql_modules_by_table()
    for table, owner in OWNERS.items():
        assert found[table], f"no module has SQL on {table}: the check no longer sees it"
        strays = sorted(m for m in found[table] if not m.startswith(owner))
        assert not strays, f"SQL on {table} outside its owner {owner}: {strays}"


def test_the_old_unowned_modules_are_gone() -> None:
    for gone in ("db/models.py", "tasks.py", "demo.py", "redis_enqueue.py", "runs.py"):
        assert not (PACKAGE / gone).exists(), gone


def _imported_packages(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
            if node.module == "rag_indexer_service":
                modules = [f"rag_indexer_service.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] == "rag_indexer_service" and len(parts) > 1:
                names.add(parts[1])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_only_their_layers(package: str) -> None:
    wrong = {
        _rel(path): sorted(_imported_packages(path) & set(FORBIDDEN[package]))
        for path in sorted((PACKAGE / package).rglob("*.py"))
        if "migrations" not in path.parts
    }
    assert not {m: names for m, names in wrong.items() if names}


def test_every_package_docstring_says_what_it_may_import() -> None:
    missing = []
    for init in sorted(PACKAGE.rglob("__init__.py")):
        if "migrations" in init.parts or init.parent.name == "routes":
            continue
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        if not re.search(r"\b(may import|imports only|importing only)\b", doc, re.IGNORECASE):
            missing.append(_rel(init))
    assert not missing, f"package docstrings without their imports: {missing}"


def test_no_test_module_imports_another_test_module() -> None:
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            if module and any(part.startswith("test_") for part in module.split(".")):
                offenders.append(f"{path.relative_to(TESTS)}: from {module}")
    assert not offenders, f"import shared helpers from tests/helpers.py: {offenders}"


def test_the_dramatiq_pin_is_the_range_the_fast_path_was_verified_against() -> None:
    [pin] = [
        Requirement(r)
        for r in importlib.metadata.requires("rag-indexer-service") or ()
        if r.startswith("dramatiq")
    ]
    low, high = (Version(v) for v in VERIFIED_DRAMATIQ.split(" to "))
    assert low in pin.specifier and high in pin.specifier
    assert Version(f"{high.major}.{high.minor + 1}.0") not in pin.specifier, "no upper bound"
    assert Version(f"{low.major - 1}.99.0") not in pin.specifier
    assert low <= Version(dramatiq.__version__) <= high
