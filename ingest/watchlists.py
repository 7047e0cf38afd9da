"""Exact matching of alert positions against the cones of every active watchlist.

A watchlist is a list of cones (centre, radius in arcsec). Each ingest batch of
alert positions is matched against all cones of all active watchlists, so the
cones live in an in-memory index built once and reused for every batch:

* Cones are grouped into radius classes: class ``k`` holds radii in
  ``(2**(k-1), 2**k]`` arcsec, and ``R = 2**k`` is its search radius.
* Within a class the sky is cut into declination zones of height ``R`` (the
  zones algorithm of Gray et al. 2006, used for SDSS cross-matching), and the
  cones are sorted by one integer key ``(class, zone, quantised RA)``.
* For an alert, a cone of the class can only be within ``R`` if its
  declination is within ``R`` of the alert's and its RA is within
  ``asin(sin R / cos dec)`` of the alert's (the whole circle when the disc of
  radius ``R`` reaches a pole). That gives, per class, a few zones times one or
  two RA intervals (two when the interval crosses RA 0/360): key ranges found
  with ``np.searchsorted``, all alerts and classes at once. Every bound is
  widened by a margin far above float rounding, so the candidates are a true
  superset of the matches.
* The candidates are then tested exactly: the angular separation (Vincenty's
  formula, astropy's ``angular_separation``) must be ``<=`` the cone's own radius.

Why zones rather than HEALPix cells: the RA/Dec bounds above are closed-form and
vectorise over a whole batch, where a HEALPix cone search is one library call
per alert and class; the result is the same exact set of matches.

``WatchlistMatcher`` keeps the index up to date with the database: at most
every ``refresh_seconds`` it reads a cheap fingerprint of the active
watchlists and rebuilds the index when it changed.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import dataclass

import numpy as np
from astropy.coordinates import angular_separation

from alertlab.core.errors import AlertLabError

log = logging.getLogger(__name__)

MAX_RADIUS_ARCSEC = 3600.0
"""Largest cone radius a watchlist may hold (1 degree)."""

MIN_CLASS = -2
"""Radius class of the smallest cones: every radius <= 0.25" shares it."""

_RA_BITS = 32  # quantised RA: 360 / 2**32 deg, about 0.3 mas
_ZONE_BITS = 22  # zones of height 0.25" need ceil(180 * 3600 / 0.25) + 1 < 2**22
_RA_SCALE = float(2**_RA_BITS) / 360.0
_RA_QMAX = 2**_RA_BITS - 1
# Widening of every search bound. Float rounding in the bounds is ~1e-14 deg;
# these margins are many orders of magnitude larger and add no visible work.
_PAD_DEG = 1e-9
_PAD_REL = 1e-9

_INSERT_CHUNK = 20_000
_LOAD_CHUNK = 16_384  # ids per range query: each result row stays far below max_allowed_packet


class InvalidCones(AlertLabError):
    """Cones that cannot go into a watchlist (bad position, radius or name)."""


@dataclass
class WatchlistHit:
    """One alert inside one cone: ``alert_index`` is the alert's position in the batch."""

    alert_index: int
    watchlist_id: int
    cone_id: int
    name: str | None
    arcsec: float


