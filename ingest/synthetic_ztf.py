"""ZTF alerts (schema 4.02) from the simulated sky: the candidate with its ~100 pipeline
columns, ``prv_candidates`` (earlier detections and the upper limits of exposures that
missed the object), optional ``fp_hists``, and three gzip FITS cutouts; messages are Avro
container files (schema embedded), as on ZTF's Kafka topics.

Identifiers follow ZTF's conventions, read off real alerts: ``pid`` = night id (UT days
since 2017-01-01) * 1e9 + fraction of the UT day * 1e5 (5 digits) * 1e4 + rcid * 100 + 15,
``candid`` = pid * 1e6 + (15 for a positive difference, 10 for a negative one) * 1000 +
the source number in that exposure quadrant (``tblid``), object names 'ZTF' + year +
seven letters.
"""

from __future__ import annotations

import math

from alertlab.ingest import synthetic_cutouts
from alertlab.ingest.synthetic_packets import (Container, Packer, SurveyStream, as_float32, base26, float_fields,
                                               named, ut, ztf_schema)
from alertlab.ingest.synthetic_sky import ZTF, Detection

ZTF_PUBLISHER = "ZTF (www.ztf.caltech.edu)"
ZTF_FID = {"g": 1, "r": 2, "i": 3}
ZTF_NID0 = 2457754.5          # ZTF night ids count UT days from 2017-01-01


def _ps1_objid(ra: float, dec: float, k: float) -> int:
    """A Pan-STARRS-style object id: declination zone, then RA, then a serial."""
    return int((dec + 90.0) / 0.008333) * 10 ** 13 + int(ra * 1e6) * 10 ** 4 + int(k * 9999)


def _offset(ra: float, dec: float, arcsec: float, angle: float) -> tuple[float, float]:
    """The position ``arcsec`` away from (ra, dec) at position angle ``angle`` (radians)."""
    d = arcsec / 3600.0
    return (ra + d * math.sin(angle) / max(math.cos(math.radians(dec)), 1e-6)) % 360.0, dec + d * math.cos(angle)


