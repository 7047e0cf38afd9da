"""Dashboards: a gallery notebook rendered by the dashboards' Voilà server for
the viewers allowed to see it.

- In Chromium: bob logs in, finds alice's "Brightness explorer" in the
  gallery, opens it as a dashboard, moves the slider and the table changes;
  carol gets the 403 page. Screenshots in test-artifacts/.
- An open kernel websocket is closed once the viewer leaves the group.
- A viewer cannot reach another viewer's kernel.
- A dashboard's limit of viewers at once (429 beyond it).
- Voilà itself (run directly, no hub): only with its secret and a named
  viewer, the viewer's token in the kernel (no header variables), idle kernels
  culled."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

pytest.register_assert_rewrite("hubfixtures")
from hubfixtures import TAG  # noqa: E402

pytest_plugins = ["hubfixtures"]
pytestmark = [pytest.mark.services, pytest.mark.slow]

GROUP = "demo-team"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EXPLORER = Path(__file__).resolve().parent.parent / "shared_notebooks" / "brightness-explorer.ipynb"


class Person:
    def __init__(self, hub, name):
        self.name = name
        self.token = hub.token(name)
        self.base = hub.service_url
        self.headers = {"Authorization": f"token {self.token}"}

    def request(self, method, path, **kw):
        return httpx.request(method, self.base + path, headers={**self.headers, **kw.pop("headers", {})},
                             timeout=kw.pop("timeout", 180), **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)


@pytest.fixture(scope="module")
def people(hub):
    return {"alice": Person(hub, hub.user(f"alice-d{TAG}", groups=[GROUP])),
            "bob": Person(hub, hub.user(f"bob-d{TAG}", groups=[GROUP])),
            "carol": Person(hub, hub.user(f"carol-d{TAG}"))}


@pytest.fixture(scope="module")
def explorer(people):
    """The shared example "Brightness explorer", published by alice for demo-team."""
    r = people["alice"].request("POST", "api/v1/gallery", json={
        "notebook": EXPLORER.read_text(), "path": f"examples/{uuid.uuid4().hex[:6]}/brightness-explorer.ipynb",
        "description": "A slider over the brightest objects", "tags": ["dashboard", f"t{TAG}"],
        "visibility": f"group:{GROUP}"})
    assert r.status_code == 201, r.text
    return r.json()


def kernel_of(html: str) -> str:
    m = re.search(r'"kernelId":\s*"([0-9a-f-]{36})"', html)
    assert m, "no kernel in the dashboard page"
    return m.group(1)


def shut(person: Person, kid: str) -> None:
    person.request("POST", f"dashboards/-/voila/api/shutdown/{kid}")


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.set_default_timeout(90_000)
        yield page
        browser.close()


def login(page, hub, name: str, next_path: str) -> None:
    page.goto(hub.url + "hub/login?next=" + next_path)
    page.fill("#username_input", name)
    page.fill("#password_input", hub.passwords[name])
    page.click("#login_submit")


def test_bob_finds_the_notebook_opens_the_dashboard_and_the_slider_works(hub, people, explorer, page, artifacts):
    bob = people["bob"].name
    login(page, hub, bob, "/services/alertlab/gallery")
    page.wait_for_url("**/services/alertlab/gallery**")
    page.fill("input[name=q]", "brightness explorer")
    page.fill("input[name=tag]", f"t{TAG}")
    page.click("form.search button[type=submit]")
    card = page.locator(f"article.card[data-slug='{explorer['slug']}']")
    card.wait_for()
    page.screenshot(path=artifacts / "dashboards-gallery.png")
    card.locator("h2 a").click()
    page.wait_for_url(f"**/gallery/{explorer['slug']}")
    assert page.locator("#title").inner_text() == "Brightness explorer"
    page.screenshot(path=artifacts / "dashboards-entry.png")

    page.click("#dashboard")
    page.wait_for_url(f"**/dashboards/{explorer['slug']}")
    title = page.locator(".explorer-title")
    title.wait_for()
    assert title.inner_text() == "The 5 brightest objects"
    assert f"as {bob} may see them" in page.locator(".widget-html").first.inner_text()  # the viewer's rights
    page.screenshot(path=artifacts / "dashboards-before.png")
    handle = page.locator(".noUi-handle").first
    handle.focus()
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    page.locator(".explorer-title", has_text="The 9 brightest objects").wait_for(timeout=30_000)
    page.screenshot(path=artifacts / "dashboards-after.png")


def test_carol_gets_the_403_page(hub, people, explorer, page, artifacts):
    carol = people["carol"].name
    target = f"/services/alertlab/dashboards/{explorer['slug']}"
    login(page, hub, carol, target)
    page.wait_for_url(f"**{target}")
    assert page.locator("h1").inner_text() == "Not shared with you"
    assert "Brightness explorer" not in page.content()
    page.screenshot(path=artifacts / "dashboards-carol-403.png")


def test_the_kernel_websocket_closes_when_the_viewer_leaves_the_group(hub, people, explorer):
    import websocket

    bob = people["bob"]
    r = bob.get(f"dashboards/{explorer['slug']}")
    assert r.status_code == 200
    kid = kernel_of(r.text)
    url = hub.service_url.replace("http", "ws", 1) + f"dashboards/-/api/kernels/{kid}/channels"
    ws = websocket.create_connection(url, header=[f"Authorization: token {bob.token}"], timeout=30)
    try:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({"header": {"msg_id": msg_id, "msg_type": "kernel_info_request", "username": bob.name,
                                       "session": uuid.uuid4().hex, "version": "5.3"},
                            "parent_header": {}, "metadata": {}, "content": {}, "channel": "shell", "buffers": []}))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            reply = json.loads(ws.recv())
            if reply.get("parent_header", {}).get("msg_id") == msg_id and reply["channel"] == "shell":
                break
        assert reply["msg_type"] == "kernel_info_reply"
        hub.api.request("DELETE", f"groups/{GROUP}/users", json={"users": [bob.name]})
        started = time.monotonic()
        with pytest.raises(Exception):  # closed by the service: a close frame, then nothing
            while time.monotonic() - started < 30:
                ws.recv()
        assert time.monotonic() - started < 15
    finally:
        ws.close()
        hub.api.request("POST", f"groups/{GROUP}/users", json={"users": [bob.name]})
        shut(bob, kid)


def test_a_viewer_cannot_reach_another_viewers_kernel(hub, people, explorer):
    import websocket

    alice, bob = people["alice"], people["bob"]
    r = alice.get(f"dashboards/{explorer['slug']}")
    kid = kernel_of(r.text)
    try:
        assert bob.get(f"dashboards/-/api/kernels/{kid}").status_code == 403
        assert bob.request("POST", f"dashboards/-/voila/api/shutdown/{kid}").status_code == 403
        assert alice.get(f"dashboards/-/api/kernels/{kid}").status_code == 200
        url = hub.service_url.replace("http", "ws", 1) + f"dashboards/-/api/kernels/{kid}/channels"
        with pytest.raises(Exception):
            websocket.create_connection(url, header=[f"Authorization: token {bob.token}"], timeout=30).recv()
        # Voilà's own file server, directory listing and render URLs are not reachable
        for path in ("", "voila/tree", "voila/api/contents/", "voila/files/x.png",
                     f"voila/render/{explorer['slug']}-v1.ipynb", "alertlab/stats"):
            assert bob.get(f"dashboards/-/{path}").status_code == 404, path
    finally:
        shut(alice, kid)


def test_a_dashboard_has_a_limit_of_viewers_at_once(hub, people):
    alice, bob = people["alice"], people["bob"]
    r = alice.request("POST", "api/v1/gallery", json={"notebook": EXPLORER.read_text(), "visibility": f"group:{GROUP}",
                                                      "path": f"limit/{uuid.uuid4().hex[:6]}.ipynb"})
    slug = r.json()["slug"]
    assert alice.request("PATCH", f"api/v1/gallery/{slug}", json={"dashboard_limit": 1}).status_code == 200
    first = bob.get(f"dashboards/{slug}")
    assert first.status_code == 200
    busy = alice.get(f"dashboards/{slug}")
    assert busy.status_code == 429 and "busy" in busy.text and busy.headers["retry-after"]
    shut(bob, kernel_of(first.text))
    again = alice.get(f"dashboards/{slug}")
    assert again.status_code == 200
    shut(alice, kernel_of(again.text))


# -- Voilà itself, without the hub ----------------------------------------------------------------

@pytest.fixture
def voila(tmp_path):
    """The dashboards' Voilà app on a free port, culling kernels idle for 2 s; (base URL, secret, root)."""
    from alertlab.core.services.process import free_port, port_open
    from alertlab.dashboards import server

    root = tmp_path / "dashboards"
    root.mkdir()
    jupyter = tmp_path / "jupyter"
    server.write_jupyter_dir(jupyter, sys.executable)
    env = server.environment(str(tmp_path), "root", sys.executable, jupyter)
    (root / "env.ipynb").write_text(json.dumps({
        "nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "alertlab", "language": "python",
                                                                        "display_name": "AlertLab"}},
        "cells": [{"cell_type": "code", "id": "a", "metadata": {}, "outputs": [], "execution_count": None,
                   "source": "import os\nprint('token=' + os.environ.get('ALERTLAB_TOKEN', 'none'))\n"
                             "print('headers=' + ','.join(k for k in os.environ if k.startswith('HTTP_')))"}]}))
    port, secret = free_port(), uuid.uuid4().hex
    read_end, write_end = os.pipe()
    os.write(write_end, secret.encode())
    os.close(write_end)
    base = "/services/alertlab/dashboards/-/"
    proc = subprocess.Popen([sys.executable, "-m", "alertlab.dashboards.voila_app", "--port", str(port), "--base-url",
                             base, "--root", str(root), "--token-fd", str(read_end), "--idle", "2", "--warm", "0"],
                            env=env, cwd=root, pass_fds=[read_end], stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "voila.log", "wb"))
    os.close(read_end)
    try:
        deadline = time.monotonic() + 60
        while not port_open(port) and time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "voila.log").read_text()
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}{base}", secret
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_voila_answers_only_its_proxy_puts_the_viewer_token_in_the_kernel_and_culls(voila):
    base, secret = voila
    auth = {"Authorization": f"token {secret}"}
    viewer = {**auth, "X-AlertLab-Viewer": "vera", "X-AlertLab-Dashboard": "env", "X-AlertLab-Limit": "5",
              "X-AlertLab-Token": "vera-s-token"}
    assert httpx.get(base + "voila/render/env.ipynb", headers={k: v for k, v in viewer.items() if k != "Authorization"},
                     timeout=60).status_code in (302, 403)
    assert httpx.get(base + "voila/render/env.ipynb", headers=auth, timeout=60).status_code == 403  # no viewer
    r = httpx.get(base + "voila/render/env.ipynb", headers=viewer, timeout=120)
    assert r.status_code == 200
    assert "token=vera-s-token" in r.text
    assert "headers=" in r.text and not re.search(r"headers=[A-Z]", r.text)  # no HTTP_* variable left
    stats = httpx.get(base + "alertlab/stats", headers=auth, timeout=30).json()
    assert stats["kernels"] == 1 and stats["dashboards"] == {"env": 1}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if httpx.get(base + "alertlab/stats", headers=auth, timeout=30).json()["kernels"] == 0:
            break
        time.sleep(1)
    else:
        pytest.fail("the idle kernel was not culled")
