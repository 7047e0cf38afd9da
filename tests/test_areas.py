"""Sky areas: MOCs stored as FITS bytes in the alert database, alerts matched by containment (also for
areas straddling RA 0/360 and holding a pole), and the matcher follows areas being added and deactivated."""

from __future__ import annotations

import io
import logging
import uuid

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Latitude, Longitude
from astropy.time import Time
from mocpy import MOC, TimeMOC

from alertlab.ingest.areas import (
    AreaIndex,
    AreaMatcher,
    InvalidMOC,
    load_area_index,
    moc_from_fits_bytes,
    moc_to_fits_bytes,
)
from alertlab.ingest.watchlists import separation_arcsec


def cone_moc(ra, dec, radius_deg, depth=10):
    return MOC.from_cone(Longitude(ra * u.deg), Latitude(dec * u.deg), radius=radius_deg * u.deg, max_depth=depth)


def polygon_moc(ra, dec, depth=10):
    return MOC.from_polygon(Longitude(np.asarray(ra) * u.deg), Latitude(np.asarray(dec) * u.deg), max_depth=depth)


# A MOC covers its shape with whole HEALPix cells (~3.4' at depth 10), so points are chosen well inside
# or well outside of the shape.
RA0_CONE = (0.0, 0.0, 2.0)  # straddles RA 0/360
POLE_CAP = (0.0, 90.0, 3.0)  # holds the north pole
STRIP = ([350.0, 10.0, 10.0, 350.0], [-5.0, -5.0, -1.0, -1.0])  # polygon across RA 0


def test_containment_inside_and_outside_across_ra0_and_at_the_pole():
    index = AreaIndex.build([(11, cone_moc(*RA0_CONE)), (12, cone_moc(*POLE_CAP)), (13, polygon_moc(*STRIP))])
    assert len(index) == 3
    ra = np.r_[359.0, 1.0, 0.0, 360.0, -0.5, 3.0, 200.0, 77.0, 123.0, 355.0, 5.0, 0.0, 20.0, np.nan, 0.0]
    dec = np.r_[0.5, -0.5, 0.0, 0.0, 1.0, 0.0, 89.0, 90.0, 86.0, -3.0, -4.0, -1.5, -3.0, 0.0, np.nan]
    got = {(h.alert_index, h.area_id) for h in index.match(ra, dec)}
    assert got == {(0, 11), (1, 11), (2, 11), (3, 11), (4, 11), (6, 12), (7, 12), (9, 13), (10, 13),
                   (11, 11), (11, 13)}


def test_matches_geometry_for_random_points():
    rng = np.random.default_rng(5)
    n = 20_000
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    ra = np.r_[ra, rng.uniform(-3, 3, 2000) % 360, rng.uniform(0, 360, 2000)]
    dec = np.r_[dec, rng.uniform(-3, 3, 2000), rng.uniform(86, 90, 2000)]
    index = AreaIndex.build([(1, cone_moc(*RA0_CONE)), (2, cone_moc(*POLE_CAP))])
    got = {(h.alert_index, h.area_id) for h in index.match(ra, dec)}
    for area, (c_ra, c_dec, radius) in ((1, RA0_CONE), (2, POLE_CAP)):
        sep = separation_arcsec(ra, dec, c_ra, c_dec) / 3600
        hit = np.array(sorted(a for a, i in got if i == area))
        assert set(np.flatnonzero(sep <= radius - 0.1)) <= set(hit)  # all well inside are in
        assert not (set(np.flatnonzero(sep >= radius + 0.1)) & set(hit))  # none well outside is
        assert len(hit) > 100


def test_fits_bytes_round_trip_and_garbage_is_refused():
    moc = polygon_moc(*STRIP, depth=12)
    data = moc_to_fits_bytes(moc)
    assert data[:6] == b"SIMPLE"
    assert moc_from_fits_bytes(data) == moc
    time_moc = io.BytesIO()
    time_ranges = TimeMOC.from_time_ranges(Time([60000], format="mjd"), Time([60001], format="mjd"))
    time_ranges.serialize("fits").writeto(time_moc)
    for garbage in (b"", b"not a fits file", data[:2880], time_moc.getvalue()):
        with pytest.raises(InvalidMOC):
            moc_from_fits_bytes(garbage)


# ---------------------------------------------------------------- with the real database


@pytest.fixture
def owner(services):
    from alertlab.core import db

    name = f"test-areas-{uuid.uuid4().hex[:10]}"
    yield name
    with db.engine("alerts").begin() as conn:
        for area in conn.exec_driver_sql("SELECT id FROM areas WHERE owner = %s", (name,)).scalars().all():
            conn.exec_driver_sql("DELETE FROM area_hits WHERE area_id = %s", (area,))
        conn.exec_driver_sql("DELETE FROM areas WHERE owner = %s", (name,))


def store_area(conn, owner, name, moc):
    return conn.exec_driver_sql("INSERT INTO areas (owner, name, moc, sky_fraction) VALUES (%s, %s, %s, %s)",
                                (owner, name, moc_to_fits_bytes(moc), moc.sky_fraction)).lastrowid


@pytest.mark.services
def test_areas_in_the_database_match_and_follow_activation(owner, caplog):
    from alertlab.core import db

    engine = db.engine("alerts")
    with engine.begin() as conn:
        ra0 = store_area(conn, owner, "across RA 0", cone_moc(*RA0_CONE, depth=12))
        broken = conn.exec_driver_sql("INSERT INTO areas (owner, name, moc) VALUES (%s, 'broken', %s)",
                                      (owner, b"not a MOC")).lastrowid
    with engine.connect() as conn, caplog.at_level(logging.WARNING):
        index = load_area_index(conn)
    assert ra0 in index.area_ids and broken not in index.area_ids
    assert any(str(broken) in r.getMessage() for r in caplog.records)

    ra, dec = np.r_[359.5, 0.5, 5.0, 0.0], np.r_[0.5, -1.0, 0.0, 89.0]
    mine = lambda hits, ids: {(h.alert_index, h.area_id) for h in hits if h.area_id in ids}  # noqa: E731
    matcher = AreaMatcher(engine, refresh_seconds=0)
    assert mine(matcher.match(ra, dec), {ra0}) == {(0, ra0), (1, ra0)}

    with engine.begin() as conn:
        pole = store_area(conn, owner, "pole", cone_moc(*POLE_CAP))
        conn.exec_driver_sql("UPDATE areas SET active = 0 WHERE id = %s", (ra0,))
    assert mine(matcher.match(ra, dec), {ra0, pole}) == {(3, pole)}

    slow = AreaMatcher(engine, refresh_seconds=3600)
    slow.match(ra, dec)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE areas SET active = 1 WHERE id = %s", (ra0,))
    assert mine(slow.match(ra, dec), {ra0, pole}) == {(3, pole)}  # not checked again yet
    assert slow.refresh(force=True)
    assert mine(slow.match(ra, dec), {ra0, pole}) == {(0, ra0), (1, ra0), (3, pole)}
