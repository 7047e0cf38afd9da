"""The `alertlab` web service: a FastAPI app served under the hub's
/services/alertlab/ prefix. ``create_app()`` assembles the routers; each area of
the API is one module in ``alertlab.api.routes``."""

from __future__ import annotations

import os

from fastapi import Depends, FastAPI

from alertlab.api import auth, ratelimit, v1
from alertlab.api.routes import gallery, query, session, whoami
from alertlab.scheduler import api as scheduler_api

DEFAULT_PREFIX = "/services/alertlab/"


def service_prefix() -> str:
    """The URL prefix the hub gives the service ($JUPYTERHUB_SERVICE_PREFIX), with a trailing slash."""
    return (os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or DEFAULT_PREFIX).rstrip("/") + "/"


def create_app(service_auth: auth.ServiceAuth | None = None, prefix: str | None = None) -> FastAPI:
    """The app; ``service_auth`` defaults to one built from the hub's environment on first use."""
    base = (prefix or service_prefix()).rstrip("/")
    app = FastAPI(title="AlertLab API", version="1", docs_url=f"{base}/api/docs",
                  openapi_url=f"{base}/api/openapi.json", redoc_url=None)
    auth.install(app, service_auth)
    app.include_router(session.router, prefix=base)
    app.include_router(whoami.router, prefix=f"{base}/api/v1", dependencies=[Depends(ratelimit.caller)],
                       responses=v1.errors(*v1.AUTH_ERRORS))
    app.include_router(query.router, prefix=f"{base}/api/v1")
    v1.install(app, base)  # the alert data API (issue 5): its routers, 429 and 503 answers
    gallery.install(app, base)  # the gallery (API and pages) and the dashboards (issue 7)
    app.include_router(scheduler_api.router, prefix=f"{base}/api/v1",  # schedules and runs (issue 6)
                       dependencies=[Depends(ratelimit.caller)], responses=v1.errors(*v1.AUTH_ERRORS))
    return app