class ZtfGenerator(SurveyStream):
    """ZTF alerts (schema 4.02). ``n_objects`` object slots (1000 by default; faded transients
    are replaced, so the stream never runs dry), ``history_days`` of ``prv_candidates``
    (ZTF: 30), ``sky``: 'uniform', 'plane' (Galactic) or 'ra,dec,radius' (a cone, degrees);
    the stream starts at ``start_jd`` (histories reach back before it). ``fp_hists``: also
    carry forced photometry (ZTF sends it since 4.0; the real sample here has none)."""

    def __init__(self, seed: int = 0, n_objects: int | None = None, history_days: float = 30,
                 cutouts: bool = True, sky: str = "uniform", start_jd: float = 2460236.0, fp_hists: bool = False):
        super().__init__(ZTF, seed, n_objects, history_days, sky, start_jd, fp_hists)
        self.cutouts, self.fp_hists = cutouts, fp_hists
        schema = ztf_schema()
        self._prv_fields = [f["name"] for f in named(schema, "ztf.alert.prv_candidate")["fields"]]
        self._floats = {name: float_fields(named(schema, f"ztf.alert.{name}"))
                        for name in ("candidate", "prv_candidate", "fp_hist")}
        self._packer = Packer(schema, ("candidate", "prv_candidates", "fp_hists"))
        self._container = Container(schema, f"alertlab synthetic ztf {seed}")

    def object_id(self, o) -> str:
        """ZTF's name: 'ZTF', the two-digit year of the first detection, seven letters."""
        if o.name is None:
            o.name = f"ZTF{o.year:02d}{base26(o.serial)}"
        return o.name

    def _exposure(self, v, o) -> dict:
        """What ZTF's pipeline knows about one CCD quadrant of one exposure (shared by the
        alerts, non-detections and forced photometry made from it)."""
        key = ("ztf", o.cell)
        if key in v.cache:
            return v.cache[key]
        u, rcid, field = v.u, o.cell, 244 + o.field
        if "ztf" not in v.cache:   # the exposure's night, time and file-name stem
            nid = int(v.jd - ZTF_NID0)
            when = ut(v.jd)
            stamp = f"{when:%Y%m%d}{int((when.hour * 3600 + when.minute * 60 + when.second) / 86.4):06d}"
            archive = f"/ztf/archive/sci/{when:%Y/%m%d}/{stamp[8:]}/"
            v.cache["ztf"] = (nid, int((v.jd - ZTF_NID0 - nid) * 1e5), stamp, archive)
        nid, frac5, stamp, archive = v.cache["ztf"]
        name = f"ztf_{stamp}_{field:06d}_z{v.band}_c{rcid // 4 + 1:02d}_o_q{rcid % 4 + 1}_scimrefdiffimg.fits"
        wobble = math.sin(rcid * 1.7 + u[1] * 6.3)
        x = {"jd": v.jd, "fid": ZTF_FID[v.band], "pid": nid * 10 ** 9 + frac5 * 10 ** 4 + rcid * 100 + 15,
             "diffmaglim": v.limit, "pdiffimfilename": name, "archive": f"{archive}{name}.fz",
             "programpi": "Kulkarni" if u[2] < 0.95 else "Prince", "programid": 1, "nid": nid, "rcid": rcid,
             "field": field, "fwhm": 1.3 + 2.4 * u[0] ** 1.5, "magzpsci": 26.1 + 0.35 * u[1] + 0.02 * wobble,
             "magzpsciunc": 1e-6 + 2.5e-6 * u[3], "magzpscirms": 0.012 + 0.015 * u[3],
             "clrcoeff": (-0.05 if v.band == "g" else 0.075) + 0.03 * (u[4] - 0.5), "clrcounc": 3e-6 + 4e-6 * u[4],
             "nmatches": int(200 + 2000 * u[5]), "rbversion": "t17_f5_c3"}
        v.cache[key] = x
        return x

    def _candidate(self, d: Detection) -> dict:
        o, u, ou = d.obj, d.u, d.obj.u
        e = self._exposure(d.visit, o)
        mag, err, pos = d.mag, d.magerr, d.flux > 0
        candid = e["pid"] * 10 ** 6 + (15 if pos else 10) * 1000 + d.serial
        xpos, ypos = (o.fx * 8 % 1) * 3072 + (u[0] - 0.5) * 0.3, (o.fy * 8 % 1) * 3080 + (u[1] - 0.5) * 0.3
        magap = mag + 0.12 * (u[1] - 0.5) + 0.02
        pa = ou[0] * 2 * math.pi
        ranr, decnr = _offset(o.ra, o.dec, o.ref_dist, pa)
        distnr = o.ref_dist * (0.95 + 0.1 * u[2])
        star = o.kind in ("periodic", "constant")
        sgscore = 0.95 + 0.05 * ou[1] if star else (0.35 * ou[1] if o.kind != "asteroid" else ou[1])
        d2, d3 = 2.0 + 12.0 * ou[2], 15.0 + 12.0 * ou[3]
        ra2, dec2 = _offset(o.ra, o.dec, d2, ou[4] * 6.3)
        ra3, dec3 = _offset(o.ra, o.dec, d3, ou[5] * 6.3)
        asteroid = o.kind == "asteroid"
        fwhm = e["fwhm"] * (0.95 + 0.1 * u[3])
        elong = 1.0 + 0.25 * u[4] ** 2
        aimage = fwhm * 0.32
        return {
            "jd": e["jd"], "fid": e["fid"], "pid": e["pid"], "diffmaglim": e["diffmaglim"],
            "pdiffimfilename": e["pdiffimfilename"], "programpi": e["programpi"], "programid": e["programid"],
            "candid": candid, "isdiffpos": "t" if pos else "f", "tblid": d.serial, "nid": e["nid"],
            "rcid": e["rcid"], "field": e["field"], "xpos": xpos, "ypos": ypos, "ra": d.ra, "dec": d.dec,
            "magpsf": mag, "sigmapsf": err, "chipsf": math.exp(-0.2 + 1.6 * u[5]) * (1 + (0.04 / err) ** 2),
            "magap": magap, "sigmagap": err * 1.25 + 0.01, "distnr": distnr, "magnr": o.ref_mag,
            "sigmagnr": 0.01 + 0.3 * 10 ** (0.4 * (min(o.ref_mag, 23.5) - 23.5)), "chinr": 0.4 + 1.5 * ou[6],
            "sharpnr": (ou[7] - 0.5) * 0.2, "sky": (u[2] - 0.5) * 2.0, "magdiff": magap - mag, "fwhm": fwhm,
            "classtar": 0.98 if star or asteroid else 0.6 + 0.38 * ou[2],
            "mindtoedge": min(xpos, ypos, 3072 - xpos, 3080 - ypos),
            "magfromlim": e["diffmaglim"] - magap, "seeratio": 0.7 + 1.3 * ou[3], "aimage": aimage,
            "bimage": aimage / elong, "aimagerat": aimage / fwhm, "bimagerat": aimage / elong / fwhm, "elong": elong,
            "nneg": int(12 * u[0] * u[5]), "nbad": 0, "rb": d.rb,
            "ssdistnr": 0.1 + 1.5 * u[3] if asteroid else -999.0,
            "ssmagnr": round(mag + (u[4] - 0.5) * 0.8, 1) if asteroid else -999.0,
            "ssnamenr": (str(1000 + int(ou[5] * 600000)) if ou[6] < 0.8 else
                         f"{1995 + int(ou[7] * 28)}{base26(int(ou[4] * 676), 2).upper()}{int(ou[3] * 200)}")
            if asteroid else "null",
            "sumrat": 0.85 + 0.15 * u[1], "magapbig": magap - 0.04, "sigmagapbig": err * 1.35 + 0.01,
            "ranr": ranr, "decnr": decnr, "sgmag1": o.ref_mag + 0.6, "srmag1": o.ref_mag,
            "simag1": o.ref_mag - 0.2, "szmag1": o.ref_mag - 0.3, "sgscore1": sgscore,
            "distpsnr1": distnr * (0.9 + 0.2 * u[5]), "ndethist": d.ndethist, "ncovhist": d.ncovhist,
            "jdstarthist": d.jdstarthist, "jdendhist": e["jd"], "scorr": 1.0857 / err * (1.1 + 0.9 * u[5]),
            "tooflag": 0, "objectidps1": _ps1_objid(ranr, decnr, ou[1]), "objectidps2": _ps1_objid(ra2, dec2, ou[2]),
            "sgmag2": 18.0 + 4.0 * ou[6], "srmag2": 17.6 + 4.0 * ou[6], "simag2": 17.4 + 4.0 * ou[6],
            "szmag2": 17.3 + 4.0 * ou[6], "sgscore2": ou[7], "distpsnr2": d2,
            "objectidps3": _ps1_objid(ra3, dec3, ou[3]),
            "sgmag3": 17.0 + 5.0 * ou[2], "srmag3": 16.7 + 5.0 * ou[2], "simag3": 16.6 + 5.0 * ou[2],
            "szmag3": 16.5 + 5.0 * ou[2], "sgscore3": ou[1], "distpsnr3": d3, "nmtchps": 2 + int(20 * ou[4]),
            "rfid": (e["field"] * 1000 + 120) * 1000 + e["fid"] * 100 + e["rcid"],
            "jdstartref": 2458150.5 + 300 * ou[3], "jdendref": 2458150.5 + 300 * ou[3] + 30 + 200 * ou[4],
            "nframesref": 15 + int(25 * ou[5]), "rbversion": e["rbversion"], "dsnrms": 5.0 + 10 * u[2],
            "ssnrms": 10.0 + 15 * u[3], "dsdiff": -10.0 + 12 * u[4], "magzpsci": e["magzpsci"],
            "magzpsciunc": e["magzpsciunc"], "magzpscirms": e["magzpscirms"], "nmatches": e["nmatches"],
            "clrcoeff": e["clrcoeff"], "clrcounc": e["clrcounc"], "zpclrcov": -2e-6 * (1 + u[0]),
            "zpmed": e["magzpsci"] + 0.03, "clrmed": 0.4 + 0.3 * u[1], "clrrms": 0.15 + 0.05 * u[2],
            "neargaia": distnr * 1.02 if star else 1.0 + 60.0 * ou[5],
            "neargaiabright": -999.0 if ou[6] < 0.6 else 20.0 + 60.0 * ou[7],
            "maggaia": o.ref_mag - 0.3 if star else 19.0 + 2.0 * ou[6],
            "maggaiabright": -999.0 if ou[6] < 0.6 else 10.0 + 3.0 * ou[2], "exptime": 30.0, "drb": d.drb,
            "drbversion": "d6_m7",
        }

    def _prv_detection(self, d: Detection, cand: dict) -> dict:
        """A detection as it appears in later alerts' history (ZTF leaves out the asteroid match)."""
        prv = {k: cand[k] for k in self._prv_fields}
        prv["pdiffimfilename"] = self._exposure(d.visit, d.obj)["archive"]
        prv["ssdistnr"] = prv["ssmagnr"] = prv["ssnamenr"] = None
        return prv

    def _nondetection(self, v, o) -> tuple[dict, bytes]:
        """The upper limit of one exposure quadrant: the same record for every object on it."""
        key = ("ztf-nondet", o.cell)
        if key not in v.cache:
            e = self._exposure(v, o)
            rec = dict.fromkeys(self._prv_fields)
            rec.update({k: e[k] for k in ("jd", "fid", "pid", "diffmaglim", "programpi", "programid", "nid",
                                         "rcid", "field", "magzpsci", "magzpsciunc", "magzpscirms", "clrcoeff",
                                         "clrcounc", "rbversion")}, pdiffimfilename=e["archive"])
            v.cache[key] = (rec, self._packer.item("prv_candidates", rec))
        return v.cache[key]

    def _history_entry(self, entry, o, encoded: bool):
        if isinstance(entry, Detection):
            if encoded and entry.avro is not None:
                return entry.avro
            prv = self._prv_detection(entry, self._candidate(entry))
            if not encoded:
                return as_float32(prv, self._floats["prv_candidate"])
            entry.avro = self._packer.item("prv_candidates", prv)
            return entry.avro
        rec, avro = self._nondetection(entry, o)
        return avro if encoded else as_float32(dict(rec), self._floats["prv_candidate"])

    def _fp_hist(self, f, o) -> dict:
        v, flux, err = f[0], f[1], f[2]
        e = self._exposure(v, o)
        dn = 10 ** (0.4 * e["magzpsci"])
        ranr, decnr = _offset(o.ra, o.dec, o.ref_dist, o.u[0] * 2 * math.pi)
        return {"field": e["field"], "rcid": e["rcid"], "fid": e["fid"], "pid": e["pid"],
                "rfid": (e["field"] * 1000 + 120) * 1000 + e["fid"] * 100 + e["rcid"], "sciinpseeing": e["fwhm"],
                "scibckgnd": 150.0 + 250 * v.u[5], "scisigpix": 8.0 + 6 * v.u[4], "magzpsci": e["magzpsci"],
                "magzpsciunc": e["magzpsciunc"], "magzpscirms": e["magzpscirms"], "clrcoeff": e["clrcoeff"],
                "clrcounc": e["clrcounc"], "exptime": 30.0, "adpctdif1": 0.05 + 0.1 * v.u[3],
                "adpctdif2": 0.05 + 0.1 * v.u[2], "diffmaglim": v.limit, "programid": 1, "jd": v.jd,
                "forcediffimflux": flux * dn, "forcediffimfluxunc": err * dn, "procstatus": "0",
                "distnr": o.ref_dist, "ranr": ranr, "decnr": decnr, "magnr": o.ref_mag,
                "sigmagnr": 0.02, "chinr": 0.4 + 1.5 * o.u[6], "sharpnr": (o.u[7] - 0.5) * 0.2}

    def _record(self, d: Detection, encoded: bool) -> dict:
        o = d.obj
        cand = self._candidate(d)
        if encoded:   # keep this detection's history form for the object's later alerts
            d.avro = self._packer.item("prv_candidates", self._prv_detection(d, cand))
        history = [self._history_entry(e, o, encoded) for e in self.sim.history(d)]
        fp = None
        if self.fp_hists:
            fp = []
            for f in self.sim.forced_history(d):
                if encoded and f[4] is None:
                    f[4] = self._packer.item("fp_hists", self._fp_hist(f, o))
                fp.append(f[4] if encoded else as_float32(self._fp_hist(f, o), self._floats["fp_hist"]))
        alert = {"schemavsn": "4.02", "publisher": ZTF_PUBLISHER, "objectId": self.object_id(o),
                 "candid": cand["candid"], "candidate": cand, "prv_candidates": history or None, "fp_hists": fp,
                 "cutoutScience": None, "cutoutTemplate": None, "cutoutDifference": None}
        if self.cutouts:
            pool = synthetic_cutouts.ztf_pool()[d.flux > 0]
            sci, ref, diff = pool[int(d.u[5] * len(pool))]
            stem = f"candid{cand['candid']}"
            alert["cutoutScience"] = {"fileName": f"{stem}_pid{cand['pid']}_targ_sci.fits.gz", "stampData": sci}
            alert["cutoutTemplate"] = {"fileName": f"{stem}_ref.fits.gz", "stampData": ref}
            alert["cutoutDifference"] = {"fileName": f"{stem}_pid{cand['pid']}_targ_scimref.fits.gz",
                                         "stampData": diff}
        return alert

    def _alert(self, d: Detection) -> dict:
        alert = self._record(d, encoded=False)
        as_float32(alert["candidate"], self._floats["candidate"])
        return alert

    def _message(self, d: Detection) -> bytes:
        body = self._packer.pack(self._record(d, encoded=True))
        return self._container.file(body)
