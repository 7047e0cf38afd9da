"""Generated secrets (database passwords, service tokens), kept in
$ALERTLAB_HOME/secrets.json with mode 0600 and never in the repository.

A secret is generated the first time it is asked for and reused afterwards, so
re-running `alertlab services up` or `make demo` keeps every password."""

from __future__ import annotations

import json
import os
import secrets as _secrets

from alertlab.core import settings


def _path():
    return settings.home() / "secrets.json"


def load() -> dict[str, str]:
    path = _path()
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def get(name: str, nbytes: int = 24) -> str:
    """The secret called ``name``, created on first use."""
    values = load()
    if name not in values:
        values[name] = _secrets.token_urlsafe(nbytes)
        path = _path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(values, fh, indent=1)
        os.replace(tmp, path)
    return values[name]
