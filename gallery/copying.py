""""Open a copy in my server": the notebook written into the viewer's own home.

When the hub runs as root every user has a unix account (``alertlab-<name>``,
made now if the viewer never started a server) and the copy is written *as
that account* (a short ``sh`` run under its uid): it lands in
``~/gallery/<title>.ipynb`` with the viewer's ownership and can never be
redirected elsewhere by a link in the viewer's home. Without root every
server shares the hub's account and the copy goes to the viewer's folder.
An existing file is never overwritten: "name (2).ipynb", "(3)", ...

The viewer then opens ``/user/<name>/lab/tree/gallery/<file>``; the hub starts
their server first if it is not running."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from urllib.parse import quote

from alertlab.core.errors import AlertLabError
from alertlab.gallery import notebooks

FOLDER = "gallery"
WRITE = 'umask 077; mkdir -p -- "$1" && set -C && cat > "$1/$2"'


class CopyFailed(AlertLabError):
    """The copy could not be written into the viewer's home."""


def with_origin(raw: bytes, slug: str, version: int, owner: str) -> bytes:
    """The notebook, remembering where it came from (metadata ``alertlab.gallery``)."""
    nb = json.loads(raw)
    nb.setdefault("metadata", {}).setdefault("alertlab", {})["gallery"] = {
        "slug": slug, "version": version, "author": owner}
    return json.dumps(nb, ensure_ascii=False, indent=1).encode("utf-8")


def _candidates(title: str):
    base = notebooks.file_name(title)[: -len(".ipynb")]
    yield f"{base}.ipynb"
    for n in range(2, 100):
        yield f"{base} ({n}).ipynb"


def _write_as(pw, name: str, data: bytes) -> bool:
    """True when written; False when the name is taken."""
    result = subprocess.run(["/bin/sh", "-c", WRITE, "sh", FOLDER, name], input=data, capture_output=True,
                            user=pw.pw_uid, group=pw.pw_gid, extra_groups=[], cwd=pw.pw_dir, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "HOME": pw.pw_dir, "LANG": "C.UTF-8"})
    if result.returncode == 0:
        return True
    if os.path.lexists(os.path.join(pw.pw_dir, FOLDER, name)):
        return False
    raise CopyFailed(f"could not write the copy into your home: {result.stderr.decode(errors='replace').strip()}")


def _write_here(home: Path, name: str, data: bytes) -> bool:
    folder = home / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return True


def copy_to_home(user: str, title: str, data: bytes) -> str:
    """Write ``data`` into ``user``'s home; the path relative to the home (e.g. ``gallery/Light curves.ipynb``)."""
    from alertlab.hub import spawner, unixusers

    if spawner.isolated():
        pw = unixusers.ensure(user)
        write = lambda name: _write_as(pw, name, data)  # noqa: E731
    else:
        home = Path(spawner.shared_home(user))
        write = lambda name: _write_here(home, name, data)  # noqa: E731
    for name in _candidates(title):
        if write(name):
            return f"{FOLDER}/{name}"
    raise CopyFailed("too many copies of this notebook in your gallery folder already")


def lab_url(user: str, path: str) -> str:
    """Where JupyterLab opens ``path`` (relative to the home) in ``user``'s server, through the hub."""
    return f"/user/{quote(user, safe='')}/lab/tree/{quote(path)}"
