"""Light-curve features of one object, computed from all its stored detections.

Features are recomputed from the database's detections after every batch (not
updated incrementally), so the order in which alerts arrive, and redeliveries,
do not change the result. Everything here is pure: numbers in, a dict out.

Exponential moving averages follow Lasair's "outbursts with exponential moving
averages": for irregular sampling, ema_k = ema_{k-1} + a_k (m_k - ema_{k-1})
with a_k = 1 - exp(-dt_k / tau), started at the first magnitude.
"""

from __future__ import annotations

import math

import numpy as np

BANDS = "ugrizy"
EMA_TAUS = {"ema2": 2.0, "ema8": 8.0, "ema28": 28.0}
HEALPIX_DEPTH = 29  # objects.healpix: nested index at the finest depth, so any coarser range query works


def ema(mjd: np.ndarray, mag: np.ndarray, tau: float) -> float:
    """Exponential moving average of ``mag`` (sorted by ``mjd``) with time constant ``tau`` days."""
    value = float(mag[0])
    for k in range(1, len(mag)):
        alpha = 1.0 - math.exp(-(mjd[k] - mjd[k - 1]) / tau)
        value += alpha * (float(mag[k]) - value)
    return value


def band_features(mjd: np.ndarray, mag: np.ndarray) -> dict[str, float | int | None]:
    """Per-band statistics of detections sorted by time (mag may not be NaN here)."""
    n = len(mag)
    out: dict[str, float | int | None] = {"ndet": n}
    if n == 0:
        return {"ndet": 0}
    out["mean"] = float(np.mean(mag))
    out["median"] = float(np.median(mag))
    out["std"] = float(np.std(mag, ddof=1)) if n > 1 else None
    out["min"] = float(np.min(mag))
    out["max"] = float(np.max(mag))
    out["latest"] = float(mag[-1])
    rate = None
    if n > 1:
        dt = mjd[-1] - mjd[-2]
        if dt > 0:
            rate = float((mag[-1] - mag[-2]) / dt)
    out["rate"] = rate
    for name, tau in EMA_TAUS.items():
        out[name] = ema(mjd, mag, tau)
    return out


def mean_position(ra: np.ndarray, dec: np.ndarray) -> tuple[float, float]:
    """Mean of positions on the sphere (correct across RA 0/360 and near the poles)."""
    r, d = np.radians(ra), np.radians(dec)
    x, y, z = np.mean(np.cos(d) * np.cos(r)), np.mean(np.cos(d) * np.sin(r)), np.mean(np.sin(d))
    lon = math.degrees(math.atan2(y, x)) % 360.0
    lat = math.degrees(math.atan2(z, math.hypot(x, y)))
    return lon, lat


def object_features(det: dict[str, np.ndarray]) -> dict:
    """Features of one object from arrays of its detections.

    ``det`` has equal-length arrays: detectionId, mjd, band (str), mag (float, NaN when
    unknown), ra, decl, reliability (float, NaN when unknown). Rows need not be sorted.
    """
    order = np.lexsort((det["detectionId"], det["mjd"]))
    mjd = np.asarray(det["mjd"], dtype=float)[order]
    band = np.asarray(det["band"])[order]
    mag = np.asarray(det["mag"], dtype=float)[order]
    ids = np.asarray(det["detectionId"])[order]
    rel = np.asarray(det["reliability"], dtype=float)[order]
    ra = np.asarray(det["ra"], dtype=float)[order]
    dec = np.asarray(det["decl"], dtype=float)[order]

    out: dict = {"ndet": int(len(mjd)), "firstmjd": float(mjd[0]), "lastmjd": float(mjd[-1]),
                 "latest_detectionId": int(ids[-1]),
                 "latest_reliability": None if np.isnan(rel[-1]) else float(rel[-1])}
    good_pos = ~(np.isnan(ra) | np.isnan(dec))
    out["ra"], out["decl"] = mean_position(ra[good_pos], dec[good_pos]) if good_pos.any() else (None, None)

    has_mag = ~np.isnan(mag)
    if has_mag.any():
        last = np.flatnonzero(has_mag)[-1]
        out["latest_mag"], out["latest_band"] = float(mag[last]), str(band[last])
    else:
        out["latest_mag"], out["latest_band"] = None, None

    latest_by_band: dict[str, tuple[float, float]] = {}
    for b in BANDS:
        sel = (band == b) & has_mag
        feats = band_features(mjd[sel], mag[sel])
        for name in ("ndet", "mean", "median", "std", "min", "max", "latest", "rate", *EMA_TAUS):
            value = feats.get(name)
            out[f"{b}_{name}"] = value if name == "ndet" or value is not None else None
        if feats["ndet"]:
            latest_by_band[b] = (float(mag[sel][-1]), float(mjd[sel][-1]))
    if "g" in latest_by_band and "r" in latest_by_band:
        (gm, gt), (rm, rt) = latest_by_band["g"], latest_by_band["r"]
        out["g_minus_r"], out["g_minus_r_dt"] = gm - rm, abs(gt - rt)
    else:
        out["g_minus_r"], out["g_minus_r_dt"] = None, None
    return out


def sky_columns(ra: np.ndarray, dec: np.ndarray) -> dict[str, np.ndarray]:
    """healpix (nested, depth 29), glat and glon for arrays of positions, vectorised."""
    import astropy.units as u
    import cdshealpix.nested
    from astropy.coordinates import Angle, SkyCoord

    ra = np.asarray(ra, dtype=float)
    dec = np.asarray(dec, dtype=float)
    pix = cdshealpix.nested.lonlat_to_healpix(Angle(ra, u.deg), Angle(np.clip(dec, -90, 90), u.deg), HEALPIX_DEPTH)
    gal = SkyCoord(ra=ra * u.deg, dec=dec * u.deg, frame="icrs").galactic
    return {"healpix": np.asarray(pix, dtype=np.int64), "glat": gal.b.deg, "glon": gal.l.deg}
