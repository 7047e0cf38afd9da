"""The gallery and sharing through the real hub and service.

alice shares a notebook with the group demo-team: bob (a member) sees it in
the gallery, opens a copy in his own home and opens its dashboard (which runs
as bob); carol (not a member) gets 403 on every URL of it: its page, HTML
render, thumbnail, old versions, download, dashboard. Removing bob from the
group ends his access at once. The table: every gallery URL (API, pages,
dashboard) and the schedule-sharing URLs × {no token, carol, bob, alice,
admin}. Hostile titles stay text. Publishing from a user's server (the server
extension and ``alertlab.client.publish`` in a kernel) adds versions."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import pwd
import re
import uuid
from urllib.parse import unquote
from datetime import datetime

import httpx
import nbformat
import pytest
from PIL import Image

pytest.register_assert_rewrite("hubfixtures")
from hubfixtures import TAG, run_cell  # noqa: E402

pytest_plugins = ["hubfixtures"]
pytestmark = [pytest.mark.services, pytest.mark.slow]

GROUP = "demo-team"
CALLERS = ("nobody", "carol", "bob", "alice", "admin")


class Person:
    def __init__(self, hub, name: str | None):
        self.name = name
        self.base = hub.service_url
        self.headers = {"Authorization": f"token {hub.token(name)}"} if name else {}

    def request(self, method: str, path: str, **kw) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return httpx.request(method, self.base + path, headers=headers, timeout=kw.pop("timeout", 120), **kw)

    def get(self, path: str, **kw) -> httpx.Response:
        return self.request("GET", path, **kw)


@pytest.fixture(scope="module")
def people(hub):
    names = {"alice": hub.user(f"alice-g{TAG}", groups=[GROUP]), "bob": hub.user(f"bob-g{TAG}", groups=[GROUP]),
             "carol": hub.user(f"carol-g{TAG}")}
    out = {role: Person(hub, name) for role, name in names.items()}
    out["admin"] = Person(hub, hub.admin)
    out["nobody"] = Person(hub, None)
    return out


def png(color) -> str:
    out = io.BytesIO()
    Image.new("RGB", (640, 400), color).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def notebook(title: str, color=(220, 40, 40), code: str = "print('hello')") -> dict:
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(f"# {title}"),
        nbformat.v4.new_code_cell(code),
        nbformat.v4.new_code_cell("None  # a plot was here", outputs=[nbformat.v4.new_output("display_data",
                                                                            data={"image/png": png(color)})]),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    return json.loads(nbformat.writes(nb))


def publish(person: Person, nb: dict, **fields) -> dict:
    r = person.request("POST", "api/v1/gallery", json={"notebook": nb, **fields})
    assert r.status_code == 201, r.text
    return r.json()


def fresh_entry(people, versions: int = 2) -> dict:
    """An entry of alice's shared with demo-team as viewer, with ``versions`` versions (each with an image);
    made in-process (as the service would), so the tests' setup does not spend alice's request budget."""
    from alertlab.api.auth import HubUser
    from alertlab.gallery import store

    alice = HubUser(name=people["alice"].name)
    path = f"work/{uuid.uuid4().hex[:8]}.ipynb"
    entry = store.publish(alice, json.dumps(notebook("Authz", (255, 0, 0))).encode(), path=path,
                          visibility_=f"group:{GROUP}")
    for _ in range(1, versions):
        entry = store.publish(alice, json.dumps(notebook("Authz", (0, 0, 255))).encode(), path=path)
    return entry


def kernel_of(html: str) -> str | None:
    m = re.search(r'"kernelId":\s*"([0-9a-f-]{36})"', html)
    return m.group(1) if m else None


def close_dashboard(person: Person, html: str) -> None:
    """What the page does when its tab closes: shut its kernel down (so tests leave none behind)."""
    kid = kernel_of(html)
    if kid:
        person.request("POST", f"dashboards/-/voila/api/shutdown/{kid}")


# -- the table -------------------------------------------------------------------------------------

ANY = (401, 200, 200, 200, 200)
READ = (401, 403, 200, 200, 200)
EDIT = (401, 403, 403, 200, 200)
OWN = EDIT
OWN_CREATE = (401, 403, 403, 201, 201)
OWN_DELETE = (401, 403, 403, 204, 204)
COPY = (401, 403, 201, 201, 201)
FORM = (401, 403, 303, 303, 303)

TABLE = [
    # the gallery's API
    ("GET", "api/v1/gallery", None, ANY),
    ("GET", "api/v1/gallery/{slug}", None, READ),
    ("PATCH", "api/v1/gallery/{slug}", {"json": {"description": "changed"}}, EDIT),
    ("DELETE", "api/v1/gallery/{fresh}", None, OWN_DELETE),
    ("GET", "api/v1/gallery/{slug}/versions/1", None, READ),
    ("GET", "api/v1/gallery/{slug}/versions/2", None, READ),
    ("GET", "api/v1/gallery/{slug}/versions/1/html", None, READ),
    ("GET", "api/v1/gallery/{slug}/versions/1/thumbnail", None, READ),
    ("GET", "api/v1/gallery/{slug}/versions/2/thumbnail", None, READ),
    ("PUT", "api/v1/gallery/{slug}/star", None, READ),
    ("DELETE", "api/v1/gallery/{slug}/star", None, READ),
    ("PUT", "api/v1/gallery/{fresh}/visibility", {"json": {"visibility": "private"}}, OWN),
    ("GET", "api/v1/gallery/{slug}/shares", None, READ),
    ("PUT", "api/v1/gallery/{slug}/shares", {"json": {"grantee_kind": "user", "grantee": "zed"}}, OWN),
    ("DELETE", "api/v1/gallery/{fresh}/shares?grantee_kind=group&grantee=" + GROUP, None, OWN_DELETE),
    ("GET", "api/v1/gallery/{slug}/links", None, OWN),
    ("POST", "api/v1/gallery/{slug}/links", {"json": {"days": 1}}, OWN_CREATE),
    ("DELETE", "api/v1/gallery/{slug}/links/{link_id}", None, OWN_DELETE),
    ("POST", "api/v1/gallery/{slug}/copy", None, COPY),
    ("POST", "api/v1/gallery/{slug}/copy?version=1", None, COPY),
    # the pages
    ("GET", "gallery", None, ANY),
    ("GET", "gallery/{slug}", None, READ),
    ("GET", "gallery/{slug}?version=1", None, READ),
    ("GET", "gallery/{slug}/render", None, READ),
    ("GET", "gallery/{slug}/render?version=1", None, READ),
    ("GET", "gallery/{slug}/thumbnail?version=1", None, READ),
    ("GET", "gallery/{slug}/download?version=1", None, READ),
    ("POST", "gallery/{slug}/star", {"data": {"on": "1"}}, FORM),
    ("POST", "gallery/{slug}/copy", {"data": {"version": "1"}}, FORM),
    ("POST", "gallery/{slug}/shares", {"data": {"action": "add", "grantee_kind": "user", "grantee": "zed"}},
     (401, 403, 403, 303, 303)),
    # the dashboard
    ("GET", "dashboards/{slug}", None, READ),
    ("GET", "dashboards/{slug}?version=1", None, READ),
    # schedules and their runs' outputs, shared with demo-team
    ("GET", "api/v1/schedules/{schedule}/shares", None, READ),
    ("PUT", "api/v1/schedules/{schedule}/shares", {"json": {"grantee_kind": "user", "grantee": "zed"}}, OWN),
    ("GET", "api/v1/shared/schedules/{schedule}/runs", None, READ),
    ("GET", "api/v1/shared/runs/{run}/output", None, READ),
    ("GET", "api/v1/shared/runs/{run}/output?format=ipynb", None, READ),
]


def shared_schedule(people) -> tuple[int, int]:
    """A schedule of alice's with one finished run and its output, shared with demo-team (rows written as
    the scheduler writes them)."""
    from alertlab.api import access
    from alertlab.core import db

    now = datetime.utcnow()
    with db.engine("app").begin() as conn:
        sid = conn.exec_driver_sql(
            "INSERT INTO schedules (owner, name, notebook, kernel, trigger_kind, cron, created, updated) "
            "VALUES (%s, 'nightly', 'nightly.ipynb', 'alertlab', 'cron', '0 9 * * *', %s, %s)",
            (people["alice"].name, now, now)).lastrowid
        rid = conn.exec_driver_sql(
            "INSERT INTO runs (schedule_id, owner, reason, fire_time, notebook, kernel, status, queued, started, "
            "ended) VALUES (%s, %s, 'cron', %s, 'nightly.ipynb', 'alertlab', 'succeeded', %s, %s, %s)",
            (sid, people["alice"].name, now, now, now, now)).lastrowid
        conn.exec_driver_sql("INSERT INTO run_outputs (run_id, ipynb_gz, html_gz, created) VALUES (%s, %s, %s, %s)",
                             (rid, gzip.compress(b'{"cells": []}'), gzip.compress(b"<p>run output</p>"), now))
    access.grant(access.Resource.of("schedule", sid, people["alice"].name), "group", GROUP, "viewer",
                 people["alice"].name)
    return sid, rid


@pytest.fixture(scope="module")
def shared(people) -> dict:
    """One entry (two versions) and one schedule with a run, shared with demo-team, for the rows of the
    table that change nothing others would notice; rows marked {fresh} get an entry of their own."""
    entry = fresh_entry(people)
    schedule, run = shared_schedule(people)
    return {"slug": entry["slug"], "entry": entry, "schedule": schedule, "run": run}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("method,path,args,expected", TABLE, ids=[f"{m} {p}" for m, p, _, _ in TABLE])
def test_who_gets_what(people, shared, caller, method, path, args, expected):
    ctx = dict(shared)
    if "{fresh}" in path:
        ctx["fresh"] = fresh_entry(people, versions=1)["slug"]
    if "{link_id}" in path:
        from alertlab.api import access
        from alertlab.gallery import store

        ctx["link_id"] = access.create_link(store.resource(shared["entry"]), shared["entry"]["owner"], 3600)[1].id
    want = expected[CALLERS.index(caller)]
    person = people[caller]
    r = person.request(method, path.format(**ctx), **(args or {}))
    assert r.status_code == want, f"{caller}: {method} {path}: {r.status_code} {r.text[:300]}"
    if path.startswith("dashboards/") and r.status_code == 200:
        assert "jupyter-widgets" in r.text or "voila" in r.text.lower()
        close_dashboard(person, r.text)
    if want == 403:
        assert "not shared with you" in r.text or "may not" in r.text


def test_the_list_holds_exactly_what_each_may_see(people):
    entry = fresh_entry(people, versions=1)
    private = publish(people["alice"], notebook("Private one"), path=f"p/{uuid.uuid4().hex}.ipynb")
    seen = {who: {e["slug"] for e in people[who].get("api/v1/gallery?per_page=200&author="
                                                     + people["alice"].name).json()["entries"]}
            for who in ("carol", "bob", "alice", "admin")}
    assert entry["slug"] not in seen["carol"] and private["slug"] not in seen["carol"]
    assert entry["slug"] in seen["bob"] and private["slug"] not in seen["bob"]
    assert {entry["slug"], private["slug"]} <= seen["alice"] and {entry["slug"], private["slug"]} <= seen["admin"]
    page = people["carol"].get("gallery?author=" + people["alice"].name).text
    assert entry["slug"] not in page


# -- the story -------------------------------------------------------------------------------------

def test_bob_sees_it_opens_a_copy_and_the_dashboard_and_carol_gets_403(hub, people):
    import alertlab.client as al

    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    client = al.Client(url=hub.service_url, token=alice.headers["Authorization"].split()[1])
    src = f"/tmp/gallery-{TAG}-{uuid.uuid4().hex[:6]}.ipynb"
    with open(src, "w") as fh:
        json.dump(notebook("Light curves of fast risers", (10, 200, 10),
                           "import alertlab.client as al\nprint('viewer:', al.whoami()['name'])"), fh)
    first = al.publish(src, description="v1", tags=["ztf", "risers"], visibility=f"group:{GROUP}", client=client)
    entry = al.publish(src, description="v2", client=client)  # the same file again: a new version
    os.unlink(src)
    slug = entry["slug"]
    assert entry["slug"] == first["slug"] and entry["latest_version"] == 2 and entry["tags"] == ["risers", "ztf"]

    # bob finds it in the gallery (text, tag, author, group) and opens it
    for query in ("q=fast+risers", "tag=risers", f"author={alice.name}", f"group={GROUP}"):
        assert slug in bob.get("gallery?" + query).text, query
    page = bob.get(f"gallery/{slug}")
    assert page.status_code == 200 and "Open a copy in my server" in page.text and "Open as dashboard" in page.text
    render = bob.get(f"gallery/{slug}/render")
    assert render.status_code == 200 and "sandbox" in render.headers["content-security-policy"]
    thumb = bob.get(f"gallery/{slug}/thumbnail")
    assert thumb.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(thumb.content)) as img:
        assert img.convert("RGB").getpixel((3, 3)) == (10, 200, 10)  # the first image output

    # a copy in bob's own home, as bob, and JupyterLab opens it
    copied = bob.request("POST", f"api/v1/gallery/{slug}/copy")
    assert copied.status_code == 201, copied.text
    path, url = copied.json()["path"], copied.json()["url"]
    assert path == "gallery/Light curves of fast risers.ipynb"
    assert url.startswith(f"/user/{bob.name}/lab/tree/gallery/")
    from alertlab.hub.unixusers import unix_name

    pw = pwd.getpwnam(unix_name(bob.name))
    full = os.path.join(pw.pw_dir, path)
    assert os.stat(full).st_uid == pw.pw_uid
    with open(full) as fh:
        copy = json.load(fh)
    assert copy["metadata"]["alertlab"]["gallery"] == {"slug": slug, "version": 2, "author": alice.name}
    again = bob.request("POST", f"api/v1/gallery/{slug}/copy").json()["path"]
    assert again == "gallery/Light curves of fast risers (2).ipynb"  # never overwritten
    form = bob.request("POST", f"gallery/{slug}/copy", data={"version": "1"})
    assert form.status_code == 303 and form.headers["location"].startswith(f"/user/{bob.name}/lab/tree/gallery/")

    # the dashboard runs with bob's rights, not alice's
    dash = bob.get(f"dashboards/{slug}")
    assert dash.status_code == 200 and f"viewer: {bob.name}" in dash.text
    close_dashboard(bob, dash.text)

    # carol: 403 on every URL of it, old versions included
    for url in (f"gallery/{slug}", f"gallery/{slug}?version=1", f"gallery/{slug}/render",
                f"gallery/{slug}/render?version=1", f"gallery/{slug}/thumbnail", f"gallery/{slug}/thumbnail?version=1",
                f"gallery/{slug}/download?version=1", f"dashboards/{slug}", f"dashboards/{slug}?version=1",
                f"api/v1/gallery/{slug}", f"api/v1/gallery/{slug}/versions/1",
                f"api/v1/gallery/{slug}/versions/1/html", f"api/v1/gallery/{slug}/versions/1/thumbnail"):
        r = carol.get(url)
        assert r.status_code == 403, (url, r.status_code)
        assert "Light curves" not in r.text and "fast risers" not in r.text
    assert carol.request("POST", f"api/v1/gallery/{slug}/copy").status_code == 403

    # a link lets carol in while it lasts
    made = alice.request("POST", f"api/v1/gallery/{slug}/links", json={"days": 1}).json()
    assert carol.get(f"gallery/{slug}?link={made['link']}").status_code == 200
    assert carol.get(f"gallery/{slug}/render?link={made['link']}").status_code == 200
    assert alice.request("DELETE", f"api/v1/gallery/{slug}/links/{made['id']}").status_code == 204
    assert carol.get(f"gallery/{slug}?link={made['link']}").status_code == 403


def test_removing_bob_from_the_group_removes_his_access_at_once(hub, people):
    bob = people["bob"]
    entry = fresh_entry(people)
    slug = entry["slug"]
    urls = [f"gallery/{slug}", f"gallery/{slug}/render", f"gallery/{slug}/thumbnail?version=1",
            f"api/v1/gallery/{slug}", f"api/v1/gallery/{slug}/versions/1/html"]
    for url in urls:  # the service has now cached what the hub said about bob's token
        assert bob.get(url).status_code == 200, url
    hub.api.request("DELETE", f"groups/{GROUP}/users", json={"users": [bob.name]})
    try:
        for url in urls + [f"dashboards/{slug}"]:
            assert bob.get(url).status_code == 403, url
        assert slug not in {e["slug"] for e in bob.get("api/v1/gallery?per_page=200").json()["entries"]}
    finally:
        hub.api.request("POST", f"groups/{GROUP}/users", json={"users": [bob.name]})
    assert bob.get(f"gallery/{slug}").status_code == 200


HOSTILE = "../../etc/x <script>alert('gotcha')</script> \"double\" 'single' Élodie 漢字"


def test_hostile_titles_and_names_are_stored_as_typed_and_shown_as_text(people):
    alice, bob = people["alice"], people["bob"]
    entry = publish(alice, notebook("ignored"), title=HOSTILE, description=f"<img src=x onerror=alert(1)> {HOSTILE}",
                    tags=["<b>bold</b>", "漢字"], path=f"../../{uuid.uuid4().hex}/<x>.ipynb",
                    visibility=f"group:{GROUP}")
    slug = entry["slug"]
    assert re.fullmatch(r"[a-z0-9-]+", slug)
    got = bob.get(f"api/v1/gallery/{slug}").json()
    assert got["title"] == HOSTILE and got["tags"] == ["<b>bold</b>", "漢字"]
    for url in (f"gallery/{slug}", f"gallery?q=%E6%BC%A2%E5%AD%97", "gallery?tag=%3Cb%3Ebold%3C%2Fb%3E"):
        page = bob.get(url)
        assert page.status_code == 200 and slug in page.text, url
        assert "<script>alert(" not in page.text and "<img src=x" not in page.text and "<b>bold</b>" not in page.text
        assert "&lt;script&gt;alert(" in page.text and "Élodie 漢字" in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
    for url in (f"gallery/{slug}/download", f"api/v1/gallery/{slug}/versions/1"):  # page and API alike
        download = bob.get(url)
        assert download.status_code == 200, url
        name = unquote(download.headers["content-disposition"].split("''", 1)[1])
        assert "/" not in name and "Élodie 漢字" in name and name.endswith(".ipynb"), url
    copied = bob.request("POST", f"api/v1/gallery/{slug}/copy").json()["path"]
    assert copied.startswith("gallery/") and "/" not in copied[len("gallery/"):] and "<" not in copied
    assert "Élodie 漢字" in copied


def test_search_sort_and_stars(people):
    alice, bob = people["alice"], people["bob"]
    word = f"zq{uuid.uuid4().hex[:6]}"
    a = publish(alice, notebook(f"{word} first"), tags=[word], visibility="public", path=f"{word}/a.ipynb")
    b = publish(alice, notebook(f"{word} second"), visibility="public", path=f"{word}/b.ipynb")
    listing = bob.get(f"api/v1/gallery?q={word}").json()["entries"]
    assert [e["slug"] for e in listing] == [b["slug"], a["slug"]]  # most recent first
    assert bob.request("PUT", f"api/v1/gallery/{a['slug']}/star").json() == {"stars": 1, "starred": True}
    assert bob.request("PUT", f"api/v1/gallery/{a['slug']}/star").json()["stars"] == 1  # once per person
    assert people["carol"].request("PUT", f"api/v1/gallery/{a['slug']}/star").json()["stars"] == 2
    by_stars = bob.get(f"api/v1/gallery?q={word}&sort=stars").json()["entries"]
    assert [e["slug"] for e in by_stars] == [a["slug"], b["slug"]] and by_stars[0]["starred"]
    assert [e["slug"] for e in bob.get(f"api/v1/gallery?tag={word}").json()["entries"]] == [a["slug"]]
    assert bob.get(f"api/v1/gallery?q={word}+second").json()["entries"][0]["slug"] == b["slug"]
    assert bob.request("DELETE", f"api/v1/gallery/{a['slug']}/star").json() == {"stars": 1, "starred": False}
    page = bob.get(f"gallery?q={word}&sort=stars").text
    assert page.index(a["slug"]) < page.index(b["slug"])


def test_bad_publishes_are_refused_with_the_reason(people):
    alice, bob = people["alice"], people["bob"]
    r = alice.request("POST", "api/v1/gallery", json={"notebook": "{not json"})
    assert r.status_code == 422 and "not JSON" in r.json()["detail"]
    r = alice.request("POST", "api/v1/gallery", json={"notebook": notebook("x"), "visibility": "friends"})
    assert r.status_code == 422 and "visibility" in r.json()["detail"]
    entry = fresh_entry(people, versions=1)
    r = bob.request("POST", "api/v1/gallery", json={"notebook": notebook("x"), "slug": entry["slug"]})
    assert r.status_code == 403  # a viewer may not publish versions
    publish(alice, notebook("x"), slug=entry["slug"], visibility=f"group:{GROUP}:editor")
    assert publish(bob, notebook("y"), slug=entry["slug"])["latest_version"] == 3  # an editor may
    r = bob.request("POST", "api/v1/gallery", json={"notebook": notebook("x"), "slug": entry["slug"],
                                                    "visibility": "public"})
    assert r.status_code == 403 and "owner" in r.json()["detail"]


def test_publish_from_the_server_extension_and_from_a_kernel(hub, people):
    alice = people["alice"]
    hub.spawn(alice.name)
    token = alice.headers["Authorization"].split()[1]
    server = f"{hub.url}user/{alice.name}/"
    headers = {"Authorization": f"token {token}"}
    nb = notebook("From my server", (1, 2, 3))
    r = httpx.put(server + "api/contents/analysis.ipynb", json={"type": "notebook", "content": nb}, headers=headers,
                  timeout=60)
    assert r.status_code in (200, 201), r.text
    form = httpx.get(server + "alertlab/gallery/publish?path=analysis.ipynb", headers=headers, timeout=60)
    assert form.status_code == 200 and "From my server" in form.text and f"group {GROUP}" in form.text
    r = httpx.post(server + "alertlab/gallery/publish", headers=headers, timeout=120,
                   json={"path": "analysis.ipynb", "visibility": f"group:{GROUP}", "tags": ["mine"]})
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["title"] == "From my server" and entry["latest_version"] == 1
    out = run_cell(hub.url, alice.name, token,
                   "import alertlab.client as al\n"
                   "e = al.publish('analysis.ipynb', description='from the kernel')\n"
                   "print(e['slug'], e['latest_version'], e['description'])")
    assert out["error"] is None, out
    assert out["stdout"].split() == [entry["slug"], "2", "from", "the", "kernel"]
    assert people["bob"].get(f"gallery/{entry['slug']}").status_code == 200


def test_a_schedule_may_trigger_on_a_filter_shared_with_its_owner(hub, people):
    from alertlab.api import access
    from alertlab.core import db
    from alertlab.scheduler import permissions
    from alertlab.scheduler.errors import ScheduleForbidden

    alice, bob, carol = people["alice"].name, people["bob"].name, people["carol"].name
    with db.engine("alerts").begin() as conn:
        fid = conn.exec_driver_sql("INSERT INTO filters (owner, name, where_sql) VALUES (%s, 'shared', "
                                   "'latest_mag < 14')", (alice,)).lastrowid
    with pytest.raises(ScheduleForbidden):
        permissions.check_alert_source(bob, "filter", fid)
    access.grant(access.Resource.of("filter", fid, alice), "group", GROUP, "viewer", alice)
    assert permissions.check_alert_source(bob, "filter", fid) == ("filter", str(fid))
    with pytest.raises(ScheduleForbidden):
        permissions.check_alert_source(carol, "filter", fid)
    hub.api.request("DELETE", f"groups/{GROUP}/users", json={"users": [bob]})
    try:
        with pytest.raises(ScheduleForbidden):
            permissions.check_alert_source(bob, "filter", fid)
    finally:
        hub.api.request("POST", f"groups/{GROUP}/users", json={"users": [bob]})
