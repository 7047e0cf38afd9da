"""The gallery's HTML pages: Jinja2 templates (``gallery/templates``) with
autoescaping on, so every title, description, tag and name is shown as text,
whatever it holds (``<script>``, quotes, ``../``, any script).

Forms post back with an ``_xsrf`` field: an HMAC of the user's name under the
service's cookie secret (the login cookie is also SameSite=Lax)."""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from urllib.parse import quote, urlencode

from starlette.responses import HTMLResponse


@lru_cache(maxsize=1)
def environment():
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("alertlab.gallery", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["q"] = lambda value: quote(str(value), safe="")
    env.filters["datetime"] = lambda d: d.strftime("%Y-%m-%d %H:%M UTC") if d else ""
    env.globals["urlencode"] = lambda params: urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return env


def render(template: str, status: int = 200, **context) -> HTMLResponse:
    html = environment().get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers={
        "X-Content-Type-Options": "nosniff", "X-Frame-Options": "SAMEORIGIN", "Referrer-Policy": "same-origin",
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                                   "frame-src 'self'; script-src 'none'; base-uri 'none'; form-action 'self'"})


def error(status: int, message: str, prefix: str, user: str | None = None) -> HTMLResponse:
    titles = {403: "Not shared with you", 404: "Not found", 422: "Not accepted", 429: "Busy"}
    return render("error.html", status=status, title=titles.get(status, "Error"), message=message, prefix=prefix,
                  user=user)


def xsrf_token(secret: bytes, user: str) -> str:
    return hmac.new(secret, b"gallery-form:" + user.encode(), hashlib.sha256).hexdigest()


def xsrf_ok(secret: bytes, user: str, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(xsrf_token(secret, user), token)
