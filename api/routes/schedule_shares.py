"""Sharing schedules and their run outputs, with the one sharing model
(``alertlab.api.access``, kind ``schedule``):

    GET|PUT|DELETE /schedules/{id}/shares           who sees the schedule (owner, admin change it)
    GET  /shared/schedules                          schedules shared with you (not yours)
    GET  /shared/schedules/{id}/runs                their runs
    GET  /shared/runs/{run_id}/output?format=html|ipynb   a run's stored output

The scheduler's own routes (/schedules, /runs) stay the owner's; these let
the people a schedule is shared with (a group, named users, everyone) read it
and its outputs. An output's HTML is served sandboxed."""

from __future__ import annotations

import gzip
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel
from starlette.responses import Response

from alertlab.api import access
from alertlab.api.auth import HubUser
from alertlab.api.models import AUTH_ERRORS, Role, Share, ShareIn, errors
from alertlab.api.ratelimit import caller
from alertlab.core import db

router = APIRouter(tags=["sharing"])

KIND = "schedule"
ID = Path(ge=1, le=2**31 - 1, description="The schedule's id")


class SharedSchedule(BaseModel):
    id: int
    owner: str
    name: str
    notebook: str
    trigger_kind: str
    enabled: bool
    role: Role


class SharedRun(BaseModel):
    id: int
    schedule_id: int
    reason: str
    fire_time: datetime
    status: str
    started: datetime | None
    ended: datetime | None
    error: str | None


def schedule(user: HubUser, sid: int, need: str) -> tuple[dict, str]:
    with db.engine("app").connect() as conn:
        row = conn.exec_driver_sql("SELECT id, owner, name, notebook, trigger_kind, enabled FROM schedules "
                                   "WHERE id = %s", (sid,)).mappings().first()
    if row is None:
        raise HTTPException(404, f"there is no schedule {sid}")
    row = dict(row)
    return row, access.check(user, access.Resource.of(KIND, row["id"], row["owner"]), need)


@router.get("/schedules/{sid}/shares", response_model=list[Share], responses=errors(*AUTH_ERRORS, 404, 422))
def list_shares(sid: int = ID, user: HubUser = Depends(caller)):
    row, _ = schedule(user, sid, "read")
    return [s.__dict__ for s in access.shares(access.Resource.of(KIND, row["id"], row["owner"]))]


@router.put("/schedules/{sid}/shares", response_model=Share, responses=errors(*AUTH_ERRORS, 404, 422))
def put_share(body: ShareIn, sid: int = ID, user: HubUser = Depends(caller)):
    """Let a user, a group or everyone see the schedule and its runs' outputs (owner, admin)."""
    row, _ = schedule(user, sid, "own")
    try:
        return access.grant(access.Resource.of(KIND, row["id"], row["owner"]), body.grantee_kind, body.grantee,
                            body.role, user.name).__dict__
    except access.InvalidShare as exc:
        raise HTTPException(422, str(exc)) from None


@router.delete("/schedules/{sid}/shares", status_code=204, response_class=Response,
               responses=errors(*AUTH_ERRORS, 404, 422))
def delete_share(sid: int = ID, grantee_kind: Literal["user", "group", "all"] = Query(),
                 grantee: str = Query("", max_length=255), user: HubUser = Depends(caller)):
    row, _ = schedule(user, sid, "own")
    if not access.revoke(access.Resource.of(KIND, row["id"], row["owner"]), grantee_kind, grantee):
        raise HTTPException(404, f"schedule {sid} is not shared with {grantee_kind} {grantee}".rstrip())
    return Response(status_code=204)


@router.get("/shared/schedules", response_model=list[SharedSchedule], responses=errors(*AUTH_ERRORS))
def shared_schedules(user: HubUser = Depends(caller)):
    """Schedules of other people shared with you, your groups or everyone."""
    shared = access.shared_with(user, KIND)
    if not shared:
        return []
    with db.engine("app").connect() as conn:
        rows = conn.exec_driver_sql(
            f"SELECT id, owner, name, notebook, trigger_kind, enabled FROM schedules WHERE id IN "
            f"({', '.join(['%s'] * len(shared))}) AND owner <> %s ORDER BY id", (*[int(i) for i in shared], user.name)
        ).mappings().all()
    return [{**r, "enabled": bool(r["enabled"]), "role": shared[str(r["id"])]} for r in rows]


@router.get("/shared/schedules/{sid}/runs", response_model=list[SharedRun], responses=errors(*AUTH_ERRORS, 404, 422))
def shared_runs(sid: int = ID, limit: int = Query(100, ge=1, le=1000), user: HubUser = Depends(caller)):
    schedule(user, sid, "read")
    with db.engine("app").connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT id, schedule_id, reason, fire_time, status, started, ended, error FROM runs WHERE schedule_id = %s "
            "ORDER BY queued DESC LIMIT %s", (sid, limit)).mappings().all()
    return [dict(r) for r in rows]


@router.get("/shared/runs/{run_id}/output", response_class=Response, responses=errors(*AUTH_ERRORS, 404, 422))
def shared_output(run_id: int = Path(ge=1, le=2**62), format: Literal["html", "ipynb"] = "html",
                  user: HubUser = Depends(caller)):
    """A run's executed notebook, as HTML (sandboxed) or .ipynb, for those the schedule is shared with."""
    with db.engine("app").connect() as conn:
        sid = conn.exec_driver_sql("SELECT schedule_id FROM runs WHERE id = %s", (run_id,)).scalar()
        if sid is None:
            raise HTTPException(404, f"there is no run {run_id}")
        schedule(user, sid, "read")
        data = conn.exec_driver_sql(f"SELECT {format}_gz FROM run_outputs WHERE run_id = %s", (run_id,)).scalar()
    if data is None:
        raise HTTPException(404, f"run {run_id} has no stored output")
    body = gzip.decompress(data)
    if format == "html":
        return Response(body, media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": "sandbox allow-scripts",
                                 "X-Content-Type-Options": "nosniff"})
    return Response(body, media_type="application/x-ipynb+json",
                    headers={"Content-Disposition": f'attachment; filename="run-{run_id}.ipynb"',
                             "X-Content-Type-Options": "nosniff"})
