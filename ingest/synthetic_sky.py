"""The sky behind the synthetic alert generators: where objects are, how their
brightness evolves, when a survey looks at them and what it measures.

Survey-neutral on purpose: ``synthetic_ztf`` and ``synthetic_lsst`` turn the
`Detection`s made here into alert packets. The model is tuned on 561 real ZTF alerts (history
lengths, magnitude errors against depth, astrometric scatter, share of negative
differences) and is deterministic for a seed: every random draw comes from one
``random.Random`` in a fixed order, and per-detection "noise" that formatting
needs is drawn once, at measurement time, into ``Detection.u``.

Objects live in survey fields (a square grid); each night every field is observed
with some probability, once to a few times. Every visit measures every object in
its field: a detection when the difference flux is over the 5-sigma limit, a
non-detection otherwise (the history of an object is its field's visits). When a
transient has faded for good (or an asteroid has been seen) its slot is re-used
by a new object, so the stream is stationary however long it runs.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from collections import deque
from dataclasses import dataclass
from typing import Iterator

JD_MJD = 2400000.5
TRANSIENTS = ("sn_ia", "sn_ii", "fast")
# Share of each kind among the object slots. For ZTF about half the real alerts sit on a
# catalogued point source (variables, AGN, residuals) and a sixth are asteroids; Rubin
# sends solar-system sources on their own, so they are ~2% of its alerts here.
ZTF_KINDS = {"sn_ia": 0.34, "sn_ii": 0.14, "fast": 0.07, "periodic": 0.27, "agn": 0.07,
             "constant": 0.04, "asteroid": 0.04}
LSST_KINDS = dict(ZTF_KINDS, asteroid=0.003)
# Colour at peak (mag, relative to r) and decline stretch per band for transients:
# bluer and faster in the blue, so colours redden as they fade.
PEAK_COLOUR = {"u": 0.5, "g": -0.05, "r": 0.0, "i": 0.2, "z": 0.35, "y": 0.45}
FALL_STRETCH = {"u": 0.55, "g": 0.75, "r": 1.0, "i": 1.15, "z": 1.25, "y": 1.3}
# Variable-star amplitude per band relative to r.
AMPLITUDE = {"u": 1.5, "g": 1.25, "r": 1.0, "i": 0.85, "z": 0.75, "y": 0.7}
STAR_COLOUR = {"u": 1.2, "g": 0.45, "r": 0.0, "i": -0.15, "z": -0.25, "y": -0.3}


@dataclass(frozen=True)
class Survey:
    """What differs between surveys for the simulation (magnitudes are ZTF-like and
    shifted by ``depth`` for deeper surveys)."""

    name: str
    bands: tuple[str, ...]
    band_weights: tuple[float, ...]
    limits: dict            # median 5-sigma limiting magnitude of a difference image, per band
    limit_scatter: float    # night-to-night scatter of the limit (mag)
    depth: float            # how much fainter the population is than ZTF's (mag)
    field_deg: float        # side of one field of the grid
    dec_range: tuple[float, float]
    p_night: float          # chance a field is observed on a given night
    visits: tuple[tuple[int, float], ...]   # (visits that night, probability)
    night_start: float      # JD fraction (from noon UT) when observing starts
    night_length: float     # days
    kinds: dict             # share of each kind of object among the slots
    grid: int               # a field is a grid x grid mosaic of detector cells (ZTF: CCD quadrants)
    ncells: int             # number of distinct cells (ZTF's rcid 0-63, Rubin's detector 0-188)


ZTF = Survey("ztf", ("g", "r"), (0.45, 0.55), {"g": 20.45, "r": 20.35}, 0.4, 0.0, 7.0,
             (-31.0, 90.0), 0.42, ((1, 0.12), (2, 0.78), (3, 0.10)), 0.625, 0.4, ZTF_KINDS, 8, 64)
LSST = Survey("lsst", ("u", "g", "r", "i", "z", "y"), (0.07, 0.09, 0.22, 0.22, 0.20, 0.20),
              {"u": 23.8, "g": 24.5, "r": 24.0, "i": 23.4, "z": 22.8, "y": 22.0}, 0.3, 3.6, 3.5,
              (-90.0, 33.0), 0.25, ((1, 0.1), (2, 0.9)), 0.46, 0.43, LSST_KINDS, 14, 189)


class Visit:
    """One exposure of one field: when, in which band, how deep."""

    __slots__ = ("seq", "night_seq", "field", "jd", "band", "limit", "u", "counts", "cache")

    def __init__(self, seq, field, jd, band, limit, u):
        self.seq, self.field, self.jd, self.band, self.limit, self.u = seq, field, jd, band, limit, u
        self.night_seq = 0  # exposure number within its night
        self.counts = {}    # (cell, what) -> sources numbered so far (per-exposure source numbers)
        self.cache = {}     # survey formatting caches (e.g. the shared ZTF non-detection record)

    def number(self, cell: int, what: str) -> int:
        n = self.counts.get((cell, what), 0) + 1
        self.counts[(cell, what)] = n
        return n


class Detection:
    """A measurement over the 5-sigma limit: the stuff of one alert (or of one history entry)."""

    __slots__ = ("obj", "visit", "serial", "flux", "flux_err", "ra", "dec", "rb", "drb", "u",
                 "ndethist", "ncovhist", "jdstarthist", "avro")

    @property
    def jd(self):
        return self.visit.jd

    @property
    def mag(self):
        return -2.5 * math.log10(abs(self.flux))

    @property
    def magerr(self):
        return 1.0857 * self.flux_err / abs(self.flux)


class SkyObject:
    """One astrophysical source (or asteroid sighting) and its light-curve parameters."""

    __slots__ = ("index", "kind", "ra", "dec", "field", "fx", "fy", "cell", "serial", "name", "year", "u",
                 "t0", "end", "peak", "trise", "tfall", "norm", "m0", "amp", "period", "tau", "drw", "sign",
                 "ref_dist", "ref_mag", "first", "detections", "forced", "ndet0", "ndet", "ncov", "jdstart0")

    def diff_flux(self, t: float, band: str, rng: random.Random) -> float:
        """True difference flux (science minus template), in units where mag = -2.5 log10(flux)."""
        kind = self.kind
        if kind in TRANSIENTS:
            dt = t - self.t0
            if dt < -10 * self.trise:
                return 0.0
            fall = self.tfall * FALL_STRETCH[band]
            x = -dt / self.trise
            shape = math.exp(-dt / fall) / (1.0 + math.exp(x)) if x < 60 else 0.0
            return self.norm * shape * 10 ** (-0.4 * (self.peak + PEAK_COLOUR[band]))
        mean = 10 ** (-0.4 * (self.m0 + STAR_COLOUR[band]))
        if kind == "periodic":
            phase = ((t - self.t0) / self.period) % 1.0
            # sine, or a sawtooth (sudden brightening, slow decline) for RR Lyrae-like pulsators
            wave = math.sin(2 * math.pi * phase) if self.sign > 0 else 2 * phase - 1
            return mean * (10 ** (-0.4 * self.amp * AMPLITUDE[band] * 0.5 * wave) - 1.0)
        if kind == "agn":
            t_last, x = self.drw
            a = math.exp(-max(t - t_last, 0.0) / self.tau)
            x = a * x + self.amp * math.sqrt(1 - a * a) * rng.gauss(0.0, 1.0)
            self.drw = (t, x)
            return mean * (10 ** (-0.4 * x * AMPLITUDE[band]) - 1.0)
        if kind == "constant":
            return self.sign * 10 ** (-0.4 * (self.peak + 0.3 * PEAK_COLOUR[band])) * (1 + rng.gauss(0, 0.04))
        return 0.0  # asteroids are measured by Simulation._measure


class Field:
    """A field of the survey's grid: the objects in it and its recent visits."""

    __slots__ = ("id", "objects", "visits")

    def __init__(self, fid):
        self.id, self.objects, self.visits = fid, [], deque()


