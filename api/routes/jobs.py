"""Asynchronous queries, after ``POST /api/v1/query?async=true``: their state,
their result (JSON or CSV, streamed from the stored file), cancelling. Only the
job's owner sees a job (others, admins included, get 403)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response, StreamingResponse

from alertlab.api import jobs as jobs_mod
from alertlab.api.auth import Forbidden, HubUser
from alertlab.api.formats import CSV_TYPE, choose, csv_chunks, json_result_chunks
from alertlab.api.models import AUTH_ERRORS, errors
from alertlab.api.ratelimit import caller

router = APIRouter(tags=["query"])
JOB_ID = Path(pattern=r"^[0-9a-f]{32}$", description="The job's id, from POST query?async=true")


class Job(BaseModel):
    id: str
    owner: str
    sql: str
    limit: int
    offset: int
    max_seconds: float
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    error: str | None = Field(description="Why it failed")
    nrows: int | None = Field(description="Rows stored (done)")
    truncated: bool | None = Field(description="More rows matched than the limit (done)")
    columns: list[str] | None
    result_bytes: int | None
    created: datetime
    started: datetime | None
    finished: datetime | None


def _own(request: Request, user: HubUser, job_id: str) -> dict:
    job = jobs_mod.jobs(request.app).get(job_id)
    if job is None:
        raise HTTPException(404, f"there is no query job {job_id}")
    if job["owner"] != user.name:
        raise Forbidden(f"query job {job_id} is not yours")
    return job


@router.get("/query/jobs", response_model=list[Job], responses=errors(*AUTH_ERRORS))
def list_jobs(request: Request, user: HubUser = Depends(caller)):
    """Your asynchronous queries, latest first (the last 100)."""
    return JSONResponse(jobs_mod.jobs(request.app).of(user.name))


@router.get("/query/jobs/{job_id}", response_model=Job, responses=errors(*AUTH_ERRORS, 404, 422))
def get_job(request: Request, job_id: str = JOB_ID, user: HubUser = Depends(caller)):
    """The job's state: queued, running, done (with nrows), failed (with the error) or cancelled."""
    return JSONResponse(_own(request, user, job_id))


@router.get("/query/jobs/{job_id}/result",
            responses={200: {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/QueryResult"}},
                                         "text/csv": {"schema": {"type": "string"}}},
                             "description": "The rows, as the synchronous query gives them"},
                       **errors(*AUTH_ERRORS, 404, 409, 422)})
async def get_job_result(request: Request, job_id: str = JOB_ID,
                         format: Literal["json", "csv"] | None = Query(None, description="Default: the Accept header"),
                         user: HubUser = Depends(caller)):
    """The result of a finished job, streamed: JSON `{columns, rows, truncated}` or CSV."""
    job = await run_in_threadpool(_own, request, user, job_id)
    if job["status"] != "done":
        raise HTTPException(409, f"query job {job_id} is {job['status']}"
                                 + (f": {job['error']}" if job.get("error") else ", not done"))
    if not jobs_mod.result_path(job_id).exists():
        raise HTTPException(404, f"the result of query job {job_id} is no longer kept")
    rows = jobs_mod.result_rows(job_id)
    if choose(format, request.headers.get("accept")) == "csv":
        return StreamingResponse(csv_chunks(job["columns"], rows), media_type=CSV_TYPE,
                                 headers={"Content-Disposition": f'attachment; filename="{job_id}.csv"'})
    return StreamingResponse(json_result_chunks(job["columns"], rows, job["nrows"], truncated=bool(job["truncated"])),
                             media_type="application/json")


@router.delete("/query/jobs/{job_id}", status_code=204, response_class=Response,
               responses=errors(*AUTH_ERRORS, 404, 422))
def delete_job(request: Request, job_id: str = JOB_ID, user: HubUser = Depends(caller)):
    """Cancel the job if it is still running, and delete it and its result."""
    _own(request, user, job_id)
    jobs_mod.jobs(request.app).delete(job_id)
    return Response(status_code=204)
