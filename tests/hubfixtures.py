"""The hub for tests, shared by the hub, API-auth and client tests.

Use it with ``pytest_plugins = ["hubfixtures"]`` in a test module (or import it
from conftest): the ``hub`` session fixture starts JupyterHub and its proxy on
free ports in the session's ALERTLAB_HOME, its state in a scratch database of
the ``services`` MariaDB, and at the end stops everything and deletes the unix
accounts its users' servers ran as. Helpers act as a browser (``Browser``: httpx
keeping cookies, with the hub's XSRF tokens) and run code in a user's kernel
through jupyter_server's REST API and kernel websocket (``run_cell``)."""

from __future__ import annotations

import json
import os
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from html import unescape

import httpx
import pytest

TAG = uuid.uuid4().hex[:4]  # test users are <name>-<TAG>, so they never meet the demo's


@dataclass
class Hub:
    url: str  # the public URL, e.g. http://127.0.0.1:40123/
    api: object  # alertlab.hub.hubapi.HubAPI as the alertlab-cli service
    admin: str
    admin_password: str
    passwords: dict = field(default_factory=dict)

    @property
    def service_url(self) -> str:
        return self.url + "services/alertlab/"

    def user(self, name: str, *, groups: list[str] = (), admin: bool | None = None) -> str:
        """An approved user with a native login; the password is in ``passwords[name]``."""
        from alertlab.hub import accounts

        password = self.passwords.setdefault(name, secrets.token_urlsafe(12))
        accounts.ensure_user(name, password, email=f"{name}@example.org", admin=admin, groups=list(groups),
                             api=self.api)
        return name

    def token(self, name: str, scopes: list[str] | None = None) -> str:
        return self.api.new_token(name, note="test", scopes=scopes)

    def spawn(self, name: str) -> dict:
        if not (self.api.server(name) or {}).get("ready"):
            self.api.start_server(name)
        return self.api.wait_ready(name)

    def browser(self) -> "Browser":
        return Browser(self.url)


class Browser:
    """An httpx client that keeps cookies and follows redirects, like a browser."""

    def __init__(self, base: str):
        self.http = httpx.Client(base_url=base, follow_redirects=True, timeout=120)

    def xsrf(self, path: str) -> str:
        page = self.http.get(path)
        m = re.search(r'name="_xsrf"\s+value="([^"]+)"', page.text)
        assert m, f"no _xsrf field on {path}"
        return unescape(m.group(1))

    def login(self, name: str, password: str, next: str | None = None) -> httpx.Response:
        """Log in on the login page; the hub then goes to ``next`` (default: the user's server, started)."""
        token = self.xsrf("/hub/login")
        return self.http.post("/hub/login", params={"next": next} if next else None,
                              data={"username": name, "password": password, "_xsrf": token})

    def signup(self, name: str, email: str, password: str, confirmation: str | None = None) -> httpx.Response:
        token = self.xsrf("/hub/signup")
        return self.http.post("/hub/signup", data={
            "username": name, "email": email, "signup_password": password,
            "signup_password_confirmation": password if confirmation is None else confirmation, "_xsrf": token})

    def close(self) -> None:
        self.http.close()


def page_message(response: httpx.Response) -> str:
    """The text of the alert or error box on a hub page (login and sign-up)."""
    m = re.search(r'<(?:div|p)[^>]*class="[^"]*(?:alert|login_error)[^"]*"[^>]*>(.*?)</(?:div|p)>',
                  response.text, re.S)
    assert m, f"no message on the page {response.url}"
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", m.group(1))).split())


