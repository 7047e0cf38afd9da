"""Who a published notebook is shown to, said in one argument, turned into
shares (``alertlab.api.access``): the same model as every other shareable.

Accepted forms of ``visibility``:

- ``"private"``: the owner (and admins) only; removes every share and link;
- ``"public"``: every logged-in user (a share with ``all``, as viewer);
- ``"group:NAME"`` / ``"group:NAME:editor"``, ``"user:NAME"`` / ``"user:NAME:editor"``;
- a list of those (e.g. ``["group:demo-team", "user:carol:editor"]``);
- a dict ``{"public": bool, "groups": {NAME: ROLE} | [NAME], "users": {NAME: ROLE} | [NAME]}``.

Applying a visibility replaces the entry's user, group and public shares;
link shares are kept unless the entry is made private."""

from __future__ import annotations

from dataclasses import dataclass

from alertlab.api import access
from alertlab.api.access import InvalidShare


@dataclass(frozen=True)
class Grant:
    grantee_kind: str  # user, group, all
    grantee: str
    role: str


def _grant(kind: str, name: str, role: str) -> Grant:
    if role not in access.SHARE_ROLES:
        raise InvalidShare(f"the role of {kind} {name!r} must be viewer or editor, not {role!r}")
    if not name or not name.strip():
        raise InvalidShare(f"name the {kind} to share with")
    return Grant(kind, name.strip(), role)


def _from_text(item: str) -> list[Grant]:
    text = item.strip()
    if text in ("private", ""):
        return []
    if text in ("public", "all", "everyone"):
        return [Grant("all", "", access.VIEWER)]
    kind, _, rest = text.partition(":")
    if kind not in ("group", "user") or not rest:
        raise InvalidShare(f"visibility {item!r} is not one of private, public, group:NAME[:editor], "
                           "user:NAME[:editor]")
    name, role = rest, access.VIEWER
    if rest.rsplit(":", 1)[-1] in access.SHARE_ROLES and ":" in rest:
        name, role = rest.rsplit(":", 1)
    return [_grant(kind, name, role)]


def _named(kind: str, value) -> list[Grant]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [_grant(kind, str(k), str(v)) for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        return [_grant(kind, str(k), access.VIEWER) for k in value]
    raise InvalidShare(f"{kind}s must be a list of names or a mapping name → role")


def parse(visibility) -> tuple[bool, list[Grant]]:
    """(private, the grants) of a visibility in any accepted form; InvalidShare when it makes no sense."""
    if isinstance(visibility, str):
        return visibility.strip() in ("private", ""), _from_text(visibility)
    if isinstance(visibility, (list, tuple)):
        grants = [g for item in visibility for g in _from_text(str(item))]
        return not grants, grants
    if isinstance(visibility, dict):
        unknown = set(visibility) - {"public", "groups", "users"}
        if unknown:
            raise InvalidShare(f"unknown visibility keys: {', '.join(sorted(unknown))} "
                               "(use public, groups, users)")
        grants = [Grant("all", "", access.VIEWER)] if visibility.get("public") else []
        grants += _named("group", visibility.get("groups")) + _named("user", visibility.get("users"))
        return not grants, grants
    raise InvalidShare("visibility must be 'private', 'public', 'group:NAME', 'user:NAME', a list of those, "
                       "or {'public':..., 'groups':..., 'users':...}")


def apply(resource: access.Resource, visibility, by: str) -> list[access.Share]:
    """Make the entry visible exactly as said; returns its shares afterwards."""
    private, grants = parse(visibility)
    for grant in grants:
        if grant.grantee_kind == "user" and grant.grantee == resource.owner:
            raise InvalidShare(f"{grant.grantee} owns this notebook already")
    for share in access.shares(resource):
        if not any((g.grantee_kind, g.grantee) == (share.grantee_kind, share.grantee) for g in grants):
            access.revoke(resource, share.grantee_kind, share.grantee)
    if private:
        for link in access.links(resource):
            access.revoke_link(resource, link.id)
    for grant in grants:
        access.grant(resource, grant.grantee_kind, grant.grantee, grant.role, by)
    return access.shares(resource)


def describe(shares: list[access.Share], links: int = 0) -> str:
    """A short phrase for pages: "private", "everyone", "demo-team, bob", plus links."""
    if any(s.grantee_kind == "all" for s in shares):
        text = "every logged-in user"
    else:
        names = [f"{s.grantee}" + (" (editor)" if s.role == access.EDITOR else "") for s in shares]
        text = ", ".join(names) if names else "private"
    if links:
        text += f" + {links} link{'s' if links > 1 else ''}"
    return text
