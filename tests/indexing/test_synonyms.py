"""Query-time synonyms, inflected forms and kind words on the keyword side of search: the
data file and its checks, and what they find in a real Postgres index."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from rag_indexer_service.config import Settings, load_settings
from rag_indexer_service.errors import ConfigError
from rag_indexer_service.indexing.store.keyword_query import build_keyword_query
from rag_indexer_service.indexing.synonyms import load_synonyms, stems, words
from rag_indexer_service.runtime import open_runtime

DOCS = (
    ("phone", "Смартфон Galaxy A55", "Экран 6,6 дюйма, две сим-карты."),
    ("kettle", "Чайник электрический", "Объём 1,7 л, корпус из стекла."),
    ("parcel", "Отзыв о посылке", "Упаковка была повреждена, коробка мятая."),
    ("lamp", "Лампа настольная", "Три режима яркости."),
)


async def seed(conn: asyncpg.Connection, cabinet_id: int) -> None:
    await conn.execute("INSERT INTO src_cabinets (id) VALUES ($1)", cabinet_id)
    await conn.executemany(
        "INSERT INTO src_docs (cabinet_id, id, title, body, tag, price) "
        "VALUES ($1, $2, $3, $4, 'a', 1)",
        [(cabinet_id, *doc) for doc in DOCS],
    )


def with_options(base: Settings, **overrides: object) -> Settings:
    return load_settings(**{**base.model_dump(), **overrides})


def test_the_packaged_synonyms_match_inflected_forms_and_name_kinds() -> None:
    synonyms = load_synonyms()

    assert ("смартфон",) in synonyms.expansions(words("мобильника"))
    assert ("nike",) in synonyms.expansions(words("Найк"))
    assert ("кроссовки",) in synonyms.expansions(words("обувь"))
    assert ("обувь",) not in synonyms.expansions(words("кроссовки"))  # `broader` is one way
    assert synonyms.kind(words("Отзывы")) == "review"
    assert synonyms.kind(words("смартфон")) is None


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("equivalent = [[", "not valid TOML"),
        ('colours = [["red", "красный"]]', "unknown keys ['colours']"),
        ('equivalent = [["пауэрбанк"]]', "equivalent[0]: expected a list of at least 2"),
        ('equivalent = [["a", 3]]', "equivalent[0][1]: expected a string, got 3"),
        ('equivalent = [["a", "!!"]]', "equivalent[0][1]: '!!' has no words"),
        ('[broader]\n"обувь" = "кеды"', "broader.'обувь': expected a list"),
        ('[kinds]\nreview = ["вопрос"]\nquestion = ["вопросы"]', "names both 'review' and"),
        ('[kind_cues]\nreview = "брак"', "kind_cues.review: expected a list"),
        ('[kinds]\nreview = ["жалоба"]\n[kind_cues]\nreview = ["жалобы"]', "in [kinds] too"),
    ],
)
def test_a_malformed_synonyms_file_is_refused_at_load_saying_where(
    tmp_path: Path, content: str, complaint: str
) -> None:
    path = tmp_path / "synonyms.toml"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(ConfigError) as refused:
        load_synonyms(path)

    assert f"RAG_SEARCH_SYNONYMS_FILE {path}" in str(refused.value)
    assert complaint in str(refused.value)


async def test_the_service_refuses_to_start_on_a_missing_synonyms_file(
    settings: Settings, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.toml"

    with pytest.raises(ConfigError, match=r"nowhere\.toml: cannot be read"):
        async with open_runtime(with_options(settings, search_synonyms_file=missing)):
            pass


def test_complaint_phrasing_suggests_reviews_and_its_words_are_still_searched() -> None:
    synonyms = load_synonyms()

    complaint = build_keyword_query("Проблемы с размером", synonyms)
    asked = build_keyword_query("можно ли стирать в машинке", synonyms)
    product = build_keyword_query("кроссовки для бега", synonyms)

    assert complaint.kinds == ("review",)
    assert [g.words for g in complaint.groups] == [("проблемы",), ("с",), ("размером",)]
    assert asked.kinds == ("question",)
    assert product.kinds == ()


def test_the_keyword_query_is_made_of_word_tokens_only() -> None:
    assert build_keyword_query("!&|:*()<->").groups == ()
    query = build_keyword_query("it's 'a' \\ (test) | !x")
    assert query.tsquery() == "(it) & (s) & (a) & (test) & (x)"


async def test_a_synonym_finds_a_document_that_shares_no_word_with_the_query(
    settings: Settings, source_conn: asyncpg.Connection
) -> None:
    # Given a cabinet whose phone is a "Смартфон"
    await seed(source_conn, 1)
    async with open_runtime(settings) as rt:
        await rt.indexer.index_cabinet(1)

        # When a customer asks for a "мобильник" (in another case, too)
        hits = await rt.indexer.search(1, "мобильника", k=2)

    # Then the keyword side finds the phone, and the hit says through which synonym
    assert hits[0].doc_id == "phone" and hits[0].text_rank == 1
    assert hits[0].matched_terms == ()
    assert hits[0].expansions == ("мобильника → смартфон",)
    assert all(h.text_rank is None for h in hits[1:])

    # And without synonyms the keyword side has nothing to say
    async with open_runtime(with_options(settings, search_synonyms=False)) as rt:
        plain = await rt.indexer.search(1, "мобильника", k=2)
    assert all(h.text_rank is None and h.expansions == () for h in plain)


async def test_another_form_of_a_word_is_found_where_the_stemmer_splits_them(
    runtime_with_docs: Settings,
) -> None:
    # "повреждённая" and "повреждена" have different Snowball stems
    async with open_runtime(runtime_with_docs) as rt:
        [hit, *_] = await rt.indexer.search(2, "повреждённая упаковка", k=1)

    assert hit.doc_id == "parcel" and hit.text_rank == 1
    assert hit.matched_terms == ("повреждённая", "упаковка")


async def test_a_custom_file_replaces_the_packaged_one_and_a_kind_word_ranks_that_kind(
    settings: Settings, source_conn: asyncpg.Connection, tmp_path: Path
) -> None:
    # Given a vocabulary of our own, where "заметки" names the test source's kind
    path = tmp_path / "synonyms.toml"
    path.write_text(
        'equivalent = [["кипятильник", "чайник"]]\n\n[kinds]\nnote = ["заметки"]\n',
        encoding="utf-8",
    )
    await seed(source_conn, 3)
    custom = with_options(settings, search_synonyms_file=path)
    async with open_runtime(custom) as rt:
        await rt.indexer.index_cabinet(3)

        # When the query names the kind and a word only the vocabulary knows
        hits = await rt.indexer.search(3, "заметки про кипятильник", k=4)
        # ("мобильник" is in the packaged vocabulary, not in ours)
        phone = await rt.indexer.search(3, "мобильник", k=4)

    # Then the kind word is not required in the text, the hits of that kind say so and get
    # 1/60 on their fused score, and the synonym finds the kettle
    assert hits[0].doc_id == "kettle" and hits[0].expansions == ("кипятильник → чайник",)
    assert all(h.kind_match for h in hits)
    top = hits[0]
    assert top.score == pytest.approx(
        1 / 60 + 1.5 / (60 + (top.text_rank or 0)) + 1 / (60 + (top.vector_rank or 0))
    )
    assert all(h.text_rank is None for h in phone)


async def test_a_word_most_chunks_hold_is_not_required_but_still_ranks(
    settings: Settings, source_conn: asyncpg.Connection
) -> None:
    # Given a cabinet where "товар" is in nearly every chunk, "упаковка" in two
    await source_conn.execute("INSERT INTO src_cabinets (id) VALUES (5)")
    docs = [(f"t{n}", f"Товар {n}", "Описание товара.") for n in range(16)]
    docs += [
        ("box", "Коробка для товара", "Упаковка из картона, товар не мнётся."),
        ("parcel", "Отзыв о посылке", "Упаковка была повреждена, коробка мятая."),
    ]
    await source_conn.executemany(
        "INSERT INTO src_docs (cabinet_id, id, title, body, tag, price) "
        "VALUES (5, $1, $2, $3, 'a', 1)",
        docs,
    )
    async with open_runtime(settings) as rt:
        await rt.indexer.index_cabinet(5)
        async with rt.db.engine.begin() as conn:  # what autovacuum does a minute later
            await conn.execute(text("ANALYZE rag_chunks"))

        # When the query holds both words
        hits = await rt.indexer.search(5, "упаковка товара", k=18)

    # Then the common word is not required (the parcel lacks it), but the chunk holding
    # both ranks first
    found = [h.doc_id for h in sorted(hits, key=lambda h: h.text_rank or 99) if h.text_rank]
    assert found == ["box", "parcel"]
    assert next(h for h in hits if h.doc_id == "parcel").matched_terms == ("упаковка",)


@pytest.fixture
async def runtime_with_docs(settings: Settings, source_conn: asyncpg.Connection) -> Settings:
    await seed(source_conn, 2)
    async with open_runtime(settings) as rt:
        await rt.indexer.index_cabinet(2)
    return settings


def test_stemming_gives_the_same_stems_from_many_threads_at_once() -> None:
    """Every runtime loads the synonyms, and schedulers or tests open runtimes in threads."""
    sample = words("мобильника кроссовки повреждённая упаковка доставке отзывы " * 50)
    expected = stems(sample)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: stems(sample), range(64)))

    assert all(r == expected for r in results)


def test_the_c_stemmer_in_use_gives_the_pure_python_stemmer_s_stems() -> None:
    # pystemmer is a dependency for speed only: snowballstemmer hands out its C stemmer when
    # it is installed, and that must stem exactly as the Python one (and Postgres) does.
    import pymorphy3  # type: ignore[import-untyped]
    import snowballstemmer  # type: ignore[import-untyped]
    from snowballstemmer.russian_stemmer import RussianStemmer  # type: ignore[import-untyped]

    morph = pymorphy3.MorphAnalyzer()
    sample = words(
        "Мобильник кроссовки повреждённая упаковка доставка отзывы маломерит размер ткань "
        "качественный быстро пришёл заряжать подошёл ребёнок сильнее лучший ёлка"
    )
    forms = sorted({f.word for w in sample for f in morph.parse(w)[0].lexeme} | set(sample))
    c_stemmer = snowballstemmer.stemmer("russian")

    assert type(c_stemmer).__module__ == "Stemmer"
    assert c_stemmer.stemWords(forms) == [RussianStemmer().stemWord(w) for w in forms]
    assert len(forms) > 300
