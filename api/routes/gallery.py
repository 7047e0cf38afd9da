"""The gallery's JSON API, under /api/v1/gallery (the pages are
``gallery_pages``, the dashboards ``alertlab.dashboards.proxy``):

    GET    gallery?q=&tag=&author=&group=&sort=recent|stars&page=&per_page=
    POST   gallery                         publish (a new entry, or a new version)
    GET    gallery/{slug}                  the entry, its tags, versions and your role
    PATCH  gallery/{slug}                  title, description, tags, dashboard_limit (editors)
    DELETE gallery/{slug}                  (owner, admin)
    GET    gallery/{slug}/versions/{v}     the .ipynb of a version
    GET    gallery/{slug}/versions/{v}/html       its cached HTML render (sandboxed)
    GET    gallery/{slug}/versions/{v}/thumbnail  its first image output, as PNG
    PUT|DELETE gallery/{slug}/star
    PUT    gallery/{slug}/visibility       {"visibility": "private" | "public" | "group:NAME" | [...] | {...}}
    GET|PUT|DELETE gallery/{slug}/shares   as for watchlists (owner, admin change them)
    GET|POST gallery/{slug}/links, DELETE gallery/{slug}/links/{id}
    POST   gallery/{slug}/copy             copy it into your home: {"path", "url"}

Every one decides through ``alertlab.api.access`` (kind ``notebook``) via
``alertlab.gallery.store.checked``; ``?link=`` carries a link share's secret.
``install(app, base)`` adds this router, the pages, the dashboards and the
sharing of schedules (``schedule_shares``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from alertlab.api import access
from alertlab.api.auth import HubUser
from alertlab.api.models import AUTH_ERRORS, Role, Share, ShareIn, errors
from alertlab.api.ratelimit import caller
from alertlab.core import settings
from alertlab.core.errors import AlertLabError
from alertlab.gallery import copying, notebooks, store, visibility

router = APIRouter(tags=["gallery"])

SLUG = Path(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9-]*$", description="The entry's address")
VERSION = Path(ge=1, le=2**31 - 1, description="A version number")
LINK = Query(None, max_length=100, description="The secret of a link share, if you were given one")
RENDER_HEADERS = {"Content-Security-Policy": "sandbox allow-scripts", "X-Content-Type-Options": "nosniff",
                  "Referrer-Policy": "no-referrer"}
Visibility = str | list[str] | dict[str, Any]


class PublishIn(BaseModel):
    notebook: dict[str, Any] | str = Field(description="The notebook: its JSON (an object, or the file's text)")
    path: str | None = Field(None, max_length=1024,
                             description="Where it lives in your home: publishing the same path again adds a "
                                         "version to the same entry")
    slug: str | None = Field(None, max_length=80, description="Add a version to this entry (its editors and owner)")
    title: str | None = Field(None, max_length=255, description="Default: the first heading, else the file name")
    description: str | None = Field(None, max_length=store.MAX_DESCRIPTION)
    tags: list[str] | None = Field(None, max_length=store.MAX_TAGS)
    visibility: Visibility | None = Field(
        None, description="private, public, group:NAME[:editor], user:NAME[:editor], a list of those, or "
                          "{public, groups, users}; none keeps it (a new entry is private)")


class EntryPatch(BaseModel):
    title: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=store.MAX_DESCRIPTION)
    tags: list[str] | None = Field(None, max_length=store.MAX_TAGS)
    dashboard_limit: int | None = Field(None, ge=1, le=1000, description="Viewers of its dashboard at once")


class VisibilityIn(BaseModel):
    visibility: Visibility


class LinkIn(BaseModel):
    days: float | None = Field(None, gt=0, le=366, description="Default: $ALERTLAB_LINK_DAYS")
    role: Literal["viewer", "editor"] = "viewer"


class Entry(BaseModel):
    slug: str
    owner: str
    title: str
    description: str
    tags: list[str]
    latest_version: int
    stars: int
    starred: bool
    created: datetime
    updated: datetime
    url: str = Field(description="Its page")
    thumbnail: str | None = Field(description="Its thumbnail, if it has one")


class Version(BaseModel):
    version: int
    title: str
    ipynb_bytes: int
    published_by: str
    created: datetime
    has_thumbnail: bool


class EntryDetail(Entry):
    role: Role
    versions: list[Version]
    dashboard: str = Field(description="Its dashboard")
    dashboard_limit: int
    shares: list[Share] = Field(description="Who it is shared with (links are listed at /links)")


class Listing(BaseModel):
    entries: list[Entry]
    page: int
    more: bool = Field(description="There is a next page")


class LinkOut(BaseModel):
    id: int
    role: str
    created_by: str
    created: datetime
    expires: datetime


class NewLink(LinkOut):
    link: str = Field(description="The secret: add ?link=<it> to the entry's URLs; shown only now")
    url: str


class Copied(BaseModel):
    path: str = Field(description="The copy, relative to your home")
    url: str = Field(description="Where JupyterLab opens it")


class Starred(BaseModel):
    stars: int
    starred: bool


def _prefix(request: Request) -> str:
    from alertlab.api.auth import get_auth

    return get_auth(request.app).prefix


def _entry_json(row: dict, prefix: str, tags: list[str], starred: bool) -> dict:
    return {"slug": row["slug"], "owner": row["owner"], "title": row["title"], "description": row["description"],
            "tags": tags, "latest_version": row["latest_version"], "stars": row["stars"], "starred": starred,
            "created": row["created"].isoformat(), "updated": row["updated"].isoformat(),
            "url": f"{prefix}gallery/{row['slug']}",
            "thumbnail": (f"{prefix}gallery/{row['slug']}/thumbnail?version={row['thumbnail_version']}"
                          if row.get("thumbnail_version") else None)}


def entry(user: HubUser, slug: str, need: str = "read", link: str | None = None) -> tuple[dict, str]:
    """The entry and the caller's role: 404 when there is none, 403 when it is not shared with the caller."""
    try:
        return store.checked(user, slug, need, link)
    except store.NotFound as exc:
        raise HTTPException(404, str(exc)) from None


