"""Group admins: users who may add and remove the members of one group.

JupyterHub grants that with a role holding the scope ``groups!group=<group>``;
roles are defined in the hub's configuration, so the list of group admins is kept
in $ALERTLAB_HOME/hub/group_admins.json ({group: [user, ...]}) and turned into
one role per group when the hub starts (`alertlab hub group-admin` edits it and
restarts the hub, which keeps users' servers running)."""

from __future__ import annotations

import hashlib
import json
import re

from alertlab.core import settings


def _path():
    return settings.home() / "hub" / "group_admins.json"


def load() -> dict[str, list[str]]:
    path = _path()
    return json.loads(path.read_text()) if path.exists() else {}


def set_admin(group: str, user: str, admin: bool = True) -> dict[str, list[str]]:
    """Make ``user`` an admin of ``group`` (or not); returns the new table."""
    table = load()
    members = set(table.get(group, []))
    members = members | {user} if admin else members - {user}
    if members:
        table[group] = sorted(members)
    else:
        table.pop(group, None)
    path = _path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(table, indent=1, sort_keys=True))
    return table


def role_name(group: str) -> str:
    """A valid JupyterHub role name for the admins of ``group``."""
    slug = re.sub(r"[^a-z0-9]+", "-", group.lower()).strip("-")[:40] or "group"
    if slug == group:
        return f"group-admins-{slug}"
    return f"group-admins-{slug}-{hashlib.sha256(group.encode()).hexdigest()[:6]}"


def roles(table: dict[str, list[str]] | None = None) -> list[dict]:
    """One JupyterHub role per group: manage its members, and see user names to add them by."""
    table = load() if table is None else table
    return [
        {
            "name": role_name(group),
            "description": f"Admins of the group {group}: add and remove its members",
            "scopes": [f"groups!group={group}", "list:users", "read:users:name"],
            "users": users,
        }
        for group, users in sorted(table.items())
    ]
