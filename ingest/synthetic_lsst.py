"""Rubin LSST alerts (schemas 9.0, 10.0, 11.0) from the simulated sky: ``diaSource``
(fluxes in nJy, difference fluxes that may be negative), ``prvDiaSources``,
``prvDiaForcedSources`` (forced photometry at every visit of the object's field),
``diaObject`` (per-band light-curve statistics) and, for solar-system sources,
``ssSource`` without a ``diaObject``. Records are filled field by field from each
version's schema, so one formatter serves all versions.

Messages use the Confluent wire format Rubin uses on Kafka: byte 0, the schema id as a
big-endian int32 (major*100 + minor), then the schemaless Avro body.
"""

from __future__ import annotations

import itertools
import math
import statistics
import struct
from typing import Iterator

from alertlab.ingest import synthetic_cutouts
from alertlab.ingest.synthetic_packets import (Container, Packer, SurveyStream, as_float32, base26, float_fields,
                                               lsst_schema, lsst_schema_id, named, parse_version, template, ut)
from alertlab.ingest.synthetic_sky import JD_MJD, LSST, STAR_COLOUR, TRANSIENTS, Detection, ecliptic, galactic

NJY_ZEROPOINT = 31.4                # AB magnitude of 1 nJy
NJY = 10 ** (0.4 * NJY_ZEROPOINT)   # nJy for a flux of 1 in mag = -2.5 log10(flux) units
LSST_PIXEL = 0.2                    # arcsec


