"""Watchlists: lists of cones (position, radius) matched against every alert.

Create, list, read, change, delete, share; add cones as JSON or as a CSV upload
of up to a million cones (``alertlab.api.conecsv``: per-row errors reported by
line; ``strict=true`` stores nothing when any row is bad); read the cones and
the hits. Who may do what is ``alertlab.api.access``: viewers read, editors
also change and add cones, the owner (or an admin) deletes and shares."""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np
from fastapi import APIRouter, Depends, File, HTTPException, Path, Query, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from alertlab.api import access, conecsv
from alertlab.api.auth import HubUser
from alertlab.api.formats import cell
from alertlab.api.models import AUTH_ERRORS, Role, Share, WatchlistHit, errors
from alertlab.api.ratelimit import caller
from alertlab.api.resources import MAX_ID, checked, readable
from alertlab.api.routes.shares import add_share_routes
from alertlab.core import db

MAX_RADIUS_ARCSEC = conecsv.MAX_RADIUS_ARCSEC

router = APIRouter(tags=["watchlists"])

KIND, TABLE = "watchlist", "watchlists"
COLUMNS = ["id", "owner", "name", "description", "default_radius", "active", "ncones", "created"]
MAX_JSON_CONES = 10_000
ID = Path(ge=1, le=MAX_ID, description="The watchlist's id")


class ConeIn(BaseModel):
    ra: float = Field(ge=-360, le=360, description="degrees")
    dec: float = Field(ge=-90, le=90, description="degrees")
    radius: float | None = Field(None, gt=0, le=MAX_RADIUS_ARCSEC,
                                 description="arcsec; none: the watchlist's default radius")
    name: str | None = Field(None, max_length=255)


class WatchlistIn(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=20000)
    default_radius: float = Field(2.0, gt=0, le=MAX_RADIUS_ARCSEC, description="arcsec, for cones given without one")
    active: bool = Field(True, description="Matched against incoming alerts")
    cones: list[ConeIn] = Field([], max_length=MAX_JSON_CONES,
                                description="A first few cones (upload a CSV for more)")


class WatchlistPatch(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=20000)
    default_radius: float | None = Field(None, gt=0, le=MAX_RADIUS_ARCSEC)
    active: bool | None = None


class Watchlist(BaseModel):
    id: int
    owner: str
    name: str
    description: str | None
    default_radius: float
    active: bool
    ncones: int
    created: datetime
    role: Role = Field(description="What you are to it: owner, admin, editor or viewer")


class WatchlistDetail(Watchlist):
    shares: list[Share] = Field(description="Who it is shared with")


class Cone(BaseModel):
    id: int
    ra: float
    dec: float
    radius: float
    name: str | None


class RowError(BaseModel):
    line: int = Field(description="Line number in the CSV (the header is line 1)")
    reason: str


class UploadReport(BaseModel):
    stored: int = Field(description="Cones added")
    rejected: int = Field(description="Rows left out because of an error")
    errors: list[RowError] = Field(description=f"The first {conecsv.MAX_ERRORS_SHOWN} errors")
    ncones: int = Field(description="Cones in the watchlist now")


class UploadRefused(BaseModel):
    detail: str
    errors: list[RowError] = []


def _public(row: dict, role: str) -> dict:
    out = {c: cell(row[c]) for c in COLUMNS}
    out["active"] = bool(row["active"])
    out["role"] = role
    return out


def _detail(row: dict, role: str) -> dict:
    shares = access.shares(access.Resource.of(KIND, row["id"], row["owner"]))
    return {**_public(row, role), "shares": [{**s.__dict__, "created": s.created.isoformat()} for s in shares]}


def _get(user: HubUser, wid: int, need: str) -> tuple[dict, str]:
    return checked(user, KIND, TABLE, COLUMNS, wid, need)


