"""Which watchlist and area hits a user may see: those of the watchlists and
areas the user may read (``alertlab.api.access``). Used by the object page and,
as ``sqlguard.check_select(extra_filters=...)``, by user SQL, so that
``watchlist_hits`` and ``area_hits`` only ever hold the caller's rows."""

from __future__ import annotations

from alertlab.api import access
from alertlab.api.auth import HubUser
from alertlab.core import db

# hit table -> (resource kind, resource table, the hit table's column naming the resource)
HIT_TABLES = {
    "watchlist_hits": ("watchlist", "watchlists", "watchlist_id"),
    "area_hits": ("area", "areas", "area_id"),
}


def visible_ids(user: HubUser, kind: str, table: str) -> list[int] | None:
    """Ids of the ``kind`` resources (rows of ``table``) the user may read; None: all of them (admin)."""
    if user.admin:
        return None
    shared = {int(i) for i in access.shared_with(user, kind) if i.isdigit()}
    with db.engine("alerts").connect() as conn:
        owned = conn.exec_driver_sql(f"SELECT id FROM {table} WHERE owner = %s", (user.name,)).scalars().all()
    return sorted(shared | {int(i) for i in owned})


def condition(column: str, ids: list[int] | None) -> str:
    """Trusted SQL: ``column IN (ids)``; ``1 = 1`` for None (everything), ``1 = 0`` for none."""
    if ids is None:
        return "1 = 1"
    if not ids:
        return "1 = 0"
    return f"{column} IN ({', '.join(str(int(i)) for i in ids)})"


def extra_filters(user: HubUser) -> dict[str, str]:
    """``check_select``'s extra_filters restricting both hit tables to the user's visible rows
    (empty for an admin, who sees all)."""
    if user.admin:
        return {}
    return {table: condition(column, visible_ids(user, kind, resources))
            for table, (kind, resources, column) in HIT_TABLES.items()}