class LsstGenerator(SurveyStream):
    """Rubin LSST alerts for schema ``schema_version`` (9.0, 10.0 or 11.0): ``diaSource`` with
    fluxes in nJy (difference fluxes, so possibly negative), ``prvDiaSources`` and
    ``prvDiaForcedSources`` over ``history_days`` (Rubin: 365; 30 by default here, which
    keeps alerts and start-up small), a ``diaObject`` summarising the light curve, and
    solar-system alerts (~2%) with ``ssSource`` and no ``diaObject``. Other arguments as
    for `ZtfGenerator`; ``start_jd`` defaults to Rubin's first weeks of alerts (2025)."""

    def __init__(self, seed: int = 0, schema_version: str = "11.0", n_objects: int | None = None,
                 cutouts: bool = True, history_days: float = 30, sky: str = "uniform",
                 start_jd: float = 2460950.5):
        self.schema = lsst_schema(schema_version)
        super().__init__(LSST, seed, n_objects, history_days, sky, start_jd, True)
        self.cutouts, self.schema_version = cutouts, schema_version
        self.schema_id = lsst_schema_id(schema_version)
        major, minor = parse_version(schema_version)
        ns = f"lsst.v{major}_{minor}"
        self._templates = {k: template(named(self.schema, f"{ns}.{k}"))
                           for k in ("diaSource", "diaForcedSource", "diaObject", "ssSource")}
        self._floats = {k: float_fields(named(self.schema, f"{ns}.{k}")) for k in self._templates}
        self._alert_template = template(self.schema)
        self._packer = Packer(self.schema, ("diaSource", "prvDiaSources", "prvDiaForcedSources", "diaObject"))
        self._prefix = b"\x00" + struct.pack(">I", self.schema_id)
        self._container = None

    def _fill(self, kind: str, values: dict) -> dict:
        """The version's record: its template with the values it has fields for."""
        rec = dict(self._templates[kind])
        rec.update((k, v) for k, v in values.items() if k in rec)
        return rec

    def _visit_id(self, v) -> int:
        """Rubin's visit id: day_obs (the date at UTC-12h) * 100000 + exposure number."""
        if "lsst" not in v.cache:
            v.cache["lsst"] = int(f"{ut(v.jd - 0.5):%Y%m%d}") * 100000 + v.night_seq
        return v.cache["lsst"]

    def _source_id(self, v, o, number: int, forced: bool = False) -> int:
        return (self._visit_id(v) * 200 + o.cell) * 4096 + (2048 if forced else 0) + number

    def dia_object_id(self, o) -> int:
        """Rubin numbers a diaObject after its first diaSource."""
        return self._source_id(o.first.visit, o, o.first.serial)

    def _template_flux(self, o, band: str) -> float:
        mag = o.ref_mag + 1.5 if o.kind in TRANSIENTS or o.kind == "asteroid" else o.m0 + STAR_COLOUR[band]
        return 10 ** (-0.4 * (mag - NJY_ZEROPOINT))

    def _dia_source(self, d: Detection) -> dict:
        o, v, u = d.obj, d.visit, d.u
        flux, err = d.flux * NJY, d.flux_err * NJY
        mjd = v.jd - JD_MJD
        pos_err = (0.06 + 0.5 * d.magerr) / 3600.0
        template_flux = self._template_flux(o, v.band)
        ndata = int(math.pi * (6 + 6 * u[0]) ** 2)
        size = self._cutouts(d)[0]
        asteroid = o.kind == "asteroid"
        return self._fill("diaSource", {
            "diaSourceId": self._source_id(v, o, d.serial), "visit": self._visit_id(v), "detector": o.cell,
            "diaObjectId": None if asteroid else self.dia_object_id(o),
            "ssObjectId": self._ss_object_id(o) if asteroid else None, "parentDiaSourceId": None,
            "midpointMjdTai": mjd, "ra": d.ra, "raErr": pos_err, "dec": d.dec, "decErr": pos_err,
            "ra_dec_Cov": (u[1] - 0.5) * 0.2 * pos_err * pos_err, "x": (o.fx * 14 % 1) * 4072 + (u[2] - 0.5),
            "xErr": pos_err * 3600 / LSST_PIXEL, "y": (o.fy * 14 % 1) * 4000 + (u[3] - 0.5),
            "yErr": pos_err * 3600 / LSST_PIXEL, "apFlux": flux * (0.96 + 0.08 * u[4]), "apFluxErr": err * 1.2,
            "isNegative": flux < 0, "snr": abs(flux) / err, "psfFlux": flux, "psfFluxErr": err,
            "psfLnL": -0.5 * ndata * (0.9 + 0.3 * u[5]), "psfChi2": ndata * (0.9 + 0.3 * u[5]), "psfNdata": ndata,
            "trailFlux": flux * (1.0 + 0.05 * u[0]), "trailFluxErr": err * 1.1,
            "trailRa": d.ra, "trailRaErr": pos_err * 1.5, "trailDec": d.dec, "trailDecErr": pos_err * 1.5,
            "trailLength": (3.0 + 12 * u[1]) if asteroid else 0.3 * u[1], "trailLengthErr": 0.2 + 0.3 * u[2],
            "trailAngle": 180 * u[3], "trailAngleErr": 5 + 20 * u[4], "trailChi2": ndata * (0.9 + 0.3 * u[2]),
            "trailNdata": ndata, "dipoleMeanFlux": abs(flux) * 0.5, "dipoleMeanFluxErr": err,
            "dipoleFluxDiff": flux * 0.1 * (u[0] - 0.5), "dipoleFluxDiffErr": err * 1.4,
            "dipoleLength": 0.2 + 0.8 * u[1], "dipoleAngle": 180 * u[2], "dipoleChi2": ndata * (1.0 + 0.4 * u[3]),
            "dipoleNdata": ndata, "scienceFlux": template_flux + flux, "scienceFluxErr": err * 0.8,
            "templateFlux": template_flux, "templateFluxErr": err * 0.35,
            "ixx": 2.0 + u[0], "iyy": 2.0 + u[1], "ixy": 0.2 * (u[2] - 0.5), "ixxPSF": 2.2, "iyyPSF": 2.2,
            "ixyPSF": 0.0, "extendedness": 0.3 * u[3] if o.kind != "sn_ia" else 0.2 + 0.6 * u[3],
            "reliability": d.drb, "band": v.band, "isDipole": False, "dipoleFitAttempted": True,
            "timeProcessedMjdTai": mjd + (60 + 60 * u[5]) / 86400, "timeWithdrawnMjdTai": None, "bboxSize": size,
        })

    def _dia_forced_source(self, f, o) -> dict:
        v, flux, err, number = f[0], f[1] * NJY, f[2] * NJY, f[3]
        mjd = v.jd - JD_MJD
        return self._fill("diaForcedSource", {
            "diaForcedSourceId": self._source_id(v, o, number, forced=True), "diaObjectId": self.dia_object_id(o),
            "ra": o.ra, "dec": o.dec, "visit": self._visit_id(v), "detector": o.cell, "psfFlux": flux,
            "psfFluxErr": err, "midpointMjdTai": mjd, "scienceFlux": self._template_flux(o, v.band) + flux,
            "scienceFluxErr": err * 0.8, "band": v.band, "timeProcessedMjdTai": mjd + 0.0012,
            "timeWithdrawnMjdTai": None})

    def _dia_object(self, d: Detection, sources: list[Detection], forced: list) -> dict:
        """The light-curve summary Rubin sends with each alert (per-band statistics in nJy)."""
        o = d.obj
        values = {"diaObjectId": self.dia_object_id(o), "validityStartMjdTai": d.visit.jd - JD_MJD,
                  "ra": o.ra, "dec": o.dec, "raErr": 0.05 / 3600 / math.sqrt(len(sources)),
                  "decErr": 0.05 / 3600 / math.sqrt(len(sources)), "ra_dec_Cov": 0.0,
                  "firstDiaSourceMjdTai": o.first.visit.jd - JD_MJD, "lastDiaSourceMjdTai": d.visit.jd - JD_MJD,
                  "nDiaSources": o.ndet}
        for band in LSST.bands:
            pts = [(s.visit.jd, s.flux * NJY, s.flux_err * NJY) for s in sources if s.visit.band == band]
            values[f"{band}_psfFluxNdata"] = len(pts)
            if pts:
                times, fluxes, errors = zip(*pts)
                mean, mean_err = _weighted_mean(fluxes, errors)
                slopes = [abs(f1 - f0) / (t1 - t0) for (t0, f0, _), (t1, f1, _) in zip(pts, pts[1:]) if t1 - t0 > 1e-3]
                values.update({
                    f"{band}_psfFluxMean": mean, f"{band}_psfFluxMeanErr": mean_err,
                    f"{band}_psfFluxSigma": statistics.stdev(fluxes) if len(fluxes) > 1 else None,
                    f"{band}_psfFluxMin": min(fluxes), f"{band}_psfFluxMax": max(fluxes),
                    f"{band}_psfFluxMaxSlope": max(slopes, default=None),
                    f"{band}_psfFluxErrMean": statistics.fmean(errors),
                    f"{band}_scienceFluxMean": self._template_flux(o, band) + mean,
                    f"{band}_scienceFluxMeanErr": mean_err})
            fps = [(f[1] * NJY, f[2] * NJY) for f in forced if f[0].band == band]
            if fps:
                values[f"{band}_fpFluxMean"], values[f"{band}_fpFluxMeanErr"] = _weighted_mean(*zip(*fps))
        return self._fill("diaObject", values)

    def _ss_object_id(self, o) -> int:
        return int(o.u[5] * 2 ** 40) * 1000 + int(o.u[6] * 1000)

    def _ss_source(self, d: Detection) -> dict:
        o, u = d.obj, d.u
        lam, beta = ecliptic(d.ra, d.dec)
        glon, glat = galactic(d.ra, d.dec)
        helio, topo = 1.8 + 2.0 * o.u[1], 0.9 + 2.0 * o.u[1]
        designation = f"{2000 + int(o.u[2] * 25)} {base26(int(o.u[3] * 676), 2).upper()}{int(o.u[4] * 300)}"
        v = {"ssObjectId": self._ss_object_id(o), "diaSourceId": self._source_id(d.visit, o, d.serial),
             "designation": designation, "eclLambda": lam, "eclBeta": beta, "galLon": glon, "galLat": glat,
             "eclipticLambda": lam, "eclipticBeta": beta, "galacticL": glon, "galacticB": glat,
             "elongation": 120 + 60 * o.u[2], "phaseAngle": 5 + 25 * o.u[3], "topoRange": topo,
             "topoRangeRate": (o.u[4] - 0.5) * 20, "helioRange": helio, "helioRangeRate": (o.u[5] - 0.5) * 10,
             "heliocentricDist": helio, "topocentricDist": topo, "ephRa": o.ra, "ephDec": o.dec,
             "ephVmag": d.mag + 0.3, "predictedVMagnitude": d.mag + 0.3,
             "ephRate": 0.2 + 0.6 * o.u[6], "ephOffset": 0.2 + 0.8 * u[0],
             "residualRa": (u[1] - 0.5) * 1e-4, "residualDec": (u[2] - 0.5) * 1e-4, "diaDistanceRank": 1}
        return self._fill("ssSource", v)

    def _cutouts(self, d: Detection):
        pool = synthetic_cutouts.lsst_pool()[d.flux > 0]
        return pool[int(d.u[5] * len(pool))]

    def _record(self, d: Detection, encoded: bool) -> dict:
        o = d.obj
        source = self._dia_source(d)
        asteroid = o.kind == "asteroid"
        alert = dict(self._alert_template, diaSourceId=source["diaSourceId"], diaSource=source,
                     ssSource=self._ss_source(d) if asteroid else None)   # MPC orbits: not simulated
        if encoded:
            d.avro = self._packer.item("prvDiaSources", source)
        if not asteroid:
            earlier = [e for e in self.sim.history(d) if isinstance(e, Detection)]
            forced = self.sim.forced_history(d)
            alert["prvDiaSources"] = [self._history_source(e, encoded) for e in earlier]
            alert["prvDiaForcedSources"] = [self._history_forced(f, o, encoded) for f in forced]
            alert["diaObject"] = self._dia_object(d, earlier + [d], forced)
        if self.cutouts:
            alert["cutoutDifference"], alert["cutoutScience"], alert["cutoutTemplate"] = self._cutouts(d)[1]
        return alert

    def _history_source(self, e: Detection, encoded: bool):
        if encoded:
            if e.avro is None:
                e.avro = self._packer.item("prvDiaSources", self._dia_source(e))
            return e.avro
        return as_float32(self._dia_source(e), self._floats["diaSource"])

    def _history_forced(self, f, o, encoded: bool):
        if encoded:
            if f[4] is None:
                f[4] = self._packer.item("prvDiaForcedSources", self._dia_forced_source(f, o))
            return f[4]
        return as_float32(self._dia_forced_source(f, o), self._floats["diaForcedSource"])

    def _alert(self, d: Detection) -> dict:
        alert = self._record(d, encoded=False)
        for kind in ("diaSource", "diaObject", "ssSource"):
            if alert[kind] is not None:
                as_float32(alert[kind], self._floats[kind])
        return alert

    def _message(self, d: Detection) -> bytes:
        """Confluent wire format: magic byte 0, the schema id (big-endian int32), the Avro body."""
        return self._prefix + self._packer.pack(self._record(d, encoded=True))

    def files(self, n: int) -> Iterator[bytes]:
        """The next n alerts, each as an Avro container file (schema embedded): what tools that
        read alert files expect (Rubin itself only publishes the wire format)."""
        if self._container is None:
            self._container = Container(self.schema, f"alertlab synthetic lsst {self.seed}")
        for d in itertools.islice(self._stream, n):
            yield self._container.file(self._packer.pack(self._record(d, encoded=True)))


def _weighted_mean(values, errors) -> tuple[float, float]:
    """Inverse-variance weighted mean and its error."""
    weights = [1 / e ** 2 for e in errors]
    total = sum(weights)
    return sum(w * v for w, v in zip(weights, values)) / total, math.sqrt(1 / total)
