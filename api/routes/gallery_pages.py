"""The gallery's pages (server-rendered HTML, ``alertlab.gallery.pages``):

    GET  gallery                         search by text, tag, author; filter by group; sort by recent or stars
    GET  gallery/{slug}[?version=]       an entry: its render, versions, actions, sharing (owner)
    GET  gallery/{slug}/render           the HTML render of a version (sandboxed)
    GET  gallery/{slug}/thumbnail        the thumbnail of a version
    GET  gallery/{slug}/download         the .ipynb of a version
    POST gallery/{slug}/copy             "Open a copy in my server": copy, then off to JupyterLab
    POST gallery/{slug}/star             star / unstar
    POST gallery/{slug}/shares|links|delete   the owner's sharing forms

A browser logs in through the hub (HubOAuth) the first time. Each answer is
decided by ``alertlab.api.access`` through ``alertlab.gallery.store.checked``;
a refusal is an HTML page with status 403 (404 for an unknown entry)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from alertlab.api import access, hubgroups
from alertlab.api.auth import Forbidden, HubUser, current_user, get_auth
from alertlab.api.routes import gallery as api
from alertlab.core import settings
from alertlab.gallery import notebooks, pages, store, visibility

router = APIRouter(include_in_schema=False)

SLUG = r"^[a-z0-9][a-z0-9-]*$"


def _prefix(request: Request) -> str:
    return get_auth(request.app).prefix


def _refused(request: Request, user: HubUser, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 403
    return pages.error(status, str(getattr(exc, "detail", exc)), _prefix(request), user.name)


def _check_form(request: Request, user: HubUser, token: str | None) -> None:
    if request.headers.get("authorization"):
        return  # a token, not a cookie: no cross-site forgery possible
    if not pages.xsrf_ok(get_auth(request.app).cookie_secret, user.name, token):
        raise HTTPException(403, "the form is stale or was not sent by this site: reload the page and try again")


def _entry(user: HubUser, slug: str, need: str, link: str | None) -> tuple[dict, str]:
    return api.entry(user, slug, need, link)


@router.get("/gallery")
def gallery_page(request: Request, q: str = Query("", max_length=200), tag: str = Query("", max_length=64),
                 author: str = Query("", max_length=255), group: str = Query("", max_length=255),
                 sort: str = Query("recent", pattern="^(recent|stars)$"), page: int = Query(1, ge=1, le=10_000),
                 user: HubUser = Depends(current_user)):
    entries, more = store.search(user, q=q, tag=tag, author=author, group=group, sort=sort, page=page)
    params = {"q": q, "tag": tag, "author": author, "group": group, "sort": sort}
    return pages.render("gallery.html", prefix=_prefix(request), user=user.name, entries=entries, more=more,
                        page=page, params=params, tags=store.popular_tags(), groups=hubgroups.current(user), **params)


@router.get("/gallery/{slug}")
def entry_page(request: Request, slug: str, version: int | None = Query(None, ge=1, le=2**31 - 1),
               link: str | None = Query(None, max_length=100), new_link: str | None = Query(None, max_length=100),
               user: HubUser = Depends(current_user)):
    try:
        row, role = _entry(user, slug, "read", link)
        versions = store.versions(row["id"])
        if version is not None and version not in {v["version"] for v in versions}:
            raise HTTPException(404, f"there is no version {version} of this notebook")
    except (HTTPException, Forbidden) as exc:
        return _refused(request, user, exc)
    res = store.resource(row)
    shares, links = access.shares(res), access.links(res)
    can_share = access.allows(role, "own")
    new_expires = None
    if new_link and can_share:
        new_expires = links[-1].expires if links else None
    prefix = _prefix(request)
    return pages.render(
        "entry.html", prefix=prefix, user=user.name, e=row, role=role, version=version or row["latest_version"],
        versions=versions, tags=store.tags_of([row["id"]])[row["id"]],
        starred=bool(store.starred(user.name, [row["id"]])),
        visibility=visibility.describe(shares, len(links) if can_share else 0), shares=shares, links=links,
        can_share=can_share, link=link, linkq=f"?link={link}" if link else "",
        xsrf=pages.xsrf_token(get_auth(request.app).cookie_secret, user.name),
        link_days=settings.get("ALERTLAB_LINK_DAYS"),
        new_link=(f"{request.url.scheme}://{request.url.netloc}{prefix}gallery/{row['slug']}?link={new_link}"
                  if new_link and can_share else None), new_link_expires=new_expires)


@router.get("/gallery/{slug}/render")
def render_page(request: Request, slug: str, version: int | None = Query(None, ge=1, le=2**31 - 1),
                link: str | None = Query(None, max_length=100), user: HubUser = Depends(current_user)):
    try:
        row, _ = _entry(user, slug, "read", link)
        _, data = api._blob_or_404(store.html, row["id"], version)
    except (HTTPException, Forbidden) as exc:
        return _refused(request, user, exc)
    return Response(data, media_type="text/html; charset=utf-8", headers=api.RENDER_HEADERS)


@router.get("/gallery/{slug}/thumbnail")
def thumbnail(request: Request, slug: str, version: int | None = Query(None, ge=1, le=2**31 - 1),
              link: str | None = Query(None, max_length=100), user: HubUser = Depends(current_user)):
    try:
        row, _ = _entry(user, slug, "read", link)
        _, data = api._blob_or_404(store.thumbnail, row["id"], version or row["thumbnail_version"])
        if data is None:
            raise HTTPException(404, "this version has no image output")
    except (HTTPException, Forbidden) as exc:
        return _refused(request, user, exc)
    return Response(data, media_type="image/png", headers={"X-Content-Type-Options": "nosniff",
                                                           "Cache-Control": "private, max-age=300"})


@router.get("/gallery/{slug}/download")
def download(request: Request, slug: str, version: int | None = Query(None, ge=1, le=2**31 - 1),
             link: str | None = Query(None, max_length=100), user: HubUser = Depends(current_user)):
    try:
        row, _ = _entry(user, slug, "read", link)
        _, data = api._blob_or_404(store.ipynb, row["id"], version)
    except (HTTPException, Forbidden) as exc:
        return _refused(request, user, exc)
    return Response(data, media_type="application/x-ipynb+json", headers={
        "Content-Disposition": notebooks.attachment_header(row["title"]), "X-Content-Type-Options": "nosniff"})


@router.post("/gallery/{slug}/copy")
async def copy(request: Request, slug: str, link: str | None = Query(None, max_length=100),
               xsrf: str | None = Form(None, alias="_xsrf"), version: int | None = Form(None),
               user: HubUser = Depends(current_user)):
    try:
        _check_form(request, user, xsrf)
        row, _ = await run_in_threadpool(_entry, user, slug, "read", link)
        copied = await run_in_threadpool(api.copy, user, row, version)
    except (HTTPException, Forbidden) as exc:
        return _refused(request, user, exc)
    return RedirectResponse(copied["url"], status_code=303)


@router.post("/gallery/{slug}/star")
def star(request: Request, slug: str, link: str | None = Query(None, max_length=100),
         xsrf: str | None = Form(None, alias="_xsrf"), on: str = Form("1"), user: HubUser = Depends(current_user)):
    try:
        _check_form(request, user, xsrf)
        row, _ = _entry(user, slug, "read", link)
    except (HTTPException, Forbidden) as exc:
        return _refused(request, user, exc)
    store.star(user.name, row["id"], on == "1")
    return RedirectResponse(f"{_prefix(request)}gallery/{slug}" + (f"?link={link}" if link else ""), status_code=303)


@router.post("/gallery/{slug}/shares")
def shares_form(request: Request, slug: str, xsrf: str | None = Form(None, alias="_xsrf"), action: str = Form(...),
                grantee_kind: str = Form(...), grantee: str = Form(""), role: str = Form("viewer"),
                user: HubUser = Depends(current_user)):
    try:
        _check_form(request, user, xsrf)
        row, _ = _entry(user, slug, "own", None)
        res = store.resource(row)
        if action == "add":
            access.grant(res, grantee_kind, grantee if grantee_kind != "all" else "", role, user.name)
        else:
            access.revoke(res, grantee_kind, grantee)
    except (HTTPException, Forbidden) as exc:
        return _refused(request, user, exc)
    except access.InvalidShare as exc:
        return pages.error(422, str(exc), _prefix(request), user.name)
    return RedirectResponse(f"{_prefix(request)}gallery/{slug}", status_code=303)


@router.post("/gallery/{slug}/links")
def links_form(request: Request, slug: str, xsrf: str | None = Form(None, alias="_xsrf"), action: str = Form(...),
               days: float | None = Form(None), id: int | None = Form(None), user: HubUser = Depends(current_user)):
    try:
        _check_form(request, user, xsrf)
        row, _ = _entry(user, slug, "own", None)
        if action == "add":
            made = api.make_link(user, row, days, access.VIEWER, _prefix(request))
            return RedirectResponse(f"{_prefix(request)}gallery/{slug}?new_link={made['link']}", status_code=303)
        access.revoke_link(store.resource(row), id or 0)
    except (HTTPException, Forbidden) as exc:
        return _refused(request, user, exc)
    return RedirectResponse(f"{_prefix(request)}gallery/{slug}", status_code=303)


@router.post("/gallery/{slug}/delete")
def delete_form(request: Request, slug: str, xsrf: str | None = Form(None, alias="_xsrf"),
                user: HubUser = Depends(current_user)):
    try:
        _check_form(request, user, xsrf)
        row, _ = _entry(user, slug, "own", None)
    except (HTTPException, Forbidden) as exc:
        return _refused(request, user, exc)
    store.delete(row)
    return RedirectResponse(f"{_prefix(request)}gallery", status_code=303)
