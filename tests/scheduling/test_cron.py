"""Schedules: next fire times, cron's weekday numbering, tick identity, and config errors."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from rag_indexer_service.config import load_settings
from rag_indexer_service.cron import crontab_trigger, next_fire_times, previous_fire_time
from rag_indexer_service.errors import ConfigError

UTC = dt.UTC
MSK = ZoneInfo("Europe/Moscow")


def at(text: str, tz: dt.tzinfo = UTC) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=tz)


def test_default_schedule_fires_every_six_hours_in_utc() -> None:
    settings = load_settings()
    trigger = crontab_trigger(settings.schedule_cron, settings.schedule_timezone)

    fires = next_fire_times(trigger, 4, after=at("2026-03-01 01:30"))

    assert settings.schedule_cron == "0 */6 * * *" and settings.schedule_timezone == "UTC"
    assert fires == [at("2026-03-01 06:00"), at("2026-03-01 12:00"), at("2026-03-01 18:00"),
                     at("2026-03-02 00:00")]  # fmt: skip


def test_a_fire_time_itself_is_the_next_fire_time() -> None:
    trigger = crontab_trigger("0 */6 * * *")

    assert next_fire_times(trigger, 1, after=at("2026-03-01 12:00")) == [at("2026-03-01 12:00")]


def test_custom_cron_in_another_time_zone() -> None:
    # Weekdays at 09:30 Moscow time, asked on a Friday at 10:00 Moscow time.
    trigger = crontab_trigger("30 9 * * 1-5", "Europe/Moscow")

    fires = next_fire_times(trigger, 2, after=at("2026-01-02 10:00", MSK))

    assert fires == [at("2026-01-05 09:30", MSK), at("2026-01-06 09:30", MSK)]
    assert fires[0].astimezone(UTC) == at("2026-01-05 06:30")


@pytest.mark.parametrize(
    "weekdays, expected",
    [
        ("0", ["2026-01-04"]),  # Sunday, as in cron (APScheduler alone would say Monday)
        ("7", ["2026-01-04"]),
        ("sun", ["2026-01-04"]),
        ("5-7", ["2026-01-02", "2026-01-03", "2026-01-04"]),
        ("*/3", ["2026-01-03", "2026-01-04", "2026-01-07"]),  # sun, wed, sat
        ("1,3", ["2026-01-05", "2026-01-07"]),
    ],
)
def test_weekdays_are_numbered_like_cron(weekdays: str, expected: list[str]) -> None:
    trigger = crontab_trigger(f"0 3 * * {weekdays}")

    fires = next_fire_times(trigger, len(expected), after=at("2026-01-01 12:00"))  # a Thursday

    assert [f.date().isoformat() for f in fires] == expected


def test_the_tick_is_the_latest_fire_time_within_the_grace() -> None:
    trigger = crontab_trigger("0 */6 * * *")

    on_time = previous_fire_time(trigger, now=at("2026-03-01 12:00:00.300"), within_s=3600)
    late = previous_fire_time(trigger, now=at("2026-03-01 12:20"), within_s=3600)
    too_late = previous_fire_time(trigger, now=at("2026-03-01 13:30"), within_s=3600)

    assert on_time == late == at("2026-03-01 12:00")
    assert too_late is None


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("schedule_cron", "0 */6 * *", "RAG_SCHEDULE_CRON: '0 */6 * *' has 4 fields; expected 5"),
        ("schedule_cron", "61 * * * *", "RAG_SCHEDULE_CRON: '61 * * * *' is not a valid crontab"),
        ("schedule_cron", "0 3 * * 8", "RAG_SCHEDULE_CRON: '0 3 * * 8' is not a valid crontab"),
        ("schedule_timezone", "Mars/Olympus", "RAG_SCHEDULE_TIMEZONE: unknown time zone"),
    ],
)
def test_invalid_schedule_is_a_one_line_config_error(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(**{variable: value})

    assert message in str(caught.value) and "\n" not in str(caught.value)