@functools.cache
def _icrs_to_galactic_matrix() -> tuple:
    """3x3 rotation ICRS -> Galactic, taken from astropy once (then applied in plain Python)."""
    import numpy as np
    from astropy.coordinates import SkyCoord

    unit = SkyCoord(x=np.eye(3)[0], y=np.eye(3)[1], z=np.eye(3)[2], representation_type="cartesian",
                    frame="icrs").galactic.cartesian
    return tuple(tuple(float(v) for v in row) for row in np.array([unit.x, unit.y, unit.z]))


def _rotate(lon, lat, matrix, transpose=False):
    cl = math.cos(math.radians(lat))
    v = (cl * math.cos(math.radians(lon)), cl * math.sin(math.radians(lon)), math.sin(math.radians(lat)))
    m = matrix if not transpose else tuple(zip(*matrix))
    w = [sum(m[j][i] * v[j] for j in range(3)) for i in range(3)]
    return math.degrees(math.atan2(w[1], w[0])) % 360.0, math.degrees(math.asin(max(-1.0, min(1.0, w[2]))))


def galactic(ra: float, dec: float) -> tuple[float, float]:
    """(l, b) in degrees."""
    return _rotate(ra, dec, _icrs_to_galactic_matrix())


def icrs_from_galactic(glon: float, glat: float) -> tuple[float, float]:
    """(ra, dec) in degrees."""
    return _rotate(glon, glat, _icrs_to_galactic_matrix(), transpose=True)


