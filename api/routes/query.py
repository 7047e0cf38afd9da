"""POST /api/v1/query: one SELECT over the alert tables, on the read-only account.

The SQL passes ``sqlguard.check_select`` first (a rejected query is a 400 with
the guard's reason) and runs with a row limit and a time limit; JSON or CSV,
large answers streamed, or asynchronously (``?async=true``). The steps, the
caps per user class and the streaming are in ``alertlab.api.querying``."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from alertlab.api.auth import HubUser
from alertlab.api.formats import choose
from alertlab.api.models import AUTH_ERRORS, errors
from alertlab.api.ratelimit import caller
from alertlab.api.routes.jobs import Job

DEFAULT_LIMIT = 1000
MAX_LIMIT = 100_000_000  # the caps per user class are lower (alertlab.api.classes): a 400 says which

router = APIRouter(tags=["query"])


class QueryRequest(BaseModel):
    sql: str = Field(description="One SELECT (or WITH ... SELECT) over the alert tables")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT,
                       description="Rows to return at most: up to 100,000 for a user and 1,000,000 for a power "
                                   "user by default; asynchronous queries up to 1,000,000 and 20,000,000")
    offset: int = Field(0, ge=0, le=MAX_LIMIT, description="Rows to skip first")


class QueryResult(BaseModel):
    columns: list[str]
    rows: list[list]
    truncated: bool = Field(description="More rows match than were returned")
    error: str | None = Field(None, description="Only in a streamed answer (over 10,000 rows) stopped midway, "
                                                "e.g. by the time limit: the rows are the ones before it")


@router.post("/query", response_model=QueryResult,
             responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                              "description": "The rows: JSON, or CSV (format=csv or Accept: text/csv)"},
                        202: {"model": Job, "description": "async=true: the job, to fetch later"},
                        **errors(400, *AUTH_ERRORS, 422, 503)})
async def query(body: QueryRequest, request: Request,
                format: Literal["json", "csv"] | None = Query(None, description="Default: the Accept header"),
                asynchronous: bool = Query(False, alias="async",
                                           description="Run it in the background with larger limits"),
                user: HubUser = Depends(caller)):
    """Run one read-only SELECT; at most ``limit`` rows from ``offset``."""
    from alertlab.api.querying import run_query

    return await run_query(request, user, body.sql, body.limit, body.offset,
                           choose(format, request.headers.get("accept")), asynchronous)
