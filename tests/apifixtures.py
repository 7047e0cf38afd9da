"""Fixtures of the API tests: people with hub tokens, and alert data under a
unique prefix in the alert database the hub's `alertlab` service reads.

Use with ``pytest_plugins = ["hubfixtures", "apifixtures"]``.

``people``: alice (owner of things, in the group team-<TAG>), bob (also in
that group), carol (in no group), the hub admin, ann (in the group
``annotator:ann-<TAG>``, so she may annotate as ``ann-<TAG>``), pat (a
power user), each with a token. ``api_data``: objects around a centre at
known separations, one with a full light curve (detections with cutouts,
upper limits, forced photometry, annotations, watchlist and area hits), and a
night of objects (lastmjd 69000.x, later than any real data) for filter dry
runs."""

from __future__ import annotations

import json
import random

import httpx
import numpy as np
import pytest

from hubfixtures import TAG

NIGHT = 69000
NIGHT_OBJECTS = 400
BRIGHT = 8  # objects of that night with latest_mag < 14


class Caller:
    """One person talking to the service: ``get``/``post``/... on API paths, with their token."""

    def __init__(self, name: str | None, token: str | None, base: str):
        self.name = name
        self.token = token
        self.base = base
        self.headers = {"Authorization": f"token {token}"} if token else {}

    def request(self, method: str, path: str, **kw) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return httpx.request(method, self.base + path, headers=headers, timeout=kw.pop("timeout", 60), **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


@pytest.fixture(scope="session")
def people(hub):
    """{role: Caller}: alice, bob (alice's group), carol, admin, ann (annotator), pat (power user),
    nobody (no token), forger (a token the hub does not know)."""
    base = hub.service_url + "api/v1/"
    team = f"team-{TAG}"
    names = {
        "alice": hub.user(f"alice-{TAG}", groups=[team]),
        "bob": hub.user(f"bob-{TAG}", groups=[team]),
        "carol": hub.user(f"carol-{TAG}"),
        "ann": hub.user(f"ann-{TAG}", groups=[f"annotator:ann-{TAG}"]),
        "pat": hub.user(f"pat-{TAG}", groups=["power-users"]),
    }
    out = {role: Caller(name, hub.token(name), base) for role, name in names.items()}
    out["admin"] = Caller(hub.admin, hub.token(hub.admin), base)
    out["nobody"] = Caller(None, None, base)
    out["forger"] = Caller(None, "not-a-token-the-hub-knows", base)
    out["team"] = team
    return out


def _object_row(object_id: str, ra: float, dec: float, **kw) -> dict:
    from alertlab.ingest.features import sky_columns

    sky = sky_columns(np.array([ra]), np.array([dec]))
    row = {"objectId": object_id, "survey": "ztf", "ra": ra, "decl": dec, "healpix": int(sky["healpix"][0]),
           "glat": float(sky["glat"][0]), "glon": float(sky["glon"][0]), "ndet": 1, "firstmjd": 60000.0,
           "lastmjd": 60000.0, "latest_mag": 18.0}
    row.update(kw)
    return row


def offset_position(ra: float, dec: float, arcsec: float, angle_deg: float) -> tuple[float, float]:
    """The point ``arcsec`` away from (ra, dec) in direction ``angle_deg`` (east of north)."""
    from astropy.coordinates import SkyCoord
    import astropy.units as u

    p = SkyCoord(ra * u.deg, dec * u.deg).directional_offset_by(angle_deg * u.deg, arcsec * u.arcsec)
    return float(p.ra.deg), float(p.dec.deg)


@pytest.fixture(scope="session")
def api_data(services):
    """The alert data of the API tests (see the module docstring); deleted at the end."""
    from alertlab.core import db
    from alertlab.ingest.synthetic_cutouts import ztf_pool

    prefix = f"APIt{TAG}"
    rng = random.Random(TAG)
    centre = (round(rng.uniform(150, 250), 4), round(rng.uniform(-40, -20), 4))
    seps = {f"{prefix}c1": 1.0, f"{prefix}c5": 5.0, f"{prefix}c30": 30.0, f"{prefix}c100": 100.0}
    star = f"{prefix}c1"
    objects = [_object_row(oid, *offset_position(*centre, sep, 37.0 * i), ndet=5 if oid == star else 1)
               for i, (oid, sep) in enumerate(seps.items())]
    for i in range(NIGHT_OBJECTS):
        objects.append(_object_row(f"{prefix}n{i:03d}", rng.uniform(0, 360), rng.uniform(-80, 80),
                                   lastmjd=NIGHT + 0.1 + 0.8 * i / NIGHT_OBJECTS, ndet=2,
                                   latest_mag=13.0 if i < BRIGHT else 19.0))
    base = rng.randrange(10**15, 9 * 10**15)
    detections = [dict(detectionId=base + i, objectId=star, survey="ztf", mjd=60000.0 + i, band="gr"[i % 2],
                       mag=18.0 - 0.1 * i, magerr=0.05, flux=1000.0 + i, fluxerr=10.0, ra=objects[0]["ra"],
                       decl=objects[0]["decl"], isdiffpos=1, reliability=0.9, has_alert=int(i >= 3),
                       extra=json.dumps({"fid": 1 + i % 2, "field": 600 + i})) for i in range(5)]
    nondet = [dict(objectId=star, mjd=59990.0 + i, band="g", diffmaglim=20.5) for i in range(3)]
    forced = [dict(objectId=star, mjd=59995.0 + i, band="r", flux=12.5 * i, fluxerr=3.0,
                   extra=json.dumps({"procstatus": "0"})) for i in range(2)]
    stamps = ztf_pool()[True][0]
    cutouts = [dict(d=base + i, k=kind, f=f"{base + i}_{kind}.fits.gz", data=data)
               for i in (3, 4) for kind, data in zip(("science", "template", "difference"), stamps)]
    annotations = [dict(o=star, a="fink", c="SN candidate", d=json.dumps({"SN": 0.8, "AGN": 0.2})),
                   dict(o=star, a="alerce", c="SNIa", d=None)]
    import sqlalchemy as sa

    cols = sorted({k for row in objects for k in row})
    with db.engine("alerts").begin() as conn:
        conn.execute(sa.text(f"INSERT INTO objects ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})"),
                     [{c: row.get(c) for c in cols} for row in objects])
        conn.execute(sa.text(
            "INSERT INTO detections (detectionId, objectId, survey, mjd, band, mag, magerr, flux, fluxerr, ra, decl, "
            "isdiffpos, reliability, has_alert, extra) VALUES (:detectionId, :objectId, :survey, :mjd, :band, :mag, "
            ":magerr, :flux, :fluxerr, :ra, :decl, :isdiffpos, :reliability, :has_alert, :extra)"), detections)
        conn.execute(sa.text("INSERT INTO nondetections (objectId, mjd, band, diffmaglim) "
                             "VALUES (:objectId, :mjd, :band, :diffmaglim)"), nondet)
        conn.execute(sa.text("INSERT INTO forced_photometry (objectId, mjd, band, flux, fluxerr, extra) "
                             "VALUES (:objectId, :mjd, :band, :flux, :fluxerr, :extra)"), forced)
        conn.execute(sa.text("INSERT INTO cutouts (detectionId, kind, fileName, data) VALUES (:d, :k, :f, :data)"),
                     cutouts)
        conn.execute(sa.text("INSERT INTO annotations (objectId, annotator, classification, classdict) "
                             "VALUES (:o, :a, :c, :d)"), annotations)
    data = {"prefix": prefix, "centre": centre, "seps": seps, "star": star, "detections": detections,
            "nondetections": nondet, "forced": forced, "base": base, "stamps": stamps, "night": NIGHT,
            "night_objects": NIGHT_OBJECTS, "bright": BRIGHT}
    yield data
    with db.engine("alerts").begin() as conn:
        like = prefix + "%"
        for table in ("objects", "detections", "nondetections", "forced_photometry", "annotations",
                      "annotations_history", "watchlist_hits", "area_hits"):
            conn.exec_driver_sql(f"DELETE FROM {table} WHERE objectId LIKE %s", (like,))
        conn.exec_driver_sql("DELETE FROM cutouts WHERE detectionId BETWEEN %s AND %s", (base, base + 10))


def hit(watchlist_id: int, object_id: str, detection_id: int, cone_id: int = 1) -> None:
    """A watchlist hit, as the ingest would store it."""
    from alertlab.core import db

    with db.engine("alerts").begin() as conn:
        conn.exec_driver_sql("INSERT INTO watchlist_hits (watchlist_id, cone_id, objectId, detectionId, name, arcsec, "
                             "mjd) VALUES (%s, %s, %s, %s, 'cone', 0.5, 60004)",
                             (watchlist_id, cone_id, object_id, detection_id))


def area_hit(area_id: int, object_id: str, detection_id: int) -> None:
    from alertlab.core import db

    with db.engine("alerts").begin() as conn:
        conn.exec_driver_sql("INSERT INTO area_hits (area_id, objectId, detectionId, mjd) VALUES (%s, %s, %s, 60004)",
                             (area_id, object_id, detection_id))


def moc_fits(ra: float = 10.0, dec: float = 20.0, radius_deg: float = 1.0) -> bytes:
    """A small circular MOC as FITS bytes."""
    import astropy.units as u
    from astropy.coordinates import Latitude, Longitude
    from mocpy import MOC

    from alertlab.ingest.areas import moc_to_fits_bytes

    moc = MOC.from_cone(lon=Longitude(ra * u.deg), lat=Latitude(dec * u.deg), radius=radius_deg * u.deg, max_depth=10)
    return moc_to_fits_bytes(moc)
