"""Cone search on ``objects``: HEALPix ranges for the index, then the exact distance.

``objects.healpix`` is the nested HEALPix index of each object's position at
depth 29, so a cell ``p`` at depth ``d`` is the integer range
``[p * 4**(29-d), (p+1) * 4**(29-d))`` of that column. cdshealpix gives the
cells that overlap the cone at a depth where cells are a little smaller than
the radius (a handful of cells, a few ranges once merged); MariaDB reads those
ranges of ``ix_objects_healpix``; the candidates are then kept only if their
angular separation (Vincenty's formula) is at most the radius. The result is
exactly the objects whose ``ra, decl`` lie within the radius."""

from __future__ import annotations

import math

import numpy as np

from alertlab.ingest.features import HEALPIX_DEPTH

MAX_RADIUS_ARCSEC = 3600.0
MIN_SEARCH_ARCSEC = 1e-3  # below this the ranges are those of a 1 mas cone (the exact test still applies)
_CELL_DEG = 58.6  # size of a depth-0 cell, about sqrt(4 pi / 12) radians
_DEPTH_DELTA = 2  # cdshealpix refines the cone this many depths below the one asked for (at most 29)


def depth_for(radius_arcsec: float) -> int:
    """The depth whose cells are about half the radius: the cone covers a few of them."""
    d = math.floor(math.log2(_CELL_DEG * 3600.0 / radius_arcsec)) + 1
    return max(0, min(HEALPIX_DEPTH - _DEPTH_DELTA, d))


def ranges(ra: float, dec: float, radius_arcsec: float) -> list[tuple[int, int]]:
    """Merged half-open ranges ``[lo, hi)`` of depth-29 indices covering the cone (a superset)."""
    import astropy.units as u  # heavy imports on first use: the service starts faster
    import cdshealpix.nested
    from astropy.coordinates import Latitude, Longitude

    radius_arcsec = max(radius_arcsec, MIN_SEARCH_ARCSEC)  # a superset: tiny radii search a tiny cell
    ipix, depth, _full = cdshealpix.nested.cone_search(
        Longitude(ra % 360.0, u.deg), Latitude(dec, u.deg), radius_arcsec * u.arcsec, depth=depth_for(radius_arcsec),
        depth_delta=_DEPTH_DELTA)
    shift = 2 * (HEALPIX_DEPTH - np.asarray(depth, dtype=np.int64))
    lo = np.asarray(ipix, dtype=np.int64) << shift
    hi = (np.asarray(ipix, dtype=np.int64) + 1) << shift
    order = np.argsort(lo)
    merged: list[list[int]] = []
    for a, b in zip(lo[order].tolist(), hi[order].tolist()):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def where(ra: float, dec: float, radius_arcsec: float, column: str = "healpix") -> tuple[str, list[int]]:
    """A condition on ``column`` selecting the candidates, with its parameters."""
    parts, params = [], []
    for lo, hi in ranges(ra, dec, radius_arcsec):
        parts.append(f"{column} BETWEEN %s AND %s")
        params += [lo, hi - 1]
    return "(" + " OR ".join(parts) + ")", params


def separations(ra: float, dec: float, ras, decs) -> np.ndarray:
    """Arcsec from (ra, dec) to each candidate."""
    from alertlab.ingest.watchlists import separation_arcsec

    return separation_arcsec(np.full(len(ras), ra), np.full(len(decs), dec), np.asarray(ras, dtype=np.float64),
                             np.asarray(decs, dtype=np.float64))


def search(fetch, ra: float, dec: float, radius_arcsec: float, columns: list[str]) -> tuple[list[tuple], list[float]]:
    """Rows (``columns`` of ``objects``, which must include ``ra`` and ``decl``) within the radius,
    nearest first, and their separations in arcsec. ``fetch(sql, params)`` runs a query and returns
    its rows (SQLAlchemy: ``lambda s, p: conn.exec_driver_sql(s, tuple(p)).fetchall()``)."""
    condition, params = where(ra, dec, radius_arcsec)
    rows = fetch(f"SELECT {', '.join(columns)} FROM objects WHERE {condition}", params)
    if not rows:
        return [], []
    ira, idec = columns.index("ra"), columns.index("decl")
    sep = separations(ra, dec, [r[ira] for r in rows], [r[idec] for r in rows])
    keep = np.flatnonzero(sep <= radius_arcsec)
    keep = keep[np.argsort(sep[keep], kind="stable")]
    return [tuple(rows[i]) for i in keep], sep[keep].tolist()