@router.get("/watchlists", response_model=list[Watchlist], responses=errors(*AUTH_ERRORS))
def list_watchlists(user: HubUser = Depends(caller)):
    """The watchlists you may see: yours, those shared with you or your groups, the public ones
    (an admin sees all)."""
    return JSONResponse([_public(row, row["role"]) for row in readable(user, KIND, TABLE, COLUMNS)])


@router.post("/watchlists", response_model=WatchlistDetail, status_code=201, responses=errors(*AUTH_ERRORS, 422))
def create_watchlist(body: WatchlistIn, user: HubUser = Depends(caller)):
    """A new watchlist of yours, with its first cones if given."""
    from alertlab.ingest.watchlists import insert_cones

    with db.engine("alerts").begin() as conn:
        result = conn.exec_driver_sql(
            "INSERT INTO watchlists (owner, name, description, default_radius, active) VALUES (%s, %s, %s, %s, %s)",
            (user.name, body.name, body.description, body.default_radius, int(body.active)))
        wid = result.lastrowid
        if body.cones:
            radius = [c.radius if c.radius is not None else body.default_radius for c in body.cones]
            insert_cones(conn, wid, [c.ra % 360.0 for c in body.cones], [c.dec for c in body.cones], radius,
                         [c.name for c in body.cones])
    row, role = _get(user, wid, "own")
    return JSONResponse(_detail(row, role), status_code=201)


@router.get("/watchlists/{wid}", response_model=WatchlistDetail, responses=errors(*AUTH_ERRORS, 404, 422))
def get_watchlist(wid: int = ID, user: HubUser = Depends(caller)):
    row, role = _get(user, wid, "read")
    return JSONResponse(_detail(row, role))


@router.patch("/watchlists/{wid}", response_model=WatchlistDetail, responses=errors(*AUTH_ERRORS, 404, 422))
def update_watchlist(body: WatchlistPatch, wid: int = ID, user: HubUser = Depends(caller)):
    """Rename, describe, change the default radius (of cones added later), (de)activate. Editors and owner."""
    _get(user, wid, "edit")
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    if changes:
        if "active" in changes:
            changes["active"] = int(changes["active"])
        sets = ", ".join(f"{k} = %s" for k in changes)
        with db.engine("alerts").begin() as conn:
            conn.exec_driver_sql(f"UPDATE watchlists SET {sets} WHERE id = %s", (*changes.values(), wid))
    row, role = _get(user, wid, "read")
    return JSONResponse(_detail(row, role))


@router.delete("/watchlists/{wid}", status_code=204, response_class=Response,
               responses=errors(*AUTH_ERRORS, 404, 422))
def delete_watchlist(wid: int = ID, user: HubUser = Depends(caller)):
    """Delete the watchlist, its cones and its hits (owner or admin)."""
    _get(user, wid, "own")
    with db.engine("alerts").begin() as conn:
        conn.exec_driver_sql("DELETE FROM watchlist_hits WHERE watchlist_id = %s", (wid,))
        conn.exec_driver_sql("DELETE FROM watchlist_cones WHERE watchlist_id = %s", (wid,))
        conn.exec_driver_sql("DELETE FROM watchlists WHERE id = %s", (wid,))
    access.forget(KIND, wid)
    return Response(status_code=204)


