"""The spawner: each user's server runs as that user's own unix account.

When the hub runs as root, hub user ``alice`` runs as ``alertlab-alice`` in
/home/alertlab-alice (0700), so users cannot read each other's files. When it
does not (a developer's laptop), every server runs as the hub's own account in
$ALERTLAB_HOME/hub/users/<name>, and the log says users are not isolated."""

from __future__ import annotations

import asyncio
import getpass
import os

from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid

from alertlab.hub import unixusers


def isolated() -> bool:
    """Whether servers run as per-user accounts (only root can switch accounts)."""
    return os.geteuid() == 0


def shared_home(hub_name: str) -> str:
    from alertlab.core import settings

    return str(settings.home() / "hub" / "users" / hub_name)


class AlertLabSpawner(LocalProcessSpawner):
    """LocalProcessSpawner that creates the user's unix account on first spawn."""

    async def start(self):
        if isolated():
            await asyncio.to_thread(unixusers.ensure, self.user.name)
        else:
            os.makedirs(shared_home(self.user.name), mode=0o700, exist_ok=True)
            self.log.warning("the hub is not running as root: %s's server runs as the shared account %s in %s; "
                             "users are not isolated from each other", self.user.name, getpass.getuser(),
                             shared_home(self.user.name))
        return await super().start()

    def make_preexec_fn(self, name):
        if isolated():
            return set_user_setuid(unixusers.unix_name(name))
        home = shared_home(name)
        return lambda: os.chdir(home)

    def user_env(self, env):
        if isolated():
            import pwd

            pw = pwd.getpwnam(unixusers.unix_name(self.user.name))
            env.update(USER=pw.pw_name, HOME=pw.pw_dir, SHELL=pw.pw_shell or "/bin/bash")
        else:
            env.update(USER=getpass.getuser(), HOME=shared_home(self.user.name), SHELL="/bin/bash")
        return env
