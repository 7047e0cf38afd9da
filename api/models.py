"""Pydantic models shared by the API's routes: errors, shares, and the alert
database's rows, so the OpenAPI document describes every answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

BANDS = "ugrizy"
_BAND_FEATURES = [("ndet", int), ("mean", float), ("median", float), ("std", float), ("min", float),
                  ("max", float), ("latest", float), ("rate", float), ("ema2", float), ("ema8", float),
                  ("ema28", float)]


class Error(BaseModel):
    detail: str = Field(description="What went wrong, in one line")


class Rejected(BaseModel):
    detail: str | list[dict[str, Any]] = Field(
        description="Why the request was refused: one line, or the list of invalid fields")


def errors(*codes: int) -> dict:
    """The ``responses=`` entries of a route for the given error status codes."""
    text = {
        400: "The request cannot be done (the reason is in detail)",
        401: "No token, or a token the hub does not know",
        403: "The caller may not do this",
        404: "No such thing",
        409: "Conflicts with the current state",
        413: "Too large",
        422: "Invalid parameters or body (the reason is in detail)",
        429: "Too many requests or queries at once (see the Retry-After header)",
        503: "A service AlertLab needs (database, Kafka, hub) is unavailable",
    }
    return {code: {"model": Rejected if code == 422 else Error, "description": text[code]} for code in codes}


AUTH_ERRORS = (401, 403, 429)


# -- sharing ---------------------------------------------------------------------------------------

class ShareIn(BaseModel):
    grantee_kind: Literal["user", "group", "all"] = Field(
        description="Share with a hub user, a hub group, or all logged-in users (public)")
    grantee: str | None = Field(None, max_length=255, description="The user or group name; none for all")
    role: Literal["viewer", "editor"] = Field("viewer", description="viewer: read; editor: also change")


class Share(BaseModel):
    grantee_kind: Literal["user", "group", "all"]
    grantee: str
    role: Literal["viewer", "editor"]
    created_by: str
    created: datetime


Role = Literal["owner", "admin", "editor", "viewer"]


# -- the alert database's rows ---------------------------------------------------------------------

def _object_fields() -> dict:
    fields: dict[str, Any] = {
        "objectId": (str, ...), "survey": (str, ...), "ra": (float, ...), "decl": (float, ...),
        "healpix": (int, ...), "glat": (float | None, None), "glon": (float | None, None), "ndet": (int, ...),
        "firstmjd": (float | None, None), "lastmjd": (float | None, None), "latest_mag": (float | None, None),
        "latest_band": (str | None, None), "latest_detectionId": (int | None, None),
        "latest_reliability": (float | None, None), "g_minus_r": (float | None, None),
        "g_minus_r_dt": (float | None, None), "nnondet": (int, 0), "sgscore1": (float | None, None),
        "distpsnr1": (float | None, None), "ssdistnr": (float | None, None),
    }
    for band in BANDS:
        for name, kind in _BAND_FEATURES:
            fields[f"{band}_{name}"] = (kind | None, None)
    fields["updated"] = (datetime | None, None)
    return fields


ObjectRow = create_model(
    "ObjectRow", __config__=ConfigDict(extra="allow"),
    __doc__="A row of `objects` (docs/schema.md): the object and its light-curve features.", **_object_fields())


class Detection(BaseModel):
    model_config = ConfigDict(extra="allow")
    detectionId: int
    mjd: float
    band: str
    mag: float | None = None
    magerr: float | None = None
    flux: float | None = Field(None, description="difference flux, nJy")
    fluxerr: float | None = None
    ra: float | None = None
    decl: float | None = None
    isdiffpos: int | None = None
    reliability: float | None = None
    has_alert: int = Field(0, description="1: it came with its own alert packet, so it has cutouts")
    extra: dict[str, Any] | None = Field(None, description="the survey's other fields")


class NonDetection(BaseModel):
    mjd: float
    band: str
    diffmaglim: float | None = None


class ForcedPhotometry(BaseModel):
    mjd: float
    band: str
    flux: float | None = None
    fluxerr: float | None = None
    extra: dict[str, Any] | None = None


class Annotation(BaseModel):
    annotator: str
    classification: str
    explanation: str | None = None
    classdict: Any | None = None
    url: str | None = None
    version: str | None = None
    updated: datetime


class WatchlistHit(BaseModel):
    watchlist_id: int
    cone_id: int
    objectId: str
    detectionId: int
    name: str | None = None
    arcsec: float
    mjd: float


class AreaHit(BaseModel):
    area_id: int
    objectId: str
    detectionId: int
    mjd: float


class MatchEvents(BaseModel):
    events: list[dict[str, Any]] = Field(description="Match events (docs/schema.md, 'Match events'), oldest first")
    cursor: str = Field(description="Pass it back as `cursor` to get the events after these")