def _store_upload(wid: int, stream, strict: bool, replace: bool) -> dict:
    from alertlab.ingest.watchlists import InvalidCones, insert_cones

    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
    try:
        parsed = conecsv.parse_cones(text)
    except InvalidCones as exc:
        raise HTTPException(422, str(exc)) from None
    report_errors = [{"line": e.line, "reason": e.reason} for e in parsed.errors]
    if strict and parsed.nerrors:
        first = parsed.errors[0]
        return JSONResponse({"detail": f"{parsed.nerrors} rows have errors (line {first.line}: {first.reason}); "
                                       "nothing was stored (strict)", "errors": report_errors}, status_code=422)
    with db.engine("alerts").begin() as conn:
        default, ncones = conn.exec_driver_sql(
            "SELECT default_radius, ncones FROM watchlists WHERE id = %s FOR UPDATE", (wid,)).one()
        if replace:
            conn.exec_driver_sql("DELETE FROM watchlist_cones WHERE watchlist_id = %s", (wid,))
            ncones = 0
        if ncones + len(parsed) > conecsv.MAX_CONES:
            raise HTTPException(422, f"too many cones: the watchlist has {ncones:,} and the file {len(parsed):,}; "
                                     f"a watchlist holds at most {conecsv.MAX_CONES:,}")
        radius = np.frombuffer(parsed.radius, dtype=np.float64) if len(parsed) else np.empty(0)
        radius = np.where(np.isnan(radius), float(default), radius)
        insert_cones(conn, wid, np.frombuffer(parsed.ra, dtype=np.float64) if len(parsed) else np.empty(0),
                     np.frombuffer(parsed.dec, dtype=np.float64) if len(parsed) else np.empty(0), radius,
                     parsed.names)
        total = conn.exec_driver_sql("SELECT ncones FROM watchlists WHERE id = %s", (wid,)).scalar()
    return JSONResponse({"stored": len(parsed), "rejected": parsed.nerrors, "errors": report_errors,
                         "ncones": int(total)})


@router.post("/watchlists/{wid}/cones", response_model=UploadReport,
             responses={**errors(*AUTH_ERRORS, 404), 422: {"model": UploadRefused,
                                                            "description": "The file or a row is not acceptable"}})
async def upload_cones(wid: int = ID,
                       file: UploadFile = File(description="CSV with columns ra, dec (degrees), radius (arcsec, "
                                                           "optional), name (optional); a header line names them"),
                       strict: bool = Query(False, description="Store nothing if any row has an error"),
                       replace: bool = Query(False, description="Replace the watchlist's cones instead of adding"),
                       user: HubUser = Depends(caller)):
    """Add cones from a CSV file (up to 1,000,000 per watchlist). Rows with errors are reported with
    their line numbers and left out, unless `strict`. Editors and owner."""
    await run_in_threadpool(_get, user, wid, "edit")
    return await run_in_threadpool(_store_upload, wid, file.file, strict, replace)


@router.get("/watchlists/{wid}/cones", response_model=list[Cone], responses=errors(*AUTH_ERRORS, 404, 422))
def list_cones(wid: int = ID, limit: int = Query(1000, ge=1, le=100_000), offset: int = Query(0, ge=0, le=10**7),
               user: HubUser = Depends(caller)):
    """The watchlist's cones, in the order they were added, a page at a time."""
    _get(user, wid, "read")
    with db.engine("alerts").connect() as conn:
        rows = conn.exec_driver_sql("SELECT id, ra, decl, radius, name FROM watchlist_cones WHERE watchlist_id = %s "
                                    "ORDER BY id LIMIT %s OFFSET %s", (wid, limit, offset)).all()
    return JSONResponse([{"id": r[0], "ra": r[1], "dec": r[2], "radius": r[3], "name": r[4]} for r in rows])


@router.get("/watchlists/{wid}/hits", response_model=list[WatchlistHit], responses=errors(*AUTH_ERRORS, 404, 422))
def list_hits(wid: int = ID, limit: int = Query(1000, ge=1, le=100_000), offset: int = Query(0, ge=0, le=10**7),
              user: HubUser = Depends(caller)):
    """Alerts that fell in the watchlist's cones, latest first."""
    _get(user, wid, "read")
    with db.engine("alerts").connect() as conn:
        result = conn.exec_driver_sql(
            "SELECT watchlist_id, cone_id, objectId, detectionId, name, arcsec, mjd FROM watchlist_hits "
            "WHERE watchlist_id = %s ORDER BY mjd DESC, detectionId LIMIT %s OFFSET %s", (wid, limit, offset))
        columns = list(result.keys())
        return JSONResponse([{c: cell(v) for c, v in zip(columns, r)} for r in result])


add_share_routes(router, KIND, TABLE, TABLE, "wid", event_kind="watchlist")