def run_cell(hub_url: str, user: str, token: str, code: str, kernel: str = "alertlab", timeout: float = 120) -> dict:
    """Run ``code`` in a new kernel of ``user``'s server; {'stdout', 'error', 'kernel_id'}."""
    import websocket

    server = f"{hub_url}user/{user}/"
    headers = {"Authorization": f"token {token}"}
    r = httpx.post(server + "api/kernels", json={"name": kernel}, headers=headers, timeout=60)
    r.raise_for_status()
    kernel_id = r.json()["id"]
    ws = websocket.create_connection(server.replace("http", "ws", 1) + f"api/kernels/{kernel_id}/channels",
                                     header=[f"Authorization: token {token}"], timeout=timeout)
    msg_id, session = uuid.uuid4().hex, uuid.uuid4().hex
    ws.send(json.dumps({
        "header": {"msg_id": msg_id, "username": user, "session": session, "msg_type": "execute_request",
                   "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True}}))
    out, error = [], None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "stream":
                out.append(msg["content"]["text"])
            elif kind == "error":
                error = f"{msg['content']['ename']}: {msg['content']['evalue']}"
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                break
        else:
            raise TimeoutError(f"the cell did not finish within {timeout}s")
    finally:
        ws.close()
    return {"stdout": "".join(out), "error": error, "kernel_id": kernel_id}


@pytest.fixture(scope="session")
def hub(services):
    """A running hub: {url, api, admin, ...} (see Hub); stopped, and its unix accounts removed, at the end."""
    import sqlalchemy as sa

    from alertlab.core import db
    from alertlab.core.services.process import free_port
    from alertlab.hub import control, groupadmins, unixusers
    from alertlab.hub.hubapi import HubAPI

    if control.state().running():
        pytest.fail(f"a hub is already running in ALERTLAB_HOME={services['home']}: stop it "
                    "(alertlab hub down) or run the tests with another ALERTLAB_HOME")
    env = {
        "ALERTLAB_HUB_PORT": str(free_port()),
        "ALERTLAB_HUB_IP": "127.0.0.1",
        "ALERTLAB_HUB_DB": f"alertlab_hub_{TAG}",
        "ALERTLAB_HUB_ADMINS": f"hubadmin-{TAG}",
        "ALERTLAB_LOGIN_ATTEMPTS": "3",
        "ALERTLAB_LOCKOUT_SECONDS": "600",
        "ALERTLAB_OPEN_SIGNUP": "false",
        "ALERTLAB_AUTHENTICATOR": "native",
        "ALERTLAB_DASHBOARD_WARM_KERNELS": "2",  # dashboards' spare kernels: few, the machine runs tests
    }
    saved = {k: os.environ.get(k) for k in [*env, "ALERTLAB_API_PORT"]}
    os.environ.update(env)
    os.environ.pop("ALERTLAB_API_PORT", None)
    groupadmins.set_admin(f"team-{TAG}", f"gail-{TAG}")  # roles are read when the hub starts
    info = control.up()
    api = HubAPI()
    admin = env["ALERTLAB_HUB_ADMINS"]
    h = Hub(url=info["url"], api=api, admin=admin, admin_password="")
    h.user(admin, admin=True)
    h.admin_password = h.passwords[admin]
    try:
        yield h
    finally:
        try:
            names = [u["name"] for u in api.request("GET", "users").json()]
        except Exception:
            names = list(h.passwords)
        api.close()
        control.down()
        for name in names:
            unixusers.remove(name)
        from alertlab.dashboards import paths as dashboard_paths

        dashboard_paths.forget_installation()  # this session's published dashboards
        engine = sa.create_engine(db.server_url())
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{env['ALERTLAB_HUB_DB']}`")
        engine.dispose()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def alert_objects(services):
    """Three rows of `objects` named ZTFt<TAG>a/b/c (ndet 3, 5, 8), deleted at the end."""
    from alertlab.core import db

    prefix = f"ZTFt{TAG}"
    rows = [(f"{prefix}a", 3), (f"{prefix}b", 5), (f"{prefix}c", 8)]
    with db.engine("alerts").begin() as conn:
        for object_id, ndet in rows:
            conn.exec_driver_sql("INSERT INTO objects (objectId, survey, ra, decl, healpix, ndet) "
                                 "VALUES (%s, 'ztf', 10.0, 20.0, 1, %s)", (object_id, ndet))
    yield {"prefix": prefix, "rows": rows,
           "sql": f"SELECT objectId, ndet FROM objects WHERE objectId LIKE '{prefix}%' ORDER BY objectId"}
    with db.engine("alerts").begin() as conn:
        conn.exec_driver_sql("DELETE FROM objects WHERE objectId LIKE %s", (prefix + "%",))
