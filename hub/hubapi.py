"""The hub's REST API as the `alertlab-cli` service, for administration from
the command line, the demo, the tests and the benchmark (users, groups, tokens,
servers). People use the hub's web pages or their own tokens instead."""

from __future__ import annotations

import time
from urllib.parse import quote

import httpx

from alertlab.core.errors import AlertLabError
from alertlab.hub import control


class HubAPIError(AlertLabError):
    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(f"hub API: {status} {message}")


class HubAPI:
    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 30):
        self.url = (url or control.api_url()).rstrip("/")
        self.http = httpx.Client(headers={"Authorization": f"token {token or control.cli_token()}"},
                                 timeout=timeout)

    def request(self, method: str, path: str, json=None, ok=(200, 201, 202, 204)) -> httpx.Response:
        r = self.http.request(method, f"{self.url}/{path.lstrip('/')}", json=json)
        if r.status_code not in ok:
            try:
                message = r.json().get("message", r.text)
            except ValueError:
                message = r.text
            raise HubAPIError(r.status_code, message)
        return r

    def user(self, name: str) -> dict | None:
        r = self.request("GET", f"users/{quote(name)}", ok=(200, 404))
        return r.json() if r.status_code == 200 else None

    def ensure_user(self, name: str, admin: bool | None = None) -> dict:
        """The hub user ``name``, created if missing; ``admin`` sets the admin flag when given."""
        model = self.user(name) or self.request("POST", f"users/{quote(name)}").json()
        if admin is not None and bool(model.get("admin")) != admin:
            model = self.request("PATCH", f"users/{quote(name)}", json={"admin": admin}).json()
        return model

    def ensure_group(self, group: str, members: list[str] = ()) -> dict:
        """The group, created if missing, with ``members`` added to it."""
        r = self.request("GET", f"groups/{quote(group)}", ok=(200, 404))
        if r.status_code == 404:
            self.request("POST", f"groups/{quote(group)}", json={"users": []})
        if members:
            self.request("POST", f"groups/{quote(group)}/users", json={"users": list(members)})
        return self.request("GET", f"groups/{quote(group)}").json()

    def new_token(self, user: str, note: str = "alertlab", scopes: list[str] | None = None,
                  expires_in: int | None = None) -> str:
        body: dict = {"note": note}
        if scopes is not None:
            body["scopes"] = scopes
        if expires_in:
            body["expires_in"] = expires_in
        return self.request("POST", f"users/{quote(user)}/tokens", json=body).json()["token"]

    def start_server(self, user: str) -> None:
        self.request("POST", f"users/{quote(user)}/server")

    def stop_server(self, user: str) -> None:
        self.request("DELETE", f"users/{quote(user)}/server")

    def server(self, user: str) -> dict | None:
        """The user's default server model ({'ready', 'url', 'started', ...}), or None if it is not running."""
        model = self.user(user) or {}
        return (model.get("servers") or {}).get("")

    def wait_ready(self, user: str, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.server(user)
            if server and server.get("ready"):
                return server
            time.sleep(0.5)
        raise HubAPIError(504, f"{user}'s server was not ready within {timeout:.0f}s")

    def close(self) -> None:
        self.http.close()
