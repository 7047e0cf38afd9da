"""Watchlist matching: the cone index gives exactly the brute-force answer (every alert within a cone's
radius, nothing else), around RA 0/360 and at the poles too; cones round-trip through the database and
the matcher follows watchlists being added and (de)activated."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from alertlab.ingest.watchlists import (
    ConeIndex,
    InvalidCones,
    WatchlistMatcher,
    insert_cones,
    load_cone_index,
    separation_arcsec,
)


def uniform_sky(rng, n):
    return rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))


def offset(ra, dec, position_angle, arcsec):
    """The points at ``arcsec`` from (ra, dec) towards ``position_angle`` (radians), computed with unit
    vectors so that they are accurate to ~1e-11 arcsec at any distance, the poles included."""
    ra, dec, pa, dist = np.broadcast_arrays(np.radians(ra), np.radians(dec), position_angle,
                                            np.radians(np.asarray(arcsec, float) / 3600))
    centre = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
    east = np.stack([-np.sin(ra), np.cos(ra), np.zeros_like(ra)])
    north = np.stack([-np.sin(dec) * np.cos(ra), -np.sin(dec) * np.sin(ra), np.cos(dec)])
    p = np.cos(dist) * centre + np.sin(dist) * (np.cos(pa) * north + np.sin(pa) * east)
    return np.degrees(np.arctan2(p[1], p[0])) % 360.0, np.degrees(np.arctan2(p[2], np.hypot(p[0], p[1])))


def around(rng, ra, dec, max_arcsec):
    """Points at random directions and distances up to ``max_arcsec`` from each (ra, dec)."""
    ra = np.asarray(ra, float)
    return offset(ra, dec, rng.uniform(0, 2 * np.pi, ra.shape), rng.uniform(0, 1, ra.shape) * max_arcsec)


def unit_vectors(ra, dec):
    ra, dec = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def brute_force(ra, dec, cone_ra, cone_dec, cone_radius, chunk=50):
    """Every (alert index, cone position) with separation <= radius, looking at all pairs: a dot product
    of unit vectors drops the pairs that are clearly too far apart (margin far above its rounding), and
    the exact separation decides for the others."""
    pairs = []
    cones = unit_vectors(cone_ra, cone_dec)
    cos_limit = np.cos(np.minimum(np.pi, np.radians(cone_radius / 3600) * 1.001 + 1e-8))
    alerts = unit_vectors(ra, dec)
    for lo in range(0, len(ra), chunk):
        i, j = np.nonzero(alerts[lo:lo + chunk] @ cones.T >= cos_limit[None, :])
        i += lo
        sep = separation_arcsec(ra[i], dec[i], cone_ra[j], cone_dec[j])
        keep = sep <= cone_radius[j]
        pairs.extend(zip(i[keep].tolist(), j[keep].tolist()))
    return set(pairs)


def hit_pairs(hits, cone_ids=None):
    position = None if cone_ids is None else {int(c): k for k, c in enumerate(cone_ids)}
    return {(h.alert_index, h.cone_id if position is None else position[h.cone_id]) for h in hits}


@pytest.fixture(scope="module")
def hard_cones():
    """120,000 cones of radii 0.5" to 3600": over the whole sky, crowded around RA 0/360, at and near both
    poles (dec exactly +-90 included), some exactly at RA 0 and 360."""
    rng = np.random.default_rng(20261128)
    parts = [uniform_sky(rng, 80_000)]
    n = 10_000
    parts.append((np.concatenate([rng.uniform(359.99, 360, n // 2), rng.uniform(0, 0.01, n // 2)]),
                  rng.uniform(-60, 60, n)))
    parts.append((np.r_[0.0, 360.0, 359.9995, 0.0003, 0.0, 0.0], np.r_[0.0, 0.0, 10.0, 10.0, 89.5, -89.5]))
    for pole in (90.0, -90.0):
        parts.append((rng.uniform(0, 360, n), pole - np.sign(pole) * rng.uniform(0, 1.5, n)))
        parts.append((rng.uniform(0, 360, 5), np.full(5, pole)))
    ra = np.concatenate([p[0] for p in parts])
    dec = np.concatenate([p[1] for p in parts])
    radius = np.exp2(rng.uniform(-1, np.log2(3600), len(ra)))
    radius[:8] = [0.5, 1.0, 2.0, 3600.0, 3600.0, 17.0, 3600.0, 3600.0]
    return ra, dec, radius


@pytest.fixture(scope="module")
def hard_alerts(hard_cones):
    """Alerts over the whole sky, near RA 0/360 (both sides, and written as negative or >= 360), at and
    near the poles, and close to cones so that there are many hits."""
    ra, dec, radius = hard_cones
    rng = np.random.default_rng(7)
    parts = [uniform_sky(rng, 400)]
    parts.append((np.r_[0.0003, 359.9997, 0.0, 360.0, -0.0002, 360.0004, 0.0], np.r_[0, 0, 0, 0, 10, 10, 10.0]))
    parts.append((rng.uniform(-0.02, 0.02, 150), rng.uniform(-60, 60, 150)))
    for pole in (90.0, -90.0):
        parts.append((rng.uniform(0, 360, 60), pole - np.sign(pole) * rng.uniform(0, 2, 60)))
        parts.append((np.r_[0.0, 123.0, 359.99], np.full(3, pole)))
        parts.append((np.r_[0.0, 90.0, 180.0, 270.0], np.full(4, pole - np.sign(pole) * 0.01)))
    near = rng.choice(len(ra), 500, replace=False)
    parts.append(around(rng, ra[near], dec[near], 1.3 * radius[near]))
    parts.append((ra[near[:50]], dec[near[:50]]))  # exactly at a cone centre
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def test_index_gives_exactly_the_brute_force_matches(hard_cones, hard_alerts):
    ra, dec, radius = hard_cones
    a_ra, a_dec = hard_alerts
    names = np.array([f"cone {i}" for i in range(len(ra))], dtype=object)
    index = ConeIndex.build(np.full(len(ra), 7), np.arange(len(ra)), ra, dec, radius, names)
    assert len(index) == len(ra)
    hits = index.match(a_ra, a_dec)
    expected = brute_force(a_ra, a_dec, ra, dec, radius)
    assert len(expected) > 1000  # the alerts really are among the cones
    got = hit_pairs(hits)
    assert got == expected, (sorted(expected - got)[:5], sorted(got - expected)[:5])
    assert len(got) == len(hits)  # no pair twice
    for h in hits[:200]:
        assert h.watchlist_id == 7 and h.name == f"cone {h.cone_id}"
        assert h.arcsec == pytest.approx(float(separation_arcsec(a_ra[h.alert_index], a_dec[h.alert_index],
                                                                 ra[h.cone_id], dec[h.cone_id])))
        assert h.arcsec <= radius[h.cone_id]
    assert [(h.alert_index, h.cone_id) for h in hits] == sorted((h.alert_index, h.cone_id) for h in hits)


@pytest.mark.parametrize("radius", [0.5, 2.0, 3.0, 64.0, 1000.0, 3600.0])
def test_alert_just_inside_a_cone_matches_and_just_outside_does_not(radius):
    """Cones whose radius fills their class exactly (powers of two) or not, with alerts at
    radius * (1 -/+ 1e-7) in every direction: at the equator, RA 0/360, near and at the poles."""
    c_ra = np.r_[0.0, 359.9999, 0.0001, 180.0, 10.0, 200.0, 0.0, 45.0, 300.0, 0.0]
    c_dec = np.r_[0.0, 0.0, 0.0, 89.99, -89.99, 89.9999, 90.0, -90.0, 45.0, 89.0]
    index = ConeIndex.build(np.ones(len(c_ra)), np.arange(len(c_ra)), c_ra, c_dec, np.full(len(c_ra), radius))
    k = 64
    angle = np.radians(np.linspace(0, 360, k, endpoint=False))
    for factor, expect in ((1 - 1e-7, True), (1 + 1e-7, False)):
        a_ra, a_dec = offset(np.repeat(c_ra, k), np.repeat(c_dec, k), np.tile(angle, len(c_ra)), radius * factor)
        owner = np.repeat(np.arange(len(c_ra)), k)
        got = hit_pairs(index.match(a_ra, a_dec))
        expected = brute_force(a_ra, a_dec, c_ra, c_dec, np.full(len(c_ra), radius))
        assert got == expected
        own = {(a, c) for a, c in got if owner[a] == c}
        assert len(own) == (len(a_ra) if expect else 0)


def test_candidates_are_a_superset_for_any_radius_of_the_class():
    """The pre-filter must find every cone within its class's search radius, not only within the
    cone's own radius: check it directly against all pairs."""
    rng = np.random.default_rng(11)
    ra, dec = uniform_sky(rng, 20_000)
    ra = np.r_[ra, rng.uniform(359.999, 360, 2000), rng.uniform(0, 360, 2000)]
    dec = np.r_[dec, rng.uniform(-5, 5, 2000), rng.uniform(89.9, 90, 2000)]
    radius = np.exp2(rng.integers(-1, 12, len(ra)).astype(float))  # each exactly its class's radius
    index = ConeIndex.build(np.ones(len(ra)), np.arange(len(ra)), ra, dec, radius)
    near = rng.choice(len(ra), 300, replace=False)
    a_ra, a_dec = around(rng, ra[near], dec[near], radius[near])
    a_ra = np.r_[a_ra, 0.0, 360.0, 0.0, 0.0]
    a_dec = np.r_[a_dec, 90.0, 90.0, -90.0, 0.0]
    which, pos = index.candidates(a_ra, a_dec)
    candidates = set(zip(which.tolist(), index.cone_ids[pos].tolist()))
    within_class_radius = brute_force(a_ra, a_dec, ra, dec, radius)
    assert within_class_radius <= candidates
    assert len(candidates) < 50 * len(within_class_radius)  # an index, not a scan


