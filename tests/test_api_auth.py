"""Who may call the `alertlab` service: one table of callers and what each gets,
against the real hub and service; then the browser's login through the hub."""

from __future__ import annotations

import httpx
import pytest

pytest.register_assert_rewrite("hubfixtures")
from hubfixtures import TAG

pytest_plugins = ["hubfixtures"]
pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture(scope="module")
def callers(hub):
    """Authorization headers, by kind of caller."""
    user = hub.user(f"dave-{TAG}", groups=[f"team-{TAG}"])
    return {
        "no token": {},
        "bad token": {"Authorization": "token not-a-real-token"},
        "bad bearer": {"Authorization": "bearer not-a-real-token"},
        "user": {"Authorization": f"token {hub.token(user)}"},
        "user (bearer)": {"Authorization": f"Bearer {hub.token(user)}"},
        "admin": {"Authorization": f"token {hub.token(hub.admin)}"},
        # a real token of the user, but only allowed to read the user's name: not to use the service
        "token without the service": {"Authorization": f"token {hub.token(user, scopes=['read:users:name!user'])}"},
        "_user": user,
    }


# caller, whoami status, query status, admin flag expected
TABLE = [
    ("no token", 401, 401, None),
    ("bad token", 401, 401, None),
    ("bad bearer", 401, 401, None),
    ("user", 200, 200, False),
    ("user (bearer)", 200, 200, False),
    ("admin", 200, 200, True),
    ("token without the service", 403, 403, None),
]


@pytest.mark.parametrize("caller,whoami_status,query_status,admin", TABLE, ids=[row[0] for row in TABLE])
def test_who_gets_what(hub, callers, alert_objects, caller, whoami_status, query_status, admin):
    headers = callers[caller]
    r = httpx.get(hub.service_url + "api/v1/whoami", headers=headers, timeout=30)
    assert r.status_code == whoami_status, r.text
    if whoami_status == 200:
        me = r.json()
        assert me["admin"] is admin and me["kind"] == "user"
        assert me["name"] == (hub.admin if admin else callers["_user"])
        if not admin:
            assert me["groups"] == [f"team-{TAG}"]
    else:
        assert r.json()["detail"]
    r = httpx.post(hub.service_url + "api/v1/query", json={"sql": alert_objects["sql"]}, headers=headers,
                   timeout=30)
    assert r.status_code == query_status, r.text
    if query_status == 200:
        assert r.json() == {"columns": ["objectId", "ndet"], "rows": [list(row) for row in alert_objects["rows"]],
                            "truncated": False}


def test_401_says_how_to_authenticate(hub):
    r = httpx.get(hub.service_url + "api/v1/whoami")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "token"
    assert "Authorization: token" in r.json()["detail"]
    r = httpx.get(hub.service_url + "api/v1/whoami", headers={"Authorization": "token nope"})
    assert r.json()["detail"] == "invalid or expired token"


def test_query_rejections_and_limits(hub, callers, alert_objects):
    headers = callers["user"]
    r = httpx.post(hub.service_url + "api/v1/query", json={"sql": "DELETE FROM objects"}, headers=headers)
    assert r.status_code == 400 and "only SELECT" in r.json()["detail"]
    r = httpx.post(hub.service_url + "api/v1/query", json={"sql": "SELECT * FROM mysql.user"}, headers=headers)
    assert r.status_code == 400 and r.json()["detail"]
    r = httpx.post(hub.service_url + "api/v1/query", json={"sql": alert_objects["sql"], "limit": 2, "offset": 1},
                   headers=headers)
    assert r.status_code == 200
    assert r.json()["rows"] == [list(row) for row in alert_objects["rows"][1:3]] and r.json()["truncated"] is False
    r = httpx.post(hub.service_url + "api/v1/query", json={"sql": alert_objects["sql"], "limit": 1}, headers=headers)
    assert r.json()["truncated"] is True and len(r.json()["rows"]) == 1
    r = httpx.post(hub.service_url + "api/v1/query", json={"sql": alert_objects["sql"], "limit": 0}, headers=headers)
    assert r.status_code == 422


def test_browser_logs_in_to_the_service_through_the_hub(hub):
    from hubfixtures import Browser

    name = hub.user(f"erin-{TAG}")
    browser = Browser(hub.url)
    page = browser.http.get("/services/alertlab/api/v1/whoami", headers={"Accept": "text/html"})
    assert page.url.path == "/hub/login"  # sent to the hub's login page first
    browser.login(name, hub.passwords[name], next=str(page.url.params["next"]))
    r = browser.http.get("/services/alertlab/api/v1/whoami", headers={"Accept": "text/html"})
    assert r.status_code == 200 and r.url.path == "/services/alertlab/api/v1/whoami"
    assert r.json()["name"] == name
    cookie = browser.http.cookies.get("service-alertlab")
    forged = cookie[:-4] + ("AAAA" if not cookie.endswith("AAAA") else "BBBB")
    r = httpx.get(hub.service_url + "api/v1/whoami", cookies={"service-alertlab": forged})
    assert r.status_code == 401
    r = browser.http.get("/services/alertlab/login", params={"next": "https://evil.example.org/"},
                         follow_redirects=False)
    assert r.status_code == 302
    r = browser.http.get(r.headers["location"])  # the hub sends the browser back to the service, not elsewhere
    assert r.url.host == "127.0.0.1" and r.url.path.startswith("/services/alertlab/")
