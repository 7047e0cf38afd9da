"""User classes and what each may spend: the API's quotas in one place.

Three classes, as in the seed system's throttling:

- ``anonymous``: a caller without a valid token. It can read the OpenAPI
  document and the docs page and nothing else; its requests (401s included)
  are counted per address, so guessing tokens is throttled too.
- ``user``: any hub user.
- ``power``: a member of the hub group ``$ALERTLAB_POWER_GROUP``
  (``power-users``), or a hub admin. An admin grants it by adding the user to
  that group (the hub's admin page or REST API; ``alertlab hub adduser NAME --group
  power-users`` for a new account).

Settings are read on every call (they are cheap), so a test or an admin
changes them without restarting anything but the process that reads them."""

from __future__ import annotations

from dataclasses import dataclass

from alertlab.core import settings

ANONYMOUS, USER, POWER = "anonymous", "user", "power"

SERVICE_SETTINGS = (
    "ALERTLAB_MATCHES_TOPIC", "ALERTLAB_POWER_GROUP", "ALERTLAB_RATE_ANONYMOUS", "ALERTLAB_RATE_USER",
    "ALERTLAB_RATE_POWER", "ALERTLAB_QUERY_ROWS_USER", "ALERTLAB_QUERY_ROWS_POWER", "ALERTLAB_QUERY_SECONDS",
    "ALERTLAB_QUERY_CONCURRENCY", "ALERTLAB_QUERY_CONCURRENCY_POWER", "ALERTLAB_JOB_ROWS_USER",
    "ALERTLAB_JOB_ROWS_POWER", "ALERTLAB_JOB_SECONDS", "ALERTLAB_JOB_SECONDS_POWER", "ALERTLAB_JOBS_PER_USER",
    "ALERTLAB_JOB_WORKERS", "ALERTLAB_JOB_KEEP_DAYS", "ALERTLAB_FILTER_MAX_NIGHT_SHARE",
    "ALERTLAB_FILTER_DRYRUN_DAYS", "ALERTLAB_FILTER_DRYRUN_SECONDS",
)
"""The settings the `alertlab` service reads besides the databases': the hub passes them on to it
when they are set where the hub starts (hub/config.py)."""


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int
    query_rows: int          # synchronous query: most rows returned
    query_seconds: float     # synchronous query: time limit
    concurrent_queries: int  # synchronous queries running at once
    job_rows: int            # asynchronous query: most rows stored
    job_seconds: float       # asynchronous query: time limit
    unfinished_jobs: int     # asynchronous queries queued or running at once


def user_class(user) -> str:
    """``anonymous`` (None), ``power`` (admin or in the power group) or ``user``."""
    if user is None:
        return ANONYMOUS
    if user.admin or settings.get("ALERTLAB_POWER_GROUP") in user.groups:
        return POWER
    return USER


def limits(klass: str) -> Limits:
    get = settings.get
    if klass == ANONYMOUS:
        return Limits(get("ALERTLAB_RATE_ANONYMOUS"), 0, 0.0, 0, 0, 0.0, 0)
    power = klass == POWER
    return Limits(
        requests_per_minute=get("ALERTLAB_RATE_POWER" if power else "ALERTLAB_RATE_USER"),
        query_rows=get("ALERTLAB_QUERY_ROWS_POWER" if power else "ALERTLAB_QUERY_ROWS_USER"),
        query_seconds=get("ALERTLAB_QUERY_SECONDS"),
        concurrent_queries=get("ALERTLAB_QUERY_CONCURRENCY_POWER" if power else "ALERTLAB_QUERY_CONCURRENCY"),
        job_rows=get("ALERTLAB_JOB_ROWS_POWER" if power else "ALERTLAB_JOB_ROWS_USER"),
        job_seconds=get("ALERTLAB_JOB_SECONDS_POWER" if power else "ALERTLAB_JOB_SECONDS"),
        unfinished_jobs=get("ALERTLAB_JOBS_PER_USER"),
    )


def limits_of(user) -> Limits:
    return limits(user_class(user))
