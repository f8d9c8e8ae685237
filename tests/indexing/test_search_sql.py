"""The keyword side's rank query (`search_sql.rank_sql`): the alternatives that change no
row's rank are left out of it, and every row ranks by it as by the whole query."""

from __future__ import annotations

import asyncpg

from rag_indexer_service.indexing.store.keyword_query import KeywordGroup, KeywordQuery
from rag_indexer_service.indexing.store.search_sql import rank_sql

QUERY = KeywordQuery(
    (
        KeywordGroup(
            ("фитнес", "браслет"),
            (("фитнес-браслет",), ("смарт", "браслет"), ("трекер", "активности")),
        ),
        KeywordGroup(("huawei",), (("хуавей",), ("хуавэй",))),
        KeywordGroup(("прошел",), (), (("пройти", "прошла", "пройду"),)),
    )
)
ROWS = (
    "Фитнес браслет Huawei прошёл проверку",
    # "активности" is in no alternative that some row holds but its own, which no row holds
    "Фитнес для активности браслет Хуавей, прошла неделя",
    "браслет Huawei, фитнес каждый день: прошла гарантия",
)
STATEMENT = f"""
    WITH matches AS (SELECT to_tsvector('russian', t) AS tsv FROM unnest(CAST($4 AS text[])) t),
    {rank_sql("$1", "$2", "$3")}
    SELECT CAST(rank AS text) AS rank,
           ARRAY(SELECT ts_rank_cd(tsv, rank) FROM matches) AS ranks,
           ARRAY(SELECT ts_rank_cd(tsv, to_tsquery('russian', $5)) FROM matches) AS whole,
           ARRAY(SELECT ts_rank_cd(tsv, to_tsquery('russian', $6)) FROM matches) AS without
    FROM ranked_by
"""


async def test_alternatives_no_row_tells_apart_are_left_out_and_no_rank_changes(
    source_conn: asyncpg.Connection,
) -> None:
    prunable = QUERY.prunable()
    without_activity = QUERY.tsquery().replace(" | (трекер & активности)", "")
    row = await source_conn.fetchrow(
        STATEMENT,
        prunable.template,
        prunable.slots,
        prunable.alternatives,
        ROWS,
        QUERY.tsquery(),
        without_activity,
    )
    expected = await source_conn.fetchval(
        "SELECT CAST(to_tsquery('russian', $1) AS text)",
        "((фитнес & браслет) | (трекер & активности)) & ((huawei) | (хуавей))"
        " & ((прошел | прошла))",
    )

    # Left out: the hyphenated compound and "смарт" (no row holds them; their other words
    # stay in the query), "хуавэй", and the forms "пройти" and "пройду"
    assert row["rank"] == expected
    assert row["ranks"] == row["whole"]
    # ...but not the alternative that alone holds "активности": without it the second row's
    # cover would hold one word fewer and rank higher
    assert row["without"] != row["whole"]


async def test_a_query_without_alternatives_ranks_by_itself(
    source_conn: asyncpg.Connection,
) -> None:
    query = KeywordQuery((KeywordGroup(("браслет",), ()), KeywordGroup(("huawei",), ())))
    prunable = query.prunable()
    assert prunable.slots == () and prunable.template == query.tsquery()
    row = await source_conn.fetchrow(
        STATEMENT, prunable.template, [], [], ROWS, query.tsquery(), query.tsquery()
    )
    assert row["rank"] == "'браслет' & 'huawei'"
    assert row["ranks"] == row["whole"]
