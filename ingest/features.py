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


def ema(mjd, mag, tau: float) -> float:
    """Exponential moving average of ``mag`` (sorted by ``mjd``) with time constant ``tau`` days."""
    value = float(mag[0])
    for k in range(1, len(mag)):
        alpha = 1.0 - math.exp(-(mjd[k] - mjd[k - 1]) / tau)
        value += alpha * (float(mag[k]) - value)
    return value


def band_features(mjd, mag) -> dict[str, float | int | None]:
    """Per-band statistics of detections sorted by time (sequences of floats; mag may not be NaN here).

    Plain Python, not numpy: a band holds a handful of detections, where each numpy call costs more
    than the arithmetic (numpy made features a fifth of the ingest's CPU)."""
    n = len(mag)
    if n == 0:
        return {"ndet": 0}
    mag = [float(m) for m in mag]
    mean = math.fsum(mag) / n
    ordered = sorted(mag)
    half = n // 2
    out: dict[str, float | int | None] = {
        "ndet": n, "mean": mean,
        "median": ordered[half] if n % 2 else (ordered[half - 1] + ordered[half]) / 2.0,
        "std": math.sqrt(math.fsum((m - mean) ** 2 for m in mag) / (n - 1)) if n > 1 else None,
        "min": ordered[0], "max": ordered[-1], "latest": mag[-1], "rate": None,
    }
    if n > 1:
        dt = mjd[-1] - mjd[-2]
        if dt > 0:
            out["rate"] = (mag[-1] - mag[-2]) / dt
    for name, tau in EMA_TAUS.items():
        out[name] = ema(mjd, mag, tau)
    return out


def mean_position(ra, dec) -> tuple[float, float]:
    """Mean of positions on the sphere (correct across RA 0/360 and near the poles)."""
    x = y = z = 0.0
    for r, d in zip(ra, dec):
        r, d = math.radians(r), math.radians(d)
        cd = math.cos(d)
        x += cd * math.cos(r)
        y += cd * math.sin(r)
        z += math.sin(d)
    lon = math.degrees(math.atan2(y, x)) % 360.0
    lat = math.degrees(math.atan2(z, math.hypot(x, y)))
    return lon, lat


def _missing(value) -> bool:
    return value is None or value != value  # None or NaN


def object_features(det: dict) -> dict:
    """Features of one object from its detections.

    ``det`` has equal-length sequences (lists or arrays): detectionId, mjd, band (str), mag (None or
    NaN when unknown), ra, decl, reliability (None or NaN when unknown). Rows need not be sorted:
    they are ordered by (mjd, detectionId), so arrival order never matters.
    """
    rows = sorted(zip(det["mjd"], det["detectionId"], det["band"], det["mag"], det["ra"], det["decl"],
                      det["reliability"]), key=lambda r: (r[0], r[1]))
    first, last = rows[0], rows[-1]
    out: dict = {"ndet": len(rows), "firstmjd": float(first[0]), "lastmjd": float(last[0]),
                 "latest_detectionId": int(last[1]),
                 "latest_reliability": None if _missing(last[6]) else float(last[6])}
    pos = [(r[4], r[5]) for r in rows if not (_missing(r[4]) or _missing(r[5]))]
    out["ra"], out["decl"] = mean_position(*zip(*pos)) if pos else (None, None)

    per_band: dict[str, tuple[list, list]] = {}
    latest = None
    for r in rows:
        if not _missing(r[3]):
            latest = r
            times, mags = per_band.setdefault(str(r[2]), ([], []))
            times.append(float(r[0]))
            mags.append(float(r[3]))
    out["latest_mag"], out["latest_band"] = (float(latest[3]), str(latest[2])) if latest else (None, None)

    for b in BANDS:
        times, mags = per_band.get(b, ((), ()))
        feats = band_features(times, mags)
        for name in ("ndet", "mean", "median", "std", "min", "max", "latest", "rate", *EMA_TAUS):
            out[f"{b}_{name}"] = feats.get(name)
    if "g" in per_band and "r" in per_band:
        (gt, gm), (rt, rm) = per_band["g"], per_band["r"]
        out["g_minus_r"], out["g_minus_r_dt"] = gm[-1] - rm[-1], abs(gt[-1] - rt[-1])
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