def separation_arcsec(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Angular separation in arcsec between positions given in degrees (Vincenty: exact at all distances)."""
    sep = angular_separation(np.radians(ra1), np.radians(dec1), np.radians(ra2), np.radians(dec2))
    return np.degrees(sep) * 3600.0


def radius_class(radius_arcsec: np.ndarray) -> np.ndarray:
    """The class ``k`` of each radius: the smallest ``k >= MIN_CLASS`` with ``radius <= 2**k``."""
    radius = np.asarray(radius_arcsec, dtype=np.float64)
    k = np.ceil(np.log2(radius)).astype(np.int64)
    k[np.exp2(k) < radius] += 1  # guard log2 rounding: the class radius must never be smaller
    return np.maximum(k, MIN_CLASS)


def _normalise_ra(ra: np.ndarray) -> np.ndarray:
    out = np.mod(ra, 360.0)
    out[out >= 360.0] = 0.0  # np.mod(-1e-20, 360) == 360.0
    return out


def _quantise_ra(ra_deg: np.ndarray) -> np.ndarray:
    """RA in [0, 360] to an integer in [0, 2**32); monotonic, so intervals map to intervals."""
    return np.clip(np.floor(ra_deg * _RA_SCALE), 0, _RA_QMAX).astype(np.int64)


class ConeIndex:
    """All cones of the active watchlists, indexed for exact batch matching (see the module docstring)."""

    def __init__(self, keys, ra, dec, radius, watchlist_id, cone_id, name, class_k):
        self._keys = keys  # sorted int64: class index << 54 | zone << 32 | quantised RA
        self._ra = ra  # degrees as given (the exact test uses these)
        self._dec = dec
        self._radius = radius  # arcsec
        self._watchlist_id = watchlist_id
        self._cone_id = cone_id
        self._name = name  # object array of str | None
        self._class_k = class_k  # the k of each class index present
        self._class_deg = np.exp2(class_k.astype(np.float64)) / 3600.0  # search radius R = zone height
        self._nzones = np.floor(180.0 / self._class_deg).astype(np.int64) + 1

    @classmethod
    def build(cls, watchlist_id, cone_id, ra, dec, radius_arcsec, name=None) -> "ConeIndex":
        """Index cones given as same-length sequences (``watchlist_id`` and ``radius_arcsec`` may be one
        number for all); ``name`` may be None (no names)."""
        ra = np.asarray(ra, dtype=np.float64).ravel()
        dec = np.asarray(dec, dtype=np.float64).ravel()
        n = len(ra)
        radius = np.broadcast_to(np.asarray(radius_arcsec, dtype=np.float64), (n,)).copy()
        watchlist_id = np.broadcast_to(np.asarray(watchlist_id, dtype=np.int64), (n,)).copy()
        cone_id = np.asarray(cone_id, dtype=np.int64).ravel()
        names = np.full(n, None, dtype=object) if name is None else np.asarray(name, dtype=object).ravel()
        if not (len(dec) == len(watchlist_id) == len(cone_id) == len(names) == n):
            raise ValueError("cone arrays must all have the same length")
        _check_cones(ra, dec, radius, max_radius=None)

        k = radius_class(radius)
        class_k, class_index = np.unique(k, return_inverse=True)
        if len(class_k) >= 2 ** (63 - _ZONE_BITS - _RA_BITS):
            raise ValueError("too many radius classes")  # unreachable for radii <= 180 deg
        index = cls(np.empty(0, np.int64), ra, dec, radius, watchlist_id, cone_id, names, class_k)
        h = index._class_deg[class_index]
        zone = np.clip(np.floor((dec + 90.0) / h).astype(np.int64), 0, index._nzones[class_index] - 1)
        keys = (class_index.astype(np.int64) << (_ZONE_BITS + _RA_BITS)) | (zone << _RA_BITS) \
            | _quantise_ra(_normalise_ra(ra))
        order = np.argsort(keys, kind="stable")
        index._keys = keys[order]
        for attr in ("_ra", "_dec", "_radius", "_watchlist_id", "_cone_id", "_name"):
            setattr(index, attr, getattr(index, attr)[order])
        return index

    @classmethod
    def empty(cls) -> "ConeIndex":
        return cls.build([], [], [], [], [])

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def cone_ids(self) -> np.ndarray:
        """The cone ids in index order (what the positions returned by ``candidates`` refer to)."""
        return self._cone_id

    @property
    def watchlist_ids(self) -> np.ndarray:
        """The distinct watchlists in the index."""
        return np.unique(self._watchlist_id)

    def candidates(self, ra, dec) -> tuple[np.ndarray, np.ndarray]:
        """(alert index, cone position) pairs that may match: a superset of the true matches."""
        ra = np.asarray(ra, dtype=np.float64).ravel()
        dec = np.asarray(dec, dtype=np.float64).ravel()
        if len(ra) != len(dec):
            raise ValueError("ra and dec must have the same length")
        ok = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0)
        if len(self) == 0 or not ok.any():
            return np.empty(0, np.int64), np.empty(0, np.int64)
        alert = np.flatnonzero(ok)
        a_ra = _normalise_ra(ra[ok])[:, None]  # (A, 1) against classes (1, C)
        a_dec = dec[ok][:, None]
        R = self._class_deg[None, :]
        h = self._class_deg[None, :]
        nz = self._nzones[None, :]
        R_pad = R * (1 + _PAD_REL) + _PAD_DEG

        # Declination zones of the disc of radius R around each alert.
        zlo = np.clip(np.floor((a_dec - R_pad + 90.0) / h).astype(np.int64), 0, nz - 1)
        zhi = np.clip(np.floor((a_dec + R_pad + 90.0) / h).astype(np.int64), 0, nz - 1)

        # RA half-width of the disc: asin(sin R / cos dec), or the whole circle when it holds a pole.
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.sin(np.radians(R_pad)) / np.cos(np.radians(a_dec))
            ratio = ratio * (1 + _PAD_REL) + 1e-15  # asin is steep near 1: widen its argument, not its value
            full = (np.abs(a_dec) + R_pad >= 90.0 - _PAD_DEG) | ~(ratio < 1.0) | ~np.isfinite(ratio)
            half = np.degrees(np.arcsin(np.where(full, 1.0, ratio))) * (1 + _PAD_REL) + _PAD_DEG
        full |= half >= 180.0
        lo = a_ra - half
        hi = a_ra + half
        wrap_lo = ~full & (lo < 0.0)
        wrap_hi = ~full & (hi >= 360.0)
        # Piece 1, and piece 2 for intervals crossing RA 0/360 (an empty piece has qlo > qhi).
        q1lo = np.select([full, wrap_lo], [0, _quantise_ra(lo + 360.0)], _quantise_ra(lo))
        q1hi = np.where(full | wrap_lo | wrap_hi, _RA_QMAX, _quantise_ra(hi))
        q2lo = np.where(wrap_lo | wrap_hi, 0, 1)
        q2hi = np.select([wrap_lo, wrap_hi], [_quantise_ra(hi), _quantise_ra(hi - 360.0)], 0)

        nzmax = int((zhi - zlo).max()) + 1
        zone = zlo[..., None] + np.arange(nzmax)  # (A, C, Z)
        zone_ok = zone <= zhi[..., None]
        base = (np.arange(len(self._class_k), dtype=np.int64)[None, :, None] << (_ZONE_BITS + _RA_BITS)) \
            | (np.minimum(zone, (nz - 1)[..., None]) << _RA_BITS)
        qlo = np.stack([np.broadcast_to(q1lo, zlo.shape), np.broadcast_to(q2lo, zlo.shape)], axis=-1)
        qhi = np.stack([np.broadcast_to(q1hi, zlo.shape), np.broadcast_to(q2hi, zlo.shape)], axis=-1)
        key_lo = base[..., None] | qlo[:, :, None, :]  # (A, C, Z, 2)
        key_hi = base[..., None] | qhi[:, :, None, :]
        valid = (zone_ok[..., None] & (qlo <= qhi)[:, :, None, :]).ravel()
        per_alert = valid.size // len(alert)
        which_alert = np.repeat(alert, per_alert)[valid]
        key_lo, key_hi = key_lo.ravel()[valid], key_hi.ravel()[valid]
        # Searching in key order keeps consecutive binary searches in the same cache lines.
        order = np.argsort(key_lo)
        start = np.empty_like(key_lo)
        stop = np.empty_like(key_hi)
        start[order] = np.searchsorted(self._keys, key_lo[order], side="left")
        stop[order] = np.searchsorted(self._keys, key_hi[order], side="right")
        count = np.maximum(stop - start, 0)
        total = int(count.sum())
        if total == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        offsets = np.cumsum(count) - count
        cone = np.repeat(start - offsets, count) + np.arange(total)
        which_alert = np.repeat(which_alert, count)
        return which_alert, cone

    def match(self, ra, dec) -> list[WatchlistHit]:
        """Every (alert, cone) pair with separation <= the cone's radius, ordered by alert, watchlist, cone."""
        ra = np.asarray(ra, dtype=np.float64).ravel()
        dec = np.asarray(dec, dtype=np.float64).ravel()
        which_alert, cone = self.candidates(ra, dec)
        if len(cone) == 0:
            return []
        sep = separation_arcsec(ra[which_alert], dec[which_alert], self._ra[cone], self._dec[cone])
        hit = sep <= self._radius[cone]
        which_alert, cone, sep = which_alert[hit], cone[hit], sep[hit]
        order = np.lexsort((self._cone_id[cone], self._watchlist_id[cone], which_alert))
        return [
            WatchlistHit(int(a), int(w), int(c), n, float(s))
            for a, w, c, n, s in zip(which_alert[order].tolist(), self._watchlist_id[cone[order]].tolist(),
                                     self._cone_id[cone[order]].tolist(), self._name[cone[order]].tolist(),
                                     sep[order].tolist())
        ]


def _check_cones(ra: np.ndarray, dec: np.ndarray, radius: np.ndarray, max_radius: float | None) -> None:
    if not np.isfinite(ra).all():
        raise InvalidCones("every cone needs a finite RA")
    if not (np.isfinite(dec).all() and (np.abs(dec) <= 90.0).all()):
        raise InvalidCones("every cone needs a declination between -90 and 90 degrees")
    if not (np.isfinite(radius).all() and (radius > 0).all()):
        raise InvalidCones("every cone radius must be a positive number of arcsec")
    if max_radius is not None and (radius > max_radius).any():
        raise InvalidCones(f"cone radii are limited to {max_radius:g} arcsec")


# ---------------------------------------------------------------- database


_CHUNK_SQL = """
SELECT COUNT(*), GROUP_CONCAT(CONCAT_WS(',', id, ra, decl, radius) SEPARATOR ','),
       SUM(name IS NOT NULL), JSON_OBJECTAGG(id, name)
FROM watchlist_cones WHERE watchlist_id = %s AND id BETWEEN %s AND %s"""


def _read_watchlist(conn, watchlist_id: int) -> tuple[np.ndarray, np.ndarray]:
    """All cones of one watchlist: an (n, 4) array of id, ra, dec, radius, and their names.

    pymysql spends its time per field, so instead of a million rows it reads one
    row per range of ids, each holding the range's cones as one text: MariaDB
    writes doubles as the shortest text that reads back to the same bits, and
    numpy parses it. Each range query is an aggregate without GROUP BY (no
    temporary table); every element carries its own id (names come as an
    {id: name} JSON object), so the order of the elements does not matter."""
    next_id = "SELECT MIN(id) FROM watchlist_cones WHERE watchlist_id = %s AND id >= %s"  # index only
    numbers, names = [np.empty((0, 4))], [np.empty(0, dtype=object)]
    start = conn.exec_driver_sql(next_id, (watchlist_id, 0)).scalar()
    while start is not None:
        stop = int(start) + _LOAD_CHUNK - 1
        count, text, nnamed, named = conn.exec_driver_sql(_CHUNK_SQL, (watchlist_id, int(start), stop)).one()
        if count:
            values = np.array(text.split(","), dtype=np.float64).reshape(-1, 4)
            if len(values) != count:  # GROUP_CONCAT truncates silently at group_concat_max_len
                raise RuntimeError(f"read {len(values)} of {count} cones of watchlist {watchlist_id}")
            numbers.append(values)
            names.append(_align_names(values[:, 0], json.loads(named)) if nnamed else np.full(count, None, object))
        start = conn.exec_driver_sql(next_id, (watchlist_id, stop + 1)).scalar()  # skips gaps in the ids
    return np.concatenate(numbers), np.concatenate(names)


def _align_names(ids: np.ndarray, by_id: dict[str, str | None]) -> np.ndarray:
    """The names of ``ids`` (doubles, exact below 2**53) from an {"id": name} mapping."""
    keys = np.array(list(by_id.keys()), dtype=np.int64)
    values = np.empty(len(keys), dtype=object)
    values[:] = list(by_id.values())
    order = np.argsort(keys)
    keys, values = keys[order], values[order]
    wanted = ids.astype(np.int64)
    pos = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[pos] == wanted, values[pos], None)


