"""Who gets what: every endpoint of the API × {no token, bad token, another user,
group member, owner, admin}, with the exact status each must get, against the
real hub and service.

The resources (a watchlist, an area, a filter) belong to alice and are shared
with her group as viewer, so the group member (bob) may read but not change
them; carol is in no group; the admin may do everything but see other
people's query jobs. For annotations the "group member" is the member of the
annotator's hub group (bob, in ``annotator:tbl-<TAG>``): the only kind of
user, with the admin, who may write them."""

from __future__ import annotations

import time
import uuid

import pytest

pytest.register_assert_rewrite("hubfixtures", "apifixtures")
from apifixtures import moc_fits  # noqa: E402
from hubfixtures import TAG  # noqa: E402

pytest_plugins = ["hubfixtures", "apifixtures"]
pytestmark = [pytest.mark.services, pytest.mark.slow]

CALLERS = ("nobody", "forger", "carol", "bob", "alice", "admin")
ANY = (401, 401, 200, 200, 200, 200)       # any logged-in user
CREATE = (401, 401, 201, 201, 201, 201)
READ = (401, 401, 403, 200, 200, 200)      # the owner, the group it is shared with, admins
EDIT = (401, 401, 403, 403, 200, 200)      # the owner (or an editor), admins
OWN = EDIT
OWN_DELETE = (401, 401, 403, 403, 204, 204)
JOB = (401, 401, 403, 403, 200, 403)       # the owner only
JOB_DELETE = (401, 401, 403, 403, 204, 403)
ANNOTATE = (401, 401, 403, 201, 403, 201)  # members of annotator:<name>, admins
ASYNC = (401, 401, 202, 202, 202, 202)


def _annotation(ctx):
    return {"json": {"objectId": ctx["far"], "annotator": f"tbl-{TAG}", "classification": "test"}}


def _csv(ctx):
    return {"files": {"file": ("c.csv", b"ra,dec\n1,2\n")}}


def _moc(ctx):
    return {"files": {"file": ("a.fits", moc_fits())}, "data": {"name": "authz area"}}


GROUP_SHARE = lambda ctx: {"params": {"grantee_kind": "group", "grantee": ctx["team"]}}  # noqa: E731
SHARE_BODY = lambda ctx: {"json": {"grantee_kind": "user", "grantee": f"someone-{TAG}"}}  # noqa: E731

# method, path, request arguments, expected status per caller (CALLERS order)
TABLE = [
    ("GET", "whoami", None, ANY),
    ("GET", "objects/{star}", None, ANY),
    ("GET", "objects/{star}?format=csv", None, ANY),
    ("GET", "cone?ra={ra}&dec={dec}&radius=10", None, ANY),
    ("GET", "cutouts/{cutout}/science?format=png", None, ANY),
    ("POST", "query", lambda ctx: {"json": {"sql": "SELECT 1 AS one"}}, ANY),
    ("POST", "query?async=true", lambda ctx: {"json": {"sql": "SELECT 1 AS one"}}, ASYNC),
    ("GET", "query/jobs", None, ANY),
    ("GET", "query/jobs/{job}", None, JOB),
    ("GET", "query/jobs/{job}/result", None, JOB),
    ("DELETE", "query/jobs/{job}", None, JOB_DELETE),
    ("POST", "annotations", _annotation, ANNOTATE),
    ("GET", "watchlists", None, ANY),
    ("POST", "watchlists", lambda ctx: {"json": {"name": "authz"}}, CREATE),
    ("GET", "watchlists/{watchlist}", None, READ),
    ("PATCH", "watchlists/{watchlist}", lambda ctx: {"json": {"name": "renamed"}}, EDIT),
    ("DELETE", "watchlists/{watchlist}", None, OWN_DELETE),
    ("POST", "watchlists/{watchlist}/cones", _csv, EDIT),
    ("GET", "watchlists/{watchlist}/cones", None, READ),
    ("GET", "watchlists/{watchlist}/hits", None, READ),
    ("GET", "watchlists/{watchlist}/shares", None, READ),
    ("PUT", "watchlists/{watchlist}/shares", SHARE_BODY, OWN),
    ("DELETE", "watchlists/{watchlist}/shares", GROUP_SHARE, OWN_DELETE),
    ("GET", "watchlists/{watchlist}/matches?wait=0", None, READ),
    ("GET", "areas", None, ANY),
    ("POST", "areas", _moc, CREATE),
    ("GET", "areas/{area}", None, READ),
    ("GET", "areas/{area}/moc", None, READ),
    ("PATCH", "areas/{area}", lambda ctx: {"json": {"active": False}}, EDIT),
    ("DELETE", "areas/{area}", None, OWN_DELETE),
    ("GET", "areas/{area}/hits", None, READ),
    ("GET", "areas/{area}/shares", None, READ),
    ("PUT", "areas/{area}/shares", SHARE_BODY, OWN),
    ("DELETE", "areas/{area}/shares", GROUP_SHARE, OWN_DELETE),
    ("GET", "areas/{area}/matches?wait=0", None, READ),
    ("GET", "filters", None, ANY),
    ("POST", "filters", lambda ctx: {"json": {"name": "authz", "where_sql": "latest_mag < 14"}}, CREATE),
    ("POST", "filters/dry-run", lambda ctx: {"json": {"where_sql": "latest_mag < 14"}}, ANY),
    ("GET", "filters/{filter}", None, READ),
    ("POST", "filters/{filter}/dry-run", None, READ),
    ("PATCH", "filters/{filter}", lambda ctx: {"json": {"name": "renamed"}}, EDIT),
    ("DELETE", "filters/{filter}", None, OWN_DELETE),
    ("GET", "filters/{filter}/shares", None, READ),
    ("PUT", "filters/{filter}/shares", SHARE_BODY, OWN),
    ("DELETE", "filters/{filter}/shares", GROUP_SHARE, OWN_DELETE),
    ("GET", "filters/{filter}/matches?wait=0", None, READ),
]


