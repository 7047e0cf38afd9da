"""The demo's part of the hub: an admin, alice and bob in the group demo-team
(alice is its group admin), with generated passwords kept in
$ALERTLAB_HOME/secrets.json so that re-running the demo keeps them."""

from __future__ import annotations

from alertlab.core import secrets
from alertlab.hub import auth, control, groupadmins

GROUP = "demo-team"
USERS = ("alice", "bob")
GROUP_ADMIN = "alice"


def password(name: str) -> str:
    return secrets.get(f"hub_password_{name}", 12)


def up() -> str:
    """Start the hub (restarting it if the demo's group admin was not configured yet); its URL."""
    if GROUP_ADMIN not in groupadmins.load().get(GROUP, []):
        groupadmins.set_admin(GROUP, GROUP_ADMIN)
        if control.state().running():
            control.restart()
    return control.up()["url"]


def ensure_users() -> list[str]:
    """The demo's accounts; lines telling how to log in."""
    from alertlab.hub import accounts

    admin = sorted(auth.admins())[0] if auth.admins() else "admin"
    accounts.ensure_user(admin, password(admin), email=f"{admin}@example.org", admin=True)
    for name in USERS:
        accounts.ensure_user(name, password(name), email=f"{name}@example.org", groups=[GROUP])
    url = control.public_url()
    width = max(len(n) for n in (admin, *USERS))
    roles = {admin: "hub admin (approves sign-ups at /hub/authorize)",
             GROUP_ADMIN: f"{GROUP}, and its group admin"}
    lines = ["", f"JupyterHub: {url}  (generated passwords are kept in $ALERTLAB_HOME/secrets.json)"]
    for name in (admin, *USERS):
        lines.append(f"  {name:<{width}} / {password(name)}   {roles.get(name, GROUP)}")
    lines += [f"A token for scripts: log in, make one at {url}hub/token, then",
              f'  curl -H "Authorization: token <token>" {control.service_url()}api/v1/whoami']
    return lines
