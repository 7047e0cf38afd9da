"""The jupyter-server extension: a user's own server lists and creates
schedules of its notebooks through the `alertlab` service, as that user.

A real `jupyter server` with the extension talks to the scheduler router
served by uvicorn; the service recognises the server's token as its user (the
hub's own token check is tested with the hub)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request

from alertlab.api.auth import HubUser, NotAuthenticated, current_user
from alertlab.core.services.process import free_port, port_open
from alertlab.scheduler import api, schedules
from test_scheduler import sched  # noqa: F401 (fixture)

pytestmark = pytest.mark.services
TOKENS = {"tok-alice": "alice"}


@pytest.fixture
def service_url(sched):  # noqa: F811
    app = FastAPI()
    app.include_router(api.router, prefix="/api/v1")

    async def user_of_token(request: Request) -> HubUser:
        token = request.headers.get("authorization", "").removeprefix("token ")
        if token not in TOKENS:
            raise NotAuthenticated("unknown token")
        return HubUser(name=TOKENS[token])

    app.dependency_overrides[current_user] = user_of_token
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not port_open(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    t.join(10)


@pytest.fixture
def user_server(service_url, tmp_path):
    home = tmp_path / "home"
    (home / "work").mkdir(parents=True)
    port = free_port()
    env = {**os.environ, "HOME": str(home), "ALERTLAB_URL": service_url, "JUPYTERHUB_API_TOKEN": "tok-alice"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("jupyter")), "server", "--no-browser", f"--port={port}",
         "--ip=127.0.0.1", "--ServerApp.token=servertoken", f"--ServerApp.root_dir={home / 'work'}",
         "--ServerApp.jpserver_extensions=alertlab.extensions.scheduler=True", "--allow-root"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while not port_open(port) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.2)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}/",
                          headers={"Authorization": "token servertoken"}, timeout=30)
    yield client
    client.close()
    proc.terminate()
    proc.wait(20)


def test_a_users_server_lists_and_creates_schedules_of_its_notebooks(user_server):
    # the server's root is ~/work: its "nightly.ipynb" is work/nightly.ipynb in the home
    r = user_server.post("alertlab/schedules", json={"path": "nightly.ipynb", "cron": "0 9 * * *",
                                                     "timezone": "Europe/Paris", "parameters": {"n": 3}})
    assert r.status_code == 201, r.text
    assert r.json()["notebook"] == "work/nightly.ipynb" and len(r.json()["next_fire_times"]) == 5
    assert [s["notebook"] for s in schedules.list_schedules("alice")] == ["work/nightly.ipynb"]

    listed = user_server.get("alertlab/schedules", params={"path": "nightly.ipynb"})
    assert listed.status_code == 200 and [s["id"] for s in listed.json()] == [r.json()["id"]]
    assert user_server.get("alertlab/schedules", params={"path": "other.ipynb"}).json() == []

    # the service's reasons come through; a path outside the home is refused by the server itself
    bad = user_server.post("alertlab/schedules", json={"path": "nightly.ipynb", "cron": "0 9 * *"})
    assert bad.status_code == 422 and "got 4" in bad.text
    out = user_server.post("alertlab/schedules", json={"path": "../../elsewhere.ipynb", "cron": "0 9 * * *"})
    assert out.status_code == 422 and "outside your home" in out.text
    # without the server's token, nothing
    assert httpx.get(str(user_server.base_url) + "alertlab/schedules").status_code in (401, 403)
