"""The sharing routes of a kind of resource, and its match-event route, made
once for every kind (watchlists, areas, filters; the gallery's notebooks next):

- ``GET  /{plural}/{id}/shares``: who it is shared with (anyone who may read it);
- ``PUT  /{plural}/{id}/shares``: share it with a user, a group or everyone, as viewer or editor (owner, admin);
- ``DELETE /{plural}/{id}/shares?grantee_kind=&grantee=``: stop sharing (owner, admin);
- ``GET  /{plural}/{id}/matches?cursor=&wait=``: its match events, long-polled (anyone who may read it).

The rule itself is ``alertlab.api.access``."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from alertlab.api import access, matches
from alertlab.api.auth import HubUser
from alertlab.api.models import AUTH_ERRORS, MatchEvents, Share, ShareIn, errors
from alertlab.api.ratelimit import caller
from alertlab.api.resources import MAX_ID, checked


def add_share_routes(router: APIRouter, kind: str, plural: str, table: str, param: str,
                     event_kind: str | None = None) -> None:
    """Add the routes to ``router``; ``param`` names the id in the path (``wid``, ``aid``, ``fid``)."""
    columns = ["id", "owner"]
    ident = Path(ge=1, le=MAX_ID, alias=param, description=f"The {kind}'s id")

    def resource(user: HubUser, rid: int, need: str) -> access.Resource:
        row, _ = checked(user, kind, table, columns, rid, need)
        return access.Resource.of(kind, row["id"], row["owner"])

    @router.get(f"/{plural}/{{{param}}}/shares", response_model=list[Share], name=f"{kind}_shares",
                summary=f"Who the {kind} is shared with", responses=errors(*AUTH_ERRORS, 404, 422))
    def list_shares(rid: int = ident, user: HubUser = Depends(caller)):
        return [s.__dict__ for s in access.shares(resource(user, rid, "read"))]

    @router.put(f"/{plural}/{{{param}}}/shares", response_model=Share, name=f"{kind}_share",
                summary=f"Share the {kind} (owner or admin)", responses=errors(*AUTH_ERRORS, 404, 422))
    def put_share(body: ShareIn, rid: int = ident, user: HubUser = Depends(caller)):
        res = resource(user, rid, "own")
        try:
            return access.grant(res, body.grantee_kind, body.grantee, body.role, user.name).__dict__
        except access.InvalidShare as exc:
            raise HTTPException(422, str(exc)) from None

    @router.delete(f"/{plural}/{{{param}}}/shares", status_code=204, response_class=Response, name=f"{kind}_unshare",
                   summary=f"Stop sharing the {kind} with someone (owner or admin)",
                   responses=errors(*AUTH_ERRORS, 404, 422))
    def delete_share(rid: int = ident,
                     grantee_kind: Literal["user", "group", "all"] = Query(description="user, group or all"),
                     grantee: str = Query("", max_length=255, description="the user or group; empty for all"),
                     user: HubUser = Depends(caller)):
        if not access.revoke(resource(user, rid, "own"), grantee_kind, grantee):
            raise HTTPException(404, f"{kind} {rid} is not shared with {grantee_kind} {grantee}".rstrip())
        return Response(status_code=204)

    if event_kind is None:
        return

    @router.get(f"/{plural}/{{{param}}}/matches", response_model=MatchEvents, name=f"{kind}_matches",
                summary=f"The {kind}'s match events, long-polled",
                responses=errors(*AUTH_ERRORS, 404, 422, 503))
    async def get_matches(rid: int = ident,
                          cursor: str = Query("latest", max_length=2000, pattern=matches.CURSOR_PATTERN,
                                              description="`latest` (from now on), empty (from the oldest kept), "
                                                          "or the cursor of the previous answer"),
                          wait: float = Query(10.0, ge=0, le=matches.MAX_WAIT,
                                              description="Seconds to wait for a first event"),
                          limit: int = Query(100, ge=1, le=matches.MAX_EVENTS, description="Most events returned"),
                          user: HubUser = Depends(caller)):
        """Events of the ingest for this resource (`kind` = filter, watchlist or area), oldest first,
        after `cursor`. Loop on it, passing back the `cursor` each answer gives."""
        await run_in_threadpool(resource, user, rid, "read")
        try:
            events, next_cursor = await run_in_threadpool(matches.read, event_kind, rid, cursor, wait, limit)
        except matches.BadCursor as exc:
            raise HTTPException(422, str(exc)) from None
        return {"events": events, "cursor": next_cursor}
