"""GET /api/v1/objects/{objectId}: one object with its light curve, annotations
and the watchlist and area hits the caller may see; GET /api/v1/cone: the
objects within a radius; GET /api/v1/cutouts/...: an alert's image stamps."""

from __future__ import annotations

import json
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse, Response, StreamingResponse

from alertlab.api import cone as cone_search
from alertlab.api import cutouts as stamps
from alertlab.ingest import cutouts as cutout_store
from alertlab.api.auth import HubUser
from alertlab.api.formats import CSV_TYPE, cell, csv_chunks
from alertlab.api.hits import condition, visible_ids
from alertlab.api.models import (AUTH_ERRORS, Annotation, AreaHit, Detection, ForcedPhotometry, NonDetection,
                                 ObjectRow, WatchlistHit, errors)
from alertlab.api.ratelimit import caller
from alertlab.core import db

router = APIRouter(tags=["alert data"])

DETECTION_COLUMNS = ["detectionId", "mjd", "band", "mag", "magerr", "flux", "fluxerr", "ra", "decl", "isdiffpos",
                     "reliability", "has_alert", "extra"]
LIGHTCURVE_CSV = ["kind", "mjd", "band", "mag", "magerr", "flux", "fluxerr", "diffmaglim", "detectionId",
                  "reliability", "isdiffpos", "ra", "decl"]
CONE_COLUMNS = ["objectId", "survey", "ra", "decl", "ndet", "firstmjd", "lastmjd", "latest_mag", "latest_band"]
MAX_CONE_ROWS = 10_000


class ObjectDetail(BaseModel):
    object: ObjectRow
    detections: list[Detection] = Field(description="Detections, oldest first (the light curve)")
    nondetections: list[NonDetection] = Field(description="Upper limits, oldest first")
    forced_photometry: list[ForcedPhotometry]
    annotations: list[Annotation] = Field(description="The current annotation of each annotator")
    watchlist_hits: list[WatchlistHit] = Field(description="Hits of the watchlists you may see")
    area_hits: list[AreaHit] = Field(description="Hits of the areas you may see")


def _rows(conn, sql: str, params) -> tuple[list[str], list[tuple]]:
    result = conn.exec_driver_sql(sql, tuple(params))
    return list(result.keys()), result.fetchall()


def _dicts(columns, rows, json_columns=()) -> list[dict]:
    out = []
    for row in rows:
        d = {c: cell(v) for c, v in zip(columns, row)}
        for c in json_columns:
            if isinstance(d.get(c), str):
                d[c] = json.loads(d[c])
        out.append(d)
    return out


def object_detail(object_id: str, user: HubUser) -> dict | None:
    """The object's page as plain JSON-ready data, or None when there is no such object."""
    watchlists = visible_ids(user, "watchlist", "watchlists")
    areas = visible_ids(user, "area", "areas")
    with db.engine("alerts", reader=True).connect() as conn:
        columns, rows = _rows(conn, "SELECT * FROM objects WHERE objectId = %s", (object_id,))
        if not rows:
            return None
        detail = {"object": _dicts(columns, rows)[0]}
        for key, sql, json_columns in [
            ("detections", f"SELECT {', '.join(DETECTION_COLUMNS)} FROM detections WHERE objectId = %s "
                           "ORDER BY mjd, detectionId", ("extra",)),
            ("nondetections", "SELECT mjd, band, diffmaglim FROM nondetections WHERE objectId = %s ORDER BY mjd, band",
             ()),
            ("forced_photometry", "SELECT mjd, band, flux, fluxerr, extra FROM forced_photometry WHERE objectId = %s "
                                  "ORDER BY mjd, band", ("extra",)),
            ("annotations", "SELECT annotator, classification, explanation, classdict, url, version, updated "
                            "FROM annotations WHERE objectId = %s ORDER BY annotator", ("classdict",)),
            ("watchlist_hits", "SELECT watchlist_id, cone_id, objectId, detectionId, name, arcsec, mjd FROM "
                               f"watchlist_hits WHERE objectId = %s AND {condition('watchlist_id', watchlists)} "
                               "ORDER BY mjd, watchlist_id", ()),
            ("area_hits", "SELECT area_id, objectId, detectionId, mjd FROM area_hits WHERE objectId = %s AND "
                          f"{condition('area_id', areas)} ORDER BY mjd, area_id", ()),
        ]:
            detail[key] = _dicts(*_rows(conn, sql, (object_id,)), json_columns=json_columns)
    return detail


def lightcurve_rows(detail: dict):
    """The object's detections, upper limits and forced photometry as one table, by time."""
    rows = []
    for d in detail["detections"]:
        rows.append(["detection", d["mjd"], d["band"], d["mag"], d["magerr"], d["flux"], d["fluxerr"], None,
                     d["detectionId"], d["reliability"], d["isdiffpos"], d["ra"], d["decl"]])
    for d in detail["nondetections"]:
        rows.append(["nondetection", d["mjd"], d["band"], None, None, None, None, d["diffmaglim"], None, None, None,
                     None, None])
    for d in detail["forced_photometry"]:
        rows.append(["forced", d["mjd"], d["band"], None, None, d["flux"], d["fluxerr"], None, None, None, None,
                     None, None])
    rows.sort(key=lambda r: (r[1], r[0], r[2]))
    return rows


