"""Values that cross a process are the same in every process, whatever its hash seed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pytest

from rag_indexer_service.canonical import canonical_json, digest

_CONFIG_DIGEST = textwrap.dedent(
    """
    from importlib.resources import files
    from pathlib import Path
    from sqlalchemy.ext.asyncio import create_async_engine
    from rag_indexer_service.indexing.sources import SqlSource, load_source_spec

    spec = load_source_spec(Path(str(files("rag_indexer_service") / "demo_sources.toml")))
    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    print(SqlSource(engine, spec, fingerprint_salt="chunks:1200/200").config_digest)
    """
)


def _in_subprocess(code: str, hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_source_config_digest_is_the_same_in_processes_with_different_hash_seeds() -> None:
    digests = {_in_subprocess(_CONFIG_DIGEST, seed) for seed in ("0", "1", "4242", "random")}
    assert len(digests) == 1
    (value,) = digests
    assert len(value) == 12


def test_sets_serialise_in_sorted_order() -> None:
    assert canonical_json(frozenset({"b", "a", "c"})) == '["a","b","c"]'
    assert digest({"x": {3, 1, 2}}) == digest({"x": [1, 2, 3]})


def test_dataclasses_and_key_order_do_not_change_the_digest() -> None:
    @dataclass(frozen=True)
    class Shape:
        name: str
        fields: frozenset[str]

    assert digest(Shape("a", frozenset({"y", "x"}))) == digest({"fields": ["x", "y"], "name": "a"})
    assert digest({"a": 1, "b": 2}) != digest({"a": 2, "b": 1})


def test_values_without_a_canonical_form_are_refused() -> None:
    with pytest.raises(TypeError, match="no canonical form for object"):
        canonical_json(object())
