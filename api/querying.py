"""What ``POST /api/v1/query`` does with a caller's SQL, in order:

1. the row cap of the caller's class (``alertlab.api.classes``): asking for
   more is a 400 that says the cap (and the asynchronous one);
2. the guard (``sqlguard.check_select``), with ``watchlist_hits`` and
   ``area_hits`` restricted to the watchlists and areas the caller may read
   (``alertlab.api.hits``): a rejection is a 400 with the guard's reason;
3. asynchronous (``?async=true``): a job (``alertlab.api.jobs``), 202 and its
   id; at most $ALERTLAB_JOBS_PER_USER unfinished per user (else 429);
4. synchronous: one of the caller's query slots (else 429), then
   - JSON up to STREAM_ABOVE rows: run, then answered in one piece (errors,
     the time limit included, are a 400 with one line);
   - JSON above that, and CSV always: streamed from a server-side cursor as
     the rows arrive. A streamed JSON answer that hits the time limit midway
     ends with ``"truncated": true, "error": "..."``; a CSV answer is cut
     short (the client sees an incomplete download). CSV has no truncation
     flag: ask for one row more than you need to know.

The slot is given back when the answer has been sent (or the client left)."""

from __future__ import annotations

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, StreamingResponse

from alertlab.api import hits, jobs as jobs_mod
from alertlab.api.auth import HubUser
from alertlab.api.classes import limits_of, user_class
from alertlab.api.formats import CSV_TYPE, cell, csv_chunks, json_result_chunks
from alertlab.api.ratelimit import RateLimited, query_slot
from alertlab.api.readonly import QueryTimeout, run_select, stream_select
from alertlab.api.sqlguard import RejectedQuery, check_select
from alertlab.core.errors import ServiceError

STREAM_ABOVE = 10_000


def _checked(sql: str, user: HubUser) -> str:
    try:
        return check_select(sql, extra_filters=hits.extra_filters(user))
    except RejectedQuery as exc:
        raise HTTPException(400, str(exc)) from None


def _released(chunks, slot, rows):
    try:
        yield from chunks
    finally:
        try:
            rows.close()  # gives the connection back, also when the client left early
        finally:
            slot.release()


async def run_query(request: Request, user: HubUser, sql: str, limit: int, offset: int, format_: str,
                    asynchronous: bool):
    lim = limits_of(user)
    klass = user_class(user)
    if asynchronous:
        if limit > lim.job_rows:
            raise HTTPException(400, f"an asynchronous query returns at most {lim.job_rows:,} rows for a {klass}")
        checked = await run_in_threadpool(_checked, sql, user)
        store = jobs_mod.jobs(request.app)
        if await run_in_threadpool(store.unfinished, user.name) >= lim.unfinished_jobs:
            raise RateLimited(5, f"you already have {lim.unfinished_jobs} asynchronous queries queued or running, "
                                 "the most allowed: wait for one to finish or cancel one")
        job = await run_in_threadpool(store.submit, user.name, sql, checked, limit, offset, lim.job_seconds)
        return JSONResponse(job, status_code=202, headers={"Location": f"query/jobs/{job['id']}"})
    if limit > lim.query_rows:
        raise HTTPException(400, f"a query returns at most {lim.query_rows:,} rows for a {klass}: page with offset, "
                                 f"or use an asynchronous query (?async=true, up to {lim.job_rows:,} rows)")
    checked = await run_in_threadpool(_checked, sql, user)
    slot = query_slot(request, user)
    try:
        if format_ == "json" and limit <= STREAM_ABOVE:
            result = await run_in_threadpool(run_select, checked, limit=limit, offset=offset,
                                             max_seconds=lim.query_seconds)
            slot.release()
            return JSONResponse({"columns": result.columns, "rows": [[cell(v) for v in row] for row in result.rows],
                                 "truncated": result.truncated})
        columns, rows = await run_in_threadpool(stream_select, checked, limit=limit + (format_ == "json"),
                                                offset=offset, max_seconds=lim.query_seconds)
    except (RejectedQuery, QueryTimeout) as exc:
        slot.release()
        raise HTTPException(400, str(exc)) from None
    except ServiceError as exc:
        slot.release()
        raise HTTPException(503, str(exc)) from None
    except BaseException:
        slot.release()
        raise
    if format_ == "csv":
        return StreamingResponse(_released(csv_chunks(columns, rows), slot, rows), media_type=CSV_TYPE,
                                 headers={"Content-Disposition": 'attachment; filename="query.csv"'})
    chunks = json_result_chunks(columns, rows, limit,
                                error_of=lambda exc: str(exc) if isinstance(exc, (QueryTimeout, ServiceError)) else None)
    return StreamingResponse(_released(chunks, slot, rows), media_type="application/json")
