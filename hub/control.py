"""`alertlab hub up|down|restart|status`: the hub and its proxy as detached processes.

Two processes, each with its pid and ports in $ALERTLAB_HOME/hub and its log in
$ALERTLAB_HOME/logs: configurable-http-proxy (hub-proxy.log), started by us
rather than by the hub so that it outlives a hub restart, and JupyterHub
(hub.log), which starts and stops its own services (the `alertlab` web service,
the idle culler). Users' servers run in their own sessions and survive a hub
restart; `down` asks the hub to stop them first, so no process is left behind."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import httpx

from alertlab.core import secrets, settings
from alertlab.core.errors import ServiceError
from alertlab.core.services.process import (ServiceState, log_path, pid_alive, port_open, require, start,
                                            stop, wait_until)

NAME = "hub"
SERVICE = "alertlab"
CLI_SERVICE = "alertlab-cli"
CHP_HINT = "install configurable-http-proxy: `make npm` (npm install in the checkout)"
CHECKOUT = Path(__file__).resolve().parent.parent


class ProxyState(ServiceState):
    """The proxy's pid and ports, next to the hub's in $ALERTLAB_HOME/hub."""

    def __init__(self):
        super().__init__("hub-proxy")
        self.dir = settings.home() / "hub"
        self.file = self.dir / "proxy.json"


def state() -> ServiceState:
    return ServiceState(NAME)


def _connect_host(ip: str) -> str:
    return "127.0.0.1" if ip in ("", "0.0.0.0", "::") else ip


def public_url() -> str:
    """The hub's address for people and scripts, e.g. http://127.0.0.1:8000/."""
    data = ProxyState().load()
    ip = data.get("public_ip") or settings.get("ALERTLAB_HUB_IP")
    port = data.get("public_port") or settings.get("ALERTLAB_HUB_PORT")
    return f"http://{_connect_host(ip)}:{port}/"


def service_url() -> str:
    """The `alertlab` web service behind the hub (what ALERTLAB_URL points at)."""
    return public_url() + f"services/{SERVICE}/"


def api_url() -> str:
    """The hub's REST API, directly (not through the proxy)."""
    return f"http://127.0.0.1:{state().load().get('hub_port')}/hub/api"


SCHEDULER_SERVICE = "scheduler"


def scheduler_token() -> str:
    """API token of the `scheduler` service: it may only make (short-lived) tokens for users' runs."""
    return secrets.get("hub_scheduler_token", 32)


def cli_token() -> str:
    """API token of the `alertlab-cli` service: admin rights over users, groups, servers and tokens."""
    return secrets.get("hub_cli_token", 32)


def hub_db_url() -> str:
    """SQLAlchemy URL of the hub's own database, as the writer account."""
    from alertlab.core import db

    return db.server_url().set(database=settings.get("ALERTLAB_HUB_DB")).render_as_string(hide_password=False)


def _ensure_hub_database() -> None:
    import sqlalchemy as sa

    from alertlab.core import db

    engine = sa.create_engine(db.server_url())
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS `{settings.get('ALERTLAB_HUB_DB')}` "
                                 "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        engine.dispose()


def _chp() -> str:
    path = os.pathsep.join([str(CHECKOUT / "node_modules" / ".bin"), os.environ.get("PATH", "")])
    import shutil

    found = shutil.which("configurable-http-proxy", path=path)
    if not found:
        return require("configurable-http-proxy", CHP_HINT)
    return found


def _hub_processes(services_only: bool = False) -> list:
    """Processes started by this hub (its services, and users' servers unless ``services_only``)."""
    import psutil

    hub_port = state().load().get("hub_port")
    if not hub_port:
        return []
    prefix = f"http://127.0.0.1:{hub_port}/hub/api"
    found = []
    for proc in psutil.process_iter():
        try:
            env = proc.environ()
        except (psutil.Error, OSError):
            continue
        if env.get("JUPYTERHUB_API_URL", "").startswith(prefix):
            if not services_only or env.get("JUPYTERHUB_SERVICE_NAME"):
                found.append(proc)
    return found


def _kill(procs: list) -> None:
    import psutil

    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=10)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass


def _answers(url: str, expect: int) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == expect
    except httpx.HTTPError:
        return False


