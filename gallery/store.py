"""The gallery's rows in the application database: entries, versions (each
publish is one, holding the notebook, its HTML render and its thumbnail),
tags and stars. Who may see what is ``alertlab.api.access`` (resource kind
``notebook``); callers check it through ``checked`` or list through
``search``, which applies the same rule in SQL."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from alertlab.api import access
from alertlab.api.auth import HubUser
from alertlab.core import db, settings
from alertlab.core.errors import AlertLabError
from alertlab.gallery import notebooks, visibility

KIND = "notebook"
COLUMNS = ("id", "slug", "owner", "title", "description", "source_path", "latest_version", "thumbnail_version",
           "stars", "dashboard_limit", "created", "updated")
MAX_TAGS = 20
MAX_TAG = 64
MAX_DESCRIPTION = 20000
SORTS = ("recent", "stars")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")


class NotFound(AlertLabError):
    """No such gallery entry (or version)."""


class TooLarge(AlertLabError):
    """The notebook is larger than the gallery takes."""


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def resource(row: dict) -> access.Resource:
    return access.Resource.of(KIND, row["id"], row["owner"])


def get(slug: str) -> dict | None:
    if not SLUG.match(slug or ""):
        return None
    with db.engine("app").connect() as conn:
        row = conn.exec_driver_sql(f"SELECT {', '.join(COLUMNS)} FROM gallery_notebooks WHERE slug = %s",
                                   (slug,)).mappings().first()
    return dict(row) if row else None


def checked(user: HubUser, slug: str, need: str = "read", link: str | None = None) -> tuple[dict, str]:
    """(the entry, the caller's role) if the caller may ``need`` it: NotFound, or access.Forbidden (403)."""
    row = get(slug)
    if row is None:
        raise NotFound(f"there is no gallery entry {slug!r}")
    return row, access.check(user, resource(row), need, link)


def tags_of(ids: list[int]) -> dict[int, list[str]]:
    if not ids:
        return {}
    out: dict[int, list[str]] = {i: [] for i in ids}
    with db.engine("app").connect() as conn:
        rows = conn.exec_driver_sql(
            f"SELECT notebook_id, tag FROM gallery_tags WHERE notebook_id IN ({', '.join(['%s'] * len(ids))}) "
            "ORDER BY tag", tuple(ids)).all()
    for nid, tag in rows:
        out[nid].append(tag)
    return out


def starred(user: str, ids: list[int]) -> set[int]:
    if not ids:
        return set()
    with db.engine("app").connect() as conn:
        rows = conn.exec_driver_sql(
            f"SELECT notebook_id FROM gallery_stars WHERE user = %s AND notebook_id IN "
            f"({', '.join(['%s'] * len(ids))})", (user, *ids)).scalars().all()
    return set(rows)


def clean_tags(tags) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = re.split(r"[,\n]", tags)
    out = []
    for tag in tags:
        tag = notebooks.clean_text(str(tag), MAX_TAG).lower()
        if tag and tag not in out:
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise AlertLabError(f"at most {MAX_TAGS} tags")
    return out


# -- publishing ------------------------------------------------------------------------------------

@dataclass
class Prepared:
    """A notebook made ready to store: what takes CPU (render, thumbnail) done outside any transaction."""

    nb: object
    ipynb: bytes
    html: bytes
    thumb: bytes | None


def prepare(data: bytes) -> Prepared:
    limit = settings.get("ALERTLAB_GALLERY_MAX_MB") * 1024 * 1024
    if len(data) > limit:
        raise TooLarge(f"the notebook is {len(data) / 1e6:.1f} MB; the gallery takes up to "
                       f"{settings.get('ALERTLAB_GALLERY_MAX_MB')} MB")
    nb = notebooks.parse(data)
    return Prepared(nb, notebooks.dumps(nb), notebooks.render_html(nb), notebooks.thumbnail(nb))


def _target(conn, user: HubUser, slug: str | None, path: str | None) -> tuple[dict | None, str | None]:
    """The entry this publish adds a version to (and the caller's role), or (None, None) for a new one."""
    if slug:
        row, role = checked(user, slug, "edit")
        return row, role
    if path:
        row = conn.exec_driver_sql(
            f"SELECT {', '.join(COLUMNS)} FROM gallery_notebooks WHERE owner = %s AND source_path = %s "
            "ORDER BY id DESC LIMIT 1", (user.name, path)).mappings().first()
        if row:
            return dict(row), access.OWNER
    return None, None


def publish(user: HubUser, data: bytes, *, title: str | None = None, description: str | None = None,
            tags=None, visibility_=None, path: str | None = None, slug: str | None = None,
            prepared: Prepared | None = None) -> dict:
    """Publish a notebook: a new entry, or a new version of the entry ``slug`` (editors and owner) or of
    the caller's entry published from the same ``path``. ``visibility_`` (see gallery.visibility) replaces
    who may see it (owner and admins only); None keeps it (a new entry starts private)."""
    prep = prepared or prepare(data)
    path = notebooks.clean_text(path, 1024) if path else None
    title = notebooks.clean_text(title, notebooks.MAX_TITLE) if title else None
    description = (description or "")[:MAX_DESCRIPTION] if description is not None else None
    tag_list = clean_tags(tags) if tags is not None else None
    if visibility_ is not None:
        visibility.parse(visibility_)  # refuse a bad one before storing anything
    now = _now()
    with db.engine("app").begin() as conn:
        row, role = _target(conn, user, slug, path)
        if row is not None and visibility_ is not None and not access.allows(role, "own"):
            raise access.Forbidden("only the owner of the entry (or an admin) may change who sees it")
        if row is None:
            title = title or notebooks.default_title(prep.nb, path)
            nid = None
            for _ in range(5):
                new_slug = f"{notebooks.slugify(title)}-{secrets.token_hex(3)}"
                try:
                    with conn.begin_nested():
                        nid = conn.exec_driver_sql(
                            "INSERT INTO gallery_notebooks (slug, owner, title, description, source_path, created, "
                            "updated) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                            (new_slug, user.name, title, description or "", path, now, now)).lastrowid
                    break
                except sa.exc.IntegrityError:
                    continue
            if nid is None:
                raise AlertLabError("could not make a unique address for the entry; try again")
            version, owner = 1, user.name
        else:
            nid, owner = row["id"], row["owner"]
            version = conn.exec_driver_sql("SELECT latest_version FROM gallery_notebooks WHERE id = %s FOR UPDATE",
                                           (nid,)).scalar() + 1
            title = title or row["title"]
        conn.exec_driver_sql(
            "INSERT INTO gallery_versions (notebook_id, version, title, ipynb_gz, html_gz, thumbnail, ipynb_bytes, "
            "published_by, created) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (nid, version, title, notebooks.gz(prep.ipynb), notebooks.gz(prep.html), prep.thumb, len(prep.ipynb),
             user.name, now))
        sets = ["latest_version = %s", "title = %s", "updated = %s", "thumbnail_version = %s"]
        params: list = [version, title, now, version if prep.thumb else None]
        if description is not None:
            sets.append("description = %s")
            params.append(description)
        conn.exec_driver_sql(f"UPDATE gallery_notebooks SET {', '.join(sets)} WHERE id = %s", (*params, nid))
        if tag_list is not None:
            conn.exec_driver_sql("DELETE FROM gallery_tags WHERE notebook_id = %s", (nid,))
            if tag_list:
                conn.exec_driver_sql("INSERT INTO gallery_tags (notebook_id, tag) VALUES "
                                     + ", ".join(["(%s, %s)"] * len(tag_list)),
                                     tuple(x for tag in tag_list for x in (nid, tag)))
        _refresh_search_text(conn, nid)
    if visibility_ is not None:
        visibility.apply(access.Resource.of(KIND, nid, owner), visibility_, user.name)
    with db.engine("app").connect() as conn:
        return dict(conn.exec_driver_sql(f"SELECT {', '.join(COLUMNS)} FROM gallery_notebooks WHERE id = %s",
                                         (nid,)).mappings().one())


def _refresh_search_text(conn, nid: int) -> None:
    """What the gallery's text search looks in: title, description, author and tags, in one column."""
    conn.exec_driver_sql(
        "UPDATE gallery_notebooks SET search_text = CONCAT_WS(' ', title, description, owner, "
        "(SELECT GROUP_CONCAT(tag SEPARATOR ' ') FROM gallery_tags WHERE notebook_id = %s)) WHERE id = %s", (nid, nid))


def update(row: dict, *, title: str | None = None, description: str | None = None, tags=None,
           dashboard_limit: int | None = None) -> None:
    """Change an entry's title, description, tags or dashboard viewer limit (editors and owner)."""
    sets, params = [], []
    if title is not None:
        title = notebooks.clean_text(title, notebooks.MAX_TITLE)
        if not title:
            raise AlertLabError("the title may not be empty")
        sets.append("title = %s")
        params.append(title)
    if description is not None:
        sets.append("description = %s")
        params.append(description[:MAX_DESCRIPTION])
    if dashboard_limit is not None:
        sets.append("dashboard_limit = %s")
        params.append(dashboard_limit)
    tag_list = clean_tags(tags) if tags is not None else None
    with db.engine("app").begin() as conn:
        if sets:
            conn.exec_driver_sql(f"UPDATE gallery_notebooks SET {', '.join(sets)} WHERE id = %s",
                                 (*params, row["id"]))
        if tag_list is not None:
            conn.exec_driver_sql("DELETE FROM gallery_tags WHERE notebook_id = %s", (row["id"],))
            for tag in tag_list:
                conn.exec_driver_sql("INSERT INTO gallery_tags (notebook_id, tag) VALUES (%s, %s)", (row["id"], tag))
        _refresh_search_text(conn, row["id"])


def delete(row: dict) -> None:
    with db.engine("app").begin() as conn:
        conn.exec_driver_sql("DELETE FROM gallery_notebooks WHERE id = %s", (row["id"],))
    access.forget(KIND, row["id"])


# -- versions --------------------------------------------------------------------------------------

def versions(nid: int) -> list[dict]:
    with db.engine("app").connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT version, title, ipynb_bytes, published_by, created, thumbnail IS NOT NULL AS has_thumbnail "
            "FROM gallery_versions WHERE notebook_id = %s ORDER BY version DESC", (nid,)).mappings().all()
    return [dict(r) for r in rows]


