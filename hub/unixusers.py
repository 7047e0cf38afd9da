"""Real unix accounts for hub users, the way The Littlest JupyterHub makes them.

Hub user ``alice`` gets the account ``alertlab-alice`` (home
/home/alertlab-alice, mode 0700, in the group ``alertlab-users``), created the
first time her server starts. Names that are not valid unix names, or too long,
get a readable slug plus a short hash, so two hub users never share an account."""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import subprocess
import threading
import time

from alertlab.core.errors import AlertLabError

PREFIX = "alertlab-"
GROUP = "alertlab-users"
MAX_LEN = 32  # useradd's limit
_VALID = re.compile(r"[a-z0-9_][a-z0-9_-]*")
_lock = threading.Lock()  # useradd takes a lock on /etc/passwd; concurrent calls fail, so take turns


class AccountError(AlertLabError):
    """A unix account could not be created."""


def unix_name(hub_name: str) -> str:
    """The unix account of a hub user."""
    if _VALID.fullmatch(hub_name) and len(PREFIX) + len(hub_name) <= MAX_LEN:
        return PREFIX + hub_name
    digest = hashlib.sha256(hub_name.encode()).hexdigest()[:6]
    slug = re.sub(r"[^a-z0-9_-]+", "-", hub_name.lower()).strip("-")[: MAX_LEN - len(PREFIX) - 7] or "user"
    return f"{PREFIX}{slug}-{digest}"


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    for _ in range(20):
        result = subprocess.run(argv, capture_output=True, text=True)
        if result.returncode != 10:  # 10: /etc/passwd is locked by someone else; try again
            return result
        time.sleep(0.25)
    return result


def ensure(hub_name: str) -> pwd.struct_passwd:
    """The account of ``hub_name``, created if missing; its home is private (0700)."""
    name = unix_name(hub_name)
    with _lock:
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            _run(["groupadd", "--force", GROUP])
            result = _run(["useradd", "--create-home", "--home-dir", f"/home/{name}", "--shell", "/bin/bash",
                           "--user-group", "--groups", GROUP, "--comment", f"AlertLab user {hub_name}", name])
            if result.returncode != 0:
                raise AccountError(f"useradd {name} failed: {result.stderr.strip()}")
            pw = pwd.getpwnam(name)
    os.chmod(pw.pw_dir, 0o700)
    return pw


def remove(hub_name: str) -> bool:
    """Delete the account of ``hub_name`` and its home (its processes must be stopped). True if it existed."""
    name = unix_name(hub_name)
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        return False
    import psutil

    for proc in psutil.process_iter(["uids"]):
        if proc.info["uids"] and proc.info["uids"].real == pw.pw_uid:
            try:
                proc.kill()
            except psutil.Error:
                pass
    with _lock:
        result = _run(["userdel", "--remove", name])
    if result.returncode not in (0, 12):  # 12: could not remove the home (already gone)
        raise AccountError(f"userdel {name} failed: {result.stderr.strip()}")
    return True
