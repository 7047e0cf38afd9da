"""`alertlab.client`: the Python client of the AlertLab API, for notebooks and laptops.

    import alertlab.client as al
    al.query("SELECT objectId, ndet FROM objects LIMIT 5")   # a pandas DataFrame
    al.cone(150.1, 2.2, 30); al.object("ZTF23abcdefg").lightcurve
    al.create_watchlist("mine", cones="cones.csv"); al.create_filter("bright", "latest_mag < 16")
    for event in al.matches(filter_id): ...                   # see docs/api.md

Inside the hub this needs no password (the server's own token is used); elsewhere
set ALERTLAB_URL and ALERTLAB_TOKEN (a token from the hub's token page)."""

from __future__ import annotations

from alertlab.client.api import APIError, Client, TruncatedResult, default_client

from alertlab.client.data import AlertObject, Job, cone, jobs, object, query_async  # noqa: A004
from alertlab.client.resources import (Area, Filter, Watchlist, annotate, annotate_many, area, areas, create_area,
                                       create_filter, create_watchlist, dry_run, filter, filters, matches,  # noqa: A004
                                       watchlist, watchlists)
from alertlab.client.schedules import never_again, run_output, runs, schedule, schedules
from alertlab.client.gallery import gallery, publish, share, share_link

__all__ = ["APIError", "Client", "TruncatedResult", "query", "whoami",
           # the alert data API (docs/api.md)
           "cone", "object", "AlertObject", "query_async", "jobs", "Job",
           "watchlists", "watchlist", "create_watchlist", "Watchlist",
           "areas", "area", "create_area", "Area",
           "filters", "filter", "create_filter", "dry_run", "Filter", "matches",
           "annotate", "annotate_many",
           # the scheduler (docs/scheduler.md)
           "schedule", "schedules", "runs", "run_output", "never_again",
           # the gallery (docs/sharing.md)
           "publish", "gallery", "share", "share_link"]


def query(sql: str, *, limit: int | None = None, offset: int = 0):
    """Run one SELECT over the alert database and return a pandas DataFrame."""
    return default_client().query(sql, limit=limit, offset=offset)


def whoami() -> dict:
    """The hub user the token belongs to: {name, kind, admin, groups, scopes}."""
    return default_client().whoami()