def _start_proxy(st: ServiceState) -> None:
    proxy = ProxyState()
    if proxy.running():
        return
    ip, port = settings.get("ALERTLAB_HUB_IP"), settings.get("ALERTLAB_HUB_PORT")
    api_port = proxy.port("api_port")
    proxy.save(public_ip=ip, public_port=port)
    argv = [_chp(), "--ip", ip, "--port", str(port), "--api-ip", "127.0.0.1", "--api-port", str(api_port),
            "--error-target", f"http://127.0.0.1:{st.load()['hub_port']}/hub/error", "--log-level", "warn"]
    start(proxy, argv, env={**os.environ, "CONFIGPROXY_AUTH_TOKEN": secrets.get("hub_proxy_token", 32)})
    wait_until(lambda: port_open(int(port), _connect_host(ip)) and port_open(api_port), proxy,
               f"listen on port {port}")


def _write_config(st: ServiceState) -> Path:
    path = st.dir / "jupyterhub_config.py"
    path.write_text("# Written by `alertlab hub up`; the configuration itself is alertlab.hub.config.\n"
                    "from alertlab.hub.config import configure\n\n"
                    "configure(c)  # noqa: F821 (c is given by JupyterHub)\n")
    return path


def up() -> dict:
    """Start the proxy and the hub unless they run; wait until the hub and the `alertlab` service answer."""
    from alertlab import kernels
    from alertlab.extensions import gallery as gallery_extension
    from alertlab.hub import runtime, spawner

    st = state()
    st.dir.mkdir(parents=True, exist_ok=True)
    st.dir.chmod(0o700)  # cookie secret, config
    for name in (NAME, ProxyState().name):  # users' servers log there too: not for other users to read
        log = log_path(name)
        log.touch(mode=0o600)
        log.chmod(0o600)
    st.port("hub_port")
    if not settings.get("ALERTLAB_API_PORT"):
        st.port("api_port")
    if not st.running():
        _ensure_hub_database()
        kernels.install()
        gallery_extension.enable()  # "Publish to gallery" in every user's server (issue 7)
        st.save(user_python=runtime.user_python() if spawner.isolated() else sys.executable)
        if not spawner.isolated():
            print("hub: not running as root, so every user's server runs as this account: users are not "
                  "isolated from each other", file=sys.stderr)
    _start_proxy(st)
    if not st.running():
        _kill(_hub_processes(services_only=True))  # services left behind by a hub that was killed
        config = _write_config(st)
        crypt_key = hashlib.sha256(secrets.get("hub_crypt_key", 32).encode()).hexdigest()
        env = {**os.environ, "JUPYTERHUB_CRYPT_KEY": crypt_key}
        start(st, [sys.executable, "-m", "jupyterhub", "-f", str(config)], env=env, cwd=st.dir)
    url = public_url()
    wait_until(lambda: _answers(url + "hub/api/", 200), st, f"answer at {url}hub/api/")
    wait_until(lambda: _answers(service_url() + "api/v1/whoami", 401), st,
               f"start the {SERVICE} service (see {settings.home() / 'logs' / 'hub.log'})")
    return {"pid": st.pid(), "url": url, "proxy_pid": ProxyState().pid()}


def down() -> bool:
    """Stop users' servers, the hub and the proxy. True if something was running."""
    st, proxy = state(), ProxyState()
    was_running = st.running() or proxy.running()
    pid = st.pid()
    if st.running():
        try:
            httpx.post(api_url() + "/shutdown", json={"servers": True, "proxy": False},
                       headers={"Authorization": f"token {cli_token()}"}, timeout=10)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and pid_alive(pid):
                time.sleep(0.2)
                _reap(pid)
        except httpx.HTTPError:
            pass
        stop(st, timeout=30)
    _kill(_hub_processes())
    stop(proxy, timeout=10)
    return was_running


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def restart() -> dict:
    """Restart the hub alone: users' servers, the proxy and logged-in sessions carry on."""
    stop(state(), timeout=60)
    return up()


def status() -> dict:
    st, proxy = state(), ProxyState()
    running = st.running()
    return {"service": NAME, "running": running, "pid": st.pid() if running else None,
            "proxy_running": proxy.running(), "url": public_url(),
            "answers": running and _answers(public_url() + "hub/api/", 200)}


def require_running() -> None:
    if not state().running():
        raise ServiceError(NAME, "not running: start it with `alertlab hub up`")
