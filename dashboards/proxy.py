"""/services/alertlab/dashboards/...: the only way to the dashboards' Voilà server.

    GET dashboards/{slug}[?version=&link=]   the dashboard: 403 unless the entry is shared with you
    *   dashboards/-/voila/static|templates|labextensions|api/themes/...   Voilà's own files (logged in)
    *   dashboards/-/api/kernels/{id}[/channels], -/voila/api/shutdown/{id}  your dashboard's kernel only

For a page the service checks ``alertlab.api.access`` (the gallery entry's
shares, the viewer's groups as of now), writes the published version where
Voilà reads it (``files``), makes the viewer's short-lived token
(``tokens``) and forwards the request with Voilà's secret, the viewer's name,
the dashboard's name and viewer limit, and that token. Voilà records which
viewer each kernel belongs to; a kernel's URLs answer only that viewer, and
an open kernel websocket is closed as soon as the viewer loses access (checked
every few seconds). Anything else under dashboards/-/ (Voilà's file server,
directory listing, its own render URLs) is not forwarded."""

from __future__ import annotations

import asyncio
import logging
import re

import httpx
from fastapi import APIRouter, Depends, HTTPException, Query, Request, WebSocket
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from alertlab.api.auth import Forbidden, HubUnavailable, HubUser, NotAuthenticated, current_user, get_auth
from alertlab.core import settings
from alertlab.dashboards import files, paths, tokens
from alertlab.dashboards.headers import DASHBOARD, LIMIT, LINK, TOKEN, VIEWER
from alertlab.gallery import pages, store

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

ASSETS = re.compile(r"^voila/(static|templates|labextensions|api/themes)/[^\x00]*$")
KERNEL = re.compile(r"^(?:api/kernels/(?P<a>[0-9a-f-]{36})|voila/api/shutdown/(?P<b>[0-9a-f-]{36}))$")
CHANNELS = re.compile(r"^api/kernels/(?P<kid>[0-9a-f-]{36})/channels$")
PASS_RESPONSE = ("content-type", "cache-control", "etag", "last-modified", "expires", "pragma", "retry-after",
                 "content-disposition")
PASS_REQUEST = ("accept", "content-type", "if-none-match", "if-modified-since")
RECHECK_SECONDS = 5.0


def _client(app) -> httpx.AsyncClient:
    if getattr(app.state, "voila_http", None) is None:
        app.state.voila_http = httpx.AsyncClient(timeout=httpx.Timeout(300, connect=10),
                                                 limits=httpx.Limits(max_connections=200))
    return app.state.voila_http


def _voila_base() -> str:
    from alertlab.hub import control

    return f"{paths.voila_url()}/services/{control.SERVICE}/{paths.BASE}"


def _secret_headers() -> dict:
    return {"Authorization": f"token {paths.token()}"}


async def _forward(request: Request, url: str, headers: dict) -> Response:
    client = _client(request.app)
    body = await request.body()
    out = {k: v for k, v in request.headers.items() if k.lower() in PASS_REQUEST}
    out.update(headers)
    try:
        upstream = await client.send(client.build_request(request.method, url, headers=out, content=body or None),
                                     stream=True)
    except httpx.HTTPError as exc:
        log.warning("the dashboards' Voila server did not answer: %s", exc)
        return pages.error(503, "the dashboards server is not running; try again in a minute",
                           get_auth(request.app).prefix)
    passed = {k: v for k, v in upstream.headers.items() if k.lower() in PASS_RESPONSE}
    passed["X-Content-Type-Options"] = "nosniff"
    return StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code, headers=passed,
                             background=BackgroundTask(upstream.aclose))


def _open(user: HubUser, slug: str, link: str | None, version: int | None) -> tuple[dict, str]:
    """(the entry, the dashboard's file name) if the user may see it; raises otherwise."""
    try:
        row, _ = store.checked(user, slug, "read", link)
        version = version or row["latest_version"]
        filename = files.ensure(row["slug"], version, lambda: store.ipynb(row["id"], version)[1])
    except store.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return row, filename


@router.get("/dashboards/{slug}")
async def dashboard(request: Request, slug: str, version: int | None = Query(None, ge=1, le=2**31 - 1),
                    link: str | None = Query(None, max_length=100), user: HubUser = Depends(current_user)):
    prefix = get_auth(request.app).prefix
    try:
        row, filename = await run_in_threadpool(_open, user, slug, link, version)
        token = await run_in_threadpool(tokens.viewer_token, user.name)
    except HTTPException as exc:
        return pages.error(exc.status_code, exc.detail, prefix, user.name)
    except Forbidden as exc:
        return pages.error(403, str(exc), prefix, user.name)
    limit = row["dashboard_limit"] or settings.get("ALERTLAB_DASHBOARD_VIEWERS")
    headers = {**_secret_headers(), VIEWER: user.name, DASHBOARD: row["slug"], LIMIT: str(limit), TOKEN: token}
    if link:
        headers[LINK] = link
    return await _forward(request, f"{_voila_base()}voila/render/{filename}", headers)


