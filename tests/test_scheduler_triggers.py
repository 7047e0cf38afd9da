"""The scheduler's pure logic: cron read as crontab(5) reads it, time zones,
next fire times, and the validation of what people type (no services needed)."""

from datetime import datetime, timezone

import pytest

from alertlab.scheduler import notify, schedules, triggers
from alertlab.scheduler.errors import ScheduleError


def _utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


def test_weekday_numbers_are_crontabs_not_apschedulers():
    # crontab: 0 and 7 are Sunday, 1 is Monday (APScheduler 3 alone would read 1 as Tuesday)
    assert triggers.day_of_week_names("1") == "mon"
    assert triggers.day_of_week_names("0") == triggers.day_of_week_names("7") == "sun"
    assert triggers.day_of_week_names("1-5") == "mon,tue,wed,thu,fri"
    assert triggers.day_of_week_names("5-7") == "sun,fri,sat"
    assert triggers.day_of_week_names("*/2") == "sun,tue,thu,sat"
    monday_9 = triggers.cron_trigger("0 9 * * 1", "UTC")
    times = triggers.next_fire_times(monday_9, 3, after=_utc(2026, 11, 28))  # a Saturday
    assert [t.weekday() for t in times] == [0, 0, 0]
    assert times[0] == _utc(2026, 11, 30, 9)


def test_day_of_month_or_day_of_week_as_in_crontab():
    # "0 0 13 * 5": the 13th of the month, and every Friday
    t = triggers.cron_trigger("0 0 13 * 5", "UTC")
    times = triggers.next_fire_times(t, 4, after=_utc(2026, 12, 1))
    assert [x.day for x in times] == [4, 11, 13, 18]


def test_next_five_fire_times_in_the_schedules_time_zone_across_dst():
    t = triggers.cron_trigger("30 2 * * *", "Europe/Paris")
    times = triggers.next_fire_times(t, 5, after=_utc(2026, 3, 27))
    assert len(times) == 5
    assert all(x.tzinfo.key == "Europe/Paris" for x in times)
    # 2026-03-29 02:30 does not exist in Paris (clocks jump 02:00 -> 03:00): UTC offsets change around it
    assert {x.utcoffset().total_seconds() for x in times} == {3600, 7200}


@pytest.mark.parametrize("cron,message", [
    ("0 9 * *", "expected 5 fields"),
    ("61 * * * *", "61"),
    ("* * * * 9", "day of week '9'"),
    ("0 25 * * *", "25"),
    ("", "empty"),
])
def test_bad_cron_says_what_is_wrong(cron, message):
    with pytest.raises(ScheduleError, match=message):
        triggers.cron_trigger(cron, "UTC")


def test_bad_time_zone_says_what_is_wrong():
    with pytest.raises(ScheduleError, match="unknown time zone 'Mars/Olympus'"):
        triggers.cron_trigger("0 9 * * *", "Mars/Olympus")


def test_seconds_only_below_a_minute_of_minimum_interval(monkeypatch):
    monkeypatch.setenv("ALERTLAB_SCHEDULER_MIN_INTERVAL", "60")
    with pytest.raises(ScheduleError, match="expected 5 fields"):
        triggers.cron_trigger("*/5 * * * * *", "UTC")
    monkeypatch.setenv("ALERTLAB_SCHEDULER_MIN_INTERVAL", "1")
    t = triggers.cron_trigger("*/5 * * * * *", "UTC")
    times = triggers.next_fire_times(t, 3, after=_utc(2026, 1, 1, 0, 0, 1))
    assert [x.second for x in times] == [5, 10, 15]


def test_cron_firing_more_often_than_the_minimum_is_refused(monkeypatch):
    monkeypatch.setenv("ALERTLAB_SCHEDULER_MIN_INTERVAL", "300")
    with pytest.raises(ScheduleError, match="fires every 60s; the shortest allowed interval is 300s"):
        triggers.check_min_interval(triggers.cron_trigger("* * * * *", "UTC"), "* * * * *")
    triggers.check_min_interval(triggers.cron_trigger("*/5 * * * *", "UTC"), "*/5 * * * *")
    with pytest.raises(ScheduleError, match="never fires"):
        triggers.check_min_interval(triggers.cron_trigger("0 0 30 2 *", "UTC"), "0 0 30 2 *")


def test_interval_below_the_minimum_is_refused(monkeypatch):
    monkeypatch.setenv("ALERTLAB_SCHEDULER_MIN_INTERVAL", "60")
    with pytest.raises(ScheduleError, match="shortest allowed is 60s"):
        triggers.interval_trigger(10, _utc(2026, 1, 1))
    t = triggers.interval_trigger(3600, _utc(2026, 1, 1))
    assert triggers.next_fire_times(t, 2, after=_utc(2026, 1, 1)) == [_utc(2026, 1, 1, 1), _utc(2026, 1, 1, 2)]


@pytest.mark.parametrize("path,message", [
    ("../bob/x.ipynb", "leaves your home"),
    ("a/../../x.ipynb", "leaves your home"),
    ("/etc/x.ipynb", "relative to your home"),
    ("notes.txt", "not a .ipynb"),
    ("", "give the path"),
])
def test_notebook_paths_stay_in_the_home(path, message):
    with pytest.raises(ScheduleError, match=message):
        schedules.check_notebook(path)


def test_notebook_paths_are_normalised():
    assert schedules.check_notebook("~/work/nightly.ipynb") == "work/nightly.ipynb"
    assert schedules.check_notebook("./a//b.ipynb") == "a/b.ipynb"


@pytest.mark.parametrize("value,message", [
    ("{not json", "not JSON"),
    ("[1, 2]", "JSON object"),
    ({"1x": 1}, "not a Python variable name"),
    ({"class": 1}, "not a Python variable name"),
    ({"alertlab_run_id": 3}, "reserved"),
    ({"x": float("nan")}, "not JSON"),
])
def test_parameters_must_be_a_json_object_of_names(value, message):
    with pytest.raises(ScheduleError, match=message):
        schedules.check_parameters(value)


def test_parameters_as_json_text_or_dict():
    assert schedules.check_parameters('{"mag": 19.5, "bands": ["g", "r"]}') == {"mag": 19.5, "bands": ["g", "r"]}
    assert schedules.check_parameters(None) == {}


def test_webhooks_to_private_addresses_are_refused_unless_allowed(monkeypatch):
    monkeypatch.setenv("ALERTLAB_WEBHOOK_PRIVATE", "false")
    for url in ("http://127.0.0.1:8000/hub/api", "http://10.1.2.3/x", "http://[::1]/x", "http://169.254.169.254/"):
        with pytest.raises(ScheduleError, match="private address"):
            notify.check_webhook(url)
    with pytest.raises(ScheduleError, match="http:// or https://"):
        notify.check_webhook("file:///etc/passwd")
    assert notify.check_webhook("https://93.184.216.34/hook") == "https://93.184.216.34/hook"
    monkeypatch.setenv("ALERTLAB_WEBHOOK_PRIVATE", "true")
    assert notify.check_webhook("http://127.0.0.1:9/x") == "http://127.0.0.1:9/x"
