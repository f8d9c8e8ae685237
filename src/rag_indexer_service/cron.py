"""Crontab expressions with standard cron meaning, on APScheduler 3 triggers.

`CronTrigger.from_crontab` in APScheduler 3 numbers weekdays from Monday (0 = Monday), while
cron numbers them from Sunday (0 and 7 = Sunday): `0 3 * * 0` would fire on Mondays. Numeric
weekday fields are therefore rewritten as day names first, so every expression means what it
means to cron. The fire-time helpers give the deterministic tick times of a schedule.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

__all__ = [
    "check_timezone",
    "crontab_trigger",
    "next_fire_times",
    "previous_fire_time",
]

_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_ONE_US = dt.timedelta(microseconds=1)


def check_timezone(name: str) -> ZoneInfo:
    """The IANA time zone `name` (e.g. `UTC`, `Europe/Moscow`), or ValueError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (expected an IANA name like UTC)") from None


def _weekday(token: str) -> int:
    token = token.strip().lower()
    if token in _DAY_NAMES:
        return _DAY_NAMES.index(token)
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7
    raise ValueError(f"bad weekday {token!r} (0-7 or sun-sat)")


def _cron_weekdays(field: str) -> str:
    """A cron weekday field (Sunday = 0 or 7) as APScheduler day names."""
    if field == "*":
        return field
    days: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f"bad step in weekday field {part!r}")
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            low, high = base.split("-", 1)
            first, last = _weekday(low), _weekday(high)
            if high.strip() == "7":
                last = 7
            if first > last:
                raise ValueError(f"weekday range {base!r} runs backwards")
        else:
            first = _weekday(base)
            last = 6 if step else first
        days.update(day % 7 for day in range(first, last + 1, step or 1))
    return ",".join(_DAY_NAMES[day] for day in sorted(days))


def crontab_trigger(expr: str, timezone: str | dt.tzinfo = "UTC") -> CronTrigger:
    """A trigger for a 5-field crontab expression, or ValueError saying what is wrong."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(
            f"{expr!r} has {len(fields)} fields; expected 5 (minute hour day month weekday)"
        )
    zone = check_timezone(timezone) if isinstance(timezone, str) else timezone
    try:
        fields[4] = _cron_weekdays(fields[4])
        return CronTrigger.from_crontab(" ".join(fields), timezone=zone)
    except ValueError as exc:
        raise ValueError(f"{expr!r} is not a valid crontab expression: {exc}") from None


def next_fire_times(trigger: CronTrigger, count: int, *, after: dt.datetime) -> list[dt.datetime]:
    """The next `count` fire times at or after `after` (aware datetimes)."""
    times: list[dt.datetime] = []
    previous: dt.datetime | None = None
    now = after
    while len(times) < count:
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None:
            break
        times.append(fire)
        previous, now = fire, fire + _ONE_US
    return times


def previous_fire_time(
    trigger: CronTrigger, *, now: dt.datetime, within_s: float
) -> dt.datetime | None:
    """The latest fire time in `[now - within_s, now]`: the tick a job running at `now` serves.

    Every replica computes the same value for the same tick, whatever its delay: it is the
    tick's identity in `rag_schedule_ticks`.
    """
    latest: dt.datetime | None = None
    previous: dt.datetime | None = None
    cursor = now - dt.timedelta(seconds=within_s)
    while True:
        fire = trigger.get_next_fire_time(previous, cursor)
        if fire is None or fire > now:
            return latest
        latest = previous = fire
        cursor = fire + _ONE_US
