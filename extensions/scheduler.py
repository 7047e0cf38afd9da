"""Jupyter server extension: a user's server lists and creates schedules of its
own notebooks.

    GET  {base_url}alertlab/schedules[?path=work/nightly.ipynb]   the user's schedules (of that notebook)
    POST {base_url}alertlab/schedules   {"path": "work/nightly.ipynb", "cron": "0 9 * * *", ...}

``path`` is the notebook's path as the server shows it (relative to its root
directory); the scheduler wants it relative to the user's home, so it is
translated, and a notebook outside the home is refused. The other fields are
those of the scheduler API (docs/scheduler.md). The server holds no database
credentials: requests go to the `alertlab` service ($ALERTLAB_URL) with the
server's own hub token ($JUPYTERHUB_API_TOKEN), so they act as the server's
user and nobody else; the service's answer (and status) is passed back.

Enable it with ``--ServerApp.jpserver_extensions=alertlab.extensions.scheduler=True``
(the JupyterLab menu comes later)."""

from __future__ import annotations

import json
import os

import httpx
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web


def _jupyter_server_extension_points():
    return [{"module": "alertlab.extensions.scheduler"}]


def _service() -> tuple[str, str]:
    url = os.environ.get("ALERTLAB_URL", "")
    token = os.environ.get("ALERTLAB_TOKEN") or os.environ.get("JUPYTERHUB_API_TOKEN", "")
    if not url or not token:
        raise web.HTTPError(503, "this server has no AlertLab service configured (ALERTLAB_URL and a hub token)")
    return url.rstrip("/") + "/api/v1/", token


class SchedulesHandler(APIHandler):
    def home_path(self, path: str | None) -> str:
        """A server path as a path relative to the home."""
        if not path:
            raise web.HTTPError(422, "path: the notebook's path")
        root = self.settings.get("server_root_dir") or os.getcwd()
        absolute = os.path.normpath(os.path.join(os.path.expanduser(root), path.lstrip("/")))
        relative = os.path.relpath(absolute, os.path.expanduser("~"))
        if relative == ".." or relative.startswith("../") or os.path.isabs(relative):
            raise web.HTTPError(422, f"{path} is outside your home: the scheduler runs notebooks of your home")
        return relative

    async def forward(self, method: str, params: dict | None = None, body: dict | None = None) -> None:
        base, token = _service()
        try:
            async with httpx.AsyncClient(timeout=60) as http:
                r = await http.request(method, base + "schedules", params=params, json=body,
                                       headers={"Authorization": f"token {token}"})
        except httpx.HTTPError as exc:
            raise web.HTTPError(502, f"the AlertLab service did not answer: {exc}") from None
        self.set_status(r.status_code)
        self.set_header("Content-Type", "application/json")
        self.finish(r.content if r.content else b"{}")

    @web.authenticated
    async def get(self):
        path = self.get_argument("path", None)
        await self.forward("GET", params={"notebook": self.home_path(path)} if path else None)

    @web.authenticated
    async def post(self):
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(422, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPError(422, "the body must be a JSON object")
        body["notebook"] = self.home_path(body.pop("path", None) or body.get("notebook"))
        await self.forward("POST", body=body)


def _load_jupyter_server_extension(serverapp) -> None:
    base = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(".*$", [(url_path_join(base, "alertlab", "schedules"), SchedulesHandler)])
    serverapp.log.info("alertlab.extensions.scheduler: %salertlab/schedules", base)