@router.get("/objects/{objectId}", response_model=ObjectDetail,
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                             "description": "JSON: the object; CSV (format=csv): its light curve as one table "
                                            "(kind = detection, nondetection or forced)"},
                       **errors(*AUTH_ERRORS, 404, 422)})
def get_object(objectId: str = Path(max_length=64, description="ZTF objectId or LSST diaObjectId"),
               format: Literal["json", "csv"] = Query("json", description="json: everything; csv: the light curve"),
               user: HubUser = Depends(caller)):
    """An object: its row of `objects`, detections, upper limits, forced photometry, annotations, and
    the hits of the watchlists and areas you may see."""
    detail = object_detail(objectId, user)
    if detail is None:
        raise HTTPException(404, f"there is no object {objectId}")
    if format == "csv":
        return StreamingResponse(csv_chunks(LIGHTCURVE_CSV, lightcurve_rows(detail)), media_type=CSV_TYPE,
                                 headers={"Content-Disposition": f'attachment; filename="{_safe(objectId)}.csv"'})
    return JSONResponse(detail)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:64] or "object"


# -- cone search ------------------------------------------------------------------------------------

class ConeObject(BaseModel):
    objectId: str
    survey: str
    ra: float
    decl: float
    arcsec: float = Field(description="Distance from the cone's centre")
    ndet: int
    firstmjd: float | None = None
    lastmjd: float | None = None
    latest_mag: float | None = None
    latest_band: str | None = None


class ConeResult(BaseModel):
    ra: float
    dec: float
    radius: float
    mode: Literal["nearest", "all", "count"]
    count: int = Field(description="Objects within the radius")
    truncated: bool = Field(description="More objects are within the radius than are listed (raise limit)")
    objects: list[ConeObject] = Field(description="nearest first; empty for mode=count")


@router.get("/cone", response_model=ConeResult, responses=errors(*AUTH_ERRORS, 422))
def cone(ra: float = Query(ge=0, le=360, description="Right ascension of the centre, degrees"),
         dec: float = Query(ge=-90, le=90, description="Declination of the centre, degrees"),
         radius: float = Query(gt=0, le=cone_search.MAX_RADIUS_ARCSEC, description="Radius, arcsec (at most 3600)"),
         mode: Literal["nearest", "all", "count"] = Query(
             "all", description="nearest: the closest object; all: every object, nearest first; count: how many"),
         limit: int = Query(1000, ge=1, le=MAX_CONE_ROWS, description="mode=all: most objects listed"),
         user: HubUser = Depends(caller)):
    """The objects whose mean position lies within `radius` arcsec of (`ra`, `dec`)."""
    columns = CONE_COLUMNS if mode != "count" else ["ra", "decl"]
    with db.engine("alerts", reader=True).connect() as conn:
        rows, seps = cone_search.search(lambda sql, p: conn.exec_driver_sql(sql, tuple(p)).fetchall(),
                                        ra, dec, radius, columns)
    shown = 0 if mode == "count" else (1 if mode == "nearest" else limit)
    objects = [{**{c: cell(v) for c, v in zip(columns, row)}, "arcsec": sep}
               for row, sep in zip(rows[:shown], seps[:shown])]
    return JSONResponse({"ra": ra, "dec": dec, "radius": radius, "mode": mode, "count": len(rows),
                         "truncated": mode == "all" and len(rows) > limit, "objects": objects})


# -- cutouts ----------------------------------------------------------------------------------------

@router.get("/cutouts/{detectionId}/{kind}", response_class=Response,
            responses={200: {"content": {"application/fits": {"schema": {"type": "string", "format": "binary"}},
                                         "image/png": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "The stamp: FITS as the survey made it, or a PNG rendering"},
                       **errors(*AUTH_ERRORS, 404, 422)})
def cutout(detectionId: int = Path(ge=0, le=2**63 - 1, description="The detection (ZTF candid, LSST diaSourceId)"),
           kind: Literal["science", "template", "difference"] = Path(description="Which of the three stamps"),
           format: Literal["fits", "png"] = Query("fits"),
           size: int = Query(256, ge=16, le=2048, description="PNG: about this many pixels on a side"),
           user: HubUser = Depends(caller)):
    """One of the three image stamps that came with an alert (detections with `has_alert` = 1)."""
    with db.engine("alerts", reader=True).connect() as conn:
        data = cutout_store.read(conn, detectionId, kind)
    if data is None:
        raise HTTPException(404, f"there is no {kind} cutout for detection {detectionId}")
    headers = {"Cache-Control": "private, max-age=86400"}
    try:
        if format == "png":
            return Response(stamps.png_bytes(data, kind, size), media_type="image/png", headers=headers)
        headers["Content-Disposition"] = f'attachment; filename="{detectionId}_{kind}.fits"'
        return Response(stamps.fits_bytes(data), media_type="application/fits", headers=headers)
    except stamps.BadCutout as exc:
        raise HTTPException(404, f"the {kind} cutout of detection {detectionId} cannot be read: {exc}") from None
