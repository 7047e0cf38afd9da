"""A filter's dry run: how many objects of the last N days it would have
matched, night by night, and how long that took; and the rule that refuses a
filter matching too much (as BOOM does).

The days are those before the latest object's ``lastmjd`` (the data's "now",
so it works on replayed data too), and an object belongs to the night of its
``lastmjd`` (``FLOOR(lastmjd)``). The condition runs over the whole
``objects`` table there, where the ingest runs it on each batch's objects: a
filter whose subquery reads ``objects`` (``ndet = (SELECT MAX(ndet) FROM
objects)``) means something else in the dry run.

The rule: the filter is refused when it matches more than
``$ALERTLAB_FILTER_MAX_NIGHT_SHARE`` of a night's objects, judged on the
nights with at least MIN_NIGHT_OBJECTS objects (or on the whole window when
no night has that many)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from alertlab.api import hits
from alertlab.api.auth import HubUser
from alertlab.api.readonly import run_select
from alertlab.api.sqlguard import check_filter_where, check_select
from alertlab.core import db, settings

MIN_NIGHT_OBJECTS = 100
MAX_DAYS = 60.0


@dataclass
class Night:
    night: int       # FLOOR(lastmjd)
    objects: int
    matches: int

    @property
    def share(self) -> float:
        return self.matches / self.objects if self.objects else 0.0


@dataclass
class DryRun:
    days: float
    since_mjd: float | None
    until_mjd: float | None
    objects: int
    matches: int
    max_share: float
    limit_share: float
    allowed: bool
    reason: str | None
    seconds: float
    nights: list[Night] = field(default_factory=list)
    sample: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["nights"] = [{**asdict(n), "share": n.share} for n in self.nights]
        return d


def judge(nights: list[Night], limit: float) -> tuple[float, str | None]:
    """(the share the rule looks at, the reason to refuse or None)."""
    judged = [n for n in nights if n.objects >= MIN_NIGHT_OBJECTS]
    if not judged:
        total = Night(-1, sum(n.objects for n in nights), sum(n.matches for n in nights))
        if not total.objects:
            return 0.0, None
        judged = [total]
    worst = max(judged, key=lambda n: n.share)
    if worst.share <= limit:
        return worst.share, None
    where = f"night {worst.night} (MJD)" if worst.night >= 0 else "the window"
    return worst.share, (f"the filter matches {worst.share:.1%} of the objects of {where} ({worst.matches:,} of "
                         f"{worst.objects:,}); at most {limit:.1%} is allowed: make it more selective")


def dry_run(where_sql: str, user: HubUser, days: float | None = None) -> DryRun:
    """Evaluate the filter over the last ``days`` days of data. Raises RejectedQuery (the guard or
    the server refused it) or QueryTimeout."""
    days = float(days if days is not None else settings.get("ALERTLAB_FILTER_DRYRUN_DAYS"))
    limit = settings.get("ALERTLAB_FILTER_MAX_NIGHT_SHARE")
    max_seconds = settings.get("ALERTLAB_FILTER_DRYRUN_SECONDS")
    condition = check_filter_where(where_sql)
    started = time.monotonic()
    with db.engine("alerts", reader=True).connect() as conn:
        until = conn.exec_driver_sql("SELECT MAX(lastmjd) FROM objects").scalar()
    if until is None:
        return DryRun(days, None, None, 0, 0, 0.0, limit, True, None, time.monotonic() - started)
    since = float(until) - days
    restrict = hits.extra_filters(user)
    counts = check_select(
        f"SELECT FLOOR(lastmjd) AS night, COUNT(*) AS n, SUM(CASE WHEN ({condition}) THEN 1 ELSE 0 END) AS m "
        f"FROM objects WHERE lastmjd >= {since!r} GROUP BY FLOOR(lastmjd) ORDER BY night", extra_filters=restrict)
    result = run_select(counts, limit=100_000, max_seconds=max_seconds)
    nights = [Night(int(night), int(n), int(m or 0)) for night, n, m in result.rows]
    sample = check_select(f"SELECT objectId FROM objects WHERE lastmjd >= {since!r} AND ({condition}) "
                          "ORDER BY lastmjd DESC", extra_filters=restrict)
    remaining = max(1.0, max_seconds - (time.monotonic() - started))
    ids = [r[0] for r in run_select(sample, limit=10, max_seconds=remaining).rows]
    share, reason = judge(nights, limit)
    return DryRun(days, since, float(until), sum(n.objects for n in nights), sum(n.matches for n in nights), share,
                  limit, reason is None, reason, time.monotonic() - started, nights, ids)
