"""Database engines for the two AlertLab databases and the two accounts.

- ``engine("alerts")``: the alert data, as the writer (ingest, services).
- ``engine("app")``: application state (schedules, runs, shares), as the writer.
- ``engine("alerts", reader=True)``: the read-only account, for user SQL.

URLs come from ALERTLAB_DB_URL / ALERTLAB_DB_READER_URL, or from the private
MariaDB that `alertlab services up` started. Engines are made on first use and
cached per URL, so settings are read lazily."""

from __future__ import annotations

import threading

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from alertlab.core import settings
from alertlab.core.errors import ConfigError

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def database_name(database: str) -> str:
    if database == "alerts":
        return settings.get("ALERTLAB_ALERTS_DB")
    if database == "app":
        return settings.get("ALERTLAB_APP_DB")
    return database


def server_url(reader: bool = False) -> URL:
    """The account's URL without a database part."""
    raw = settings.get("ALERTLAB_DB_READER_URL" if reader else "ALERTLAB_DB_URL")
    if not raw:
        from alertlab.core.services import mariadb
        from alertlab.core.services.process import ServiceState

        if not ServiceState(mariadb.NAME).load().get("port"):
            raise ConfigError("no database: set ALERTLAB_DB_URL or run `alertlab services up` first")
        raw = mariadb.url(mariadb.READER if reader else mariadb.WRITER)
    url = make_url(raw)
    if not url.drivername.startswith("mysql") and not url.drivername.startswith("mariadb"):
        raise ConfigError(f"ALERTLAB_DB_URL must be a MariaDB/MySQL URL, not {url.drivername}")
    return url.set(database=None)


def url(database: str, reader: bool = False) -> URL:
    return server_url(reader).set(database=database_name(database))


def engine(database: str, reader: bool = False, **kwargs) -> Engine:
    return _cached(url(database, reader), kwargs)


def engine_like(other: Engine, **kwargs) -> Engine:
    """An engine on ``other``'s database with other options (cached like ``engine``)."""
    return _cached(other.url, kwargs)


def _cached(u, kwargs: dict) -> Engine:
    key = u.render_as_string(hide_password=False) + repr(sorted(kwargs.items()))
    with _lock:
        if key not in _engines:
            opts = dict(pool_pre_ping=True, pool_recycle=3600, pool_size=10, max_overflow=20)
            opts.update(kwargs)
            _engines[key] = sa.create_engine(u, **opts)
        return _engines[key]


def dispose_all() -> None:
    with _lock:
        for eng in _engines.values():
            eng.dispose()
        _engines.clear()
