"""Watchlists, sky areas and user filters through the real ingest: alerts placed
around RA 0/360 and the poles against a 100,000-cone watchlist get exactly the
brute-force hits; a broken filter is switched off and ingest goes on."""

from __future__ import annotations

import json

import fastavro
import numpy as np
import pytest

from alertlab.core import db
from ingest_helpers import ZTF_FILES, events, rows, scalar

pytestmark = pytest.mark.services


def _alerts_at(positions, tmp_path, prefix="ZTF99"):
    """Real ZTF alerts moved to chosen positions, each a new object with its own candid."""
    with open(ZTF_FILES[0], "rb") as fh:
        reader = fastavro.reader(fh)
        schema, template = reader.writer_schema, next(reader)
    paths = []
    for i, (ra, dec) in enumerate(positions):
        alert = json.loads(json.dumps(template, default=lambda b: None))  # deep copy without the cutout bytes
        alert["cutoutScience"] = alert["cutoutTemplate"] = alert["cutoutDifference"] = None
        alert["objectId"] = f"{prefix}{i:07d}"
        alert["candid"] = alert["candidate"]["candid"] = 9_000_000_000_000_000_000 + int(prefix[3:]) * 100_000 + i
        alert["candidate"]["ra"], alert["candidate"]["dec"] = float(ra), float(dec)
        alert["prv_candidates"] = []
        path = tmp_path / f"a{i}.avro"
        with open(path, "wb") as fh:
            fastavro.writer(fh, schema, [alert])
        paths.append(str(path))
    return paths


def _sep_arcsec(ra1, dec1, ra2, dec2):
    from astropy.coordinates import angular_separation

    return np.degrees(angular_separation(np.radians(ra1), np.radians(dec1), np.radians(ra2), np.radians(dec2))) * 3600


def test_watchlist_of_100k_cones_and_an_area_through_ingest(fresh_alerts_db, tmp_path, monkeypatch, topic):
    from mocpy import MOC
    import astropy.units as u

    from alertlab.ingest.areas import moc_to_fits_bytes
    from alertlab.ingest.runner import ingest_files
    from alertlab.ingest.watchlists import insert_cones

    monkeypatch.setenv("ALERTLAB_MATCHES_TOPIC", f"{topic}-matches")
    rng = np.random.default_rng(7)
    # alerts: around RA 0/360, at both poles, and random
    alerts = [(359.9999, 1.0), (0.0001, 1.0), (0.0, -30.0), (359.99995, -30.0), (12.0, 89.9999), (192.0, 89.9995),
              (45.0, -89.9998), (225.0, -89.9999), (180.0, 0.0)]
    alerts += [(float(r), float(d)) for r, d in zip(rng.uniform(0, 360, 40), rng.uniform(-89, 89, 40))]
    a_ra, a_dec = np.array(alerts).T
    # cones: 100,000 random ones, plus dense ones around every alert (some just inside, some just outside)
    n = 100_000
    c_ra = rng.uniform(0, 360, n)
    c_dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    c_rad = rng.uniform(1, 30, n)
    near = rng.integers(0, len(alerts), 5000)
    c_ra[:5000] = (a_ra[near] + rng.normal(0, 0.003, 5000) / np.maximum(np.cos(np.radians(a_dec[near])), 1e-3)) % 360
    c_dec[:5000] = np.clip(a_dec[near] + rng.normal(0, 0.003, 5000), -90, 90)
    with db.engine("alerts").begin() as conn:
        wl = conn.exec_driver_sql("INSERT INTO watchlists (owner, name) VALUES ('alice', 'big')").lastrowid
        insert_cones(conn, wl, c_ra, c_dec, c_rad, [f"c{i}" for i in range(n)])
        moc = MOC.from_cone(lon=0.0 * u.deg, lat=-30.0 * u.deg, radius=0.5 * u.deg, max_depth=12)
        area = conn.exec_driver_sql("INSERT INTO areas (owner, name, moc, sky_fraction) VALUES ('alice','gw',%s,%s)",
                                    (moc_to_fits_bytes(moc), float(moc.sky_fraction))).lastrowid
    cone_ids = dict(rows(f"SELECT name, id FROM watchlist_cones WHERE watchlist_id={wl}"))

    totals = ingest_files(_alerts_at(alerts, tmp_path))
    assert totals.alerts == len(alerts)

    expected = set()
    for i, (ra, dec) in enumerate(alerts):
        sep = _sep_arcsec(ra, dec, c_ra, c_dec)
        for j in np.flatnonzero(sep <= c_rad):
            expected.add((f"ZTF99{i:07d}", cone_ids[f"c{j}"]))
    got = set(rows(f"SELECT objectId, cone_id FROM watchlist_hits WHERE watchlist_id={wl}"))
    assert len(expected) > 100  # the test is not vacuous
    assert got == expected
    in_area = {f"ZTF99{i:07d}" for i in (2, 3)}
    assert {r[0] for r in rows(f"SELECT objectId FROM area_hits WHERE area_id={area}")} == in_area
    kinds = {(e["kind"], e["id"]) for e in events(f"{topic}-matches", expect=len(expected) + 2)}
    assert ("watchlist", wl) in kinds and ("area", area) in kinds


def test_broken_filter_is_switched_off_and_ingest_goes_on(fresh_alerts_db, tmp_path, monkeypatch, topic):
    from alertlab.ingest.runner import ingest_files

    monkeypatch.setenv("ALERTLAB_MATCHES_TOPIC", f"{topic}-matches")
    with db.engine("alerts").begin() as conn:
        good = conn.exec_driver_sql("INSERT INTO filters (owner, name, where_sql) VALUES "
                                    "('alice', 'north', 'decl > 0 AND ndet >= 1')").lastrowid
        broken = conn.exec_driver_sql("INSERT INTO filters (owner, name, where_sql) VALUES "
                                      "('bob', 'typo', 'no_such_column > 3')").lastrowid
    (tmp_path / "1").mkdir()
    (tmp_path / "2").mkdir()
    first = _alerts_at([(10.0, 20.0), (10.0, -20.0)], tmp_path / "1", prefix="ZTF98")
    ingest_files(first)
    (active, error) = rows(f"SELECT active, last_error FROM filters WHERE id={broken}")[0]
    assert active == 0 and "no_such_column" in error
    assert rows(f"SELECT active, nmatches FROM filters WHERE id={good}")[0] == (1, 1)
    # ingest goes on, and the good filter keeps matching
    second = _alerts_at([(11.0, 21.0)], tmp_path / "2", prefix="ZTF97")
    assert ingest_files(second).alerts == 1
    got = [e for e in events(f"{topic}-matches", expect=2) if e["kind"] == "filter"]
    assert sorted((e["id"], e["objectId"]) for e in got) == [(good, "ZTF970000000"), (good, "ZTF980000000")]
    assert all(e["owner"] == "alice" for e in got)
    assert scalar("SELECT COUNT(*) FROM objects WHERE objectId LIKE 'ZTF9%%'") == 3