def load_cone_index(conn, cache: dict | None = None) -> ConeIndex:
    """The index of every cone of the active watchlists (``conn``: SQLAlchemy connection to the alert
    database; run it in one transaction for a consistent snapshot).

    ``cache`` ({watchlist id: (signature, cones, names)}, updated in place) keeps each watchlist's cones
    between loads: a watchlist whose cone count and largest cone id are unchanged is not read again, so
    one user's edit does not re-read a million cones of the others."""
    conn.exec_driver_sql("SET SESSION group_concat_max_len = 4294967295")
    active = conn.exec_driver_sql(
        "SELECT w.id, w.ncones, (SELECT COALESCE(MAX(c.id), 0) FROM watchlist_cones c WHERE c.watchlist_id = w.id)"
        " FROM watchlists w WHERE w.active ORDER BY w.id").all()
    cache = {} if cache is None else cache
    watchlist, numbers, names = [np.empty(0, np.int64)], [np.empty((0, 4))], [np.empty(0, dtype=object)]
    for wl, ncones, last in active:
        signature = (int(ncones), int(last))
        cached = cache.get(int(wl))
        if cached is None or cached[0] != signature:
            cached = cache[int(wl)] = (signature, *_read_watchlist(conn, int(wl)))
        _, values, wl_names = cached
        watchlist.append(np.full(len(values), int(wl), dtype=np.int64))
        numbers.append(values)
        names.append(wl_names)
    for gone in set(cache) - {int(r[0]) for r in active}:
        del cache[gone]
    values = np.concatenate(numbers)
    return ConeIndex.build(np.concatenate(watchlist), values[:, 0].astype(np.int64), values[:, 1], values[:, 2],
                           values[:, 3], np.concatenate(names))


