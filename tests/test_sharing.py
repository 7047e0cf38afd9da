"""The one sharing model (alertlab.api.access) for the gallery's notebooks and
every other kind, against the real MariaDB (no hub: groups come from the
caller's token here; tests/test_gallery.py covers the hub's fresh answer):

- the table: who reads, edits, owns a resource shared in each possible way
  (private, group viewer/editor, named user, all logged-in users, a link,
  an expired link), for the other user, the group member, the owner, the admin;
- ``readable_sql`` (what the gallery list uses) agrees with ``role`` row by row;
- visibility phrases become exactly those shares;
- notebook names and titles with ../, <script>, quotes and unicode stay text."""

from __future__ import annotations

import base64
import io
import uuid
from datetime import datetime, timedelta

import nbformat
import pytest
from PIL import Image

from alertlab.api import access
from alertlab.api.auth import Forbidden, HubUser
from alertlab.gallery import notebooks, visibility

OWNER = HubUser("owner-s")
MEMBER = HubUser("member-s", groups=("team-s",))
OTHER = HubUser("other-s", groups=("elsewhere",))
NAMED = HubUser("named-s")
ADMIN = HubUser("admin-s", admin=True)
WHO = {"other": OTHER, "member": MEMBER, "named": NAMED, "owner": OWNER, "admin": ADMIN}


@pytest.fixture(autouse=True)
def no_hub(monkeypatch):
    """These tests run without a hub even when an earlier test module left one's state in ALERTLAB_HOME:
    groups then come from the caller's token, as the module docstring says."""
    from alertlab.api import hubgroups

    monkeypatch.setattr(hubgroups, "_hub_configured", lambda: False)


@pytest.fixture
def fresh_kind(services):
    """A resource kind of its own (its shares are deleted afterwards)."""
    from alertlab.core import db

    kind = f"t{uuid.uuid4().hex[:10]}"
    yield kind
    with db.engine("app").begin() as conn:
        conn.exec_driver_sql("DELETE FROM shares WHERE resource_kind = %s", (kind,))


def _make(kind: str, how: str) -> tuple[access.Resource, str | None]:
    res = access.Resource.of(kind, uuid.uuid4().int % 10**9, OWNER.name)
    link = None
    if how == "group-viewer":
        access.grant(res, "group", "team-s", "viewer", OWNER.name)
    elif how == "group-editor":
        access.grant(res, "group", "team-s", "editor", OWNER.name)
    elif how == "user":
        access.grant(res, "user", NAMED.name, "viewer", OWNER.name)
    elif how == "all":
        access.grant(res, "all", "", "viewer", OWNER.name)
    elif how == "link":
        link, _ = access.create_link(res, OWNER.name, 3600)
    return res, link


# role each caller gets, for each way of sharing: other, member, named, owner, admin
TABLE = {
    "private": (None, None, None, "owner", "admin"),
    "group-viewer": (None, "viewer", None, "owner", "admin"),
    "group-editor": (None, "editor", None, "owner", "admin"),
    "user": (None, None, "viewer", "owner", "admin"),
    "all": ("viewer", "viewer", "viewer", "owner", "admin"),
}


@pytest.mark.services
@pytest.mark.parametrize("how", list(TABLE))
def test_who_gets_which_role(fresh_kind, how):
    res, _ = _make(fresh_kind, how)
    got = tuple(access.role(WHO[w], res) for w in ("other", "member", "named", "owner", "admin"))
    assert got == TABLE[how]
    for who, role in zip(("other", "member", "named", "owner", "admin"), TABLE[how]):
        if role is None:
            with pytest.raises(Forbidden, match="not shared with you"):
                access.check(WHO[who], res, "read")
        else:
            assert access.check(WHO[who], res, "read") == role
    # only the owner and admins may change who sees it
    with pytest.raises(Forbidden):
        access.check(MEMBER, res, "own")


@pytest.mark.services
def test_a_link_lets_whoever_holds_it_read_until_it_expires_or_is_revoked(fresh_kind):
    from alertlab.core import db

    res, link = _make(fresh_kind, "link")
    assert access.role(OTHER, res) is None
    assert access.role(OTHER, res, link=link) == "viewer"
    assert access.role(OTHER, res, link=link + "x") is None
    assert access.role(OTHER, access.Resource.of(fresh_kind, "other-id", OWNER.name), link=link) is None
    # the table keeps only a digest of the link
    with db.engine("app").connect() as conn:
        stored = conn.exec_driver_sql("SELECT grantee FROM shares WHERE resource_kind = %s",
                                      (fresh_kind,)).scalars().all()
    assert link not in stored and access.link_digest(link) in stored
    [made] = access.links(res)
    assert made.expires - made.created == timedelta(seconds=3600)
    with db.engine("app").begin() as conn:  # time passes
        conn.exec_driver_sql("UPDATE shares SET expires = %s WHERE id = %s", (datetime(2000, 1, 1), made.id))
    assert access.role(OTHER, res, link=link) is None
    assert access.links(res) == []
    link2, made2 = access.create_link(res, OWNER.name, 60)
    assert access.role(OTHER, res, link=link2) == "viewer"
    assert access.revoke_link(res, made2.id)
    assert access.role(OTHER, res, link=link2) is None
    with pytest.raises(access.InvalidShare):
        access.create_link(res, OWNER.name, 400 * 86400)


