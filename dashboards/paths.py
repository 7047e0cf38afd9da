"""Where dashboards live and who runs them: the service account, the folder of
published dashboard notebooks Voilà serves, the Voilà server's port and its
secret. Shared by the launcher (``server``), which runs as root, and the
`alertlab` web service, which writes the notebooks and proxies to Voilà.

When the hub runs as root, Voilà runs as the unix account
$ALERTLAB_VOILA_USER (default ``alertlab-voila``, a system account made on
first start) and serves ``<its home>/dashboards-<id>`` (``<id>`` tells apart
installations with different ALERTLAB_HOMEs on one machine); the folder
belongs to root and is read-only for the account. Otherwise (a laptop) it
runs as the hub's own account and serves $ALERTLAB_HOME/dashboards."""

from __future__ import annotations

import hashlib
import os
import pwd
from pathlib import Path

from alertlab.core import secrets, settings
from alertlab.core.errors import AlertLabError

SERVICE = "dashboards"
BASE = "dashboards/-/"  # under the alertlab service's prefix: Voilà's own URLs (static files, kernels)


def isolated() -> bool:
    return os.geteuid() == 0


def account() -> str:
    return settings.get("ALERTLAB_VOILA_USER")


def ensure_account() -> pwd.struct_passwd:
    """The service account, created (a system account, no login shell) when missing."""
    name = account()
    try:
        pw = pwd.getpwnam(name)
        os.chmod(pw.pw_dir, 0o700)  # the published dashboards inside are not for other accounts
        return pw
    except KeyError:
        pass
    from alertlab.hub.unixusers import _lock, _run

    with _lock:
        result = _run(["useradd", "--system", "--create-home", "--home-dir", f"/home/{name}", "--shell",
                       "/usr/sbin/nologin", "--user-group", "--comment", "AlertLab dashboards (Voila)", name])
    if result.returncode not in (0, 9):  # 9: it exists (made meanwhile)
        raise AlertLabError(f"useradd {name} failed: {result.stderr.strip()}")
    pw = pwd.getpwnam(name)
    os.chmod(pw.pw_dir, 0o700)
    return pw


def installation_id() -> str:
    return hashlib.sha256(str(settings.home()).encode()).hexdigest()[:10]


def root_dir() -> Path:
    """The folder of dashboard notebooks Voilà serves (made when missing)."""
    if isolated():
        home = Path(ensure_account().pw_dir)
        path = home / f"dashboards-{installation_id()}"
        path.mkdir(mode=0o755, exist_ok=True)
        os.chown(path, 0, 0)
        path.chmod(0o755)
        return path
    path = settings.home() / "dashboards"
    path.mkdir(parents=True, exist_ok=True)
    return path


def state():
    from alertlab.core.services.process import ServiceState

    return ServiceState("dashboards")


def port() -> int:
    """The Voilà server's local port (chosen once, kept in $ALERTLAB_HOME/dashboards/state.json)."""
    return state().port("voila_port")


def voila_url() -> str:
    return f"http://127.0.0.1:{state().load().get('voila_port') or port()}"


def token() -> str:
    """The secret the alertlab service sends to Voilà (and only it: kernels cannot read it)."""
    return secrets.get("voila_token", 32)


def forget_installation() -> None:
    """Remove this installation's dashboard notebooks and Jupyter folder from the service account's home
    (when a test or benchmark installation is thrown away)."""
    import shutil

    if not isolated():
        return
    try:
        home = Path(pwd.getpwnam(account()).pw_dir)
    except KeyError:
        return
    for name in (f"dashboards-{installation_id()}", f"jupyter-{installation_id()}"):
        shutil.rmtree(home / name, ignore_errors=True)
