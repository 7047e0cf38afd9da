"""The hub as people meet it: sign-up, approval, login, their own server running
as their own unix account, the AlertLab kernel querying the alert database
through the API without a password, isolation between users, group admins,
clear messages for bad input, and a hub restart that nobody notices.

Real JupyterHub, real proxy, real spawns (hubfixtures.hub)."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
import time

import httpx
import pytest

pytest.register_assert_rewrite("hubfixtures")
from hubfixtures import TAG, page_message, run_cell

pytest_plugins = ["hubfixtures"]
pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture(scope="module")
def alice(hub):
    """alice-<TAG>: approved, in team-<TAG>, server running."""
    name = hub.user(f"alice-{TAG}", groups=[f"team-{TAG}"])
    hub.spawn(name)
    return {"name": name, "token": hub.token(name), "password": hub.passwords[name]}


@pytest.fixture(scope="module")
def bob(hub):
    name = hub.user(f"bob-{TAG}")
    hub.spawn(name)
    return {"name": name, "token": hub.token(name)}


def test_signup_approval_login_spawn_and_query_from_the_alertlab_kernel(hub, alert_objects):
    name, password = f"sam-{TAG}", "a-long-enough-password-1"
    visitor = hub.browser()
    r = visitor.signup(name, f"{name}@example.org", password)
    assert page_message(r) == "Your information has been sent to the admin."
    r = visitor.login(name, password)
    assert page_message(r) == f"User {name} has not been authorized by an administrator yet."

    admin = hub.browser()
    assert admin.login(hub.admin, hub.admin_password, next="/hub/authorize").url.path == "/hub/authorize"
    pending = admin.http.get("/hub/authorize")
    assert pending.status_code == 200 and name in pending.text and f"{name}@example.org" in pending.text
    admin.http.get(f"/hub/authorize/{name}")  # the "Authorize" button

    r = visitor.login(name, password)  # lands in the hub, which starts the server
    assert r.status_code == 200 and "/hub/login" not in str(r.url)
    server = hub.api.wait_ready(name)
    lab = visitor.http.get(server["url"] + "lab")  # OAuth with the hub happens on the way
    assert lab.status_code == 200 and lab.url.path == f"/user/{name}/lab" and "JupyterLab" in lab.text
    assert pwd.getpwuid(psutil_uid(server["state"]["pid"])).pw_name == f"alertlab-{name}"

    cell = run_cell(hub.url, name, hub.token(name), f"""
import getpass
import alertlab.client as al
df = al.query("{alert_objects['sql']}")
print(type(df).__name__, getpass.getuser())
print(df.to_dict("records"))
""")
    assert cell["error"] is None, cell
    kind, user = cell["stdout"].splitlines()[0].split()
    assert (kind, user) == ("DataFrame", f"alertlab-{name}")
    assert cell["stdout"].splitlines()[1] == str([{"objectId": o, "ndet": n} for o, n in alert_objects["rows"]])


def psutil_uid(pid: int) -> int:
    import psutil

    return psutil.Process(pid).uids().real


def test_kernels_hold_no_database_credentials(hub, alice, services):
    from alertlab.core import secrets

    writer_password = secrets.get("mariadb_writer")
    cell = run_cell(hub.url, alice["name"], alice["token"], f"""
import os
print(sorted(k for k in os.environ if "DB" in k or "KAFKA" in k or "SECRET" in k))
print(any({writer_password!r} in v for v in os.environ.values()))
try:
    open({str(services['home'] / 'secrets.json')!r}).read()
    print("read")
except OSError as exc:
    print(type(exc).__name__)
""")
    assert cell["error"] is None, cell
    assert cell["stdout"].splitlines() == ["[]", "False", "PermissionError"]


def test_users_are_isolated(hub, alice, bob):
    bob_home = pwd.getpwnam(f"alertlab-{bob['name']}").pw_dir
    assert stat.S_IMODE(os.stat(bob_home).st_mode) == 0o700
    cell = run_cell(hub.url, alice["name"], alice["token"], f"""
