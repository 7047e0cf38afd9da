"""Matching alert positions against the active sky areas.

An area is a MOC (Multi-Order Coverage map: a set of HEALPix cells), stored in
``areas.moc`` as the bytes of its FITS serialisation. An alert is in an area
when its position falls in one of the MOC's cells; mocpy answers that for a
whole batch at once (``MOC.contains_lonlat``), so matching costs one vectorised
call per active area and batch.

``AreaMatcher`` keeps the areas up to date with the database like
``WatchlistMatcher`` does for watchlists: a cheap fingerprint query at most
every ``refresh_seconds``, and a reload when it changed.
"""

from __future__ import annotations

import io
import logging
import math
import time
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from mocpy import MOC

from alertlab.core.errors import AlertLabError

log = logging.getLogger(__name__)


class InvalidMOC(AlertLabError):
    """Bytes that are not a spatial MOC in FITS."""


@dataclass
class AreaHit:
    """One alert inside one area: ``alert_index`` is the alert's position in the batch."""

    alert_index: int
    area_id: int


def moc_to_fits_bytes(moc: MOC) -> bytes:
    """The MOC as FITS bytes, the form ``areas.moc`` stores."""
    buffer = io.BytesIO()
    moc.serialize(format="fits").writeto(buffer)
    return buffer.getvalue()


def moc_from_fits_bytes(data: bytes) -> MOC:
    """The MOC stored as FITS bytes (``areas.moc``); InvalidMOC for anything else."""
    try:
        moc = MOC.from_fits(io.BytesIO(bytes(data)))
        moc.max_order  # raises for a time or frequency MOC read into the MOC class
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # ValueError, OSError, or a Rust panic (not an Exception) for bad bytes
        raise InvalidMOC(f"not a spatial MOC in FITS: {exc}".splitlines()[0][:200]) from None
    if not isinstance(moc, MOC):
        raise InvalidMOC(f"not a spatial MOC but a {type(moc).__name__}")
    return moc


class AreaIndex:
    """The active areas, each a MOC, ready to test batches of positions."""

    def __init__(self, areas: list[tuple[int, MOC]]):
        self._areas = [(int(area_id), moc) for area_id, moc in areas]

    @classmethod
    def build(cls, areas: list[tuple[int, MOC]]) -> "AreaIndex":
        return cls(areas)

    def __len__(self) -> int:
        return len(self._areas)

    @property
    def area_ids(self) -> list[int]:
        return [area_id for area_id, _ in self._areas]

    def match(self, ra, dec) -> list[AreaHit]:
        """Every (alert, area) with the alert's position in the area, ordered by alert then area."""
        ra = np.asarray(ra, dtype=np.float64).ravel()
        dec = np.asarray(dec, dtype=np.float64).ravel()
        if len(ra) != len(dec):
            raise ValueError("ra and dec must have the same length")
        ok = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0)
        if not self._areas or not ok.any():
            return []
        alert = np.flatnonzero(ok)
        lon = np.mod(ra[ok], 360.0) * u.deg
        lat = dec[ok] * u.deg
        hit_alert, hit_area = [], []
        for area_id, moc in self._areas:
            inside = alert[moc.contains_lonlat(lon=lon, lat=lat)]
            hit_alert.append(inside)
            hit_area.append(np.full(len(inside), area_id, dtype=np.int64))
        hit_alert = np.concatenate(hit_alert)
        hit_area = np.concatenate(hit_area)
        order = np.lexsort((hit_area, hit_alert))
        return [AreaHit(int(a), int(i)) for a, i in zip(hit_alert[order].tolist(), hit_area[order].tolist())]


def load_area_index(conn) -> AreaIndex:
    """The active areas (``conn``: SQLAlchemy connection to the alert database). An area whose
    bytes are not a MOC is left out with a warning, so one bad row does not stop the ingest."""
    areas = []
    for area_id, data in conn.exec_driver_sql("SELECT id, moc FROM areas WHERE active ORDER BY id"):
        try:
            areas.append((int(area_id), moc_from_fits_bytes(data)))
        except InvalidMOC as exc:
            log.warning("area %s left out: %s", area_id, exc)
    return AreaIndex.build(areas)


def areas_fingerprint(conn) -> tuple:
    """A cheap summary that changes whenever an area is added, removed or (de)activated, or gets a MOC
    with a different ``sky_fraction`` (the MOC blobs themselves are not read)."""
    row = conn.exec_driver_sql(
        "SELECT COUNT(*), COALESCE(MAX(id), 0), COALESCE(SUM(id), 0),"
        " COALESCE(SUM(id * ROUND(COALESCE(sky_fraction, 0) * 1e12)), 0) FROM areas WHERE active").one()
    return tuple(int(v) for v in row)


class AreaMatcher:
    """Holds the area index and reloads it when the active areas change (fingerprint checked at most
    every ``refresh_seconds``), so a new area is used within seconds without restarting the ingest."""

    def __init__(self, engine, refresh_seconds: float = 5.0):
        self.engine = engine
        self.refresh_seconds = float(refresh_seconds)
        self._index: AreaIndex | None = None
        self._fingerprint: tuple | None = None
        self._checked = -math.inf

    @property
    def index(self) -> AreaIndex:
        self.refresh()
        return self._index

    def refresh(self, force: bool = False) -> bool:
        """Reload the areas if they changed (checked at most every ``refresh_seconds`` unless
        ``force``). Returns True when it reloaded."""
        now = time.monotonic()
        if not force and self._index is not None and now - self._checked < self.refresh_seconds:
            return False
        with self.engine.connect() as conn:  # one transaction: fingerprint and areas from one snapshot
            fingerprint = areas_fingerprint(conn)
            reload = force or self._index is None or fingerprint != self._fingerprint
            if reload:
                self._index = load_area_index(conn)
                log.info("area index: %d areas loaded", len(self._index))
            conn.rollback()
        self._fingerprint = fingerprint
        self._checked = time.monotonic()
        return reload

    def match(self, ra, dec) -> list[AreaHit]:
        return self.index.match(ra, dec)
