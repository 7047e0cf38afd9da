"""One request to the API for the client's data, resource and match helpers:
any body (JSON, CSV, FITS, PNG, uploads), the server's refusal as an
``APIError`` with its message, and a polite wait when the server says 429.

The connection (URL, token) is the process's ``default_client()`` unless a
``Client`` is passed (``client=``)."""

from __future__ import annotations

import time

import httpx

from alertlab.client.api import APIError, Client, default_client

MAX_WAIT_429 = 30.0  # seconds: a longer Retry-After is raised, not waited for
RETRIES_429 = 3


def message(r: httpx.Response) -> str:
    """The server's explanation: ``detail`` of a JSON error (validation errors as ``field: message``)."""
    try:
        detail = r.json().get("detail", r.text)
    except ValueError:
        return r.text.strip() or r.reason_phrase
    if isinstance(detail, list):
        return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail)
    return str(detail)


def send(method: str, path: str, *, client: Client | None = None, **kw) -> httpx.Response:
    """``method`` on ``path`` (relative to the service, e.g. ``api/v1/cone``); APIError unless 2xx."""
    c = client or default_client()
    url = c.url + path.lstrip("/")
    for attempt in range(RETRIES_429 + 1):
        try:
            r = c.http.request(method, url, **kw)
        except httpx.HTTPError as exc:
            raise APIError(0, f"cannot reach {c.url}: {exc}") from None
        if r.status_code == 429 and attempt < RETRIES_429:
            wait = float(r.headers.get("Retry-After", "1") or 1)
            if wait <= MAX_WAIT_429:
                time.sleep(wait)
                continue
        if r.status_code >= 400:
            raise APIError(r.status_code, message(r))
        return r
    raise AssertionError("unreachable")


def get_json(path: str, *, client: Client | None = None, **kw):
    return send("GET", path, client=client, **kw).json()


def v1(path: str) -> str:
    return "api/v1/" + path.lstrip("/")