def watchlists_fingerprint(conn) -> tuple:
    """A cheap summary that changes whenever a watchlist is added, removed, (de)activated or gains or
    loses cones through ``insert_cones``/an ``ncones`` update (index-only reads, no cone scan)."""
    row = conn.exec_driver_sql(
        "SELECT COUNT(*), COALESCE(MAX(id), 0), COALESCE(SUM(id), 0), COALESCE(SUM(ncones), 0),"
        " COALESCE(SUM(id * ncones), 0),"
        " (SELECT COALESCE(MAX(id), 0) FROM watchlist_cones)"
        " FROM watchlists WHERE active").one()
    return tuple(int(v) for v in row)


def insert_cones(conn, watchlist_id: int, ra, dec, radius=None, name=None) -> int:
    """Add cones to a watchlist in multi-row INSERTs and update ``watchlists.ncones``.

    ``radius`` (arcsec) is an array, one number for all cones, or None for the
    watchlist's ``default_radius``; ``name`` is a sequence of str/None or None.
    Runs in the caller's transaction (commit to make the cones visible to the
    ingest). Returns the number of cones inserted."""
    ra = np.asarray(ra, dtype=np.float64).ravel()
    dec = np.asarray(dec, dtype=np.float64).ravel()
    n = len(ra)
    if len(dec) != n:
        raise InvalidCones("ra and dec must have the same length")
    if radius is None:
        default = conn.exec_driver_sql("SELECT default_radius FROM watchlists WHERE id = %s",
                                       (int(watchlist_id),)).scalar()
        if default is None:
            raise InvalidCones(f"there is no watchlist {watchlist_id}")
        radius = default
    radius = np.broadcast_to(np.asarray(radius, dtype=np.float64), (n,))
    if name is None:
        names = [None] * n
    else:
        names = [None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in name]
        if len(names) != n:
            raise InvalidCones("there must be one name per cone")
        if any(v is not None and len(v) > 255 for v in names):
            raise InvalidCones("cone names are limited to 255 characters")
    _check_cones(ra, dec, radius, MAX_RADIUS_ARCSEC)
    wl = int(watchlist_id)
    sql = "INSERT INTO watchlist_cones (watchlist_id, ra, decl, radius, name) VALUES (%s, %s, %s, %s, %s)"
    ra_l, dec_l, radius_l = ra.tolist(), dec.tolist(), radius.tolist()
    for lo in range(0, n, _INSERT_CHUNK):
        hi = min(n, lo + _INSERT_CHUNK)
        # pymysql's executemany folds these rows into multi-row INSERT statements.
        conn.exec_driver_sql(sql, list(zip([wl] * (hi - lo), ra_l[lo:hi], dec_l[lo:hi], radius_l[lo:hi],
                                           names[lo:hi])))
    conn.exec_driver_sql(
        "UPDATE watchlists SET ncones = (SELECT COUNT(*) FROM watchlist_cones WHERE watchlist_id = %s)"
        " WHERE id = %s", (wl, wl))
    return n


