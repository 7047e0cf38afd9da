"""The one authorization rule for everything users can share.

nbgallery's rule: a resource is readable by a user if it is public, owned by
the user, shared with one of the user's JupyterHub groups, shared with the
user by name, or the user is an admin. Each share gives a role:

- ``viewer``: read it (and its hits, its matches);
- ``editor``: also change it (rename, add cones, change a filter's SQL);
- the owner (and an admin) also deletes it and decides who it is shared with.

"Public" is a share with ``all`` (every logged-in user), as a viewer only.

Shares live in the application database (table ``shares``), keyed by the
resource's kind (``watchlist``, ``area``, ``filter``; later ``notebook``,
``dashboard``, ``schedule``) and id, so any kind of resource uses the same
rule: the route loads its resource, builds a ``Resource`` (kind, id, owner)
and calls ``check(user, resource, "read" | "edit" | "own")``, which returns the
caller's role or raises ``Forbidden`` (403). Listing uses ``shared_with(user,
kind)``. A user's groups come from the hub with the token (cached by the
service for at most a minute), so leaving a group ends its shares' access.

Additions of the sharing issue: a user's groups are asked of the hub afresh at
each decision (``alertlab.api.hubgroups``), so leaving a group ends its
shares' access at once, not within a minute; a share may be a *link*
(``create_link``: an unguessable secret, valid until it expires, giving
whoever holds it and is logged in the role ``viewer``; only its SHA-256 is
stored); and ``readable_sql`` is the same rule as SQL, for pages that list
thousands of resources (the gallery). Kinds: ``watchlist``, ``area``,
``filter``, ``notebook`` (a gallery entry, and its dashboard), ``schedule``
(and its runs' outputs).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from alertlab.api.auth import Forbidden, HubUser
from alertlab.core import db
from alertlab.core.errors import AlertLabError

VIEWER, EDITOR, OWNER, ADMIN = "viewer", "editor", "owner", "admin"
SHARE_ROLES = (VIEWER, EDITOR)
GRANTEE_KINDS = ("user", "group", "all")
LINK = "link"
MAX_LINK_SECONDS = 366 * 86400
_RANK = {None: 0, VIEWER: 1, EDITOR: 2, OWNER: 3, ADMIN: 4}
_NEEDS = {"read": VIEWER, "edit": EDITOR, "own": OWNER}
_VERBS = {"read": "see", "edit": "change", "own": "delete or share"}
_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,255}$")


class InvalidShare(AlertLabError):
    """A share that cannot be made (unknown role, empty name, ...)."""


@dataclass(frozen=True)
class Resource:
    kind: str    # watchlist, area, filter, ...
    id: str      # the resource's id, as text
    owner: str   # hub user name

    @classmethod
    def of(cls, kind: str, ident, owner: str) -> "Resource":
        return cls(kind, str(ident), owner)

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"


@dataclass(frozen=True)
class Share:
    grantee_kind: str  # user, group, all
    grantee: str       # user or group name; "" for all
    role: str          # viewer, editor
    created_by: str
    created: datetime


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _grantee_clause(user: HubUser, link: str | None = None, prefix: str = "") -> tuple[str, list]:
    """SQL (and parameters) matching the share rows that apply to ``user`` (and to the link they hold).
    The user's groups are the hub's of this moment (``hubgroups.current``), not the token's cached ones."""
    from alertlab.api import hubgroups

    p = prefix
    groups = hubgroups.current(user)
    parts, params = [f"{p}grantee_kind = 'all'", f"({p}grantee_kind = 'user' AND {p}grantee = %s)"], [user.name]
    if groups:
        parts.append(f"({p}grantee_kind = 'group' AND {p}grantee IN ({', '.join(['%s'] * len(groups))}))")
        params += list(groups)
    if link:
        parts.append(f"({p}grantee_kind = '{LINK}' AND {p}grantee = %s)")
        params.append(link_digest(link))
    return "(" + " OR ".join(parts) + f") AND ({p}expires IS NULL OR {p}expires > %s)", params + [_now()]


def link_digest(link: str) -> str:
    """What is stored of a link's secret: its SHA-256, so the table never holds a usable link."""
    return hashlib.sha256(link.encode()).hexdigest()