def test_alerts_with_no_position_match_nothing_and_empty_index_matches_nothing():
    index = ConeIndex.build([1], [5], [10.0], [20.0], [5.0], ["M"])
    hits = index.match(np.r_[np.nan, 10.0, 10.0, 10.0], np.r_[20.0, np.nan, 95.0, 20.0])
    assert [(h.alert_index, h.cone_id, h.name) for h in hits] == [(3, 5, "M")]
    assert hits[0].arcsec == 0.0
    assert ConeIndex.empty().match([10.0], [20.0]) == []
    assert index.match([], []) == []
    with pytest.raises(InvalidCones):
        ConeIndex.build([1], [5], [10.0], [91.0], [5.0])
    with pytest.raises(InvalidCones):
        ConeIndex.build([1], [5], [10.0], [20.0], [0.0])


def test_alert_exactly_on_the_edge_of_a_cone_matches():
    sep = float(separation_arcsec(0.0005, 0.0, 359.9997, 0.0002))
    index = ConeIndex.build([1, 1], [1, 2], [359.9997, 359.9997], [0.0002, 0.0002], [sep, np.nextafter(sep, 0)])
    assert [(h.cone_id, h.arcsec) for h in index.match([0.0005], [0.0])] == [(1, sep)]


# ---------------------------------------------------------------- with the real database


