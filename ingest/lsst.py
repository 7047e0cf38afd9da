"""Rubin LSST alerts (schemas 9.0, 10.0, 11.0, ...) to ``AlertRows``.

Fluxes are in nJy (difference flux, may be negative), times are
midpointMjdTai, band is a string, reliability replaces ZTF's rb/drb.
mag = -2.5 log10(flux/nJy) + 31.4 where the flux is positive, else NULL.
Solar-system alerts may have no diaObject: their objectId is 'SSO' + ssObjectId."""

from __future__ import annotations

import json

from alertlab.ingest.rows import AlertRows, History, LazyExtra, clean, njy_to_mag

MAPPED = frozenset({"diaSourceId", "diaObjectId", "midpointMjdTai", "band", "psfFlux", "psfFluxErr", "ra", "dec",
          "reliability"})


def is_lsst(record: dict) -> bool:
    return "diaSource" in record and "diaSourceId" in record


def object_id_of(record: dict) -> str:
    src = record["diaSource"]
    dia = src.get("diaObjectId") or (record.get("diaObject") or {}).get("diaObjectId")
    if dia:
        return str(dia)
    ss = src.get("ssObjectId") or (record.get("ssSource") or {}).get("ssObjectId")
    if ss:
        return f"SSO{ss}"
    raise ValueError("LSST alert has neither a diaObjectId nor an ssObjectId")


def _detection(src: dict, object_id: str, has_alert: bool) -> dict:
    flux = clean(src.get("psfFlux"))
    err = clean(src.get("psfFluxErr"))
    mag = njy_to_mag(flux)
    magerr = 1.0857362047581294 * err / flux if (mag is not None and err is not None) else None
    return {
        "detectionId": int(src["diaSourceId"]), "objectId": object_id, "survey": "lsst",
        "mjd": float(src["midpointMjdTai"]), "band": str(src.get("band") or "?")[:1],
        "mag": mag, "magerr": magerr, "flux": flux, "fluxerr": err,
        "ra": clean(src.get("ra")), "decl": clean(src.get("dec")),
        "isdiffpos": None if flux is None else int(flux > 0), "reliability": clean(src.get("reliability")),
        "has_alert": int(has_alert), "extra": LazyExtra(src, MAPPED),
    }


def _history(prv: dict, object_id: str) -> History:
    """A history detection, its row built later only if it is new; checked now for what would make
    ``_detection`` fail (a missing time), so that a bad entry rejects the alert while it is decoded,
    never the batch at commit."""
    float(prv["midpointMjdTai"])
    return History(int(prv["diaSourceId"]), _detection, prv, object_id)


def to_rows(record: dict) -> AlertRows:
    object_id = object_id_of(record)
    src = record["diaSource"]
    det = _detection(src, object_id, True)
    history = [_history(prv, object_id) for prv in record.get("prvDiaSources") or []]
    forced = []
    for fs in record.get("prvDiaForcedSources") or []:
        extra = {k: clean(v) for k, v in fs.items() if clean(v) is not None}
        forced.append({"objectId": object_id, "mjd": float(fs["midpointMjdTai"]), "band": str(fs.get("band"))[:1],
                       "flux": clean(fs.get("psfFlux")), "fluxerr": clean(fs.get("psfFluxErr")),
                       "extra": json.dumps(extra, separators=(",", ":"))})
    cutouts = []
    for kind in ("science", "template", "difference"):
        data = record.get("cutout" + kind.capitalize())
        if data:
            cutouts.append({"detectionId": int(src["diaSourceId"]), "kind": kind, "fileName": None, "data": data})
    return AlertRows(survey="lsst", objectId=object_id, detectionId=det["detectionId"], mjd=det["mjd"],
                     ra=det["ra"], decl=det["decl"], detection=det, history=history, forced=forced, cutouts=cutouts)
