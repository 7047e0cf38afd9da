"""`alertlab.client`: the Python client of the AlertLab API, for notebooks and laptops.

    import alertlab.client as al
    al.query("SELECT objectId, ndet FROM objects LIMIT 5")   # a pandas DataFrame

Inside the hub this needs no password (the server's own token is used); elsewhere
set ALERTLAB_URL and ALERTLAB_TOKEN (a token from the hub's token page)."""

from __future__ import annotations

from alertlab.client.api import APIError, Client, TruncatedResult, default_client

__all__ = ["APIError", "Client", "TruncatedResult", "query", "whoami"]


def query(sql: str, *, limit: int | None = None, offset: int = 0):
    """Run one SELECT over the alert database and return a pandas DataFrame."""
    return default_client().query(sql, limit=limit, offset=offset)


def whoami() -> dict:
    """The hub user the token belongs to: {name, kind, admin, groups, scopes}."""
    return default_client().whoami()