@pytest.fixture
def owner(services):
    """A unique owner; every watchlist (and its cones and hits) of this owner is deleted afterwards."""
    from alertlab.core import db

    name = f"test-watchlists-{uuid.uuid4().hex[:10]}"
    yield name
    with db.engine("alerts").begin() as conn:
        ids = conn.exec_driver_sql("SELECT id FROM watchlists WHERE owner = %s", (name,)).scalars().all()
        for wl in ids:
            conn.exec_driver_sql("DELETE FROM watchlist_cones WHERE watchlist_id = %s", (wl,))
            conn.exec_driver_sql("DELETE FROM watchlist_hits WHERE watchlist_id = %s", (wl,))
        conn.exec_driver_sql("DELETE FROM watchlists WHERE owner = %s", (name,))


def new_watchlist(conn, owner, name, default_radius=2.0):
    return conn.exec_driver_sql("INSERT INTO watchlists (owner, name, default_radius) VALUES (%s, %s, %s)",
                                (owner, name, default_radius)).lastrowid


@pytest.mark.services
def test_watchlist_in_the_database_matches_like_brute_force_and_follows_activation(owner):
    from alertlab.core import db

    engine = db.engine("alerts")
    rng = np.random.default_rng(99)
    n = 100_000
    ra, dec = uniform_sky(rng, n)
    ra[:4] = [359.9995, 0.0003, 0.0, 12.0]
    dec[:4] = [0.0, 0.0, 90.0, -89.99]
    radius = np.exp2(rng.uniform(-1, np.log2(3600), n))
    tricky = ["quote ' and \" here", "comma, semicolon; back\\slash", "ünïcødé ☆ 星", "new\nline", None, "{json}"]
    names = [tricky[i] if i < len(tricky) else (None if i % 7 == 0 else f"src {i}") for i in range(n)]
    with engine.begin() as conn:
        wl = new_watchlist(conn, owner, "big")
        assert insert_cones(conn, wl, ra, dec, radius, names) == n
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT ncones FROM watchlists WHERE id = %s", (wl,)).scalar() == n
        index = load_cone_index(conn)
        stored_ids = np.array(conn.exec_driver_sql(
            "SELECT id FROM watchlist_cones WHERE watchlist_id = %s ORDER BY id", (wl,)).scalars().all())
    assert len(stored_ids) == n and len(index) >= n

    near = rng.choice(n, 300, replace=False)
    a_ra, a_dec = around(rng, ra[near], dec[near], 1.2 * radius[near])
    a_ra = np.r_[a_ra, 0.0, 359.9999, 123.0, uniform_sky(rng, 100)[0]]
    a_dec = np.r_[a_dec, 0.0, 0.0, 89.9999, uniform_sky(rng, 100)[1]]
    mine = [h for h in index.match(a_ra, a_dec) if h.watchlist_id == wl]
    expected = brute_force(a_ra, a_dec, ra, dec, radius)
    assert len(expected) > 300
    assert hit_pairs(mine, stored_ids) == expected  # cones come back with their exact positions and radii
    position = {int(c): k for k, c in enumerate(stored_ids)}
    assert all(h.name == names[position[h.cone_id]] for h in mine)
    assert {h.name for h in mine} >= {"quote ' and \" here", "comma, semicolon; back\\slash"}

    matcher = WatchlistMatcher(engine, refresh_seconds=0)
    probe_ra, probe_dec = np.r_[0.0003, 12.0], np.r_[0.0, -89.99]
    assert {h.alert_index for h in matcher.match(probe_ra, probe_dec) if h.watchlist_id == wl} == {0, 1}
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE watchlists SET active = 0 WHERE id = %s", (wl,))
    assert [h for h in matcher.match(probe_ra, probe_dec) if h.watchlist_id == wl] == []
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE watchlists SET active = 1 WHERE id = %s", (wl,))
        small = new_watchlist(conn, owner, "small", default_radius=5.0)
        insert_cones(conn, small, [200.0], [-30.0], None, ["target"])
    hits = matcher.match(np.r_[0.0003, 200.0 + 1 / 3600], np.r_[0.0, -30.0])
    assert {(h.alert_index, h.watchlist_id) for h in hits if h.watchlist_id in (wl, small)} >= {(0, wl), (1, small)}
    assert [h.name for h in hits if h.watchlist_id == small] == ["target"]


