"""The account a run executes as: the owner's own, the way their hub server runs.

As root, hub user ``alice`` runs as the unix account ``alertlab-alice`` in
/home/alertlab-alice (created if missing, exactly as the hub's spawner does, by
``alertlab.hub.unixusers.ensure``), with the interpreter every account can
run (``alertlab.hub.runtime.user_python``). Otherwise every run executes as
this process's account in $ALERTLAB_HOME/hub/users/<name> (the hub's
non-isolated layout), and the run record says users are not isolated."""

from __future__ import annotations

import functools
import getpass
import os
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunAccount:
    owner: str
    user: str              # the unix account name
    uid: int | None        # None: this process's own account
    gid: int | None
    groups: tuple[int, ...]
    home: Path
    python: str
    isolated: bool

    @property
    def note(self) -> str | None:
        if self.isolated:
            return None
        return f"the scheduler is not running as root: the notebook ran as {self.user}, not as {self.owner}'s own account"


def isolated() -> bool:
    return os.geteuid() == 0


@functools.lru_cache(maxsize=1)
def _user_python() -> str:
    from alertlab.hub import runtime

    return runtime.user_python()


def for_owner(owner: str) -> RunAccount:
    """The owner's account (created if missing when root)."""
    if isolated():
        from alertlab.hub import unixusers

        pw = unixusers.ensure(owner)
        groups = tuple(os.getgrouplist(pw.pw_name, pw.pw_gid))
        return RunAccount(owner, pw.pw_name, pw.pw_uid, pw.pw_gid, groups, Path(pw.pw_dir), _user_python(), True)
    from alertlab.hub.spawner import shared_home

    home = Path(shared_home(owner))
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return RunAccount(owner, getpass.getuser(), None, None, (), home, sys.executable, False)


def notebook_path(account: RunAccount, notebook: str) -> Path:
    """The notebook's absolute path in the owner's home (the path was checked when the schedule was made)."""
    return account.home / notebook