import os
for attempt in (lambda: os.listdir({bob_home!r}), lambda: open({bob_home + '/.bashrc'!r}).read()):
    try:
        attempt()
        print("allowed")
    except PermissionError:
        print("denied")
print(os.getcwd())
""")
    assert cell["error"] is None, cell
    assert cell["stdout"].splitlines() == ["denied", "denied", f"/home/alertlab-{alice['name']}"]

    as_alice = {"Authorization": f"token {alice['token']}"}
    assert httpx.get(f"{hub.url}user/{bob['name']}/api/status", headers=as_alice).status_code == 403
    assert httpx.get(f"{hub.url}user/{alice['name']}/api/status", headers=as_alice).status_code == 200
    api = hub.url + "hub/api/"
    assert httpx.get(api + "users", headers=as_alice).status_code == 403
    assert httpx.post(api + f"users/mallory-{TAG}", headers=as_alice).status_code == 403
    assert httpx.patch(api + f"users/{alice['name']}", json={"admin": True}, headers=as_alice).status_code == 403
    assert httpx.delete(api + f"users/{bob['name']}/server", headers=as_alice).status_code in (403, 404)
    assert hub.api.server(bob["name"])["ready"]


def test_group_admin_manages_only_their_group(hub, alice, bob):
    team, other = f"team-{TAG}", f"other-{TAG}"
    gail = hub.user(f"gail-{TAG}")  # admin of team-<TAG> (hubfixtures: $ALERTLAB_HOME/hub/group_admins.json)
    hub.api.ensure_group(other)
    members = hub.url + f"hub/api/groups/{team}/users"
    as_gail = {"Authorization": f"token {hub.token(gail)}"}
    as_bob = {"Authorization": f"token {bob['token']}"}

    r = httpx.post(members, json={"users": [bob["name"]]}, headers=as_gail)
    assert r.status_code == 200 and {bob["name"], alice["name"]} <= set(r.json()["users"])
    from alertlab.api import hubgroups  # what the ingest asks for its filters' owners, all in one query

    assert team in hubgroups.of_names([bob["name"], alice["name"]])[bob["name"]]
    assert httpx.request("DELETE", members, json={"users": [alice["name"]]}, headers=as_bob).status_code == 403
    r = httpx.request("DELETE", members, json={"users": [bob["name"]]}, headers=as_gail)
    assert r.status_code == 200 and bob["name"] not in r.json()["users"]
    assert team not in hubgroups.of_names([bob["name"]]).get(bob["name"], ())
    assert team in hubgroups.of_names([alice["name"]])[alice["name"]]
    r = httpx.post(hub.url + f"hub/api/groups/{other}/users", json={"users": [bob["name"]]}, headers=as_gail)
    assert r.status_code in (403, 404)
    assert bob["name"] not in hub.api.ensure_group(other)["users"]


def test_bad_input_gets_a_clear_message(hub):
    visitor = hub.browser()
    r = visitor.signup(f"eve-{TAG}", "eve-at-example", "a-long-enough-password-1")
    assert page_message(r) == "'eve-at-example' is not an e-mail address: enter one like name@example.org."
    r = visitor.signup(f"eve-{TAG}", f"eve-{TAG}@example.org", "short")
    assert page_message(r) == "Your password is too short: use at least 8 characters."
    r = visitor.signup(f"eve-{TAG}", f"eve-{TAG}@example.org", "password")
    assert page_message(r) == "This password is too common: choose one that is harder to guess."
    r = visitor.signup(f"eve {TAG}", f"eve-{TAG}@example.org", "a-long-enough-password-1")
    assert page_message(r) == "A username may not be empty or contain spaces, commas or slashes."
    assert hub.api.user(f"eve-{TAG}") is None

    name = hub.user(f"lee-{TAG}")
    r = visitor.login(name, "not-the-password")
    assert page_message(r) == "Invalid username or password."
    visitor.login(name, "not-the-password-either")
    r = visitor.login(name, "still-not-the-password")  # the third failure (ALERTLAB_LOGIN_ATTEMPTS=3) locks
    assert page_message(r) == f"Too many failed logins: {name} is locked. Try again in 10 minutes."
    r = visitor.login(name, hub.passwords[name])  # even the right password, while locked
    assert r.url.path == "/hub/login" and "is locked" in page_message(r)
    other = hub.browser()  # the lock is on the account, not the browser
    assert "is locked" in page_message(other.login(name, hub.passwords[name]))


def test_the_idle_culler_and_the_api_run_as_hub_services(hub):
    services = {s["name"]: s for s in hub.api.request("GET", "services").json().values()}
    assert services["idle-culler"]["pid"] and "--timeout=3600" in " ".join(services["idle-culler"]["command"])
    assert services["alertlab"]["pid"] and services["alertlab"]["prefix"] == "/services/alertlab/"


def test_hub_restart_keeps_servers_kernels_and_sessions(hub, alice, alert_objects):
    from alertlab.hub import control

    browser = hub.browser()
    browser.login(alice["name"], alice["password"])
    assert browser.http.get(f"/user/{alice['name']}/api/status").status_code == 200
    whoami = browser.http.get("/services/alertlab/api/v1/whoami", headers={"Accept": "text/html"})
    assert whoami.json()["name"] == alice["name"]  # logged in to the service through the hub (OAuth)
    before = hub.api.server(alice["name"])
    kernel = run_cell(hub.url, alice["name"], alice["token"], "x = 42")["kernel_id"]
    hub_pid = control.state().pid()

    control.restart()

    assert control.state().pid() != hub_pid
    after = hub.api.server(alice["name"])
    assert after["ready"] and after["state"]["pid"] == before["state"]["pid"]
    assert after["started"][:19] == before["started"][:19]  # (MariaDB keeps whole seconds)
    home = browser.http.get("/hub/home")
    assert home.url.path == "/hub/home" and alice["name"] in home.text  # still logged in
    status = browser.http.get(f"/user/{alice['name']}/api/kernels/{kernel}")
    assert status.status_code == 200 and status.json()["id"] == kernel
    r = browser.http.get("/services/alertlab/api/v1/whoami")  # the service's login cookie still works
    assert r.status_code == 200 and r.json()["name"] == alice["name"]
    q = httpx.post(hub.service_url + "api/v1/query", json={"sql": alert_objects["sql"]},
                   headers={"Authorization": f"token {alice['token']}"}, timeout=30)
    assert q.status_code == 200 and len(q.json()["rows"]) == 3


def test_hub_status_and_idempotent_up(hub):
    from alertlab.hub import control

    pid = control.state().pid()
    started = time.monotonic()
    assert control.up()["pid"] == pid
    assert time.monotonic() - started < 5
    row = control.status()
    assert row["running"] and row["answers"] and row["proxy_running"] and row["url"] == hub.url
    alertlab = os.path.join(os.path.dirname(sys.executable), "alertlab")
    out = subprocess.run([alertlab, "hub", "status"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith(f"hub: running {hub.url} pid {pid} ")
    assert stat.S_IMODE(os.stat(control.state().dir).st_mode) == 0o700  # cookie secret, configuration


def test_idle_servers_are_culled(hub, monkeypatch):
    """With ALERTLAB_IDLE_TIMEOUT=20, a server nobody uses is stopped within a minute (the hub restarts
    with that setting for this test, then back)."""
    from alertlab.hub import control

    name = hub.user(f"ida-{TAG}")
    monkeypatch.setenv("ALERTLAB_IDLE_TIMEOUT", "20")
    control.restart()
    try:
        hub.spawn(name)
        deadline = time.monotonic() + 90
        while hub.api.server(name) is not None and time.monotonic() < deadline:
            time.sleep(2)
        assert hub.api.server(name) is None, "the idle server was not stopped"
        assert os.path.isdir(f"/home/alertlab-{name}")  # the files stay
    finally:
        monkeypatch.delenv("ALERTLAB_IDLE_TIMEOUT")
        control.restart()
