"""The scheduler's web API (the router in alertlab.scheduler.api): what each
status code means for a person, on the real database. The caller is set by
overriding the ``current_user`` dependency (the hub login itself is tested
with the hub)."""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from alertlab.api.auth import HubUser, current_user
from alertlab.scheduler import api
from test_scheduler import add_filter, final, make_owner, sched, worker, write_notebook  # noqa: F401 (fixtures)

pytestmark = pytest.mark.services


@pytest.fixture
def as_user():
    """as_user("alice") -> a TestClient whose requests come from the hub user alice."""
    clients = []

    def make(name: str, admin: bool = False) -> TestClient:
        app = FastAPI()
        app.include_router(api.router, prefix="/api/v1")
        app.dependency_overrides[current_user] = lambda: HubUser(name=name, admin=admin)
        client = TestClient(app)
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


def test_bad_input_is_422_with_the_reason(sched, as_user):
    alice = as_user("alice")
    cases = [
        ({"notebook": "n.ipynb", "cron": "0 9 * *"}, "fields (minute hour day month weekday), got 4"),
        ({"notebook": "n.ipynb", "cron": "0 9 * * *", "timezone": "Moon/Base"}, "unknown time zone 'Moon/Base'"),
        ({"notebook": "n.ipynb", "cron": "0 9 * * *", "parameters": "{oops"}, "parameters are not JSON"),
        ({"notebook": "../bob/n.ipynb", "cron": "0 9 * * *"}, "leaves your home"),
        ({"notebook": "n.ipynb"}, "exactly one trigger"),
        ({"notebook": "n.ipynb", "cron": "0 9 * * *", "interval": 3600}, "exactly one trigger"),
        ({"notebook": "n.ipynb", "cron": "0 9 * * *", "kernel": "cobol"}, "unknown kernel 'cobol'"),
        ({"notebook": "n.ipynb", "cron": "0 9 * * *", "email": "not-an-address"}, "not an e-mail address"),
        ({"notebook": "n.ipynb", "on": {"kind": "filter", "id": 999999}}, "no filter with id 999999"),
    ]
    for body, reason in cases:
        r = alice.post("/api/v1/schedules", json=body)
        assert r.status_code == 422, (body, r.text)
        assert reason in r.json()["detail"], (body, r.json())
    # a field that does not exist is refused by the model (422 too)
    assert alice.post("/api/v1/schedules", json={"notebook": "n.ipynb", "cron": "0 9 * * *",
                                                 "colour": "red"}).status_code == 422
    assert alice.get("/api/v1/schedules").json() == []


