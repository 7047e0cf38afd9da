"""The scheduler's part of the `alertlab` web API (a FastAPI router, included
under /api/v1 by ``alertlab.api.app``).

    GET    /schedules[?notebook=]          the caller's schedules
    POST   /schedules                      create (201), with the next five fire times
    GET    /schedules/{id}                 one schedule
    PATCH  /schedules/{id}                 change fields (a new trigger replaces the old)
    DELETE /schedules/{id}                 delete, with its runs (204)
    POST   /schedules/{id}/pause|resume
    POST   /schedules/{id}/run             run now ({"parameters": {...}} optional), 202
    GET    /runs[?schedule_id=&status=&since=&until=&limit=&offset=]
    GET    /runs/{id}
    POST   /runs/{id}/cancel
    GET    /runs/{id}/output[?format=html|ipynb]   HTML inline, or the .ipynb as a download
    GET    /never-again, POST /never-again, DELETE /never-again?kind=&id=&objectId=
    GET    /notifications[?unread=true], POST /notifications/read

Every call acts as the caller (``alertlab.api.auth.current_user``). Bad input
is 422 with the reason in ``detail``; a filter, watchlist or area of someone
else's is 403; someone else's schedule or run is 404, exactly like one that
does not exist. A run's HTML is served with ``Content-Security-Policy: sandbox``:
a notebook's output cannot run scripts in the service's origin."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from alertlab.api.auth import HubUser, current_user
from alertlab.scheduler import schedules
from alertlab.scheduler.errors import NotFound, ScheduleError, ScheduleForbidden

router = APIRouter(tags=["scheduler"])


class AlertSource(BaseModel):
    kind: str = Field(description="filter, watchlist, area or annotation")
    id: int | str = Field(description="the filter/watchlist/area id, or the annotator's name")


class ScheduleFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    parameters: dict | str | None = Field(None, description="a JSON object: the notebook's parameters")
    kernel: str | None = Field(None, description="default: the AlertLab kernel")
    cron: str | None = Field(None, description="five fields, e.g. '0 9 * * *'")
    timezone: str | None = Field(None, description="IANA time zone of the cron (default UTC)")
    interval: float | None = Field(None, description="seconds between runs")
    on: AlertSource | None = Field(None, description="run when alerts match this source")
    window: float | None = Field(None, description="alert triggers: seconds to gather matches into one run")
    max_runs_per_hour: int | None = None
    repeat: str | None = Field(None, description="every, once (per object) or days (once per object per N days)")
    repeat_days: float | None = None
    timeout: int | None = Field(None, description="seconds before the run is killed")
    retries: int | None = None
    memory_mb: int | None = None
    enabled: bool | None = None
    notify_on: list[str] | str | None = Field(None, description="success, failure, match")
    email: list[str] | str | None = None
    webhook: str | None = Field(None, description="Slack-compatible webhook URL")


class ScheduleCreate(ScheduleFields):
    notebook: str = Field(description="path of the notebook in your home, e.g. 'nightly.ipynb'")


class ScheduleUpdate(ScheduleFields):
    notebook: str | None = None


class RunRequest(BaseModel):
    parameters: dict | str | None = None


class NeverAgain(BaseModel):
    kind: str = "filter"
    id: int | str
    objectId: str
    note: str | None = None


class MarkRead(BaseModel):
    ids: list[int] | None = None


async def _call(fn, *args, **kwargs):
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except ScheduleForbidden as exc:
        raise HTTPException(403, str(exc)) from None
    except ScheduleError as exc:
        raise HTTPException(422, str(exc)) from None


def _fields(body: ScheduleFields) -> dict:
    data = body.model_dump(exclude_unset=True)
    on = data.pop("on", None)
    if on is not None:
        data["on"] = (on["kind"], on["id"])
    return data


@router.get("/schedules")
async def list_schedules(notebook: str | None = None, user: HubUser = Depends(current_user)) -> list[dict]:
    return await _call(schedules.list_schedules, user.name, notebook)


@router.post("/schedules", status_code=201)
async def create_schedule(body: ScheduleCreate, user: HubUser = Depends(current_user)) -> dict:
    data = _fields(body)
    notebook = data.pop("notebook")
    return await _call(schedules.create_schedule, user.name, notebook, admin=user.admin, **data)


@router.get("/schedules/{schedule_id}")
async def get_schedule(schedule_id: int, user: HubUser = Depends(current_user)) -> dict:
    return await _call(schedules.get_schedule, user.name, schedule_id)


@router.patch("/schedules/{schedule_id}")
async def update_schedule(schedule_id: int, body: ScheduleUpdate, user: HubUser = Depends(current_user)) -> dict:
    return await _call(schedules.update_schedule, user.name, schedule_id, admin=user.admin, **_fields(body))


@router.delete("/schedules/{schedule_id}", status_code=204)
async def delete_schedule(schedule_id: int, user: HubUser = Depends(current_user)) -> Response:
    await _call(schedules.delete_schedule, user.name, schedule_id)
    return Response(status_code=204)


@router.post("/schedules/{schedule_id}/pause")
async def pause(schedule_id: int, user: HubUser = Depends(current_user)) -> dict:
    return await _call(schedules.pause, user.name, schedule_id)


@router.post("/schedules/{schedule_id}/resume")
async def resume(schedule_id: int, user: HubUser = Depends(current_user)) -> dict:
    return await _call(schedules.resume, user.name, schedule_id)


@router.post("/schedules/{schedule_id}/run", status_code=202)
async def run_now(schedule_id: int, body: RunRequest | None = None, user: HubUser = Depends(current_user)) -> dict:
    return await _call(schedules.run_now, user.name, schedule_id, body.parameters if body else None)


@router.get("/runs")
async def list_runs(schedule_id: int | None = None, status: str | None = None, since: datetime | None = None,
                    until: datetime | None = None, limit: int = Query(100, ge=1, le=1000),
                    offset: int = Query(0, ge=0), user: HubUser = Depends(current_user)) -> list[dict]:
    return await _call(schedules.list_runs, user.name, schedule_id, status, since, until, limit, offset)


@router.get("/runs/{run_id}")
async def get_run(run_id: int, user: HubUser = Depends(current_user)) -> dict:
    return await _call(schedules.get_run, user.name, run_id)


@router.post("/runs/{run_id}/cancel")
async def cancel(run_id: int, user: HubUser = Depends(current_user)) -> dict:
    return await _call(schedules.cancel, user.name, run_id)


@router.get("/runs/{run_id}/output")
async def run_output(run_id: int, format: str = Query("html", pattern="^(html|ipynb)$"),
                     user: HubUser = Depends(current_user)) -> Response:
    data = await _call(schedules.run_output, user.name, run_id, format)
    if format == "html":
        return Response(data, media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"})
    return Response(data, media_type="application/x-ipynb+json",
                    headers={"Content-Disposition": f'attachment; filename="run-{run_id}.ipynb"',
                             "X-Content-Type-Options": "nosniff"})


@router.get("/never-again")
async def list_never_again(user: HubUser = Depends(current_user)) -> list[dict]:
    return await _call(schedules.list_never_again, user.name)


@router.post("/never-again", status_code=201)
async def never_again(body: NeverAgain, user: HubUser = Depends(current_user)) -> dict:
    return await _call(schedules.never_again, user.name, body.id, body.objectId, body.kind, body.note,
                       admin=user.admin)


@router.delete("/never-again", status_code=204)
async def allow_again(kind: str, id: str, objectId: str, user: HubUser = Depends(current_user)) -> Response:
    found = await _call(schedules.allow_again, user.name, id, objectId, kind)
    if not found:
        raise HTTPException(404, f"{objectId} is not marked never again for {kind} {id}")
    return Response(status_code=204)


@router.get("/notifications")
async def list_notifications(unread: bool = False, limit: int = Query(100, ge=1, le=1000),
                             user: HubUser = Depends(current_user)) -> list[dict]:
    return await _call(schedules.list_notifications, user.name, unread, limit)


@router.post("/notifications/read")
async def mark_read(body: MarkRead, user: HubUser = Depends(current_user)) -> dict:
    return {"marked": await _call(schedules.mark_read, user.name, body.ids)}