class WatchlistMatcher:
    """Holds the cone index and reloads it when watchlists change (cheap check, e.g. a fingerprint query
    at most every ``refresh_seconds``), so a new watchlist is used within seconds without restarting the
    ingest. Only changed watchlists are read again (see ``load_cone_index``).

    With ``background``, a reload after the first runs in a thread of its own while batches go on being
    matched against the previous index, which is swapped for the new one when it is built: an edit never
    stalls the ingest (building the index of a million cones takes a second or two)."""

    def __init__(self, engine, refresh_seconds: float = 5.0, background: bool = False):
        self.engine = engine
        self.refresh_seconds = float(refresh_seconds)
        self.background = background
        self._index: ConeIndex | None = None
        self._fingerprint: tuple | None = None
        self._checked = -math.inf
        self._cache: dict = {}
        self._loading: threading.Thread | None = None
        self._lock = threading.Lock()  # one load at a time (the cache is shared by them)

    @property
    def index(self) -> ConeIndex:
        self.refresh()
        return self._index

    def refresh(self, force: bool = False) -> bool:
        """Reload the index if the watchlists changed (checked at most every ``refresh_seconds``
        unless ``force``). Returns True when it reloaded, or (``background``) started reloading."""
        now = time.monotonic()
        if not force and self._index is not None and now - self._checked < self.refresh_seconds:
            return False
        self._checked = now
        if force or self._index is None or not self.background:
            return self._load(force)
        if self._loading is not None and self._loading.is_alive():
            return False
        with self.engine.connect() as conn:
            changed = watchlists_fingerprint(conn) != self._fingerprint
            conn.rollback()
        if changed:
            self._loading = threading.Thread(target=self._load_quietly, name="watchlist-index", daemon=True)
            self._loading.start()
        return changed

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a background reload to finish (tests, shutdown)."""
        if self._loading is not None:
            self._loading.join(timeout)

    def _load(self, force: bool = False) -> bool:
        with self._lock, self.engine.connect() as conn:  # one transaction: fingerprint and cones, one snapshot
            fingerprint = watchlists_fingerprint(conn)
            reload = force or self._index is None or fingerprint != self._fingerprint
            if reload:
                started = time.monotonic()
                index = load_cone_index(conn, self._cache)
                log.info("watchlist index: %d cones of %d watchlists loaded in %.1f s", len(index),
                         len(index.watchlist_ids), time.monotonic() - started)
                self._index = index
            conn.rollback()
            self._fingerprint = fingerprint
        return reload

    def _load_quietly(self) -> None:
        try:
            self._load()
        except Exception:  # noqa: BLE001 - the previous index stays; the next check tries again
            log.exception("reloading the watchlist index failed; matching goes on with the previous one")
            self._fingerprint = None

    def match(self, ra, dec) -> list[WatchlistHit]:
        return self.index.match(ra, dec)
