"""The viewer's token in a dashboard kernel: a short-lived hub token of the
*viewer*, made by the `alertlab` service through the hub's REST API, allowed
to use the alertlab service (and to say whose it is) and nothing else. So a
dashboard's queries run with the viewer's rights, never the author's.

One token per viewer is reused while more than half of its life is left
($ALERTLAB_DASHBOARD_TOKEN_SECONDS), so opening ten dashboards makes one
token, not ten; it expires on its own."""

from __future__ import annotations

import threading
import time

from alertlab.core import settings

SCOPES = ["access:services!service=alertlab", "read:users:name!user", "read:users:groups!user"]
_lock = threading.Lock()
_cache: dict[str, tuple[str, float]] = {}  # viewer -> (token, when it expires, time.monotonic)


def viewer_token(name: str) -> str:
    """A token of hub user ``name`` for a dashboard kernel (HubAPIError when the hub refuses)."""
    lifetime = settings.get("ALERTLAB_DASHBOARD_TOKEN_SECONDS")
    now = time.monotonic()
    with _lock:
        cached = _cache.get(name)
        if cached and cached[1] - now > lifetime / 2:
            return cached[0]
    from alertlab.api import hubgroups

    if not hubgroups._hub_configured():
        from alertlab.core.errors import AlertLabError

        raise AlertLabError("no hub runs here: dashboards need the hub to make their viewer's token")
    token = hubgroups._api_client().new_token(name, note="alertlab dashboard", scopes=SCOPES, expires_in=lifetime)
    with _lock:
        _cache[name] = (token, now + lifetime)
    return token


def forget(name: str | None = None) -> None:
    with _lock:
        if name is None:
            _cache.clear()
        else:
            _cache.pop(name, None)
