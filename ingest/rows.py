"""What one alert becomes in the alert database, survey-independent.

Each survey module (``ztf``, ``lsst``) turns a decoded alert record into an
``AlertRows``; ``store`` writes batches of them."""

from __future__ import annotations

import math

import orjson
from dataclasses import dataclass, field

ZP_NJY = 31.4  # AB magnitude of 1 nJy
SENTINELS = (-999.0, -99999.0)  # what surveys write for "unknown"


@dataclass
class AlertRows:
    survey: str
    objectId: str
    detectionId: int              # the alert's own detection
    mjd: float
    ra: float
    decl: float
    detection: dict               # the alert's own detection
    history: list["History"] = field(default_factory=list)   # earlier detections the alert repeats
    nondetections: list[dict] = field(default_factory=list)
    forced: list[dict] = field(default_factory=list)
    cutouts: list[dict] = field(default_factory=list)
    object_extra: dict = field(default_factory=dict)   # survey columns of `objects` (sgscore1, ...)


class History:
    """An earlier detection an alert repeats, known by its id; its row is built only if it is not stored
    yet. Most of an alert's history is stored already (each alert repeats 30 days of it), and building
    ~10 detection rows per alert for nothing cost about a tenth of the ingest's CPU."""

    __slots__ = ("detectionId", "_build", "_src", "_object_id")

    def __init__(self, detection_id: int, build, src: dict, object_id: str):
        self.detectionId = detection_id
        self._build, self._src, self._object_id = build, src, object_id

    def row(self) -> dict:
        """The detection's row, as the survey module makes it (``has_alert`` 0: it came as history)."""
        return self._build(self._src, self._object_id, False)


def mag_to_njy(mag: float) -> float:
    return 10.0 ** (-0.4 * (mag - ZP_NJY))


def njy_to_mag(flux: float | None) -> float | None:
    """mag = -2.5 log10(flux / nJy) + 31.4 where the flux is positive, else None."""
    if flux is None or not (flux > 0) or math.isinf(flux):
        return None
    return -2.5 * math.log10(flux) + ZP_NJY


def clean(value):
    """None for the NaN/inf and sentinel values surveys use for 'unknown'. (Called ~90 times per alert: exact
    type tests, and v - v, which is NaN only for NaN and the infinities, keep it cheap.)"""
    if value is None:
        return None
    kind = type(value)
    if kind is float or (kind is not int and isinstance(value, float)):
        return None if (value - value != 0.0 or value == -999.0 or value == -99999.0) else value
    if kind is int:
        return None if (value == -999 or value == -99999) else value
    if kind is not bool and isinstance(value, int):  # another int type
        return None if value in (-999, -99999) else value
    return value


class LazyExtra:
    """A detection's other survey fields, turned into JSON only if the row is written.

    Most history detections in an alert are already stored; serialising their ~100
    fields for nothing was a large part of the ingest's CPU time."""

    __slots__ = ("src", "skip")

    def __init__(self, src: dict, skip: frozenset):
        self.src = src
        self.skip = skip

    def dumps(self) -> str:
        skip = self.skip
        out = {k: v for k, v in self.src.items()
               if v is not None and k not in skip and not (type(v) is float and (v in SENTINELS or v - v != 0.0))}
        return orjson.dumps(out).decode()  # (v - v != 0 for NaN and infinities)


def extra_json(value) -> str | None:
    return value.dumps() if isinstance(value, LazyExtra) else value
