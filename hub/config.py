"""The JupyterHub configuration, computed from AlertLab's settings.

`alertlab hub up` writes a three-line jupyterhub_config.py that calls
``configure(c)``; everything else is here: where the hub keeps its state
(MariaDB, not SQLite), the external proxy, the authenticator, the spawner and
the environment of users' servers, the services and the roles."""

from __future__ import annotations

import os
import sys

from alertlab.api.classes import SERVICE_SETTINGS as API_SETTINGS  # limits, topics of the API
from alertlab.core import secrets, settings
from alertlab.hub import auth, control, groupadmins
from alertlab.hub.spawner import AlertLabSpawner

# Settings the `alertlab` web service needs (database URLs, names); everything else it derives.
SERVICE_ENV = ("ALERTLAB_HOME", "ALERTLAB_DB_URL", "ALERTLAB_DB_READER_URL", "ALERTLAB_ALERTS_DB",
               "ALERTLAB_APP_DB", "ALERTLAB_KAFKA", "ALERTLAB_DEBUG", *API_SETTINGS,
               # the gallery and dashboards (issue 7); the hub's database, for group membership as of now
               "ALERTLAB_HUB_DB", "ALERTLAB_GALLERY_MAX_MB", "ALERTLAB_LINK_DAYS", "ALERTLAB_DASHBOARD_VIEWERS",
               "ALERTLAB_DASHBOARD_TOKEN_SECONDS")
# What $JUPYTERHUB_API_TOKEN may do inside a user's server: the usual (activity, its own
# server), plus use the alertlab service and say who its owner is.
SERVER_TOKEN_SCOPES = [
    "users:activity!user",
    "access:servers!server",
    f"access:services!service={control.SERVICE}",
    "read:users!user",
    "read:users:name!user",
    "read:users:groups!user",
]


def _services(api_port: int) -> tuple[list[dict], list[dict]]:
    env = {k: os.environ[k] for k in SERVICE_ENV if os.environ.get(k)}
    env["ALERTLAB_HOME"] = str(settings.home())
    services = [
        {
            "name": control.SERVICE,
            "url": f"http://127.0.0.1:{api_port}",
            "command": [sys.executable, "-m", "alertlab.api"],
            "environment": env,
            "display": True,
            "oauth_no_confirm": True,
            "oauth_client_allowed_scopes": ["read:users!user", "read:users:name!user", "read:users:groups!user"],
        },
        # token-only service used by `alertlab hub ...`, the demo, the tests and the benchmark
        {"name": control.CLI_SERVICE, "api_token": control.cli_token(), "display": False},
        # the scheduler (`alertlab scheduler up`, docs/scheduler.md) runs on its own and may scale out to
        # other machines; its token only makes short-lived tokens for the owners of runs
        {"name": control.SCHEDULER_SERVICE, "api_token": control.scheduler_token(), "display": False},
    ]
    roles = [
        {
            "name": "user",
            "description": "Standard user privileges, and use of the alertlab web service",
            "scopes": ["self", f"access:services!service={control.SERVICE}"],
        },
        {
            "name": control.SCHEDULER_SERVICE,
            "description": "Tokens for the owners of scheduled notebook runs",
            "scopes": ["tokens", "read:users:name"],
            "services": [control.SCHEDULER_SERVICE],
        },
        {
            "name": control.CLI_SERVICE,
            "description": "Administration from the alertlab command line",
            "scopes": ["admin:users", "admin:servers", "admin:groups", "tokens", "shutdown", "read:hub",
                       "list:services", "read:services", "access:servers", "access:services"],
            "services": [control.CLI_SERVICE],
        },
    ]
    timeout = settings.get("ALERTLAB_IDLE_TIMEOUT")
    if timeout > 0:
        every = max(10, min(300, timeout // 2))
        services.append({"name": "idle-culler", "display": False,
                         "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                                     f"--timeout={timeout}", f"--cull-every={every}"]})
        roles.append({"name": "idle-culler", "description": "Stop servers left idle",
                      "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
                      "services": ["idle-culler"]})
    from alertlab.dashboards import server as dashboards  # the dashboards' Voila server (issue 7)

    services.append(dashboards.service())
    return services, roles


def configure(c) -> None:
    """Fill JupyterHub's config object ``c``."""
    st = control.state()
    data = st.load()
    proxy = control.ProxyState().load()
    hub_dir = st.dir

    c.JupyterHub.bind_url = control.public_url()
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = data["hub_port"]
    c.ConfigurableHTTPProxy.should_start = False  # ours, so it survives a hub restart
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{proxy['api_port']}"
    c.ConfigurableHTTPProxy.auth_token = secrets.get("hub_proxy_token", 32)
    c.JupyterHub.cleanup_servers = False  # a hub restart keeps users' servers; `alertlab hub down` stops them
    c.JupyterHub.db_url = control.hub_db_url()
    # one statement sees what other sessions committed (accounts made by `alertlab hub adduser`)
    c.JupyterHub.db_kwargs = {"isolation_level": "READ COMMITTED", "pool_pre_ping": True}
    c.JupyterHub.cookie_secret_file = str(hub_dir / "jupyterhub_cookie_secret")

    auth.configure(c)

    python = data.get("user_python") or sys.executable
    c.JupyterHub.spawner_class = AlertLabSpawner
    c.Spawner.cmd = [python, "-m", "jupyterhub.singleuser"]
    c.Spawner.args = ["--MultiKernelManager.default_kernel_name=alertlab",
                      # list and create schedules for the server's notebooks (docs/scheduler.md)
                      "--ServerApp.jpserver_extensions=alertlab.extensions.scheduler=True"]
    c.Spawner.default_url = "/lab"
    c.Spawner.env_keep = ["LANG", "LC_ALL"]  # nothing else of the hub's environment (no database URLs)
    c.Spawner.environment = {
        "PATH": os.pathsep.join([os.path.dirname(python), "/usr/local/bin", "/usr/bin", "/bin"]),
        "ALERTLAB_URL": control.service_url(),
    }
    c.Spawner.server_token_scopes = SERVER_TOKEN_SCOPES
    c.Spawner.http_timeout = 120
    c.Spawner.start_timeout = 180

    api_port = settings.get("ALERTLAB_API_PORT") or data["api_port"]
    services, roles = _services(int(api_port))
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles + groupadmins.roles()