def _best(roles) -> str | None:
    return max(roles, key=lambda r: _RANK[r], default=None)


def role(user: HubUser, resource: Resource, link: str | None = None) -> str | None:
    """The caller's role on the resource: ``owner``, ``admin``, ``editor``, ``viewer`` or None.
    ``link``: the secret of a link share the caller presents (``?link=``)."""
    if user.name == resource.owner:
        return OWNER
    if user.admin:
        return ADMIN
    clause, params = _grantee_clause(user, link)
    with db.engine("app").connect() as conn:
        roles = conn.exec_driver_sql(
            f"SELECT DISTINCT role FROM shares WHERE resource_kind = %s AND resource_id = %s AND {clause}",
            (resource.kind, resource.id, *params)).scalars().all()
    return _best(roles)


def allows(role_: str | None, need: str) -> bool:
    """Whether a role (from ``role``) is enough for ``need``: read, edit or own."""
    return _RANK[role_] >= _RANK[_NEEDS[need]]


def check(user: HubUser, resource: Resource, need: str = "read", link: str | None = None) -> str:
    """The caller's role if it allows ``need`` (read, edit, own); Forbidden (403) otherwise."""
    if need not in _NEEDS:
        raise ValueError(f"need must be one of {sorted(_NEEDS)}")
    found = role(user, resource, link)
    if allows(found, need):
        return found
    if found is None:
        raise Forbidden(f"{resource} is not shared with you")
    raise Forbidden(f"you may not {_VERBS[need]} {resource}: you are a {found} of it"
                    + ("" if need != "own" else "; only its owner can"))


def shared_with(user: HubUser, kind: str) -> dict[str, str]:
    """The ids of the resources of ``kind`` shared with the user (directly, through a group or with
    everyone), each with the best role it has."""
    clause, params = _grantee_clause(user)
    with db.engine("app").connect() as conn:
        rows = conn.exec_driver_sql(
            f"SELECT resource_id, role FROM shares WHERE resource_kind = %s AND {clause}", (kind, *params)).all()
    best: dict[str, str] = {}
    for rid, r in rows:
        best[rid] = _best([best.get(rid), r])
    return best


def shared_with_each(kind: str, groups: dict[str, tuple[str, ...]], names) -> dict[str, set[str]]:
    """``shared_with``'s rule for many users at once (one query): per user name, the ids of the ``kind``
    resources shared with them by name, through one of their ``groups[name]``, or with everyone. Links
    are left out: they belong to whoever holds the secret, not to a user."""
    with db.engine("app").connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT resource_id, grantee_kind, grantee FROM shares WHERE resource_kind = %s "
            "AND grantee_kind IN ('user', 'group', 'all') AND (expires IS NULL OR expires > %s)",
            (kind, _now())).all()
    out: dict[str, set[str]] = {}
    for name in names:
        mine = set(groups.get(name, ()))
        out[name] = {rid for rid, gkind, grantee in rows
                     if gkind == "all" or (gkind == "user" and grantee == name) or (gkind == "group" and grantee in mine)}
    return out


def shares(resource: Resource) -> list[Share]:
    """Who the resource is shared with."""
    with db.engine("app").connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT grantee_kind, grantee, role, created_by, created FROM shares WHERE resource_kind = %s "
            "AND resource_id = %s AND grantee_kind IN ('user', 'group', 'all') "
            "ORDER BY FIELD(grantee_kind, 'all', 'group', 'user'), grantee",
            (resource.kind, resource.id)).all()
    return [Share(*row) for row in rows]


def grant(resource: Resource, grantee_kind: str, grantee: str | None, role_: str, by: str) -> Share:
    """Share the resource (or change an existing share's role). InvalidShare for a share that makes no sense."""
    if grantee_kind not in GRANTEE_KINDS:
        raise InvalidShare(f"share with a user, a group or all, not {grantee_kind!r}")
    if role_ not in SHARE_ROLES:
        raise InvalidShare(f"the role must be viewer or editor, not {role_!r}")
    grantee = (grantee or "").strip()
    if grantee_kind == "all":
        if grantee:
            raise InvalidShare("a share with all logged-in users names no grantee")
        if role_ != VIEWER:
            raise InvalidShare("all logged-in users can only be viewers; share with a group to let others edit")
    elif not _NAME.match(grantee):
        raise InvalidShare(f"name the {grantee_kind} to share with (1 to 255 characters)")
    elif grantee_kind == "user" and grantee == resource.owner:
        raise InvalidShare(f"{grantee} owns {resource} already")
    created = _now()
    with db.engine("app").begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO shares (resource_kind, resource_id, grantee_kind, grantee, role, created_by, created) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE role = VALUES(role), "
            "created_by = VALUES(created_by), created = VALUES(created), expires = NULL",
            (resource.kind, resource.id, grantee_kind, grantee, role_, by, created))
    return Share(grantee_kind, grantee, role_, by, created)


