"""Rate limits: 429 with Retry-After, then recovery; a per-user cap on queries
running at once; power users get more.

The hub's `alertlab` service runs with the default limits (hundreds of
requests a minute), so these tests serve the same app in this process (uvicorn
on a free port) with small limits, authenticating every token with the real
hub exactly as the service does."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

pytest.register_assert_rewrite("hubfixtures", "apifixtures")

pytest_plugins = ["hubfixtures", "apifixtures"]
pytestmark = [pytest.mark.services, pytest.mark.slow]

LIMITS = {"ALERTLAB_RATE_USER": "30", "ALERTLAB_RATE_POWER": "60", "ALERTLAB_RATE_ANONYMOUS": "10",
          "ALERTLAB_QUERY_CONCURRENCY": "1", "ALERTLAB_QUERY_SECONDS": "3"}


@pytest.fixture(scope="module")
def local_api(hub):
    """The API app served here with LIMITS, checking tokens with the real hub: its base URL."""
    import uvicorn
    from jupyterhub.services.auth import HubOAuth

    from alertlab.api.app import create_app
    from alertlab.api.auth import ServiceAuth
    from alertlab.core.services.process import free_port
    from alertlab.hub import control

    hub_auth = HubOAuth(api_url=control.api_url(), api_token=control.cli_token(), oauth_client_id="service-alertlab",
                        access_scopes={"access:services!service=alertlab"}, base_url="/services/alertlab/",
                        cache_max_age=60)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in LIMITS.items():
            mp.setenv(name, value)
        port = free_port()
        app = create_app(ServiceAuth(hub_auth, cookie_secret=b"t" * 32), prefix="/services/alertlab/")
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{port}/services/alertlab/api/v1/"
        for _ in range(100):
            try:
                httpx.get(base.replace("v1/", "openapi.json"), timeout=2)  # not throttled
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base
        server.should_exit = True
        thread.join(10)


def _burst(url, headers, n):
    with httpx.Client(headers=headers, timeout=30) as http:
        return [http.get(url) for _ in range(n)]


def test_429_with_retry_after_then_recovery(local_api, people):
    bob, pat = people["bob"], people["pat"]
    answers = _burst(local_api + "whoami", bob.headers, 31)
    assert [r.status_code for r in answers[:30]] == [200] * 30  # a burst of one minute's worth
    r = answers[30]
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"  # 30 a minute: one every 2 s
    assert r.json()["detail"] == "rate limit: 30 requests per minute for a user (see /api/docs); try again in 2 s"
    assert httpx.get(local_api + "whoami", headers=people["carol"].headers).status_code == 200  # per user
    time.sleep(int(r.headers["Retry-After"]))
    assert httpx.get(local_api + "whoami", headers=bob.headers).status_code == 200  # recovered
    assert httpx.get(local_api + "whoami", headers=bob.headers).status_code == 429  # and only one more
    # a power user's bucket is bigger
    codes = [r.status_code for r in _burst(local_api + "whoami", pat.headers, 61)]
    assert codes[:60] == [200] * 60 and codes[60] == 429


def test_callers_without_a_valid_token_are_throttled_too(local_api):
    codes = [r.status_code for r in _burst(local_api + "whoami", {"Authorization": "token wrong"}, 11)]
    assert codes == [401] * 10 + [429]
    assert _burst(local_api + "cone?ra=1&dec=1&radius=1", {}, 1)[0].status_code == 429  # same address
    time.sleep(6)  # 10 a minute: one every 6 s
    assert _burst(local_api + "whoami", {}, 1)[0].status_code == 401


def test_one_query_at_a_time_per_user(local_api, people, api_data):
    from apifixtures import Caller

    alice, carol = people["alice"], Caller(people["carol"].name, people["carol"].token, local_api)
    slow = "SELECT COUNT(*) FROM objects a JOIN objects b JOIN objects c JOIN objects d"
    first = {}

    def run():
        first["r"] = httpx.post(local_api + "query", json={"sql": slow}, headers=alice.headers, timeout=60)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(1.0)
    r = httpx.post(local_api + "query", json={"sql": "SELECT 1"}, headers=alice.headers)
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert r.json()["detail"].startswith("you already have 1 queries running, the most a user may run at once")
    assert carol.post("query", json={"sql": "SELECT 1"}).status_code == 200  # another user is not held up
    thread.join(30)
    assert first["r"].status_code == 400
    assert first["r"].json()["detail"] == "the query ran longer than 3 s and was stopped"
    r = httpx.post(local_api + "query", json={"sql": "SELECT 1 AS one"}, headers=alice.headers)
    assert r.status_code == 200 and r.json()["rows"] == [[1]]  # the slot was given back


@pytest.fixture
def many_detections(api_data):
    """3,000 more detections, so that the corpus's cross joins have work for hours."""
    from alertlab.core import db

    base = api_data["base"] + 1000
    rows = [(base + i, api_data["star"], 60000.0 + i / 1000, "g", 18.0) for i in range(3000)]
    with db.engine("alerts").begin() as conn:
        conn.exec_driver_sql("INSERT INTO detections (detectionId, objectId, survey, mjd, band, mag) "
                             "VALUES (%s, %s, 'ztf', %s, %s, %s)", rows)
    yield
    with db.engine("alerts").begin() as conn:
        conn.exec_driver_sql("DELETE FROM detections WHERE detectionId BETWEEN %s AND %s", (base, base + 3000))


def test_the_time_limit_stops_the_hostile_queries_that_pass_the_guard(local_api, people, many_detections):
    """The corpus's resource-hungry queries (huge cross joins, ...) run, and the server stops them."""
    import json
    from pathlib import Path

    corpus = json.loads((Path(__file__).parent / "hostile_queries.json").read_text())
    stopped = [c for c in corpus if c["outcome"] == "stopped"]
    assert stopped
    for case in stopped:
        started = time.monotonic()
        r = httpx.post(local_api + "query", json={"sql": case["sql"], "limit": 10}, headers=people["pat"].headers,
                       timeout=60)
        assert r.status_code == 400 and r.json()["detail"] == "the query ran longer than 3 s and was stopped", case
        assert time.monotonic() - started < 15