@pytest.mark.services
def test_matcher_checks_for_changes_only_every_refresh_seconds(owner):
    from alertlab.core import db

    engine = db.engine("alerts")
    matcher = WatchlistMatcher(engine, refresh_seconds=3600)
    matcher.match([1.0], [1.0])
    with engine.begin() as conn:
        wl = new_watchlist(conn, owner, "late")
        insert_cones(conn, wl, [50.0], [50.0], 3.0)
    assert [h for h in matcher.match([50.0], [50.0]) if h.watchlist_id == wl] == []
    assert matcher.refresh(force=True)
    assert [h.watchlist_id for h in matcher.match([50.0], [50.0]) if h.watchlist_id == wl] == [wl]
    assert not matcher.refresh()  # nothing changed, interval not over


@pytest.mark.services
def test_an_edit_does_not_stall_matching_nor_reread_the_other_watchlists(owner, monkeypatch):
    from alertlab.core import db
    from alertlab.ingest import watchlists as wl_mod

    engine = db.engine("alerts")
    with engine.begin() as conn:
        big = new_watchlist(conn, owner, "big")
        insert_cones(conn, big, np.linspace(0, 359, 5000), np.zeros(5000), 2.0)
    matcher = WatchlistMatcher(engine, refresh_seconds=0, background=True)
    assert [h.watchlist_id for h in matcher.match([100.0 + 1 / 7200], [0.0]) if h.watchlist_id == big] == []
    assert any(h.watchlist_id == big for h in matcher.match([359.0], [0.0]))
    reads = []
    real_read = wl_mod._read_watchlist
    monkeypatch.setattr(wl_mod, "_read_watchlist", lambda conn, wid: reads.append(wid) or real_read(conn, wid))

    with engine.begin() as conn:
        late = new_watchlist(conn, owner, "late")
        insert_cones(conn, late, [50.0], [50.0], 3.0)
    with matcher._lock:  # a reload that takes long: batches are matched meanwhile, on the previous index
        assert matcher.refresh()
        assert [h for h in matcher.match([50.0], [50.0]) if h.watchlist_id == late] == []
        assert any(h.watchlist_id == big for h in matcher.match([359.0], [0.0]))
    matcher.wait(30)
    assert [h.watchlist_id for h in matcher.match([50.0], [50.0]) if h.watchlist_id == late] == [late]
    assert late in reads and big not in reads  # the big watchlist came from the cache

    with engine.begin() as conn:  # replacing a watchlist's cones is seen too
        conn.exec_driver_sql("DELETE FROM watchlist_cones WHERE watchlist_id = %s", (big,))
        conn.exec_driver_sql("UPDATE watchlists SET ncones = 0 WHERE id = %s", (big,))
        insert_cones(conn, big, [10.0], [-10.0], 2.0)
    matcher.refresh()
    matcher.wait(30)
    assert [h for h in matcher.match([359.0], [0.0]) if h.watchlist_id == big] == []
    assert [h.watchlist_id for h in matcher.match([10.0], [-10.0]) if h.watchlist_id == big] == [big]