def _blob(nid: int, version: int | None, column: str) -> tuple[int, bytes | None]:
    with db.engine("app").connect() as conn:
        if version is None:
            version = conn.exec_driver_sql("SELECT latest_version FROM gallery_notebooks WHERE id = %s",
                                           (nid,)).scalar()
        row = conn.exec_driver_sql(f"SELECT {column} FROM gallery_versions WHERE notebook_id = %s AND version = %s",
                                   (nid, version)).first()
    if row is None:
        raise NotFound(f"there is no version {version}")
    return version, row[0]


def ipynb(nid: int, version: int | None = None) -> tuple[int, bytes]:
    version, data = _blob(nid, version, "ipynb_gz")
    return version, notebooks.gunzip(data)


def html(nid: int, version: int | None = None) -> tuple[int, bytes]:
    """The cached HTML render of a version (rendered now, and cached, if it is missing)."""
    version, data = _blob(nid, version, "html_gz")
    if data is not None:
        return version, notebooks.gunzip(data)
    _, raw = ipynb(nid, version)
    rendered = notebooks.render_html(notebooks.parse(raw))
    with db.engine("app").begin() as conn:
        conn.exec_driver_sql("UPDATE gallery_versions SET html_gz = %s WHERE notebook_id = %s AND version = %s",
                             (notebooks.gz(rendered), nid, version))
    return version, rendered


