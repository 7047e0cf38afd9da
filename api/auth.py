"""Who is calling the `alertlab` service: one hub identity, one kind of token.

Scripts and notebooks send a hub API token (``Authorization: token X`` or
``bearer X``): one made on the hub's token page, or the $JUPYTERHUB_API_TOKEN of
a user's server. Browsers log in through the hub with OAuth (JupyterHub's
HubOAuth) and then carry the resulting token in a signed cookie.

``ServiceAuth`` is the framework-neutral core: given the Authorization header and
the cookie, it asks the hub who the token belongs to (``HubOAuth.user_for_token``,
whose answers are cached for CACHE_SECONDS) and returns a ``HubUser``, or raises
NotAuthenticated (401), Forbidden (403) or HubUnavailable (503). Below it, the
thin FastAPI adapter: ``current_user`` (a dependency) and ``install(app)``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuth
from starlette.requests import Request
from tornado.httputil import url_concat
from tornado.web import HTTPError, create_signed_value, decode_signed_value

CACHE_SECONDS = 60  # a revoked token keeps working at most this long
COOKIE_DAYS = 14


@dataclass(frozen=True)
class HubUser:
    """A hub user (or service) as the hub describes the caller's token."""

    name: str
    kind: str = "user"
    admin: bool = False
    groups: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()

    @classmethod
    def from_model(cls, model: dict) -> "HubUser":
        return cls(name=model["name"], kind=model.get("kind", "user"), admin=bool(model.get("admin")),
                   groups=tuple(sorted(model.get("groups") or ())), scopes=tuple(sorted(model.get("scopes") or ())))

    def as_dict(self) -> dict:
        d = asdict(self)
        d["groups"], d["scopes"] = list(self.groups), list(self.scopes)
        return d


class NotAuthenticated(Exception):
    """No credentials, or credentials the hub does not recognise (401)."""


class Forbidden(Exception):
    """A known caller who may not do this (403)."""


class HubUnavailable(Exception):
    """The hub did not answer the question "who is this?" (503)."""


class ServiceAuth:
    """Credentials → HubUser, and the browser login through the hub, for any web framework."""

    def __init__(self, hub_auth: HubOAuth | None = None, cookie_secret: bytes | None = None):
        self.hub = hub_auth or HubOAuth(cache_max_age=CACHE_SECONDS)
        if cookie_secret is None:
            from alertlab.core import secrets

            cookie_secret = secrets.get("api_cookie_secret", 32).encode()
        self.cookie_secret = cookie_secret

    @property
    def prefix(self) -> str:
        """The service's URL prefix, e.g. /services/alertlab/."""
        return self.hub.base_url

    @property
    def cookie_name(self) -> str:
        return self.hub.cookie_name

    @property
    def state_cookie_name(self) -> str:
        return self.hub.state_cookie_name

    def sign(self, name: str, value: str) -> str:
        return create_signed_value(self.cookie_secret, name, value).decode()

    def unsign(self, name: str, value: str | None) -> str | None:
        if not value:
            return None
        raw = decode_signed_value(self.cookie_secret, name, value, max_age_days=COOKIE_DAYS)
        return raw.decode() if raw else None

    def token(self, authorization: str | None, cookie: str | None) -> str | None:
        """The token in the Authorization header, else the one in the login cookie."""
        m = self.hub.auth_header_pat.match(authorization or "")
        if m:
            return m.group(1).strip()
        return self.unsign(self.cookie_name, cookie)

    async def user_for_token(self, token: str) -> HubUser:
        try:
            model = await self.hub.user_for_token(token, sync=False)
        except HTTPError as exc:
            raise HubUnavailable(f"the hub could not check the token: {exc.log_message or exc}") from None
        if not model:
            raise NotAuthenticated("invalid or expired token")
        if not self.hub.check_scopes(self.hub.access_scopes, model):
            raise Forbidden(f"this token may not use this service: it lacks the scope "
                            f"{' or '.join(sorted(self.hub.access_scopes))}")
        return HubUser.from_model(model)

    async def authenticate(self, authorization: str | None, cookie: str | None) -> HubUser:
        token = self.token(authorization, cookie)
        if not token:
            raise NotAuthenticated("not logged in: send the header 'Authorization: token <hub API token>' "
                                   "(make a token at /hub/token)")
        return await self.user_for_token(token)

    # -- the browser login (OAuth with the hub) --------------------------------------------

    def safe_next(self, next_url: str | None) -> str:
        """``next_url`` if it is a path inside this service, else the service's root (no open redirects)."""
        parsed = urlparse(next_url or "")
        if not parsed.scheme and not parsed.netloc and parsed.path.startswith(self.prefix):
            return next_url
        return self.prefix

    def start_login(self, next_url: str | None) -> tuple[str, str]:
        """(the hub's authorize URL to redirect to, the signed state cookie to set)."""
        state = self.hub.generate_state(next_url=self.safe_next(next_url))
        return url_concat(self.hub.login_url, {"state": state}), self.sign(self.state_cookie_name, state)

    async def finish_login(self, code: str | None, state: str | None, state_cookie: str | None) -> tuple[str, str]:
        """(the signed login cookie to set, the URL to go to) after the hub sent the browser back."""
        if not code:
            raise NotAuthenticated("the hub sent no authorization code: log in again")
        if not state or state != self.unsign(self.state_cookie_name, state_cookie):
            raise Forbidden("the login's state does not match (expired or forged): log in again")
        next_url = self.hub.get_next_url(state)
        self.hub.clear_oauth_state(state)
        try:
            token = await self.hub.token_for_code(code, sync=False)
        except HTTPError as exc:
            raise NotAuthenticated(f"the hub refused the login: {exc.log_message or exc}") from None
        await self.user_for_token(token)
        return self.sign(self.cookie_name, token), self.safe_next(next_url)


# -- FastAPI adapter ------------------------------------------------------------------------

def get_auth(app) -> ServiceAuth:
    """The app's ServiceAuth, made on first use (it needs the hub's environment)."""
    if getattr(app.state, "auth", None) is None:
        app.state.auth = ServiceAuth()
    return app.state.auth


async def current_user(request: Request) -> HubUser:
    """FastAPI dependency: the calling hub user (401/403/503 otherwise)."""
    auth = get_auth(request.app)
    user = await auth.authenticate(request.headers.get("authorization"), request.cookies.get(auth.cookie_name))
    request.state.user = user
    return user


def install(app, auth: ServiceAuth | None = None) -> None:
    """Map the auth errors to HTTP answers; a browser that is not logged in goes to the hub's login."""
    from starlette.responses import JSONResponse, RedirectResponse

    app.state.auth = auth

    async def not_authenticated(request, exc):
        accepts_html = "text/html" in request.headers.get("accept", "")
        if request.method == "GET" and accepts_html and not request.headers.get("authorization"):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            login = get_auth(request.app).prefix + "login"
            return RedirectResponse(url_concat(login, {"next": target}), status_code=302)
        return JSONResponse({"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "token"})

    async def forbidden(request, exc):
        return JSONResponse({"detail": str(exc)}, status_code=403)

    async def unavailable(request, exc):
        return JSONResponse({"detail": str(exc)}, status_code=503)

    app.add_exception_handler(NotAuthenticated, not_authenticated)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(HubUnavailable, unavailable)
