"""The gallery from Python: publish a notebook, look through the gallery, share.

    import alertlab.client as al
    al.publish("light-curves.ipynb", title="Light curves of fast risers",
               description="...", tags=["ztf", "transients"], visibility="group:demo-team")

Publishing the same file again adds a version to the same entry. ``visibility``
is "private" (the default for a new entry), "public" (every logged-in user),
"group:NAME" or "user:NAME" (":editor" to let them publish versions too), a
list of those, or {"public": ..., "groups": {...}, "users": {...}}."""

from __future__ import annotations

import os
from pathlib import Path

from alertlab.client.api import Client, default_client


def _path_for_server(path: Path) -> str:
    """The notebook's path relative to the home (how the server and the gallery name it), else absolute."""
    home = Path(os.path.expanduser("~")).resolve()
    full = path.resolve()
    try:
        return str(full.relative_to(home))
    except ValueError:
        return str(full)


def publish(path: str | os.PathLike, *, title: str | None = None, description: str | None = None,
            tags: list[str] | None = None, visibility=None, slug: str | None = None,
            client: Client | None = None) -> dict:
    """Publish the notebook at ``path`` to the gallery (a new version each time); the entry, with its
    ``url`` (its page) and ``dashboard``."""
    file = Path(path)
    body = {"notebook": file.read_text(encoding="utf-8"), "path": _path_for_server(file), "title": title,
            "description": description, "tags": list(tags) if tags is not None else None,
            "visibility": visibility, "slug": slug}
    return (client or default_client()).request("POST", "api/v1/gallery",
                                                 json={k: v for k, v in body.items() if v is not None})


def gallery(q: str = "", *, tag: str = "", author: str = "", group: str = "", sort: str = "recent",
            page: int = 1, client: Client | None = None) -> list[dict]:
    """One page of the gallery entries you may see that match."""
    from urllib.parse import urlencode

    params = urlencode({k: v for k, v in {"q": q, "tag": tag, "author": author, "group": group, "sort": sort,
                                          "page": page}.items() if v})
    return (client or default_client()).request("GET", f"api/v1/gallery?{params}")["entries"]


def share(slug: str, visibility, *, client: Client | None = None) -> list[dict]:
    """Replace who sees the entry ``slug`` (yours): the shares afterwards."""
    return (client or default_client()).request("PUT", f"api/v1/gallery/{slug}/visibility",
                                                json={"visibility": visibility})


def share_link(slug: str, days: float | None = None, *, client: Client | None = None) -> str:
    """A link to the entry ``slug`` that anyone logged in may open until it expires."""
    body = {"days": days} if days else {}
    return (client or default_client()).request("POST", f"api/v1/gallery/{slug}/links", json=body)["url"]
