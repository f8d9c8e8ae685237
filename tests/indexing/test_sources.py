"""load_source_spec: a good file parses, each kind of bad file is one clear ConfigError."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rag_indexer_service.config import default_sources_file
from rag_indexer_service.errors import ConfigError
from rag_indexer_service.indexing.sources import load_source_spec

CABINETS = """
[cabinets]
query = "SELECT id AS cabinet_id FROM cabinets"
"""

GOOD = textwrap.dedent(
    """
    [cabinets]
    query = "SELECT id AS cabinet_id FROM cabinets"
    fingerprint = "SELECT max(v)::text FROM docs WHERE cabinet_id = :cabinet_id"

    [kinds.product]
    query = "SELECT id, title, price, info FROM products WHERE cabinet_id = :cabinet_id"
    id_column = "id"
    template = "{title}: {price} ₽ {info[colour]} {info.size}"
    metadata = ["title", "price"]

    [kinds.review]
    query = "SELECT id, text FROM reviews WHERE cabinet_id = :cabinet_id"
    id_column = "id"
    template = "{text}"
    """
)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _kind(body: str) -> str:
    return CABINETS + "\n[kinds.product]\n" + textwrap.dedent(body)


KIND_OK = """
query = "SELECT id, title FROM products WHERE cabinet_id = :cabinet_id"
id_column = "id"
template = "{title}"
"""


def test_good_file_parses_into_a_spec(tmp_path: Path) -> None:
    spec = load_source_spec(_write(tmp_path, GOOD))
    assert spec.cabinets_query == "SELECT id AS cabinet_id FROM cabinets"
    assert spec.fingerprint_query is not None and ":cabinet_id" in spec.fingerprint_query
    product, review = spec.kinds
    assert (product.name, product.id_column) == ("product", "id")
    assert product.metadata == ("title", "price")
    assert product.template_fields == {"title", "price", "info"}
    assert (review.name, review.template_fields, review.metadata) == ("review", {"text"}, ())


def test_fingerprint_is_optional(tmp_path: Path) -> None:
    assert load_source_spec(_write(tmp_path, _kind(KIND_OK))).fingerprint_query is None


def test_packaged_demo_sources_file_parses() -> None:
    spec = load_source_spec(default_sources_file())
    assert {kind.name for kind in spec.kinds} == {"product", "review", "question", "sales_month"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[cabinets\nquery = 1", "is not valid TOML"),
        ("title = 'no tables'", r"has no \[cabinets\] table"),
        ("cabinets = 'a string'", r"has no \[cabinets\] table"),
        ("[cabinets]\nquery = '  '", "cabinets.query must be a non-empty string"),
        ("[cabinets]\nquery = 5", "cabinets.query must be a non-empty string"),
        (CABINETS + "fingerprint = 'SELECT 1'", "cabinets.fingerprint must use :cabinet_id"),
        (CABINETS, r"defines no \[kinds.<name>\] tables"),
        (CABINETS + "[kinds]", r"defines no \[kinds.<name>\] tables"),
        (CABINETS + "[kinds]\nproduct = 'x'", "kinds.product must be a table"),
        (
            _kind(KIND_OK.replace("WHERE cabinet_id = :cabinet_id", "")),
            "kinds.product.query must filter by :cabinet_id",
        ),
        (_kind(KIND_OK.replace('id_column = "id"', "")), "kinds.product.id_column must be"),
        (_kind(KIND_OK.replace('template = "{title}"', "")), "kinds.product.template must be"),
        (_kind(KIND_OK + "metadata = 'title'"), "kinds.product.metadata must be a list"),
        (_kind(KIND_OK + "metadata = ['title', 3]"), "kinds.product.metadata must be a list"),
        (
            _kind(KIND_OK.replace('"{title}"', '"{title"')),
            "kinds.product.template is malformed",
        ),
    ],
)
def test_bad_file_is_one_config_error_naming_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_source_spec(_write(tmp_path, text))
    assert str(caught.value).startswith("RAG_SOURCES_FILE: ")
    assert "\n" not in str(caught.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read .*missing\.toml"):
        load_source_spec(tmp_path / "missing.toml")


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_bytes("[cabinets]\nquery = 'Товар'".encode("cp1251"))
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_source_spec(path)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('changed_query = "SELECT 1 WHERE :cabinet_id > :since"', "both changed_query and"),
        ('ids_query = "SELECT id FROM p WHERE cabinet_id = :cabinet_id"', "both changed_query"),
        (
            'changed_query = "SELECT 1 WHERE c = :cabinet_id"\n'
            'ids_query = "SELECT id FROM p WHERE cabinet_id = :cabinet_id"',
            "must use :cabinet_id and :since",
        ),
        (
            'changed_query = "SELECT 1 WHERE c = :cabinet_id AND u > :since"\n'
            'ids_query = "SELECT id FROM p"',
            "ids_query must filter by :cabinet_id",
        ),
    ],
)
def test_delta_queries_come_in_pairs_with_their_parameters(
    tmp_path: Path, extra: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_source_spec(_write(tmp_path, _kind(KIND_OK) + extra + "\n"))


def test_the_demo_sources_file_reads_every_kind_by_delta() -> None:
    spec = load_source_spec(default_sources_file())
    assert spec.watermark_query is not None
    assert all(k.changed_query and k.ids_query for k in spec.kinds)