def _blob_or_404(fn, *args):
    try:
        return fn(*args)
    except store.NotFound as exc:
        raise HTTPException(404, str(exc)) from None


def _detail(row: dict, role: str, user: HubUser, prefix: str) -> dict:
    out = _entry_json(row, prefix, store.tags_of([row["id"]])[row["id"]], bool(store.starred(user.name, [row["id"]])))
    res = store.resource(row)
    versions = [{**v, "created": v["created"].isoformat(), "has_thumbnail": bool(v["has_thumbnail"])}
                for v in store.versions(row["id"])]
    out.update(role=role, versions=versions,
               dashboard=f"{prefix}dashboards/{row['slug']}",
               dashboard_limit=row["dashboard_limit"] or settings.get("ALERTLAB_DASHBOARD_VIEWERS"),
               shares=[{**s.__dict__, "created": s.created.isoformat()} for s in access.shares(res)])
    return out


# -- the list and publishing -----------------------------------------------------------------------

@router.get("/gallery", response_model=Listing, responses=errors(*AUTH_ERRORS, 422))
def list_gallery(request: Request, q: str = Query("", max_length=200), tag: str = Query("", max_length=64),
                 author: str = Query("", max_length=255), group: str = Query("", max_length=255),
                 sort: Literal["recent", "stars"] = "recent", page: int = Query(1, ge=1, le=10_000),
                 per_page: int = Query(24, ge=1, le=200), user: HubUser = Depends(caller)):
    """The notebooks you may see: public ones, yours, your groups', those shared with you."""
    rows, more = store.search(user, q=q, tag=tag, author=author, group=group, sort=sort, page=page, per_page=per_page)
    prefix = _prefix(request)
    return JSONResponse({"entries": [_entry_json(r, prefix, r["tags"], r["starred"]) for r in rows], "page": page,
                         "more": more})


def _publish(user: HubUser, body: PublishIn, prefix: str) -> dict:
    raw = body.notebook if isinstance(body.notebook, str) else json.dumps(body.notebook)
    try:
        row = store.publish(user, raw.encode("utf-8"), title=body.title, description=body.description,
                            tags=body.tags, visibility_=body.visibility, path=body.path, slug=body.slug)
    except store.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except store.TooLarge as exc:
        raise HTTPException(413, str(exc)) from None
    except (notebooks.InvalidNotebook, access.InvalidShare) as exc:
        raise HTTPException(422, str(exc)) from None
    except access.Forbidden:
        raise
    except AlertLabError as exc:
        raise HTTPException(422, str(exc)) from None
    role = access.OWNER if row["owner"] == user.name else access.role(user, store.resource(row))
    return _detail(row, role, user, prefix)


@router.post("/gallery", response_model=EntryDetail, status_code=201, responses=errors(*AUTH_ERRORS, 404, 413, 422))
async def publish(body: PublishIn, request: Request, user: HubUser = Depends(caller)):
    """Publish a notebook. Each publish is a new version: of the entry `slug`, else of your entry published
    from the same `path`, else of a new entry. Its HTML render and thumbnail are made now."""
    return JSONResponse(await run_in_threadpool(_publish, user, body, _prefix(request)), status_code=201)


# -- one entry -------------------------------------------------------------------------------------

