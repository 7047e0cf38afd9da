"""A user's JupyterHub groups as the hub has them *now*, for authorization.

The service caches what the hub says about a token for a minute
(``alertlab.api.auth.CACHE_SECONDS``), groups included. Sharing with a group
must end the moment someone leaves it, so ``alertlab.api.access`` asks afresh
each time it decides. It reads the hub's own tables (JupyterHub's ORM:
``users``, ``groups``, ``user_group_map``) in the hub's MariaDB database
($ALERTLAB_HUB_DB), where the hub commits a membership change before
answering the request that made it: one indexed query, about a millisecond,
where the hub's REST API takes tens of milliseconds under load. If that read
fails, it asks the REST API (GET /hub/api/users/{name}, as the `alertlab-cli`
service).

Without a hub on this machine (unit tests, a script using ``access`` directly)
the groups the token carried are used, and so they are when the hub cannot be
reached at all (logged: a stale answer is better than locking everyone out of
their own group's work)."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)
_lock = threading.Lock()
_api = None


def _hub_configured() -> bool:
    from alertlab.hub import control

    return bool(control.state().load().get("hub_port"))


def _api_client():
    global _api
    from alertlab.hub import control

    url = control.api_url()
    with _lock:
        if _api is None or _api.url != url.rstrip("/"):
            from alertlab.hub.hubapi import HubAPI

            _api = HubAPI(url=url, timeout=10)
        return _api


def _memberships(names: list[str]) -> dict[str, tuple[str, ...]]:
    """The groups of each of ``names`` that has any, from the hub's tables in one indexed query."""
    import sqlalchemy as sa
    from jupyterhub import orm

    from alertlab.core import db, settings

    query = (sa.select(orm.User.name, orm.Group.name)
             .join(orm.user_group_map, orm.user_group_map.c.user_id == orm.User.id)
             .join(orm.Group, orm.Group.id == orm.user_group_map.c.group_id)
             .where(orm.User.name.in_(names)))
    found: dict[str, list[str]] = {}
    with db.engine(settings.get("ALERTLAB_HUB_DB")).connect() as conn:
        for user, group in conn.execute(query):
            found.setdefault(user, []).append(group)
    return {user: tuple(sorted(groups)) for user, groups in found.items()}


def _from_database(name: str) -> tuple[str, ...]:
    return _memberships([name]).get(name, ())


def _from_api(name: str) -> tuple[str, ...] | None:
    model = _api_client().user(name)
    return None if model is None else tuple(sorted(model.get("groups") or ()))


def lookup(name: str) -> tuple[str, ...] | None:
    """The groups of hub user ``name`` now; None when no hub runs here or it cannot be reached."""
    if not _hub_configured():
        return None
    try:
        return _from_database(name)
    except Exception as exc:  # noqa: BLE001 - e.g. the hub's database is elsewhere: ask its API
        log.debug("hub database not readable (%s); asking the hub's API", exc)
    try:
        return _from_api(name) or ()
    except Exception as exc:  # noqa: BLE001
        log.warning("could not ask the hub for %s's groups: %s", name, exc)
        return None


def current(user) -> tuple[str, ...]:
    """The groups of ``user`` (an ``alertlab.api.auth.HubUser``) according to the hub at this moment."""
    if getattr(user, "kind", "user") != "user":
        return tuple(user.groups)
    found = lookup(user.name)
    return tuple(user.groups) if found is None else found


def of_name(name: str) -> tuple[str, ...]:
    """The groups of the hub user called ``name`` now (() when unknown or without a hub)."""
    return lookup(name) or ()


def of_names(names) -> dict[str, tuple[str, ...]]:
    """The groups of many hub users now, in one query (the ingest asks this for every filter owner);
    a name without groups, unknown to the hub, or asked without a hub here is absent."""
    names = sorted(set(names))
    if not names or not _hub_configured():
        return {}
    try:
        return _memberships(names)
    except Exception as exc:  # noqa: BLE001 - the hub's database is elsewhere: ask its API, name by name
        log.debug("hub database not readable (%s); asking the hub's API", exc)
        return {name: groups for name in names if (groups := of_name(name))}
