"""Seed the gallery with the example notebooks of ``alertlab.shared_notebooks``
(what `make demo` does): each is run once in the AlertLab kernel as its author,
through the API with a short-lived hub token of the author (so its outputs,
plots included, are real; the first plot becomes the thumbnail), then
published with the given visibility. An example already published by that
author from the same path is left alone, so re-running the demo adds nothing."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import nbformat

from alertlab.api.auth import HubUser
from alertlab.core import db

log = logging.getLogger(__name__)
DESCRIPTIONS = {
    "recent-magnitudes.ipynb": ("Latest magnitudes of the most recently detected objects, and the ten brightest.",
                                ["example", "magnitudes", "matplotlib"]),
    "brightness-explorer.ipynb": ("A slider over the brightest objects: open it as a dashboard.",
                                  ["example", "dashboard", "ipywidgets"]),
    "sky-map.ipynb": ("Where the alerts are on the sky, and a cone search.", ["example", "sky", "cone search"]),
}


def examples() -> list[Path]:
    folder = Path(str(resources.files("alertlab.shared_notebooks")))
    return sorted(folder.glob("*.ipynb"))


def execute(path: Path, url: str, token: str, timeout: int = 180) -> bytes:
    """The notebook with its outputs, run in the AlertLab kernel with only the client's settings in its
    environment (no database credentials); unexecuted (with a note in the log) if it fails."""
    import os

    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "ALERTLAB_URL": url, "ALERTLAB_TOKEN": token, "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="alertlab", resources={"metadata": {"path": str(path.parent)}}
                       ).execute(env=env)
    except Exception as exc:  # noqa: BLE001 - publish it anyway, without (some) outputs
        log.warning("example %s did not run: %s", path.name, exc)
    return nbformat.writes(nb).encode("utf-8")


def published(author: str, path: str) -> bool:
    with db.engine("app").connect() as conn:
        return conn.exec_driver_sql("SELECT 1 FROM gallery_notebooks WHERE owner = %s AND source_path = %s",
                                    (author, path)).first() is not None


def publish_examples(author: str, visibility="public", run: bool = True) -> list[str]:
    """Publish each example not yet published by ``author``; lines saying what was done."""
    from alertlab.gallery import store
    from alertlab.hub import control
    from alertlab.hub.hubapi import HubAPI

    lines, token = [], None
    for path in examples():
        source = f"shared_notebooks/{path.name}"
        if published(author, source):
            continue
        data = path.read_bytes()
        if run:
            if token is None:
                api = HubAPI()
                try:
                    token = api.new_token(author, note="alertlab demo: examples", expires_in=900,
                                          scopes=["access:services!service=alertlab", "read:users:name!user",
                                                  "read:users:groups!user"])
                finally:
                    api.close()
            data = execute(path, control.service_url(), token)
        description, tags = DESCRIPTIONS.get(path.name, ("", ["example"]))
        row = store.publish(HubUser(name=author), data, description=description, tags=tags,
                            visibility_=visibility, path=source)
        lines.append(f"  {row['title']}: {control.service_url()}gallery/{row['slug']}")
    return lines