def test_schedules_crud_and_only_the_owner_sees_them(sched, fresh_alerts_db, as_user):
    alice, bob = as_user("alice"), as_user("bob")
    r = alice.post("/api/v1/schedules", json={"notebook": "~/nightly.ipynb", "cron": "0 9 * * 1-5",
                                              "timezone": "Europe/Paris", "parameters": {"mag_max": 19.5}})
    assert r.status_code == 201, r.text
    s = r.json()
    assert s["notebook"] == "nightly.ipynb" and s["parameters"] == {"mag_max": 19.5}
    assert s["kernel"] == "alertlab"   # the AlertLab kernel by default
    assert len(s["next_fire_times"]) == 5 and all(t.endswith("+01:00") or t.endswith("+02:00")
                                                  for t in s["next_fire_times"])
    sid = s["id"]
    assert [x["id"] for x in alice.get("/api/v1/schedules").json()] == [sid]
    assert alice.get("/api/v1/schedules", params={"notebook": "nightly.ipynb"}).json()[0]["id"] == sid

    # bob: the schedule does not exist for him, whatever he tries
    assert bob.get("/api/v1/schedules").json() == []
    for method, path in (("get", f"/schedules/{sid}"), ("patch", f"/schedules/{sid}"),
                         ("delete", f"/schedules/{sid}"), ("post", f"/schedules/{sid}/pause"),
                         ("post", f"/schedules/{sid}/run")):
        r = bob.request(method.upper(), "/api/v1" + path, json={} if method in ("patch", "post") else None)
        assert r.status_code == 404, (method, path, r.text)

    r = alice.patch(f"/api/v1/schedules/{sid}", json={"cron": "30 7 * * *", "retries": 2})
    assert r.status_code == 200 and r.json()["cron"] == "30 7 * * *" and r.json()["retries"] == 2
    assert r.json()["version"] == 2
    assert alice.patch(f"/api/v1/schedules/{sid}", json={"cron": "bad"}).status_code == 422
    assert alice.post(f"/api/v1/schedules/{sid}/pause").json()["enabled"] is False
    assert alice.post(f"/api/v1/schedules/{sid}/pause").json()["next_fire_times"] == []
    assert alice.post(f"/api/v1/schedules/{sid}/resume").json()["enabled"] is True

    # a trigger on someone else's filter is 403; on her own, fine
    carols = add_filter("carol", "ndet > 2")
    r = alice.post("/api/v1/schedules", json={"notebook": "n.ipynb", "on": {"kind": "filter", "id": carols}})
    assert r.status_code == 403 and "belongs to someone else" in r.json()["detail"]
    hers = add_filter("alice", "ndet > 2")
    r = alice.post("/api/v1/schedules", json={"notebook": "n.ipynb", "on": {"kind": "filter", "id": hers},
                                              "window": 60, "repeat": "days", "repeat_days": 7})
    assert r.status_code == 201 and r.json()["alert_id"] == str(hers) and r.json()["repeat_days"] == 7
    r = alice.post("/api/v1/never-again", json={"id": hers, "objectId": "ZTF24aaaaaaa", "note": "a star"})
    assert r.status_code == 201
    assert alice.get("/api/v1/never-again").json()[0]["objectId"] == "ZTF24aaaaaaa"
    assert bob.post("/api/v1/never-again", json={"id": hers, "objectId": "ZTF24aaaaaaa"}).status_code == 403
    assert alice.delete("/api/v1/never-again", params={"kind": "filter", "id": hers,
                                                       "objectId": "ZTF24aaaaaaa"}).status_code == 204
    assert alice.get("/api/v1/never-again").json() == []

    assert alice.delete(f"/api/v1/schedules/{sid}").status_code == 204
    assert alice.get(f"/api/v1/schedules/{sid}").status_code == 404


def test_run_now_runs_and_output_as_html_or_ipynb(sched, make_owner, worker, as_user):  # noqa: F811
    owner = make_owner("alice")
    write_notebook(owner, "hello.ipynb", "print('hello', who)", parameters="who = 'nobody'")
    me, other = as_user(owner.owner), as_user("mallory")
    sid = me.post("/api/v1/schedules", json={"notebook": "hello.ipynb", "cron": "0 0 1 1 *",
                                             "kernel": "python3", "parameters": {"who": "world"}}).json()["id"]
    r = me.post(f"/api/v1/schedules/{sid}/run", json={"parameters": {"who": "API"}})
    assert r.status_code == 202 and r.json()["status"] == "queued" and r.json()["reason"] == "manual"
    run = final(owner.owner, r.json()["id"])
    assert run["status"] == "succeeded", run["error"]

    assert [x["id"] for x in me.get("/api/v1/runs", params={"schedule_id": sid}).json()] == [run["id"]]
    assert me.get("/api/v1/runs", params={"status": "failed"}).json() == []
    assert me.get("/api/v1/runs", params={"status": "exploded"}).status_code == 422
    html = me.get(f"/api/v1/runs/{run['id']}/output")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert html.headers["content-security-policy"] == "sandbox"
    assert "hello API" in html.text
    nb = me.get(f"/api/v1/runs/{run['id']}/output", params={"format": "ipynb"})
    assert nb.status_code == 200 and "attachment" in nb.headers["content-disposition"]
    cells = json.loads(nb.content)["cells"]
    assert any("hello API" in "".join(o.get("text", "")) for c in cells for o in c.get("outputs", []))

    for path in (f"/runs/{run['id']}", f"/runs/{run['id']}/output"):
        assert other.get("/api/v1" + path).status_code == 404
    assert other.post(f"/api/v1/runs/{run['id']}/cancel").status_code == 404
    assert other.get("/api/v1/runs").json() == []
    # cancelling a finished run changes nothing
    assert me.post(f"/api/v1/runs/{run['id']}/cancel").json()["status"] == "succeeded"
    assert me.get(f"/api/v1/runs/{uuid.uuid4().int % 10**9 + 10**9}").status_code == 404