@pytest.mark.services
def test_insert_cones_uses_default_radius_and_rejects_bad_cones(owner):
    from alertlab.core import db

    engine = db.engine("alerts")
    with engine.begin() as conn:
        wl = new_watchlist(conn, owner, "checked", default_radius=4.5)
        insert_cones(conn, wl, [10.0, 20.0], [0.0, 1.0])
        rows = conn.exec_driver_sql("SELECT ra, decl, radius, name FROM watchlist_cones WHERE watchlist_id = %s"
                                    " ORDER BY id", (wl,)).all()
        assert [tuple(r) for r in rows] == [(10.0, 0.0, 4.5, None), (20.0, 1.0, 4.5, None)]
        for bad in [dict(ra=[1.0], dec=[91.0]), dict(ra=[np.nan], dec=[0.0]), dict(ra=[1.0], dec=[0.0], radius=3601),
                    dict(ra=[1.0], dec=[0.0], radius=-1), dict(ra=[1.0], dec=[0.0], name=["x" * 256]),
                    dict(ra=[1.0, 2.0], dec=[0.0])]:
            with pytest.raises(InvalidCones):
                insert_cones(conn, wl, **bad)
        assert conn.exec_driver_sql("SELECT ncones FROM watchlists WHERE id = %s", (wl,)).scalar() == 2