@pytest.fixture(scope="module")
def table_people(hub, people):
    """bob also holds the annotator name tbl-<TAG> (with a new token: the service caches what the hub
    said about a token for a minute)."""
    from apifixtures import Caller

    bob = people["bob"]
    hub.user(bob.name, groups=[people["team"], f"annotator:tbl-{TAG}"])
    return {**people, "bob": Caller(bob.name, hub.token(bob.name), bob.base)}


def _fresh(people, kind: str) -> str:
    """A resource of alice's, shared with her group as viewer (made in the database, not through the API,
    so the test's own setup does not spend alice's request budget)."""
    from alertlab.api import access
    from alertlab.core import db
    from alertlab.ingest.areas import moc_from_fits_bytes

    alice = people["alice"].name
    with db.engine("alerts").begin() as conn:
        if kind == "watchlist":
            rid = conn.exec_driver_sql("INSERT INTO watchlists (owner, name) VALUES (%s, %s)",
                                       (alice, f"authz-{uuid.uuid4().hex[:6]}")).lastrowid
        elif kind == "area":
            data = moc_fits()
            rid = conn.exec_driver_sql("INSERT INTO areas (owner, name, moc, sky_fraction) VALUES (%s, %s, %s, %s)",
                                       (alice, "authz", data, moc_from_fits_bytes(data).sky_fraction)).lastrowid
        else:
            rid = conn.exec_driver_sql("INSERT INTO filters (owner, name, where_sql) VALUES (%s, %s, %s)",
                                       (alice, "authz", "latest_mag < 14")).lastrowid
    access.grant(access.Resource.of(kind, rid, alice), "group", people["team"], "viewer", alice)
    return str(rid)


def _job(people) -> str:
    r = people["alice"].post("query", params={"async": "true"}, json={"sql": "SELECT 1 AS one"})
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    for _ in range(100):
        if people["alice"].get(f"query/jobs/{job}").json()["status"] == "done":
            return job
        time.sleep(0.05)
    raise AssertionError("the job did not finish")


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("method,path,args,expected", TABLE, ids=[f"{m} {p}" for m, p, _, _ in TABLE])
def test_who_gets_what(table_people, api_data, caller, method, path, args, expected):
    people = table_people
    ctx = {"star": api_data["star"], "far": f"{api_data['prefix']}c100", "ra": api_data["centre"][0],
           "dec": api_data["centre"][1],
           "cutout": api_data["base"] + 3, "team": people["team"]}
    for kind in ("watchlist", "area", "filter"):
        if "{" + kind + "}" in path:
            ctx[kind] = _fresh(people, kind)
    if "{job}" in path:
        ctx["job"] = _job(people)
    want = expected[CALLERS.index(caller)]
    kwargs = args(ctx) if args else {}
    if caller in ("nobody", "forger"):  # callers without a token are throttled per address: give each its own
        kwargs["headers"] = {"X-Forwarded-For": f"10.99.0.{CALLERS.index(caller)}"}
    r = people[caller].request(method, path.format(**ctx), **kwargs)
    for _ in range(3):  # the rate limiter (tested in test_api_ratelimit.py) is not what this test is about
        if r.status_code != 429 or want == 429:
            break
        time.sleep(int(r.headers["Retry-After"]))
        r = people[caller].request(method, path.format(**ctx), **kwargs)
    assert r.status_code == want, f"{caller}: {method} {path}: {r.status_code} {r.text[:300]}"
    if want >= 400:
        assert isinstance(r.json()["detail"], str) and r.json()["detail"]


@pytest.mark.parametrize("plural,kind", [("watchlists", "watchlist"), ("areas", "area"), ("filters", "filter")])
def test_lists_hold_exactly_what_one_may_read(table_people, plural, kind):
    people = table_people
    rid = int(_fresh(people, kind))
    seen = {who: {x["id"]: x["role"] for x in people[who].get(plural).json()} for who in CALLERS[2:]}
    assert rid not in seen["carol"]
    assert seen["bob"][rid] == "viewer" and seen["alice"][rid] == "owner" and seen["admin"][rid] == "admin"
    assert people["alice"].delete(f"{plural}/{rid}/shares", params={"grantee_kind": "group",
                                                                     "grantee": people["team"]}).status_code == 204
    assert rid not in {x["id"] for x in people["bob"].get(plural).json()}
    assert people["bob"].get(f"{plural}/{rid}").status_code == 403
