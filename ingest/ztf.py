"""ZTF alerts (any 3.x/4.x schema: fields are read by name from the writer
schema embedded in each Avro container) to ``AlertRows``.

Conversions: mjd = jd - 2400000.5; fid 1/2/3 -> g/r/i; flux (nJy) from magpsf
with the sign of isdiffpos; history entries with a null candid are
non-detections (upper limits); fp_hists are forced photometry."""

from __future__ import annotations

import json

from alertlab.ingest.rows import AlertRows, History, LazyExtra, clean, mag_to_njy

FID_BAND = {1: "g", 2: "r", 3: "i"}
JD_MJD = 2400000.5
MAPPED = frozenset({"candid", "jd", "fid", "magpsf", "sigmapsf", "ra", "dec", "isdiffpos", "drb", "rb"})
OBJECT_EXTRA = ("sgscore1", "distpsnr1", "ssdistnr")


def is_ztf(record: dict) -> bool:
    return "candidate" in record and "objectId" in record


def _positive(isdiffpos) -> bool | None:
    if isdiffpos is None:
        return None
    return str(isdiffpos).lower() in ("t", "1", "true")


def _detection(c: dict, object_id: str, has_alert: bool) -> dict:
    mag = clean(c.get("magpsf"))
    magerr = clean(c.get("sigmapsf"))
    pos = _positive(c.get("isdiffpos"))
    flux = fluxerr = None
    if mag is not None:
        flux = mag_to_njy(mag) * (-1.0 if pos is False else 1.0)
        if magerr is not None:
            fluxerr = abs(flux) * magerr / 1.0857362047581294
    reliability = clean(c.get("drb"))
    if reliability is None:
        reliability = clean(c.get("rb"))
    return {
        "detectionId": int(c["candid"]), "objectId": object_id, "survey": "ztf",
        "mjd": float(c["jd"]) - JD_MJD, "band": FID_BAND.get(c["fid"], "?"),
        "mag": mag, "magerr": magerr, "flux": flux, "fluxerr": fluxerr,
        "ra": clean(c.get("ra")), "decl": clean(c.get("dec")),
        "isdiffpos": None if pos is None else int(pos), "reliability": reliability,
        "has_alert": int(has_alert), "extra": LazyExtra(c, MAPPED),
    }


def _history(prv: dict, object_id: str) -> History:
    """A history detection, its row built later only if it is new; checked now for what would make
    ``_detection`` fail (a missing jd or fid, a magnitude whose flux overflows), so that a bad entry still
    rejects the whole alert while it is decoded, never the batch at commit."""
    float(prv["jd"])
    FID_BAND.get(prv["fid"])
    mag = clean(prv["magpsf"])
    if mag is not None:
        mag_to_njy(mag)
    return History(int(prv["candid"]), _detection, prv, object_id)


def _forced(fp: dict, object_id: str) -> dict | None:
    flux = clean(fp.get("forcediffimflux"))
    err = clean(fp.get("forcediffimfluxunc"))
    zp = clean(fp.get("magzpsci"))
    if zp is None:
        return None
    scale = 10.0 ** (-0.4 * (zp - 31.4))
    extra = {k: clean(v) for k, v in fp.items() if clean(v) is not None}
    return {"objectId": object_id, "mjd": float(fp["jd"]) - JD_MJD, "band": FID_BAND.get(fp["fid"], "?"),
            "flux": None if flux is None else flux * scale, "fluxerr": None if err is None else err * scale,
            "extra": json.dumps(extra, separators=(",", ":"))}


def to_rows(record: dict) -> AlertRows:
    object_id = str(record["objectId"])
    cand = record["candidate"]
    det = _detection(cand, object_id, True)
    history, nondetections = [], []
    for prv in record.get("prv_candidates") or []:
        if prv.get("candid") is None:
            if prv.get("diffmaglim") is not None:
                nondetections.append({"objectId": object_id, "mjd": float(prv["jd"]) - JD_MJD,
                                      "band": FID_BAND.get(prv["fid"], "?"), "diffmaglim": clean(prv["diffmaglim"])})
        elif prv.get("magpsf") is not None:
            history.append(_history(prv, object_id))
    forced = [f for f in (_forced(fp, object_id) for fp in record.get("fp_hists") or []) if f]
    cutouts = []
    for kind in ("science", "template", "difference"):
        c = record.get("cutout" + kind.capitalize())
        if c and c.get("stampData"):
            cutouts.append({"detectionId": int(cand["candid"]), "kind": kind, "fileName": c.get("fileName"),
                            "data": c["stampData"]})
    return AlertRows(
        survey="ztf", objectId=object_id, detectionId=det["detectionId"], mjd=det["mjd"],
        ra=det["ra"], decl=det["decl"], detection=det, history=history, nondetections=nondetections,
        forced=forced, cutouts=cutouts,
        object_extra={k: clean(cand.get(k)) for k in OBJECT_EXTRA},
    )
