"""Loading a shareable resource's row (a watchlist, an area, a filter) for a
caller: 404 when there is no such row, 403 when ``alertlab.api.access`` says
the caller may not do what they ask."""

from __future__ import annotations

from fastapi import HTTPException

from alertlab.api import access
from alertlab.api.auth import HubUser
from alertlab.core import db

MAX_ID = 2**31 - 1  # the resource tables' INT keys


def load(kind: str, table: str, columns: list[str], ident: int) -> dict | None:
    with db.engine("alerts").connect() as conn:
        result = conn.exec_driver_sql(f"SELECT {', '.join(columns)} FROM {table} WHERE id = %s", (int(ident),))
        row = result.mappings().first()
    return dict(row) if row is not None else None


def checked(user: HubUser, kind: str, table: str, columns: list[str], ident: int, need: str) -> tuple[dict, str]:
    """(the row, the caller's role) or HTTPException 404 / Forbidden 403."""
    row = load(kind, table, columns, ident)
    if row is None:
        raise HTTPException(404, f"there is no {kind} {ident}")
    role = access.check(user, access.Resource.of(kind, row["id"], row["owner"]), need)
    return row, role


def readable(user: HubUser, kind: str, table: str, columns: list[str], order: str = "id") -> list[dict]:
    """The rows of ``table`` the user may read, each with the user's ``role``."""
    shared = {} if user.admin else access.shared_with(user, kind)
    if user.admin:
        condition, params = "1 = 1", []
    elif shared:
        condition = f"(owner = %s OR id IN ({', '.join(['%s'] * len(shared))}))"
        params = [user.name, *shared]
    else:
        condition, params = "owner = %s", [user.name]
    with db.engine("alerts").connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT {', '.join(columns)} FROM {table} WHERE {condition} ORDER BY {order}",
                                    tuple(params)).mappings().all()
    out = []
    for row in rows:
        row = dict(row)
        if row["owner"] == user.name:
            row["role"] = access.OWNER
        elif user.admin:
            row["role"] = access.ADMIN
        else:
            row["role"] = shared.get(str(row["id"]), access.VIEWER)
        out.append(row)
    return out
