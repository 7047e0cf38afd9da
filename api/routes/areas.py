"""Sky areas: a MOC (for example a gravitational-wave or neutrino error region)
uploaded as FITS; every alert inside an active area is a hit.

Create (multipart upload of the MOC FITS), list, read, download the MOC,
change, delete, share, read the hits. Who may do what is
``alertlab.api.access``, as for watchlists."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Query, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from alertlab.api import access
from alertlab.api.auth import HubUser
from alertlab.api.formats import cell
from alertlab.api.models import AUTH_ERRORS, AreaHit, Role, Share, errors
from alertlab.api.ratelimit import caller
from alertlab.api.resources import MAX_ID, checked, readable
from alertlab.api.routes.shares import add_share_routes
from alertlab.core import db

router = APIRouter(tags=["areas"])

KIND, TABLE = "area", "areas"
COLUMNS = ["id", "owner", "name", "description", "sky_fraction", "active", "created"]
MAX_MOC_BYTES = 8 * 1024 * 1024
ID = Path(ge=1, le=MAX_ID, description="The area's id")


class AreaPatch(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=20000)
    active: bool | None = None


class Area(BaseModel):
    id: int
    owner: str
    name: str
    description: str | None
    sky_fraction: float | None = Field(description="Share of the sky the MOC covers")
    active: bool
    created: datetime
    role: Role


class AreaDetail(Area):
    shares: list[Share]


def _public(row: dict, role: str) -> dict:
    out = {c: cell(row[c]) for c in COLUMNS}
    out["active"] = bool(row["active"])
    out["role"] = role
    return out


def _detail(row: dict, role: str) -> dict:
    shares = access.shares(access.Resource.of(KIND, row["id"], row["owner"]))
    return {**_public(row, role), "shares": [{**s.__dict__, "created": s.created.isoformat()} for s in shares]}


def _get(user: HubUser, aid: int, need: str) -> tuple[dict, str]:
    return checked(user, KIND, TABLE, COLUMNS, aid, need)


@router.get("/areas", response_model=list[Area], responses=errors(*AUTH_ERRORS))
def list_areas(user: HubUser = Depends(caller)):
    """The areas you may see: yours, shared with you or your groups, public (an admin sees all)."""
    return JSONResponse([_public(row, row["role"]) for row in readable(user, KIND, TABLE, COLUMNS)])


def _create(user: HubUser, name: str, description: str | None, active: bool, data: bytes) -> dict:
    from alertlab.ingest.areas import InvalidMOC, moc_from_fits_bytes, moc_to_fits_bytes  # mocpy: on first use

    try:
        moc = moc_from_fits_bytes(data)
    except InvalidMOC as exc:
        raise HTTPException(422, str(exc)) from None
    stored = moc_to_fits_bytes(moc)  # normalised: what the ingest reads back
    with db.engine("alerts").begin() as conn:
        aid = conn.exec_driver_sql(
            "INSERT INTO areas (owner, name, description, moc, sky_fraction, active) VALUES (%s, %s, %s, %s, %s, %s)",
            (user.name, name, description, stored, float(moc.sky_fraction), int(active))).lastrowid
    row, role = _get(user, aid, "own")
    return _detail(row, role)


@router.post("/areas", response_model=AreaDetail, status_code=201, responses=errors(*AUTH_ERRORS, 413, 422))
async def create_area(file: UploadFile = File(description="The MOC as FITS (mocpy: moc.save(path, format='fits'))"),
                      name: str = Form(min_length=1, max_length=255), description: str | None = Form(None, max_length=20000),
                      active: bool = Form(True), user: HubUser = Depends(caller)):
    """A new area of yours from a MOC in FITS."""
    data = await file.read(MAX_MOC_BYTES + 1)
    if len(data) > MAX_MOC_BYTES:
        raise HTTPException(413, f"the MOC file is larger than {MAX_MOC_BYTES // 1024 // 1024} MB")
    return JSONResponse(await run_in_threadpool(_create, user, name, description, active, data), status_code=201)


@router.get("/areas/{aid}", response_model=AreaDetail, responses=errors(*AUTH_ERRORS, 404, 422))
def get_area(aid: int = ID, user: HubUser = Depends(caller)):
    row, role = _get(user, aid, "read")
    return JSONResponse(_detail(row, role))


@router.get("/areas/{aid}/moc", response_class=Response,
            responses={200: {"content": {"application/fits": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "The MOC as FITS"}, **errors(*AUTH_ERRORS, 404, 422)})
def get_area_moc(aid: int = ID, user: HubUser = Depends(caller)):
    _get(user, aid, "read")
    with db.engine("alerts").connect() as conn:
        data = conn.exec_driver_sql("SELECT moc FROM areas WHERE id = %s", (aid,)).scalar()
    return Response(bytes(data), media_type="application/fits",
                    headers={"Content-Disposition": f'attachment; filename="area_{aid}.fits"'})


@router.patch("/areas/{aid}", response_model=AreaDetail, responses=errors(*AUTH_ERRORS, 404, 422))
def update_area(body: AreaPatch, aid: int = ID, user: HubUser = Depends(caller)):
    """Rename, describe, (de)activate. Editors and owner."""
    _get(user, aid, "edit")
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    if changes:
        if "active" in changes:
            changes["active"] = int(changes["active"])
        sets = ", ".join(f"{k} = %s" for k in changes)
        with db.engine("alerts").begin() as conn:
            conn.exec_driver_sql(f"UPDATE areas SET {sets} WHERE id = %s", (*changes.values(), aid))
    row, role = _get(user, aid, "read")
    return JSONResponse(_detail(row, role))


@router.delete("/areas/{aid}", status_code=204, response_class=Response, responses=errors(*AUTH_ERRORS, 404, 422))
def delete_area(aid: int = ID, user: HubUser = Depends(caller)):
    """Delete the area and its hits (owner or admin)."""
    _get(user, aid, "own")
    with db.engine("alerts").begin() as conn:
        conn.exec_driver_sql("DELETE FROM area_hits WHERE area_id = %s", (aid,))
        conn.exec_driver_sql("DELETE FROM areas WHERE id = %s", (aid,))
    access.forget(KIND, aid)
    return Response(status_code=204)


@router.get("/areas/{aid}/hits", response_model=list[AreaHit], responses=errors(*AUTH_ERRORS, 404, 422))
def list_area_hits(aid: int = ID, limit: int = Query(1000, ge=1, le=100_000), offset: int = Query(0, ge=0, le=10**7),
                   user: HubUser = Depends(caller)):
    """Alerts that fell in the area, latest first."""
    _get(user, aid, "read")
    with db.engine("alerts").connect() as conn:
        result = conn.exec_driver_sql("SELECT area_id, objectId, detectionId, mjd FROM area_hits WHERE area_id = %s "
                                      "ORDER BY mjd DESC, detectionId LIMIT %s OFFSET %s", (aid, limit, offset))
        columns = list(result.keys())
        return JSONResponse([{c: cell(v) for c, v in zip(columns, r)} for r in result])


add_share_routes(router, KIND, TABLE, TABLE, "aid", event_kind="area")