@router.get("/gallery/{slug}", response_model=EntryDetail, responses=errors(*AUTH_ERRORS, 404, 422))
def get_entry(request: Request, slug: str = SLUG, link: str | None = LINK, user: HubUser = Depends(caller)):
    row, role = entry(user, slug, "read", link)
    return JSONResponse(_detail(row, role, user, _prefix(request)))


@router.patch("/gallery/{slug}", response_model=EntryDetail, responses=errors(*AUTH_ERRORS, 404, 422))
def update_entry(body: EntryPatch, request: Request, slug: str = SLUG, user: HubUser = Depends(caller)):
    """Change the title, description, tags or the dashboard's viewer limit (editors and owner)."""
    row, role = entry(user, slug, "edit")
    try:
        store.update(row, title=body.title, description=body.description, tags=body.tags,
                     dashboard_limit=body.dashboard_limit)
    except AlertLabError as exc:
        raise HTTPException(422, str(exc)) from None
    row, role = entry(user, slug, "read")
    return JSONResponse(_detail(row, role, user, _prefix(request)))


@router.delete("/gallery/{slug}", status_code=204, response_class=Response, responses=errors(*AUTH_ERRORS, 404, 422))
def delete_entry(slug: str = SLUG, user: HubUser = Depends(caller)):
    """Delete the entry, every version and its dashboards (owner, admin)."""
    row, _ = entry(user, slug, "own")
    store.delete(row)
    try:
        from alertlab.dashboards import files

        files.remove(row["slug"])
    except OSError:
        pass
    return Response(status_code=204)


@router.get("/gallery/{slug}/versions/{version}", response_class=Response,
            responses={200: {"content": {"application/x-ipynb+json": {}}, "description": "The notebook"},
                       **errors(*AUTH_ERRORS, 404, 422)})
def get_version(slug: str = SLUG, version: int = VERSION, link: str | None = LINK, user: HubUser = Depends(caller)):
    row, _ = entry(user, slug, "read", link)
    _, data = _blob_or_404(store.ipynb, row["id"], version)
    return Response(data, media_type="application/x-ipynb+json", headers={
        "Content-Disposition": notebooks.attachment_header(row["title"]),
        "X-Content-Type-Options": "nosniff"})


@router.get("/gallery/{slug}/versions/{version}/html", response_class=Response,
            responses={200: {"content": {"text/html": {}}, "description": "The HTML render"},
                       **errors(*AUTH_ERRORS, 404, 422)})
def get_version_html(slug: str = SLUG, version: int = VERSION, link: str | None = LINK,
                     user: HubUser = Depends(caller)):
    """The version's HTML render (nbconvert), served sandboxed: its scripts cannot act as you."""
    row, _ = entry(user, slug, "read", link)
    _, data = _blob_or_404(store.html, row["id"], version)
    return Response(data, media_type="text/html; charset=utf-8", headers=RENDER_HEADERS)


@router.get("/gallery/{slug}/versions/{version}/thumbnail", response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "The thumbnail"},
                       **errors(*AUTH_ERRORS, 404, 422)})
def get_version_thumbnail(slug: str = SLUG, version: int = VERSION, link: str | None = LINK,
                          user: HubUser = Depends(caller)):
    row, _ = entry(user, slug, "read", link)
    _, data = _blob_or_404(store.thumbnail, row["id"], version)
    if data is None:
        raise HTTPException(404, f"version {version} has no image output")
    return Response(data, media_type="image/png", headers={"X-Content-Type-Options": "nosniff",
                                                           "Cache-Control": "private, max-age=300"})


@router.put("/gallery/{slug}/star", response_model=Starred, responses=errors(*AUTH_ERRORS, 404, 422))
def put_star(slug: str = SLUG, link: str | None = LINK, user: HubUser = Depends(caller)):
    row, _ = entry(user, slug, "read", link)
    return {"stars": store.star(user.name, row["id"], True), "starred": True}


@router.delete("/gallery/{slug}/star", response_model=Starred, responses=errors(*AUTH_ERRORS, 404, 422))
def delete_star(slug: str = SLUG, link: str | None = LINK, user: HubUser = Depends(caller)):
    row, _ = entry(user, slug, "read", link)
    return {"stars": store.star(user.name, row["id"], False), "starred": False}


@router.put("/gallery/{slug}/visibility", response_model=list[Share], responses=errors(*AUTH_ERRORS, 404, 422))
def put_visibility(body: VisibilityIn, slug: str = SLUG, user: HubUser = Depends(caller)):
    """Replace who sees it (owner, admin): private, public, group:NAME[:editor], user:NAME[:editor], ..."""
    row, _ = entry(user, slug, "own")
    try:
        shares = visibility.apply(store.resource(row), body.visibility, user.name)
    except access.InvalidShare as exc:
        raise HTTPException(422, str(exc)) from None
    return [s.__dict__ for s in shares]


