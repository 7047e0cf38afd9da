"""Small helpers shared by the scheduler's modules for the `alertlab` app
database: the engine, the clock (naive UTC, as stored) and row conversion."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import sqlalchemy as sa

from alertlab.core import db


def engine() -> sa.Engine:
    return db.engine("app")


def utcnow() -> datetime:
    """Now, as stored: UTC without a zone, to the microsecond."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def aware(t: datetime | None) -> datetime | None:
    """A stored (naive UTC) time as an aware datetime."""
    if t is None:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def naive(t: datetime) -> datetime:
    """Any datetime as stored: UTC without a zone."""
    if t.tzinfo is not None:
        t = t.astimezone(timezone.utc).replace(tzinfo=None)
    return t


def rows(conn, sql: str, **params) -> list[dict]:
    return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]


def row(conn, sql: str, **params) -> dict | None:
    r = conn.execute(sa.text(sql), params).first()
    return dict(r._mapping) if r is not None else None


def execute(conn, sql: str, many: list[dict] | None = None, **params):
    """One statement with named parameters, or once per dict of ``many`` (executemany)."""
    return conn.execute(sa.text(sql), many if many is not None else params)


def dumps(value) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))


def iso(t: datetime | None) -> str | None:
    t = aware(t)
    return t.isoformat() if t else None