def revoke(resource: Resource, grantee_kind: str, grantee: str | None) -> bool:
    """Stop sharing with that grantee; False when there was no such share."""
    with db.engine("app").begin() as conn:
        result = conn.exec_driver_sql(
            "DELETE FROM shares WHERE resource_kind = %s AND resource_id = %s AND grantee_kind = %s AND grantee = %s",
            (resource.kind, resource.id, grantee_kind, (grantee or "").strip()))
    return result.rowcount > 0


def forget(kind: str, ident) -> None:
    """Remove every share of a deleted resource."""
    with db.engine("app").begin() as conn:
        conn.exec_driver_sql("DELETE FROM shares WHERE resource_kind = %s AND resource_id = %s", (kind, str(ident)))



def readable_sql(user: HubUser, kind: str, id_sql: str, owner_sql: str) -> tuple[str, list]:
    """The rule of ``role`` as a SQL condition (and its parameters) on rows whose id and owner are the
    expressions ``id_sql`` and ``owner_sql``: true for the rows ``user`` may read. The shares table
    must be reachable as ``shares`` from the query (same database). For pages listing many rows."""
    if user.admin:
        return "1 = 1", []
    clause, params = _grantee_clause(user, prefix="s.")
    return (f"({owner_sql} = %s OR EXISTS (SELECT 1 FROM shares s WHERE s.resource_kind = %s "
            f"AND s.resource_id = CAST({id_sql} AS CHAR CHARACTER SET utf8mb4) COLLATE utf8mb4_unicode_ci "
            f"AND {clause}))", [user.name, kind, *params])


@dataclass(frozen=True)
class Link:
    id: int
    role: str
    created_by: str
    created: datetime
    expires: datetime


def create_link(resource: Resource, by: str, seconds: float, role_: str = VIEWER) -> tuple[str, Link]:
    """A new link share: (its secret, to put in the URL as ``?link=``; the stored share). Whoever holds
    the secret and is logged in gets ``role_`` until it expires (at most a year)."""
    if role_ not in SHARE_ROLES:
        raise InvalidShare(f"the role must be viewer or editor, not {role_!r}")
    if not 0 < seconds <= MAX_LINK_SECONDS:
        raise InvalidShare(f"a link must expire within {MAX_LINK_SECONDS // 86400} days")
    from datetime import timedelta

    secret = secrets.token_urlsafe(24)
    created = _now()
    expires = created + timedelta(seconds=seconds)
    with db.engine("app").begin() as conn:
        lid = conn.exec_driver_sql(
            "INSERT INTO shares (resource_kind, resource_id, grantee_kind, grantee, role, expires, created_by, "
            "created) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (resource.kind, resource.id, LINK, link_digest(secret), role_, expires, by, created)).lastrowid
    return secret, Link(lid, role_, by, created, expires)


def links(resource: Resource) -> list[Link]:
    """The resource's link shares that have not expired (never their secrets)."""
    with db.engine("app").connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT id, role, created_by, created, expires FROM shares WHERE resource_kind = %s AND "
            "resource_id = %s AND grantee_kind = %s AND expires > %s ORDER BY created",
            (resource.kind, resource.id, LINK, _now())).all()
    return [Link(*row) for row in rows]


def revoke_link(resource: Resource, link_id: int) -> bool:
    """Stop a link share; False when the resource has no such link."""
    with db.engine("app").begin() as conn:
        result = conn.exec_driver_sql(
            "DELETE FROM shares WHERE id = %s AND resource_kind = %s AND resource_id = %s AND grantee_kind = %s",
            (int(link_id), resource.kind, resource.id, LINK))
    return result.rowcount > 0