@router.get("/gallery/{slug}/shares", response_model=list[Share], responses=errors(*AUTH_ERRORS, 404, 422))
def list_shares(slug: str = SLUG, link: str | None = LINK, user: HubUser = Depends(caller)):
    row, _ = entry(user, slug, "read", link)
    return [s.__dict__ for s in access.shares(store.resource(row))]


@router.put("/gallery/{slug}/shares", response_model=Share, responses=errors(*AUTH_ERRORS, 404, 422))
def put_share(body: ShareIn, slug: str = SLUG, user: HubUser = Depends(caller)):
    row, _ = entry(user, slug, "own")
    try:
        return access.grant(store.resource(row), body.grantee_kind, body.grantee, body.role, user.name).__dict__
    except access.InvalidShare as exc:
        raise HTTPException(422, str(exc)) from None


@router.delete("/gallery/{slug}/shares", status_code=204, response_class=Response,
               responses=errors(*AUTH_ERRORS, 404, 422))
def delete_share(slug: str = SLUG, grantee_kind: Literal["user", "group", "all"] = Query(),
                 grantee: str = Query("", max_length=255), user: HubUser = Depends(caller)):
    row, _ = entry(user, slug, "own")
    if not access.revoke(store.resource(row), grantee_kind, grantee):
        raise HTTPException(404, f"the entry is not shared with {grantee_kind} {grantee}".rstrip())
    return Response(status_code=204)


@router.get("/gallery/{slug}/links", response_model=list[LinkOut], responses=errors(*AUTH_ERRORS, 404, 422))
def list_links(slug: str = SLUG, user: HubUser = Depends(caller)):
    row, _ = entry(user, slug, "own")
    return [link.__dict__ for link in access.links(store.resource(row))]


def make_link(user: HubUser, row: dict, days: float | None, role: str, prefix: str) -> dict:
    seconds = (days or settings.get("ALERTLAB_LINK_DAYS")) * 86400
    try:
        secret, link = access.create_link(store.resource(row), user.name, seconds, role)
    except access.InvalidShare as exc:
        raise HTTPException(422, str(exc)) from None
    return {**link.__dict__, "link": secret, "url": f"{prefix}gallery/{row['slug']}?link={secret}"}


@router.post("/gallery/{slug}/links", response_model=NewLink, status_code=201,
             responses=errors(*AUTH_ERRORS, 404, 422))
def post_link(body: LinkIn, request: Request, slug: str = SLUG, user: HubUser = Depends(caller)):
    """A link that lets anyone logged in who holds it view the entry (and its dashboard) until it expires."""
    row, _ = entry(user, slug, "own")
    out = make_link(user, row, body.days, body.role, _prefix(request))
    return JSONResponse(json.loads(json.dumps(out, default=str)), status_code=201)


@router.delete("/gallery/{slug}/links/{link_id}", status_code=204, response_class=Response,
               responses=errors(*AUTH_ERRORS, 404, 422))
def delete_link(slug: str = SLUG, link_id: int = Path(ge=1, le=2**62), user: HubUser = Depends(caller)):
    row, _ = entry(user, slug, "own")
    if not access.revoke_link(store.resource(row), link_id):
        raise HTTPException(404, f"the entry has no link {link_id}")
    return Response(status_code=204)


def copy(user: HubUser, row: dict, version: int | None) -> dict:
    version, raw = _blob_or_404(store.ipynb, row["id"], version)
    data = copying.with_origin(raw, row["slug"], version, row["owner"])
    try:
        path = copying.copy_to_home(user.name, row["title"], data)
    except AlertLabError as exc:
        raise HTTPException(503, str(exc)) from None
    return {"path": path, "url": copying.lab_url(user.name, path)}


@router.post("/gallery/{slug}/copy", response_model=Copied, status_code=201,
             responses=errors(*AUTH_ERRORS, 404, 422, 503))
async def post_copy(slug: str = SLUG, version: int | None = Query(None, ge=1, le=2**31 - 1),
                    link: str | None = LINK, user: HubUser = Depends(caller)):
    """Copy the notebook (latest version, or `version`) into your home's gallery/ folder; open `url`."""
    row, _ = await run_in_threadpool(entry, user, slug, "read", link)
    return JSONResponse(await run_in_threadpool(copy, user, row, version), status_code=201)


def install(app, base: str) -> None:
    """Add the gallery's API, its pages and the dashboards to the app."""
    from alertlab.api.routes import gallery_pages, schedule_shares
    from alertlab.dashboards import proxy

    app.include_router(router, prefix=f"{base}/api/v1")
    app.include_router(schedule_shares.router, prefix=f"{base}/api/v1")
    app.include_router(gallery_pages.router, prefix=base)
    proxy.install(app, base)
