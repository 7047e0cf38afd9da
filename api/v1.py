"""The alert data API's routers and error answers, added to the app in one call
(``install(app, base)`` from ``create_app``): objects, cone search, cutouts,
watchlists, areas, filters, annotations and asynchronous query jobs, the 429
answers of the rate limiter, and 503 for a database or broker that is down."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from starlette.responses import JSONResponse

from alertlab.api import jobs as jobs_mod
from alertlab.api import ratelimit
from alertlab.api.models import AUTH_ERRORS, errors  # noqa: F401 - used by create_app
from alertlab.api.readonly import unavailable
from alertlab.api.routes import annotations, areas, filters, jobs, objects, watchlists
from alertlab.core.errors import ServiceError

log = logging.getLogger(__name__)
ROUTERS = (objects, watchlists, areas, filters, annotations, jobs)


def install(app, base: str) -> None:
    ratelimit.install(app)

    async def service_down(request, exc: ServiceError):
        return JSONResponse({"detail": str(exc)}, status_code=503)

    async def database_error(request, exc: sa.exc.DBAPIError):
        orig = exc.orig
        code = orig.args[0] if orig is not None and orig.args and isinstance(orig.args[0], int) else None
        if unavailable(code):
            log.warning("database unavailable: %s", orig)
            return JSONResponse({"detail": "the database is unavailable; try again later"}, status_code=503)
        log.error("database error on %s: %s", request.url.path, orig)
        return JSONResponse({"detail": "internal error (database)"}, status_code=500)

    app.add_exception_handler(ServiceError, service_down)
    app.add_exception_handler(sa.exc.DBAPIError, database_error)
    for module in ROUTERS:
        app.include_router(module.router, prefix=f"{base}/api/v1")

    def stop_jobs():
        store = getattr(app.state, "jobs", None)
        if isinstance(store, jobs_mod.Jobs):
            store.shutdown()

    app.router.on_shutdown.append(stop_jobs)