def thumbnail(nid: int, version: int | None = None) -> tuple[int, bytes | None]:
    return _blob(nid, version, "thumbnail")


# -- stars -----------------------------------------------------------------------------------------

def star(user: str, nid: int, on: bool = True) -> int:
    """Star (or unstar) the entry for ``user``; its star count afterwards."""
    with db.engine("app").begin() as conn:
        if on:
            changed = conn.exec_driver_sql("INSERT IGNORE INTO gallery_stars (notebook_id, user, created) "
                                           "VALUES (%s, %s, %s)", (nid, user, _now())).rowcount
        else:
            changed = -conn.exec_driver_sql("DELETE FROM gallery_stars WHERE notebook_id = %s AND user = %s",
                                            (nid, user)).rowcount
        if changed:
            conn.exec_driver_sql("UPDATE gallery_notebooks SET stars = GREATEST(0, stars + %s) WHERE id = %s",
                                 (changed, nid))
        return conn.exec_driver_sql("SELECT stars FROM gallery_notebooks WHERE id = %s", (nid,)).scalar()


# -- the gallery's list ----------------------------------------------------------------------------

def _like(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search(user: HubUser, *, q: str = "", tag: str = "", author: str = "", group: str = "", sort: str = "recent",
           page: int = 1, per_page: int = 24) -> tuple[list[dict], bool]:
    """The entries the user may see that match, a page at a time: (entries, whether there are more).
    ``q``: words found (all of them, anywhere in a word) in the title, description, author or tags."""
    where, params = [], []
    readable, rparams = access.readable_sql(user, KIND, "n.id", "n.owner")
    where.append(readable)
    params += rparams
    for word in (q or "").split()[:8]:
        where.append("n.search_text LIKE %s")
        params.append(_like(word))
    if tag:
        where.append("EXISTS (SELECT 1 FROM gallery_tags t2 WHERE t2.notebook_id = n.id AND t2.tag = %s)")
        params.append(tag.strip().lower())
    if author:
        where.append("n.owner = %s")
        params.append(author.strip())
    if group:
        where.append("EXISTS (SELECT 1 FROM shares g WHERE g.resource_kind = %s AND g.resource_id = "
                     "CAST(n.id AS CHAR CHARACTER SET utf8mb4) COLLATE utf8mb4_unicode_ci AND "
                     "g.grantee_kind = 'group' AND g.grantee = %s)")
        params += [KIND, group.strip()]
    order = "n.stars DESC, n.updated DESC, n.id DESC" if sort == "stars" else "n.updated DESC, n.id DESC"
    page = max(1, int(page))
    sql = (f"SELECT n.id, n.slug, n.owner, n.title, n.description, n.latest_version, n.thumbnail_version, n.stars, "
           f"n.created, n.updated FROM gallery_notebooks n WHERE {' AND '.join(where)} ORDER BY {order} "
           f"LIMIT %s OFFSET %s")
    with db.engine("app").connect() as conn:
        rows = [dict(r) for r in conn.exec_driver_sql(sql, (*params, per_page + 1, (page - 1) * per_page)).mappings()]
    more = len(rows) > per_page
    rows = rows[:per_page]
    ids = [r["id"] for r in rows]
    tags = tags_of(ids)
    mine = starred(user.name, ids)
    for r in rows:
        r["tags"] = tags[r["id"]]
        r["starred"] = r["id"] in mine
    return rows, more


_tags_cache: tuple[float, list] = (0.0, [])


def popular_tags(limit: int = 40, max_age: float = 60.0) -> list[tuple[str, int]]:
    """The most used tags of public entries (every logged-in user may see those), recomputed each minute."""
    global _tags_cache
    import time

    when, tags = _tags_cache
    if time.monotonic() - when < max_age:
        return tags
    with db.engine("app").connect() as conn:
        tags = [tuple(r) for r in conn.exec_driver_sql(
            "SELECT t.tag, COUNT(*) AS n FROM gallery_tags t JOIN shares s ON s.resource_kind = %s AND "
            "s.resource_id = CAST(t.notebook_id AS CHAR CHARACTER SET utf8mb4) COLLATE utf8mb4_unicode_ci "
            "AND s.grantee_kind = 'all' GROUP BY t.tag ORDER BY n DESC, t.tag LIMIT %s", (KIND, limit))]
    _tags_cache = (time.monotonic(), tags)
    return tags
