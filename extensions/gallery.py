"""Jupyter server extension: "Publish to gallery" from a user's own server.

    GET  {base_url}alertlab/gallery/publish?path=work/lc.ipynb   a form: title, description, tags, visibility
    POST {base_url}alertlab/gallery/publish   the form, or JSON {"path", "title", "description", "tags",
                                              "visibility"}: publishes the saved notebook

The notebook is read through the server's contents manager (what is saved on
disk) and sent to the `alertlab` service ($ALERTLAB_URL) with the server's own
hub token ($JUPYTERHUB_API_TOKEN): it is published as the server's user and
nobody else. Publishing the same path again adds a version to the same entry.
A form post ends on the entry's gallery page; JSON gets the entry back.

``enable()`` (run by `alertlab hub up`) turns the extension on for every
user's server with a file in the environment's jupyter_server_config.d."""

from __future__ import annotations

import html
import json
import os
import sys
from pathlib import Path

import httpx
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web

MODULE = "alertlab.extensions.gallery"


def _jupyter_server_extension_points():
    return [{"module": MODULE}]


def enable(prefix: str | None = None) -> Path:
    """Turn the extension on for servers run from this environment; the config file written."""
    folder = Path(prefix or sys.prefix) / "etc" / "jupyter" / "jupyter_server_config.d"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "alertlab-gallery.json"
    path.write_text(json.dumps({"ServerApp": {"jpserver_extensions": {MODULE: True}}}, indent=1))
    path.chmod(0o644)
    return path


def _service() -> tuple[str, str]:
    url = os.environ.get("ALERTLAB_URL", "")
    token = os.environ.get("ALERTLAB_TOKEN") or os.environ.get("JUPYTERHUB_API_TOKEN", "")
    if not url or not token:
        raise web.HTTPError(503, "this server has no AlertLab service configured (ALERTLAB_URL and a hub token)")
    return url.rstrip("/") + "/", token


FORM = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Publish to the gallery</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:46em}}label{{display:block;margin:.8em 0}}
input,textarea,select{{font:inherit;width:100%;padding:.3em}}button{{font:inherit;padding:.5em 1em;background:#2457c5;
color:#fff;border:0;border-radius:4px}}.error{{background:#fdecea;padding:.6em}}</style></head><body>
<h1>Publish to the gallery</h1>
<p>Notebook: <code>{path}</code> (as last saved). Publishing it again later adds a new version.</p>
{error}
<form method="post">{xsrf}
<input type="hidden" name="path" value="{path}">
<label>Title <input name="title" value="{title}" required maxlength="255"></label>
<label>Description <textarea name="description" rows="4"></textarea></label>
<label>Tags (comma-separated) <input name="tags" value=""></label>
<label>Who may see it <select name="visibility">{options}</select></label>
<label>or named users / groups (e.g. <code>user:carol, group:demo-team:editor</code>)
<input name="more" value=""></label>
<button type="submit" id="publish">Publish</button>
</form></body></html>"""


class PublishHandler(JupyterHandler):
    def home_path(self, path: str | None) -> str:
        if not path:
            raise web.HTTPError(422, "path: the notebook's path")
        root = self.settings.get("server_root_dir") or os.getcwd()
        absolute = os.path.normpath(os.path.join(os.path.expanduser(root), path.lstrip("/")))
        relative = os.path.relpath(absolute, os.path.expanduser("~"))
        return absolute if relative.startswith("..") else relative

    async def groups(self) -> list[str]:
        base, token = _service()
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                r = await http.get(base + "api/v1/whoami", headers={"Authorization": f"token {token}"})
            return list(r.json().get("groups", [])) if r.status_code == 200 else []
        except (httpx.HTTPError, ValueError):
            return []

    async def form(self, path: str, error: str = "") -> None:
        model = await self._notebook(path)
        from alertlab.gallery.notebooks import default_title

        options = ['<option value="">as it is (a new entry: only me)</option>',
                   '<option value="private">only me</option>', '<option value="public">every logged-in user</option>']
        options += [f'<option value="group:{html.escape(g)}">group {html.escape(g)}</option>'
                    for g in await self.groups()]
        self.finish(FORM.format(path=html.escape(path), title=html.escape(default_title(model["content"], path)),
                                xsrf=self.xsrf_form_html(), options="".join(options),
                                error=f'<p class="error">{html.escape(error)}</p>' if error else ""))

    async def _notebook(self, path: str) -> dict:
        try:
            return await self.contents_manager.get(path, content=True, type="notebook")
        except web.HTTPError:
            raise
        except Exception as exc:  # noqa: BLE001 - not a readable notebook
            raise web.HTTPError(404, f"cannot read the notebook {path}: {exc}") from None

    @web.authenticated
    async def get(self):
        await self.form(self.get_argument("path", ""))

    @web.authenticated
    async def post(self):
        is_json = (self.request.headers.get("Content-Type") or "").startswith("application/json")
        if is_json:
            try:
                body = json.loads(self.request.body or b"{}")
            except ValueError:
                raise web.HTTPError(422, "the body is not JSON") from None
        else:
            body = {k: self.get_body_argument(k, "") for k in ("path", "title", "description", "tags", "visibility",
                                                              "more")}
            more = [x.strip() for x in body.pop("more", "").split(",") if x.strip()]
            vis = body.get("visibility") or ""
            body["visibility"] = ([vis] if vis not in ("", "private") else []) + more if more else vis
            body["tags"] = [t.strip() for t in body.get("tags", "").split(",") if t.strip()]
        path = body.get("path") or ""
        model = await self._notebook(path)
        import nbformat

        fields = ("title", "description", "tags", "visibility")
        payload = {"notebook": nbformat.writes(model["content"]), "path": self.home_path(path),
                   **{k: body[k] for k in fields if body.get(k) not in (None, "")}}
        base, token = _service()
        try:
            async with httpx.AsyncClient(timeout=120) as http:
                r = await http.post(base + "api/v1/gallery", json=payload, headers={"Authorization": f"token {token}"})
        except httpx.HTTPError as exc:
            raise web.HTTPError(502, f"the AlertLab service did not answer: {exc}") from None
        if is_json:
            self.set_status(r.status_code)
            self.set_header("Content-Type", "application/json")
            self.finish(r.content)
        elif r.status_code == 201:
            self.redirect(r.json()["url"])
        else:
            try:
                detail = r.json().get("detail")
            except ValueError:
                detail = r.text
            await self.form(path, f"Not published: {detail}")


def _load_jupyter_server_extension(serverapp) -> None:
    base = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(".*$", [(url_path_join(base, "alertlab", "gallery", "publish"), PublishHandler)])
    serverapp.log.info("%s: %salertlab/gallery/publish", MODULE, base)
