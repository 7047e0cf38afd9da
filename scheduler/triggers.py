"""Time triggers: cron strings and intervals, validated and turned into
APScheduler 3 triggers, and the next fire times shown when a schedule is made.

Cron is the standard five fields (minute hour day-of-month month day-of-week)
read the way crontab(5) reads them, which APScheduler 3 does not do on its own:

- day-of-week numbers are 0-7 with 0 and 7 Sunday (APScheduler 3 counts 0 as
  Monday, its issue #286), so the field is translated to day names;
- when both day-of-month and day-of-week are restricted, a day matching
  either fires (APScheduler requires both), so the trigger is an OrTrigger
  of the two.

A six-field form with seconds first is accepted only where the minimum
interval allows sub-minute runs (ALERTLAB_SCHEDULER_MIN_INTERVAL < 60): tests
and benchmarks."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from alertlab.core import settings
from alertlab.scheduler.errors import ScheduleError

MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
CRON_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]  # crontab order: 0 (and 7) is Sunday


def zone(name: str | None) -> ZoneInfo:
    """The IANA time zone ``name`` (default UTC)."""
    name = (name or "UTC").strip()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r}: use an IANA name such as 'Europe/Paris' or 'UTC'") from None


def _day_number(token: str, cron: str) -> int:
    token = token.strip().lower()
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7
    if token[:3] in CRON_DAYS and len(token) == 3:
        return CRON_DAYS.index(token)
    raise ScheduleError(f"bad cron {cron!r}: day of week {token!r} is not 0-7 or sun..sat")


def day_of_week_names(field: str, cron: str = "") -> str:
    """A crontab day-of-week field as APScheduler day names, e.g. '1-5' → 'mon,tue,wed,thu,fri'."""
    cron = cron or field
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for item in field.split(","):
        body, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"bad cron {cron!r}: step {step_text!r} in the day of week is not a positive number")
            step = int(step_text)
        if body in ("*", "?"):
            first, last = 0, 6
        elif "-" in body:
            a, b = body.split("-", 1)
            first, last = _day_number(a, cron), _day_number(b, cron)
            if last == 0 and first > 0:
                last = 7  # "5-7" and "fri-sun" end on Sunday
            if last < first:
                raise ScheduleError(f"bad cron {cron!r}: day-of-week range {body!r} runs backwards")
        else:
            first = _day_number(body, cron)
            last = 6 if step_text else first
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(CRON_DAYS[d] for d in sorted(days))


def _cron_parts(expr: str, cron: str) -> dict:
    fields = expr.split()
    min_interval = settings.get("ALERTLAB_SCHEDULER_MIN_INTERVAL")
    if len(fields) == 6 and min_interval < 60:
        second, fields = fields[0], fields[1:]
    elif len(fields) != 5:
        expected = "5 (or 6 with seconds first)" if min_interval < 60 else "5"
        raise ScheduleError(f"bad cron {cron!r}: expected {expected} fields (minute hour day month weekday), "
                            f"got {len(fields)}")
    else:
        second = "0"
    minute, hour, day, month, dow = fields
    return {"second": second, "minute": minute, "hour": hour, "day": day, "month": month, "dow": dow}


def cron_trigger(cron: str, tz: str | None = "UTC") -> BaseTrigger:
    """The APScheduler trigger of a crontab string in a time zone; ScheduleError says what is wrong."""
    if not isinstance(cron, str) or not cron.strip():
        raise ScheduleError("bad cron: empty (five fields: minute hour day month weekday, e.g. '0 9 * * *')")
    cron = " ".join(cron.split())
    expr = MACROS.get(cron.lower(), cron)
    tzinfo = zone(tz)
    p = _cron_parts(expr, cron)
    common = dict(second=p["second"], minute=p["minute"], hour=p["hour"], month=p["month"], timezone=tzinfo)
    try:
        CronTrigger(day=p["day"], **common)  # the other fields first, so errors come in reading order
    except ValueError as exc:
        raise ScheduleError(f"bad cron {cron!r}: {exc}") from None
    dow = day_of_week_names(p["dow"], cron)
    try:
        if p["day"] not in ("*", "?") and dow != "*":
            # crontab(5): "the command runs when either field matches"
            return OrTrigger([CronTrigger(day=p["day"], **common), CronTrigger(day_of_week=dow, **common)])
        return CronTrigger(day=p["day"], day_of_week=dow, **common)
    except ValueError as exc:
        raise ScheduleError(f"bad cron {cron!r}: {exc}") from None


def interval_trigger(seconds, start: datetime, tz: str | None = "UTC") -> IntervalTrigger:
    """Every ``seconds``, the first time one interval after ``start`` (a UTC datetime)."""
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        raise ScheduleError(f"bad interval {seconds!r}: a number of seconds") from None
    minimum = settings.get("ALERTLAB_SCHEDULER_MIN_INTERVAL")
    if not seconds >= minimum:
        raise ScheduleError(f"bad interval {seconds:g}s: the shortest allowed is {minimum:g}s")
    start = _aware(start) + timedelta(seconds=seconds)
    return IntervalTrigger(seconds=seconds, start_date=start, timezone=zone(tz))


def check_min_interval(trigger: BaseTrigger, cron: str) -> None:
    """A cron that fires more often than the minimum interval is refused."""
    minimum = settings.get("ALERTLAB_SCHEDULER_MIN_INTERVAL")
    times = next_fire_times(trigger, 6)
    if not times:
        raise ScheduleError(f"bad cron {cron!r}: it never fires")
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
    if gaps and min(gaps) < minimum - 1e-6:
        raise ScheduleError(f"bad cron {cron!r}: it fires every {min(gaps):g}s; the shortest allowed interval "
                            f"is {minimum:g}s")


def next_fire_times(trigger: BaseTrigger, n: int = 5, after: datetime | None = None) -> list[datetime]:
    """The next ``n`` fire times after ``after`` (default now), in the trigger's time zone."""
    now = _aware(after) if after else datetime.now(timezone.utc)
    out, previous = [], None
    while len(out) < n:
        t = trigger.get_next_fire_time(previous, now)
        if t is None:
            break
        out.append(t)
        previous, now = t, t + timedelta(microseconds=1)
    return out


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def for_schedule(s: dict) -> BaseTrigger | None:
    """The trigger of a stored schedule row (None for alert triggers)."""
    if s["trigger_kind"] == "cron":
        return cron_trigger(s["cron"], s["timezone"])
    if s["trigger_kind"] == "interval":
        return interval_trigger(s["interval_seconds"], s["updated"], s["timezone"])
    return None
