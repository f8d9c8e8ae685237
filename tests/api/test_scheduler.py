"""`GET /api/v1/rag/scheduler`: what the scheduler daemons recorded in their tables."""

from __future__ import annotations

import datetime as dt

import asyncpg
import httpx

from tests.helpers import add_schedulers


async def test_no_scheduler_yet_answers_nulls(idle_client: httpx.AsyncClient) -> None:
    response = await idle_client.get("/api/v1/rag/scheduler")

    assert response.status_code == 200
    assert response.json() == {
        "last_tick": None,
        "next_tick_at": None,
        "last_reaper_at": None,
        "schedulers": [],
    }


async def test_reports_the_newest_tick_and_the_freshest_schedulers_plan(
    idle_client: httpx.AsyncClient, source_conn: asyncpg.Connection
) -> None:
    t = dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC)
    hour = dt.timedelta(hours=1)
    await source_conn.executemany(
        "INSERT INTO rag_schedule_ticks (tick_at, claimed_by, finished_at, cabinets_seen, "
        "cabinets_enqueued, cabinets_active) VALUES ($1, $2, $3, $4, $5, $6)",
        [(t - 6 * hour, "a:1", t - 6 * hour, 10, 10, 0), (t, "b:2", None, 12, 11, 1)],
    )
    await source_conn.executemany(
        "INSERT INTO rag_scheduler_heartbeats (scheduler_id, heartbeat_at, last_tick_at, "
        "next_tick_at, last_reaper_at, last_reaper) VALUES ($1, now() - $2::interval, $3, $4, "
        "$5, $6::jsonb)",
        [
            ("a:1", hour, t - 6 * hour, t, t - 2 * hour, '{"resent": 1}'),
            ("b:2", dt.timedelta(seconds=1), t, t + 6 * hour, t - hour, '{"resent": 0}'),
        ],
    )

    body = (await idle_client.get("/api/v1/rag/scheduler")).json()

    assert body["last_tick"]["claimed_by"] == "b:2"
    assert (body["last_tick"]["cabinets_enqueued"], body["last_tick"]["cabinets_active"]) == (11, 1)
    assert body["last_tick"]["finished_at"] is None
    assert dt.datetime.fromisoformat(body["next_tick_at"]) == t + 6 * hour
    assert dt.datetime.fromisoformat(body["last_reaper_at"]) == t - hour
    assert [s["scheduler_id"] for s in body["schedulers"]] == ["b:2", "a:1"]
    assert body["schedulers"][0]["last_reaper"] == {"resent": 0}
    assert 0 <= body["schedulers"][0]["heartbeat_age_s"] < body["schedulers"][1]["heartbeat_age_s"]


async def test_only_schedulers_with_a_recent_heartbeat_are_alive(
    idle_client: httpx.AsyncClient, source_conn: asyncpg.Connection
) -> None:
    await add_schedulers(source_conn)

    body = (await idle_client.get("/api/v1/rag/scheduler")).json()

    shown = {s["scheduler_id"]: s for s in body["schedulers"]}
    assert {i: s["alive"] for i, s in shown.items()} == {
        "beating:1": True,
        "silent:2": False,
        "stopped:3": False,
    }
    assert shown["beating:1"]["gone_since"] is None
    assert shown["silent:2"]["gone_since"] == shown["silent:2"]["heartbeat_at"]
    stopped = shown["stopped:3"]
    assert stopped["stopped_at"] is not None and stopped["gone_since"] == stopped["stopped_at"]
