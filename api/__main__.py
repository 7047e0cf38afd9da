"""`python -m alertlab.api`: serve the app with uvicorn where the hub expects it.

The hub starts this as a managed service and tells it its address in
$JUPYTERHUB_SERVICE_URL; without the hub, ALERTLAB_API_PORT on 127.0.0.1."""

from __future__ import annotations

import os
from urllib.parse import urlparse


def main() -> None:
    import uvicorn

    from alertlab.api.app import create_app
    from alertlab.core import settings

    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL") or f"http://127.0.0.1:{settings.get('ALERTLAB_API_PORT')}")
    uvicorn.run(create_app(), host=url.hostname or "127.0.0.1", port=url.port, log_level="info",
                proxy_headers=True, forwarded_allow_ips="127.0.0.1")


if __name__ == "__main__":
    main()
