"""The browser's side: log in through the hub (OAuth), log out, the service's root."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse

from alertlab.api.auth import get_auth

router = APIRouter(tags=["session"])


@router.get("/", include_in_schema=False)
async def root(request: Request):
    return RedirectResponse(get_auth(request.app).prefix + "api/v1/whoami", status_code=302)


@router.get("/login", include_in_schema=False)
async def login(request: Request, next: str | None = None):
    """Send the browser to the hub, which sends it back to /oauth_callback once logged in."""
    auth = get_auth(request.app)
    url, state_cookie = auth.start_login(next)
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(auth.state_cookie_name, state_cookie, path=auth.prefix, httponly=True, max_age=600,
                        samesite="lax")
    return response


@router.get("/oauth_callback", include_in_schema=False)
async def oauth_callback(request: Request, code: str | None = None, state: str | None = None):
    auth = get_auth(request.app)
    cookie, next_url = await auth.finish_login(code, state, request.cookies.get(auth.state_cookie_name))
    response = RedirectResponse(next_url, status_code=302)
    response.delete_cookie(auth.state_cookie_name, path=auth.prefix)
    response.set_cookie(auth.cookie_name, cookie, path=auth.prefix, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")
    return response


@router.get("/logout", include_in_schema=False)
async def logout(request: Request):
    """Forget the service's login cookie (the hub's own login is ended at /hub/logout)."""
    auth = get_auth(request.app)
    response = RedirectResponse("/hub/logout", status_code=302)
    response.delete_cookie(auth.cookie_name, path=auth.prefix)
    return response
