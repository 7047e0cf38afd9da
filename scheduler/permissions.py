"""Who may do what with schedules, in one place.

- ``check_alert_source``: may this user trigger runs on (and mark "never
  again" for) this filter, watchlist, area or annotator? Its owner, an
  administrator, or anyone it is shared with (``alertlab.api.access``);
  annotators are public.
- ``can_see``: schedules, runs, outputs and notifications are their owner's only.
"""

from __future__ import annotations

from alertlab.core import db, settings
from alertlab.scheduler.errors import ScheduleError, ScheduleForbidden

ALERT_KINDS = ("filter", "watchlist", "area", "annotation")
_TABLES = {"filter": "filters", "watchlist": "watchlists", "area": "areas"}


def is_admin(user: str, admin: bool | None = None) -> bool:
    """``admin`` when the caller knows it (the hub's flag), else the ALERTLAB_HUB_ADMINS list."""
    if admin is not None:
        return bool(admin)
    admins = {a.strip() for a in settings.get("ALERTLAB_HUB_ADMINS").split(",") if a.strip()}
    return user in admins


def normalise_source(kind: str, ident) -> tuple[str, str]:
    """(kind, id as stored) for an alert source; ScheduleError when malformed."""
    if kind not in ALERT_KINDS:
        raise ScheduleError(f"bad alert trigger kind {kind!r}: one of {', '.join(ALERT_KINDS)}")
    text = str(ident).strip() if ident is not None else ""
    if not text:
        raise ScheduleError(f"an alert trigger on a {kind} needs its id")
    if kind != "annotation":
        if not text.isdigit():
            raise ScheduleError(f"bad {kind} id {ident!r}: a number")
        text = str(int(text))
    elif len(text) > 255:
        raise ScheduleError("bad annotator name: longer than 255 characters")
    return kind, text


def check_alert_source(user: str, kind: str, ident, admin: bool | None = None) -> tuple[str, str]:
    """(kind, id) if ``user`` may trigger on this source; ScheduleError if it does not exist,
    ScheduleForbidden if it is someone else's."""
    kind, ident = normalise_source(kind, ident)
    if kind == "annotation":
        return kind, ident  # annotations are public: anyone may run a notebook when one arrives
    with db.engine("alerts").connect() as conn:
        row = conn.exec_driver_sql(f"SELECT owner FROM {_TABLES[kind]} WHERE id = %s", (int(ident),)).first()
    if row is None:
        raise ScheduleError(f"no {kind} with id {ident}")
    if row[0] != user and not is_admin(user, admin) and not _shared_with(user, kind, ident, row[0]):
        raise ScheduleForbidden(f"{kind} {ident} belongs to someone else: you may schedule on your own "
                                f"{kind}s (or ones shared with you)")
    return kind, ident


def _shared_with(user: str, kind: str, ident: str, owner: str) -> bool:
    """Whether the source is shared with ``user`` (as viewer or editor): alertlab.api.access decides,
    with the user's groups as the hub has them now."""
    from alertlab.api import access
    from alertlab.api.auth import HubUser

    return access.role(HubUser(name=user), access.Resource.of(kind, ident, owner)) is not None


def can_see(user: str, owner: str) -> bool:
    """Whether ``user`` may see (and change) a schedule, run, output or notification of ``owner``."""
    return user == owner