@pytest.mark.services
def test_readable_sql_agrees_with_role(fresh_kind):
    """The gallery lists with readable_sql; pages decide with role: they must never disagree."""
    from alertlab.core import db

    made = {how: _make(fresh_kind, how)[0] for how in TABLE}
    with db.engine("app").connect() as conn:
        conn.exec_driver_sql("CREATE TEMPORARY TABLE rows_t (id INT, owner VARCHAR(255))")
        for r in made.values():
            conn.exec_driver_sql("INSERT INTO rows_t VALUES (%s, %s)", (int(r.id), r.owner))
        for user in WHO.values():
            condition, params = access.readable_sql(user, fresh_kind, "r.id", "r.owner")
            seen = {str(i) for i in conn.exec_driver_sql(f"SELECT r.id FROM rows_t r WHERE {condition}",
                                                         tuple(params)).scalars()}
            expected = {r.id for r in made.values() if access.role(user, r) is not None}
            assert seen == expected, user.name
        conn.exec_driver_sql("DROP TEMPORARY TABLE rows_t")


def test_visibility_phrases_become_shares():
    assert visibility.parse("private") == (True, [])
    assert visibility.parse("public") == (False, [visibility.Grant("all", "", "viewer")])
    assert visibility.parse("group:demo-team") == (False, [visibility.Grant("group", "demo-team", "viewer")])
    assert visibility.parse(["group:demo-team:editor", "user:bob"]) == (
        False, [visibility.Grant("group", "demo-team", "editor"), visibility.Grant("user", "bob", "viewer")])
    assert visibility.parse({"public": True, "groups": {"a": "editor"}, "users": ["c"]}) == (
        False, [visibility.Grant("all", "", "viewer"), visibility.Grant("group", "a", "editor"),
                visibility.Grant("user", "c", "viewer")])
    for bad in ("friends", "group:", {"everyone": True}, {"groups": {"a": "owner"}}, 42):
        with pytest.raises(access.InvalidShare):
            visibility.parse(bad)


@pytest.mark.services
def test_applying_a_visibility_replaces_the_shares_and_private_drops_links(fresh_kind):
    res = access.Resource.of(fresh_kind, "1", OWNER.name)
    visibility.apply(res, ["group:team-s", "user:named-s:editor"], OWNER.name)
    assert {(s.grantee_kind, s.grantee, s.role) for s in access.shares(res)} == {
        ("group", "team-s", "viewer"), ("user", "named-s", "editor")}
    access.create_link(res, OWNER.name, 60)
    visibility.apply(res, "public", OWNER.name)
    assert [(s.grantee_kind, s.role) for s in access.shares(res)] == [("all", "viewer")]
    assert len(access.links(res)) == 1
    visibility.apply(res, "private", OWNER.name)
    assert access.shares(res) == [] and access.links(res) == []
    with pytest.raises(access.InvalidShare, match="owns"):
        visibility.apply(res, "user:owner-s", OWNER.name)


# -- names and titles ------------------------------------------------------------------------------

HOSTILE = "../../etc/passwd <script>alert('x')</script> \"quoted\" 'single' Élodie 漢字 🚀"


def test_file_names_are_never_paths_and_keep_letters():
    name = notebooks.file_name(HOSTILE)
    assert "/" not in name and "\\" not in name and not name.startswith(".") and name.endswith(".ipynb")
    assert "<" not in name and ">" not in name and '"' not in name and "'" not in name
    assert "Élodie" in name and "漢字" in name
    assert notebooks.file_name("../..") == "notebook.ipynb"
    assert notebooks.file_name("...hidden") == "hidden.ipynb"


def test_slugs_are_ascii_and_titles_keep_everything_but_control_characters():
    assert notebooks.slugify(HOSTILE) == "etc-passwd-script-alert-x-script-quoted-single-elodie"
    assert notebooks.slugify("漢字") == "notebook"
    assert notebooks.clean_text("a\x00b\nc\t d", 100) == "a b c d"
    assert notebooks.clean_text(HOSTILE, 500) == HOSTILE


def _png(color=(200, 30, 30)) -> str:
    out = io.BytesIO()
    Image.new("RGB", (900, 600), color).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def test_the_thumbnail_is_the_first_image_output_scaled_down():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(f"# {HOSTILE}"),
        nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", name="stdout", text="1\n")]),
        nbformat.v4.new_code_cell("plot()", outputs=[nbformat.v4.new_output(
            "display_data", data={"image/png": _png(), "text/plain": "<Figure>"})]),
        nbformat.v4.new_code_cell("plot2()", outputs=[nbformat.v4.new_output(
            "display_data", data={"image/png": _png((0, 0, 255))})]),
    ])
    parsed = notebooks.parse(nbformat.writes(nb).encode())
    assert notebooks.default_title(parsed, "x.ipynb") == HOSTILE
    with Image.open(io.BytesIO(notebooks.thumbnail(parsed))) as thumb:
        assert thumb.format == "PNG" and thumb.size[0] <= notebooks.THUMB_SIZE[0] and thumb.size[1] <= 320
        assert thumb.convert("RGB").getpixel((5, 5)) == (200, 30, 30)  # the first image, not the second
    assert notebooks.thumbnail(nbformat.v4.new_notebook()) is None
    assert notebooks.default_title(nbformat.v4.new_notebook(), "work/my ../nb.ipynb") == "nb"


@pytest.mark.parametrize("data,reason", [(b"{", "not JSON"), (b"[]", "format 4"), (b"\xff\xfe", "UTF-8"),
                                         (b'{"nbformat": 4, "nbformat_minor": 5, "cells": []}', "metadata")])
def test_what_is_not_a_notebook_is_refused_with_the_reason(data, reason):
    with pytest.raises(notebooks.InvalidNotebook, match=reason):
        notebooks.parse(data)


def test_the_html_render_shows_markdown_as_the_notebook_says_and_titles_stay_text():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Hello"),
                                         nbformat.v4.new_code_cell("1 + 1")])
    html = notebooks.render_html(nb).decode()
    assert "Hello" in html and "1 + 1" not in html  # highlighted: tokens in spans
    assert "<span" in html
