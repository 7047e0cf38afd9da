"""Scheduling notebooks from Python: the scheduler part of the API (docs/scheduler.md).

    al.schedule("nightly.ipynb", cron="0 9 * * *", parameters={"days": 1})
    al.schedule("followup.ipynb", on_filter=12, window=60)      # runs when alerts match filter 12
    al.runs()                                                  # a DataFrame of your runs
    al.never_again(12, "ZTF23abcdefg")                          # no more runs for this object's repeats
"""

from __future__ import annotations

from alertlab.client.api import Client
from alertlab.client.http import get_json, send, v1


def schedule(notebook: str, *, cron: str | None = None, timezone: str | None = None, interval: float | None = None,
             on_filter: int | None = None, on_watchlist: int | None = None, on_area: int | None = None,
             on_annotator: str | None = None, parameters: dict | None = None, client: Client | None = None,
             **options) -> dict:
    """Create a schedule for a notebook in your home; returns it, with its next five fire times.

    Exactly one trigger: ``cron`` (five fields, ``timezone``), ``interval`` (seconds), or one of
    ``on_filter``/``on_watchlist``/``on_area``/``on_annotator``. Other options: name, kernel, timeout,
    retries, memory_mb, window, max_runs_per_hour, repeat ('every', 'once', 'days'), repeat_days,
    notify_on, email, webhook, enabled."""
    body: dict = {"notebook": notebook, **options}
    for key, value in (("cron", cron), ("timezone", timezone), ("interval", interval), ("parameters", parameters)):
        if value is not None:
            body[key] = value
    sources = [(kind, ident) for kind, ident in (("filter", on_filter), ("watchlist", on_watchlist),
                                                 ("area", on_area), ("annotation", on_annotator))
               if ident is not None]
    if len(sources) > 1:
        raise ValueError("give one alert trigger: on_filter, on_watchlist, on_area or on_annotator")
    if sources:
        body["on"] = {"kind": sources[0][0], "id": sources[0][1]}
    return send("POST", v1("schedules"), client=client, json=body).json()


def schedules(notebook: str | None = None, *, client: Client | None = None) -> list[dict]:
    """Your schedules (optionally those of one notebook)."""
    params = {"notebook": notebook} if notebook else None
    return get_json(v1("schedules"), client=client, params=params)


def runs(schedule_id: int | None = None, *, status: str | None = None, limit: int = 100,
         client: Client | None = None):
    """Your runs, newest first, as a pandas DataFrame."""
    import pandas as pd

    params = {k: v for k, v in (("schedule_id", schedule_id), ("status", status), ("limit", limit)) if v is not None}
    data = get_json(v1("runs"), client=client, params=params)
    return pd.DataFrame(data.get("runs", data) if isinstance(data, dict) else data)


def run_output(run_id: int, format: str = "html", *, client: Client | None = None) -> bytes:  # noqa: A002
    """A run's executed notebook: its HTML, or the .ipynb (``format='ipynb'``)."""
    return send("GET", v1(f"runs/{run_id}/output"), client=client, params={"format": format}).content


def never_again(filter_id: int, objectId: str, *, kind: str = "filter", note: str | None = None,
                client: Client | None = None) -> dict:
    """Suppress runs for this object's further matches of this filter (or watchlist/area: ``kind``)."""
    body = {"kind": kind, "id": filter_id, "objectId": objectId}
    if note:
        body["note"] = note
    return send("POST", v1("never-again"), client=client, json=body).json()