def ecliptic(ra: float, dec: float) -> tuple[float, float]:
    """Mean ecliptic (lambda, beta) of J2000, degrees: a fixed rotation by the obliquity."""
    eps = math.radians(23.4392911)
    r, d = math.radians(ra), math.radians(dec)
    lam = math.atan2(math.sin(r) * math.cos(eps) + math.tan(d) * math.sin(eps), math.cos(r))
    beta = math.asin(math.sin(d) * math.cos(eps) - math.cos(d) * math.sin(eps) * math.sin(r))
    return math.degrees(lam) % 360.0, math.degrees(beta)


class Simulation:
    """Objects, fields and nights; `detections()` yields what a survey detects, in time order."""

    def __init__(self, survey: Survey, seed: int, n_objects: int, history_days: float, sky: str,
                 start_jd: float, forced: bool):
        self.survey, self.history_days, self.start_jd, self.forced = survey, float(history_days), start_jd, forced
        self.rng = random.Random(seed)
        self._sky = self._parse_sky(sky)
        self._names: dict[int, int] = {}      # year -> next name counter (unique object names)
        self._visit_seq = 0
        self._visit_counts = [n for n, _ in survey.visits]
        self._visit_cum = list(itertools.accumulate(p for _, p in survey.visits))
        self._band_cum = list(itertools.accumulate(survey.band_weights))
        self.fields: dict[int, Field] = {}
        self.objects = [self._new_object(i, start_jd - self.history_days, initial=True, kind=kind)
                        for i, kind in enumerate(self._kinds(max(1, int(n_objects))))]

    # -- the sky -------------------------------------------------------------------------
    def _parse_sky(self, sky: str):
        if sky in ("uniform", "plane"):
            return sky
        try:
            ra, dec, radius = (float(x) for x in sky.split(","))
        except ValueError:
            from alertlab.core.errors import ConfigError
            raise ConfigError(f"sky must be 'uniform', 'plane' or 'ra,dec,radius' in degrees, not {sky!r}") from None
        return (ra, dec, radius)

    def _position(self) -> tuple[float, float]:
        rng, (dmin, dmax) = self.rng, self.survey.dec_range
        for _ in range(1000):
            if self._sky == "uniform":
                s0, s1 = math.sin(math.radians(dmin)), math.sin(math.radians(dmax))
                ra, dec = rng.uniform(0, 360), math.degrees(math.asin(rng.uniform(s0, s1)))
            elif self._sky == "plane":   # Galactic plane: latitude ~ Laplace(8 deg)
                b = max(-89.9, min(89.9, rng.choice((-1, 1)) * rng.expovariate(1 / 8.0)))
                ra, dec = icrs_from_galactic(rng.uniform(0, 360), b)
            else:                        # a cone: uniform over the spherical cap
                ra0, dec0, radius = self._sky
                cosr = rng.uniform(math.cos(math.radians(radius)), 1.0)
                r, pa = math.acos(cosr), rng.uniform(0, 2 * math.pi)
                d0 = math.radians(dec0)
                sd = math.sin(d0) * math.cos(r) + math.cos(d0) * math.sin(r) * math.cos(pa)
                dec = math.degrees(math.asin(sd))
                dra = math.atan2(math.sin(pa) * math.sin(r) * math.cos(d0), math.cos(r) - math.sin(d0) * sd)
                return (ra0 + math.degrees(dra)) % 360.0, dec
            if dmin <= dec <= dmax:
                return ra, dec
        return ra, max(dmin, min(dmax, dec))

    @functools.cached_property
    def _grid(self) -> list[tuple[int, int]]:
        """(first field number, fields across) of each declination band of the field grid."""
        size, (dmin, dmax) = self.survey.field_deg, self.survey.dec_range
        out, first = [], 1
        for band in range(math.ceil((dmax - dmin) / size)):
            centre = max(-89.0, min(89.0, dmin + (band + 0.5) * size))
            across = max(1, int(360.0 * math.cos(math.radians(centre)) / size))
            out.append((first, across))
            first += across
        return out

    def locate(self, ra: float, dec: float) -> tuple[int, float, float]:
        """Field number and the fractional position (fx, fy) inside it, on a square-ish grid."""
        size, (dmin, _) = self.survey.field_deg, self.survey.dec_range
        band, fy = divmod((dec - dmin) / size, 1.0)
        band = min(int(band), len(self._grid) - 1)
        first, across = self._grid[band]
        cell, fx = divmod((ra % 360.0) / 360.0 * across, 1.0)
        return first + int(cell) % across, fx, fy

    # -- objects -------------------------------------------------------------------------
    def _name_counter(self, year: int) -> int:
        if year not in self._names:
            self._names[year] = self.rng.randrange(26 ** 5, 26 ** 5 * 3)
        self._names[year] += 1
        return self._names[year]

    def _kinds(self, n: int) -> list[str]:
        """Kinds of the n slots in the survey's proportions (largest remainders; at least one
        asteroid slot once there are 20 slots, so small runs still see the solar system), shuffled."""
        kinds = self.survey.kinds
        total = sum(kinds.values())
        counts = {k: int(n * w / total) for k, w in kinds.items()}
        if n >= 20 and counts.get("asteroid", 1) == 0:
            counts["asteroid"] = 1
        for k in sorted(kinds, key=lambda k: -(n * kinds[k] / total) % 1)[: max(0, n - sum(counts.values()))]:
            counts[k] += 1
        out = [k for k, c in counts.items() for _ in range(c)][:n]
        self.rng.shuffle(out)
        return out

    def _new_object(self, index: int, now: float, initial: bool = False, kind: str | None = None) -> SkyObject:
        rng, depth = self.rng, self.survey.depth
        o = SkyObject()
        o.index = index
        kinds = self.survey.kinds
        o.kind = kind or rng.choices(list(kinds), weights=list(kinds.values()))[0]
        if initial:
            o.ra, o.dec = self._position()
        else:   # a re-used slot: somewhere in a field that is already being simulated
            for _ in range(200):
                o.ra, o.dec = self._position()
                if self.locate(o.ra, o.dec)[0] in self.fields:
                    break
        o.field, o.fx, o.fy = self.locate(o.ra, o.dec)
        g = self.survey.grid
        o.cell = (min(int(o.fy * g), g - 1) * g + min(int(o.fx * g), g - 1)) % self.survey.ncells
        o.first = o.name = None   # first detection; the survey's name for it (set by the formatter)
        o.u = tuple(rng.random() for _ in range(8))
        o.detections, o.forced = deque(), deque()
        o.sign, o.drw, o.t0, o.norm, o.trise, o.tfall = 1, None, now, 1.0, 1.0, 1.0
        o.peak, o.m0, o.amp, o.period, o.tau = 0.0, 0.0, 0.0, 1.0, 1.0
        # brighter-than-limit sources are rarer: N(<m) ~ 10^(0.6 m) (Euclidean counts)
        euclid = lambda a, b, k=0.6: math.log10(rng.uniform(10 ** (k * a), 10 ** (k * b))) / k
        if o.kind in TRANSIENTS:
            o.trise, o.tfall = {"sn_ia": ((2.0, 5.0), (15.0, 35.0)), "sn_ii": ((1.0, 3.0), (70.0, 120.0)),
                                "fast": ((0.2, 1.0), (1.5, 4.0))}[o.kind]
            o.trise, o.tfall = rng.uniform(*o.trise), rng.uniform(*o.tfall)
            o.peak = euclid(15.5, 21.8, 0.6) + depth + (0.4 if o.kind == "sn_ii" else 0.0)
            tpk = o.trise * math.log(max(o.tfall / o.trise - 1.0, 1.01))
            o.norm = (1.0 + math.exp(-tpk / o.trise)) * math.exp(tpk / o.tfall)   # peak of the Bazin shape -> 1
            # gone for good once even the deepest visit would miss it by a magnitude
            faintest = max(self.survey.limits.values()) + 1.6
            life = tpk + max(o.tfall * FALL_STRETCH[b] * (0.4 * math.log(10) * (faintest - o.peak - PEAK_COLOUR[b])
                                                         + math.log(o.norm)) for b in self.survey.bands)
            o.t0 = rng.uniform(now - 0.7 * life, now + 30) if initial else now + rng.uniform(1.0, 25.0)
            o.end = o.t0 + life
            o.year = _year(o.t0)
            o.ref_dist = 10 ** rng.uniform(-0.5, 0.8) if rng.random() < 0.8 else rng.uniform(5, 20)
            o.ref_mag = rng.uniform(18.5, 22.8) + depth
        elif o.kind == "asteroid":
            o.t0 = now + rng.uniform(0.0, 4.0)   # the night it crosses this spot
            o.end, o.year = math.inf, _year(o.t0)
            o.ref_dist, o.ref_mag = rng.uniform(2.0, 25.0), rng.uniform(19.0, 22.8) + depth
        else:   # persistent: catalogued since ZTF's first years
            o.end, o.year = math.inf, rng.choice((18, 18, 18, 19, 20, 21, 22))
            o.ref_dist = abs(rng.gauss(0, 0.15)) + 0.02
            o.t0 = now - rng.uniform(0, 400)
            if o.kind == "periodic":
                o.m0 = euclid(12.5, 19.5, 0.4) + depth
                o.amp, o.period = 10 ** rng.uniform(-1.4, 0.0), 10 ** rng.uniform(-1, 2.5)
                o.sign = 1 if rng.random() < 0.7 else -1   # -1: sawtooth (RR Lyrae-like) instead of sine
            elif o.kind == "agn":
                o.m0, o.amp = rng.uniform(17.0, 20.0) + depth, rng.uniform(0.05, 0.2)
                o.tau = 10 ** rng.uniform(1.5, 2.5)   # damped random walk: days
                o.drw, o.ref_dist = (now, rng.gauss(0, o.amp)), abs(rng.gauss(0, 0.3)) + 0.05
            else:   # constant residual (e.g. a star brighter than in the reference, or a subtraction artefact)
                o.peak, o.sign = rng.uniform(19.8, 21.0) + depth, 1 if rng.random() < 0.7 else -1
                o.m0 = o.peak - rng.uniform(0.5, 4.0)
            o.ref_mag = o.m0 if o.m0 else o.peak - 1.0
        o.serial = self._name_counter(o.year)
        # ZTF-style counters: detections before the simulation (ndet0) and in it (ndet),
        # times the position was covered, first detection
        if o.kind in TRANSIENTS or o.kind == "asteroid":
            o.ndet0, o.jdstart0 = 0, None
            o.ncov = int(rng.uniform(300, 3000))
        else:
            o.ndet0 = int(10 ** rng.uniform(0.7, 3.4))
            o.ncov = int(o.ndet0 * rng.uniform(1.2, 4.0) + rng.uniform(300, 2000))
            o.jdstart0 = 2458200.5 + (o.year - 18) * 365.25 + rng.uniform(0, 300)
        o.ndet = 0
        self.fields.setdefault(o.field, Field(o.field)).objects.append(o)
        return o

    def _recycle(self, night_jd: float) -> None:
        """Replace faded transients and seen asteroids by new objects of the same kind."""
        for i, o in enumerate(self.objects):
            if o.end < night_jd:
                self.fields[o.field].objects.remove(o)
                self.objects[i] = self._new_object(i, night_jd, kind=o.kind)

    # -- nights, visits, measurements ---------------------------------------------------
    def _night(self, night_jd: float) -> list[Visit]:
        s, rng = self.survey, self.rng
        visits = []
        for field in self.fields.values():
            if rng.random() >= s.p_night:
                continue
            n = rng.choices(self._visit_counts, cum_weights=self._visit_cum)[0]
            t = night_jd + s.night_start + rng.uniform(0, s.night_length * 0.75)
            # the night's depth: some scatter, and now and then clouds or moon (the real
            # non-detections reach 1.5 mag shallower than the median)
            limit_night = rng.gauss(0, s.limit_scatter) - (rng.expovariate(2.0) if rng.random() < 0.3 else 0.0)
            for band in self._bands_tonight(n):
                self._visit_seq += 1
                limit = s.limits[band] + limit_night + rng.gauss(0, 0.1)
                limit = min(limit, s.limits[band] + 0.6)
                visits.append(Visit(self._visit_seq, field.id, t, band, limit, tuple(rng.random() for _ in range(6))))
                t += rng.uniform(0.015, 0.06)
        # one telescope: exposures follow each other (30 s plus overhead), which also keeps
        # per-exposure identifiers such as ZTF's pid unique
        visits.sort(key=lambda v: v.jd)
        for i, v in enumerate(visits):
            v.night_seq = i + 1
            if i and v.jd < visits[i - 1].jd + 40 / 86400:
                v.jd = visits[i - 1].jd + 40 / 86400
        return visits

    def _bands_tonight(self, n: int) -> list[str]:
        """Bands of a field's visits in one night: different bands first (ZTF's g+r pairs,
        Rubin's pairs), weighted by how often the survey uses each band."""
        s, picks = self.survey, []
        while len(picks) < n:
            band = self.rng.choices(s.bands, cum_weights=self._band_cum)[0]
            if band not in picks or len(picks) >= len(s.bands):
                picks.append(band)
        return picks

    def _measure(self, o: SkyObject, v: Visit) -> Detection | None:
        rng = self.rng
        o.ncov += 1
        f_lim = 10 ** (-0.4 * v.limit)
        if o.kind == "asteroid":
            if v.jd < o.t0:
                flux = 0.0
            else:
                flux = 10 ** (-0.4 * (v.limit - rng.uniform(0.2, 2.6)))
                o.end = v.jd   # seen once; the slot is re-used next night
        else:
            flux = o.diff_flux(v.jd, v.band, rng)
        err = _noise(flux, f_lim)
        measured = flux + rng.gauss(0.0, err)
        if self.forced:
            o.forced.append([v, measured, err, v.number(o.cell, "forced"), None])   # the last: encoded record
        if abs(measured) < f_lim:
            return None
        d = Detection()
        d.obj, d.visit, d.flux = o, v, measured
        d.flux_err = _noise(measured, f_lim)
        d.serial = v.number(o.cell, "det")
        if o.first is None:
            o.first = d
        # astrometric scatter of a detection around the object: ~0.1" per axis, more when faint
        sig = (0.06 + 0.5 * d.magerr) / 3600.0
        d.ra = (o.ra + rng.gauss(0, sig) / max(math.cos(math.radians(o.dec)), 1e-6)) % 360.0
        d.dec = max(-90.0, min(90.0, o.dec + rng.gauss(0, sig)))
        if o.kind == "constant":   # residuals look less real to the classifiers
            d.rb, d.drb = rng.betavariate(2.5, 2.5), rng.uniform(0.0, 0.7)
        else:
            d.rb = min(0.99, rng.betavariate(7.0, 1.6))
            d.drb = 1.0 - rng.betavariate(0.35, 12.0)
        d.u = tuple(rng.random() for _ in range(6))
        d.avro = None
        o.ndet += 1
        d.ndethist = o.ndet0 + o.ndet
        d.ncovhist = o.ncov
        if o.jdstart0 is None:
            o.jdstart0 = v.jd
        d.jdstarthist = o.jdstart0
        o.detections.append(d)
        return d

    def _trim(self, now: float) -> None:
        """Forget what is older than the history window (memory stays flat on long runs)."""
        oldest = now - self.history_days - 1.0
        for field in self.fields.values():
            while field.visits and field.visits[0].jd < oldest:
                field.visits.popleft()
            for o in field.objects:
                while o.detections and o.detections[0].visit.jd < oldest:
                    o.detections.popleft()
                while o.forced and o.forced[0][0].jd < oldest:
                    o.forced.popleft()

    def detections(self) -> Iterator[Detection]:
        """Every detection from ``start_jd`` on, in time order (earlier ones only fill histories)."""
        night = math.floor(self.start_jd - self.history_days)
        while True:
            self._recycle(night)
            self._trim(night)
            for v in self._night(night):
                field = self.fields[v.field]
                field.visits.append(v)
                for o in field.objects:
                    d = self._measure(o, v)
                    if d is not None and v.jd >= self.start_jd:
                        yield d
            night += 1

    # -- histories ------------------------------------------------------------------------
    def history(self, d: Detection) -> list:
        """Earlier entries within the window for the object of ``d``, oldest first: a
        `Detection` where it was detected, the `Visit` where it was not."""
        o, jd = d.obj, d.visit.jd
        since = jd - self.history_days
        detected = {x.visit.seq: x for x in o.detections}
        out = []
        for v in self.fields[o.field].visits:
            if v.jd >= jd:
                break
            if v.jd >= since:
                out.append(detected.get(v.seq, v))
        return out

    def forced_history(self, d: Detection) -> list:
        """Forced photometry of ``d``'s object before ``d``, within the window: lists of
        [visit, flux, flux_err, number in the exposure, encoded record or None]."""
        jd = d.visit.jd
        since = jd - self.history_days
        return [f for f in d.obj.forced if since <= f[0].jd < jd]


def _noise(flux: float, f_lim: float) -> float:
    """Difference-image flux error: the 5-sigma limit's noise for faint sources, growing as
    sqrt(flux) for bright ones, plus a 2% calibration floor. Fitted to the real alerts:
    sigmapsf is 0.217 mag at the limit, ~0.095 1.8 mag brighter, ~0.055 at 3 mag."""
    return math.hypot(max(0.2 * f_lim, 0.2 * math.sqrt(abs(flux) * f_lim)), 0.02 * flux)


def _year(jd: float) -> int:
    """Two-digit year of a Julian date."""
    return int(2000 + (jd - 2451544.5) / 365.25) % 100