async def _kernel_owner(request_app, kid: str) -> dict | None:
    client = _client(request_app)
    try:
        r = await client.get(f"{_voila_base()}alertlab/kernels/{kid}", headers=_secret_headers(), timeout=10)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


async def _may_use_kernel(app, user: HubUser, kid: str) -> bool:
    """The kernel is the user's, and the user may still see its dashboard (access, as of now)."""
    owner = await _kernel_owner(app, kid)
    if owner is None or owner["viewer"] != user.name:
        return False
    try:
        await run_in_threadpool(store.checked, user, owner["dashboard"], "read", owner.get("link"))
    except (Forbidden, store.NotFound):
        return False
    return True


@router.api_route("/dashboards/-/{path:path}", methods=["GET", "POST", "DELETE", "HEAD"])
async def voila_files(request: Request, path: str, user: HubUser = Depends(current_user)):
    m = KERNEL.match(path)
    if m:
        if not await _may_use_kernel(request.app, user, m.group("a") or m.group("b")):
            raise Forbidden("this kernel is not yours, or its dashboard is no longer shared with you")
    elif not ASSETS.match(path) or ".." in path.split("/"):
        raise HTTPException(404, "not found")
    query = request.url.query
    url = f"{_voila_base()}{path}" + (f"?{query}" if query else "")
    return await _forward(request, url, {**_secret_headers(), VIEWER: user.name})


@router.websocket("/dashboards/-/api/kernels/{kid}/channels")
async def kernel_channels(websocket: WebSocket, kid: str):
    """The dashboard kernel's websocket (ipywidgets), relayed both ways for its viewer while allowed."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    auth = get_auth(websocket.app)
    try:
        user = await auth.authenticate(websocket.headers.get("authorization"), websocket.cookies.get(auth.cookie_name))
    except (NotAuthenticated, Forbidden, HubUnavailable):
        await websocket.close(code=1008)
        return
    if not re.fullmatch(r"[0-9a-f-]{36}", kid) or not await _may_use_kernel(websocket.app, user, kid):
        await websocket.close(code=1008)
        return
    query = websocket.url.query
    url = _voila_base().replace("http://", "ws://", 1) + f"api/kernels/{kid}/channels" + (f"?{query}" if query else "")
    protocols = websocket.scope.get("subprotocols") or None
    try:
        upstream = await connect(url, additional_headers={**_secret_headers(), VIEWER: user.name},
                                 subprotocols=protocols, max_size=None, open_timeout=30, compression=None)
    except (OSError, Exception) as exc:  # noqa: BLE001 - refused or unreachable: close the browser's side
        log.warning("could not reach kernel %s: %s", kid, exc)
        await websocket.close(code=1011)
        return
    await websocket.accept(subprotocol=upstream.subprotocol)

    async def browser_to_kernel():
        while True:
            msg = await websocket.receive()
            if msg["type"] == "websocket.disconnect":
                return
            if msg.get("bytes") is not None:
                await upstream.send(msg["bytes"])
            elif msg.get("text") is not None:
                await upstream.send(msg["text"])

    async def kernel_to_browser():
        try:
            async for msg in upstream:
                if isinstance(msg, bytes):
                    await websocket.send_bytes(msg)
                else:
                    await websocket.send_text(msg)
        except ConnectionClosed:
            return

    async def still_allowed():
        while True:
            await asyncio.sleep(RECHECK_SECONDS)
            if not await _may_use_kernel(websocket.app, user, kid):
                return

    tasks = [asyncio.ensure_future(t()) for t in (browser_to_kernel, kernel_to_browser, still_allowed)]
    revoked = False
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        revoked = tasks[2].done() and not tasks[2].cancelled() and tasks[2].exception() is None
    finally:
        for t in tasks:
            t.cancel()
        await upstream.close()
        try:
            await websocket.close(code=1008 if revoked else 1000)
        except RuntimeError:
            pass


def install(app, base: str) -> None:
    app.include_router(router, prefix=base)

    async def close_client():
        client = getattr(app.state, "voila_http", None)
        if client is not None:
            await client.aclose()

    app.router.on_shutdown.append(close_client)

