"""The AlertLab API over HTTP, with one hub token for everything.

Where the URL and token come from, first found wins:
- URL: the ``url`` argument, $ALERTLAB_URL (set for you inside the hub's servers);
- token: the ``token`` argument, $ALERTLAB_TOKEN (a token made on the hub's
  token page), $JUPYTERHUB_API_TOKEN (inside a user's server: no password needed).

The client never talks to the database: it holds no database credentials."""

from __future__ import annotations

import os
import warnings

import httpx

from alertlab.core import settings
from alertlab.core.errors import AlertLabError


class APIError(AlertLabError):
    """The API refused a request; the message is the server's."""

    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message
        super().__init__(f"{status}: {message}")


class TruncatedResult(UserWarning):
    """A query returned fewer rows than it matched (raise ``limit`` or page with ``offset``)."""


def _first(*values: str | None) -> str:
    return next((v for v in values if v), "")


class Client:
    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 300):
        self.url = _first(url, settings.get("ALERTLAB_URL"))
        if not self.url:
            raise AlertLabError("no AlertLab URL: set ALERTLAB_URL to http://HOST/services/alertlab/ "
                                "(it is set for you inside the hub)")
        self.url = self.url.rstrip("/") + "/"
        self.token = _first(token, settings.get("ALERTLAB_TOKEN"), os.environ.get("JUPYTERHUB_API_TOKEN"))
        if not self.token:
            raise AlertLabError("no API token: make one on the hub's token page (/hub/token) and set ALERTLAB_TOKEN")
        self.http = httpx.Client(headers={"Authorization": f"token {self.token}"}, timeout=timeout)

    def request(self, method: str, path: str, json=None) -> dict:
        try:
            r = self.http.request(method, self.url + path.lstrip("/"), json=json)
        except httpx.HTTPError as exc:
            raise APIError(0, f"cannot reach {self.url}: {exc}") from None
        if r.status_code >= 400:
            raise APIError(r.status_code, _message(r))
        return r.json()

    def whoami(self) -> dict:
        """Who the token belongs to: {name, kind, admin, groups, scopes}."""
        return self.request("GET", "api/v1/whoami")

    def query(self, sql: str, *, limit: int | None = None, offset: int = 0):
        """Run one SELECT over the alert database; a pandas DataFrame."""
        import pandas as pd

        body: dict = {"sql": sql, "offset": offset}
        if limit is not None:
            body["limit"] = limit
        result = self.request("POST", "api/v1/query", json=body)
        if result.get("error"):  # a streamed answer (over 10,000 rows) stopped midway, e.g. by the time limit
            raise APIError(400, result["error"])
        if result.get("truncated"):
            warnings.warn(f"the result was cut at {len(result['rows'])} rows: pass a larger limit= or page "
                          "with offset=", TruncatedResult, stacklevel=2)
        return pd.DataFrame(result["rows"], columns=result["columns"])

    def close(self) -> None:
        self.http.close()


def _message(r: httpx.Response) -> str:
    try:
        detail = r.json().get("detail", r.text)
    except ValueError:
        return r.text.strip() or r.reason_phrase
    if isinstance(detail, list):  # request validation errors: [{loc, msg}, ...]
        return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail)
    return str(detail)


_default: Client | None = None


def default_client() -> Client:
    """A client from the environment, made once per process (re-made if the environment changed)."""
    global _default
    url = settings.get("ALERTLAB_URL")
    token = _first(settings.get("ALERTLAB_TOKEN"), os.environ.get("JUPYTERHUB_API_TOKEN"))
    if _default is None or (_default.url.rstrip("/"), _default.token) != ((url or "").rstrip("/"), token):
        _default = Client()
    return _default
