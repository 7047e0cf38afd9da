"""Filters: a WHERE condition over ``objects`` that the ingest checks on every
object as its alerts arrive (docs/sql.md, "Filters").

Create, list, read, update, delete, share, dry-run, and read a filter's
matches. The condition must pass ``sqlguard.check_filter_where`` (422 with the
guard's reason); an active filter must also pass its dry run
(``alertlab.api.dryrun``: 422 when it would match more than
$ALERTLAB_FILTER_MAX_NIGHT_SHARE of a night's objects)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse, Response

from alertlab.api import access
from alertlab.api.auth import HubUser
from alertlab.api.dryrun import MAX_DAYS, dry_run
from alertlab.api.formats import cell
from alertlab.api.models import AUTH_ERRORS, Role, Share, errors
from alertlab.api.ratelimit import caller
from alertlab.api.readonly import QueryTimeout
from alertlab.api.resources import MAX_ID, checked, readable
from alertlab.api.routes.shares import add_share_routes
from alertlab.api.sqlguard import MAX_FILTER_CHARS, RejectedQuery
from alertlab.core import db

router = APIRouter(tags=["filters"])

KIND, TABLE = "filter", "filters"
COLUMNS = ["id", "owner", "name", "where_sql", "active", "last_error", "last_error_at", "nmatches", "created",
           "updated"]
ID = Path(ge=1, le=MAX_ID, description="The filter's id")
DAYS = Field(None, gt=0, le=MAX_DAYS, description="Days of data the dry run looks at (default: "
                                                  "$ALERTLAB_FILTER_DRYRUN_DAYS)")


class FilterIn(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    where_sql: str = Field(min_length=1, max_length=MAX_FILTER_CHARS,
                           description="A WHERE condition over the columns of objects, e.g. "
                                       "g_ndet >= 3 AND latest_mag < 18")
    active: bool = Field(True, description="Evaluated on incoming alerts (an active filter must pass its dry run)")
    days: float | None = DAYS


class FilterPatch(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=255)
    where_sql: str | None = Field(None, min_length=1, max_length=MAX_FILTER_CHARS)
    active: bool | None = None
    days: float | None = DAYS


class DryRunIn(BaseModel):
    where_sql: str = Field(min_length=1, max_length=MAX_FILTER_CHARS)
    days: float | None = DAYS


class NightCount(BaseModel):
    night: int = Field(description="FLOOR(lastmjd)")
    objects: int
    matches: int
    share: float


class DryRunResult(BaseModel):
    days: float
    since_mjd: float | None
    until_mjd: float | None = Field(description="The latest lastmjd of the data")
    objects: int = Field(description="Objects in the window")
    matches: int = Field(description="Of which the filter matches")
    max_share: float = Field(description="The largest share of a night's objects it matches (see docs)")
    limit_share: float = Field(description="The most an active filter may match")
    allowed: bool
    reason: str | None
    seconds: float = Field(description="How long the dry run took")
    nights: list[NightCount]
    sample: list[str] = Field(description="A few of the matching objects, latest first")


class Filter(BaseModel):
    id: int
    owner: str
    name: str
    where_sql: str
    active: bool
    last_error: str | None = Field(description="Why the ingest deactivated it, if it did")
    last_error_at: datetime | None
    nmatches: int
    created: datetime
    updated: datetime
    role: Role


class FilterDetail(Filter):
    shares: list[Share]
    dry_run: DryRunResult | None = Field(None, description="The dry run done when it was saved, if any")


def _public(row: dict, role: str) -> dict:
    out = {c: cell(row[c]) for c in COLUMNS}
    out["active"] = bool(row["active"])
    out["role"] = role
    return out


def _detail(row: dict, role: str, run: dict | None = None) -> dict:
    shares = access.shares(access.Resource.of(KIND, row["id"], row["owner"]))
    return {**_public(row, role), "shares": [{**s.__dict__, "created": s.created.isoformat()} for s in shares],
            "dry_run": run}


def _get(user: HubUser, fid: int, need: str) -> tuple[dict, str]:
    return checked(user, KIND, TABLE, COLUMNS, fid, need)


def _dry_run(where_sql: str, user: HubUser, days: float | None) -> dict:
    try:
        return dry_run(where_sql, user, days).as_dict()
    except RejectedQuery as exc:
        raise HTTPException(422, f"the filter is refused: {exc.reason}") from None
    except QueryTimeout as exc:
        raise HTTPException(422, f"the dry run was stopped: {exc} (try fewer days, or a condition on an indexed "
                                 "column)") from None


def _accepted(where_sql: str, user: HubUser, days: float | None, active: bool) -> dict | None:
    """The dry run of a filter about to be saved; 422 if the guard refuses it or, active, it matches too much."""
    run = _dry_run(where_sql, user, days)
    if active and not run["allowed"]:
        raise HTTPException(422, f"the filter is refused: {run['reason']}")
    return run


@router.get("/filters", response_model=list[Filter], responses=errors(*AUTH_ERRORS))
def list_filters(user: HubUser = Depends(caller)):
    """The filters you may see: yours, shared with you or your groups, public (an admin sees all)."""
    return JSONResponse([_public(row, row["role"]) for row in readable(user, KIND, TABLE, COLUMNS)])


@router.post("/filters", response_model=FilterDetail, status_code=201, responses=errors(*AUTH_ERRORS, 422))
def create_filter(body: FilterIn, user: HubUser = Depends(caller)):
    """A new filter of yours. The condition is checked and dry-run first (422 with the reason)."""
    run = _accepted(body.where_sql, user, body.days, body.active)
    with db.engine("alerts").begin() as conn:
        fid = conn.exec_driver_sql("INSERT INTO filters (owner, name, where_sql, active) VALUES (%s, %s, %s, %s)",
                                   (user.name, body.name, body.where_sql, int(body.active))).lastrowid
    row, role = _get(user, fid, "own")
    return JSONResponse(_detail(row, role, run), status_code=201)


@router.post("/filters/dry-run", response_model=DryRunResult, responses=errors(*AUTH_ERRORS, 422))
def dry_run_condition(body: DryRunIn, user: HubUser = Depends(caller)):
    """How many objects of the last days a condition matches, night by night, and how long it took;
    `allowed` says whether it could be saved as an active filter."""
    return JSONResponse(_dry_run(body.where_sql, user, body.days))


@router.get("/filters/{fid}", response_model=FilterDetail, responses=errors(*AUTH_ERRORS, 404, 422))
def get_filter(fid: int = ID, user: HubUser = Depends(caller)):
    row, role = _get(user, fid, "read")
    return JSONResponse(_detail(row, role))


@router.post("/filters/{fid}/dry-run", response_model=DryRunResult, responses=errors(*AUTH_ERRORS, 404, 422))
def dry_run_filter(fid: int = ID, days: float | None = Query(None, gt=0, le=MAX_DAYS), user: HubUser = Depends(caller)):
    """The dry run of a saved filter."""
    row, _ = _get(user, fid, "read")
    return JSONResponse(_dry_run(row["where_sql"], user, days))


@router.patch("/filters/{fid}", response_model=FilterDetail, responses=errors(*AUTH_ERRORS, 404, 422))
def update_filter(body: FilterPatch, fid: int = ID, user: HubUser = Depends(caller)):
    """Rename, change the condition, (de)activate. A new condition, or an activation, is checked and
    dry-run again; a new condition clears the last error. Editors and owner."""
    row, _ = _get(user, fid, "edit")
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None and k != "days"}
    run = None
    where_sql = changes.get("where_sql", row["where_sql"])
    active = changes.get("active", bool(row["active"]))
    if "where_sql" in changes or (active and not row["active"]):
        run = _accepted(where_sql, user, body.days, active)
    if changes:
        if "active" in changes:
            changes["active"] = int(changes["active"])
        sets = [f"{k} = %s" for k in changes] + ["updated = CURRENT_TIMESTAMP(6)"]
        if "where_sql" in changes and changes["where_sql"] != row["where_sql"]:
            sets += ["last_error = NULL", "last_error_at = NULL"]
        with db.engine("alerts").begin() as conn:
            conn.exec_driver_sql(f"UPDATE filters SET {', '.join(sets)} WHERE id = %s", (*changes.values(), fid))
    row, role = _get(user, fid, "read")
    return JSONResponse(_detail(row, role, run))


@router.delete("/filters/{fid}", status_code=204, response_class=Response, responses=errors(*AUTH_ERRORS, 404, 422))
def delete_filter(fid: int = ID, user: HubUser = Depends(caller)):
    """Delete the filter (owner or admin)."""
    _get(user, fid, "own")
    with db.engine("alerts").begin() as conn:
        conn.exec_driver_sql("DELETE FROM filters WHERE id = %s", (fid,))
    access.forget(KIND, fid)
    return Response(status_code=204)


add_share_routes(router, KIND, TABLE, TABLE, "fid", event_kind="filter")
