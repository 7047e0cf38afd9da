"""User filters evaluated on ingest batches (ingest/filters.py), on the real MariaDB:
the right matches, only the batch's objects, broken filters deactivated with
their error while the others still match, time limits, and 1,000 filters."""

from __future__ import annotations

import math
import random
import time
import uuid

import numpy as np
import pytest
import sqlalchemy as sa

from alertlab.core import db
from alertlab.ingest.filters import FilterEvaluator, FilterMatch

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def columns(services):
    with db.engine("alerts").connect() as conn:
        return [r[0] for r in conn.exec_driver_sql(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = 'objects' ORDER BY ORDINAL_POSITION")]


@pytest.fixture
def prefix(services):
    """A unique objectId prefix and filter owner; everything under it is removed afterwards."""
    p = f"ft{uuid.uuid4().hex[:8]}"
    yield p
    with db.engine("alerts").begin() as conn:
        conn.exec_driver_sql("DELETE FROM filters WHERE owner = %s", (f"test-{p}",))
        for table in ("objects", "annotations", "detections"):
            conn.exec_driver_sql(f"DELETE FROM {table} WHERE objectId LIKE %s", (p + "\\_%",))


def _row(columns, **values) -> dict:
    row = dict.fromkeys(columns)
    row.update(survey="ZTF", ra=1.0, decl=2.0, healpix=0, ndet=1, nnondet=0)
    row.update(values)
    return row


def _add_filters(owner: str, wheres: list[str], active: bool = True) -> list[int]:
    with db.engine("alerts").begin() as conn:
        ids = []
        for i, where in enumerate(wheres):
            result = conn.execute(
                sa.text("INSERT INTO filters (owner, name, where_sql, active) VALUES (:o, :n, :w, :a)"),
                dict(o=owner, n=f"filter {i}", w=where, a=int(active)))
            ids.append(result.lastrowid)
        return ids


def _stored(ids: list[int]) -> dict[int, dict]:
    with db.engine("alerts").connect() as conn:
        rows = conn.execute(sa.text("SELECT id, active, last_error, last_error_at, nmatches FROM filters "
                                    "WHERE id IN :ids").bindparams(sa.bindparam("ids", expanding=True)),
                            {"ids": ids}).mappings()
        return {r["id"]: dict(r) for r in rows}


def _pairs(matches: list[FilterMatch], ids) -> set[tuple[int, str]]:
    ids = set(ids)
    return {(m.filter_id, m.objectId) for m in matches if m.filter_id in ids}


def test_filters_match_the_batch_and_broken_ones_are_deactivated(columns, prefix):
    p, owner = prefix, f"test-{prefix}"
    annotator = f"fink-{p}"
    batch = [_row(columns, objectId=f"{p}_{i:02d}", ndet=np.int64(i) if i % 3 == 0 else i,
                  latest_mag=np.float64(15 + i * 0.3) if i % 4 == 0 else 15 + i * 0.3,
                  survey="ZTF" if i % 2 == 0 else "LSST", not_a_column="ignored")
             for i in range(20)]
    batch[19]["latest_mag"] = float("nan")  # NULL in the database
    batch[7]["latest_mag"] = None
    with db.engine("alerts").begin() as conn:
        # in the real table but not in the batch: a filter must never see it
        conn.exec_driver_sql("INSERT INTO objects (objectId, survey, ra, decl, healpix, ndet, latest_mag) "
                             "VALUES (%s, 'ZTF', 1, 2, 0, 100, 10)", (f"{p}_real",))
        conn.execute(sa.text("INSERT INTO annotations (objectId, annotator, classification) VALUES (:o, :a, 'SN')"),
                     [dict(o=f"{p}_{s}", a=annotator) for s in ("02", "03", "real")])
    good = {
        "ndet >= 5 AND latest_mag < 18": lambda r: r["ndet"] >= 5 and _num(r["latest_mag"]) is not None
        and r["latest_mag"] < 18,
        f"objectId IN (SELECT objectId FROM annotations WHERE annotator = '{annotator}')":
            lambda r: r["objectId"] in (f"{p}_02", f"{p}_03"),
        "survey = 'ztf'": lambda r: r["survey"] == "ZTF",  # the column's case-insensitive collation
        "ndet = (SELECT MAX(ndet) FROM objects)": lambda r: r["ndet"] == 19,  # `objects` is the batch
        "latest_mag IS NULL": lambda r: _num(r["latest_mag"]) is None,
    }
    broken = {
        "nope_column > 3": "Unknown column 'nope_column'",
        f"objectId = (SELECT objectId FROM annotations WHERE annotator = '{annotator}')":
            "Subquery returns more than 1 row",
        "NO_SUCH_FUNCTION(ndet) > 1": "NO_SUCH_FUNCTION does not exist",
        "1=1; DROP TABLE objects": "rejected by the SQL guard: only one SELECT statement is allowed",
        "ndet > SLEEP(1)": "rejected by the SQL guard: function SLEEP is not allowed",
    }
    good_ids = _add_filters(owner, list(good))
    broken_ids = _add_filters(owner, list(broken))
    inactive_ids = _add_filters(owner, ["ndet >= 0"], active=False)
    expected = {(fid, r["objectId"]) for fid, test in zip(good_ids, good.values()) for r in batch if test(r)}
    assert all(any(fid == e[0] for e in expected) for fid in good_ids)  # every good filter matches something

    with FilterEvaluator(refresh_seconds=0) as evaluator:
        matches = evaluator.evaluate(batch)
        assert _pairs(matches, good_ids + broken_ids + inactive_ids) == expected
        assert {m.owner for m in matches if m.filter_id in good_ids} == {owner}
        stored = _stored(good_ids + broken_ids)
        for fid, (where, error) in zip(broken_ids, broken.items()):
            assert stored[fid]["active"] == 0, where
            assert error in stored[fid]["last_error"], (where, stored[fid]["last_error"])
            assert stored[fid]["last_error_at"] is not None and stored[fid]["nmatches"] == 0
        for fid in good_ids:
            assert stored[fid]["active"] == 1 and stored[fid]["last_error"] is None
            assert stored[fid]["nmatches"] == sum(1 for e in expected if e[0] == fid)
        # the batch table lives only on the evaluator's own connection
        with db.engine("alerts").connect() as a, db.engine("alerts").connect() as b:
            for conn in (a, b):
                assert conn.exec_driver_sql("SELECT COUNT(*) FROM objects WHERE objectId LIKE %s",
                                            (p + "\\_%",)).scalar() == 1
        # again: the same matches, the broken filters are not run any more
        again = evaluator.evaluate(batch)
        assert _pairs(again, good_ids + broken_ids) == expected
        stored = _stored(good_ids)
        assert all(stored[fid]["nmatches"] == 2 * sum(1 for e in expected if e[0] == fid) for fid in good_ids)


def test_edited_and_new_filters_are_picked_up(columns, prefix):
    owner = f"test-{prefix}"
    batch = [_row(columns, objectId=f"{prefix}_{i}", ndet=i) for i in range(10)]
    [fid] = _add_filters(owner, ["ndet > 7"])
    with FilterEvaluator(refresh_seconds=3600) as slow, FilterEvaluator(refresh_seconds=0) as fast:
        assert _pairs(slow.evaluate(batch), [fid]) == {(fid, f"{prefix}_8"), (fid, f"{prefix}_9")}
        assert _pairs(fast.evaluate(batch), [fid]) == {(fid, f"{prefix}_8"), (fid, f"{prefix}_9")}
        with db.engine("alerts").begin() as conn:
            conn.exec_driver_sql("UPDATE filters SET where_sql = 'ndet < 1' WHERE id = %s", (fid,))
        [new] = _add_filters(owner, ["ndet = 4"])
        assert _pairs(fast.evaluate(batch), [fid, new]) == {(fid, f"{prefix}_0"), (new, f"{prefix}_4")}
        # not re-read yet: the list of filters is cached for refresh_seconds
        assert _pairs(slow.evaluate(batch), [fid, new]) == {(fid, f"{prefix}_8"), (fid, f"{prefix}_9")}
        assert slow.evaluate([]) == []


def test_warm_opens_the_session_the_first_batch_then_uses(columns, prefix):
    """The ingest warms its evaluator before it consumes: opening the session and its batch table in the
    first batch cost that batch ~0.15 s while the stream waited."""
    owner = f"test-{prefix}"
    batch = [_row(columns, objectId=f"{prefix}_{i}", ndet=i) for i in range(3)]
    [fid] = _add_filters(owner, ["ndet = 2"])
    with FilterEvaluator(refresh_seconds=3600) as evaluator:
        evaluator.warm()
        session = evaluator._conn.thread_id()
        with db.engine("alerts").connect() as conn:
            assert conn.exec_driver_sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s",
                                        (session,)).scalar() == 1
        assert _pairs(evaluator.evaluate(batch), [fid]) == {(fid, f"{prefix}_2")}
        assert evaluator._conn.thread_id() == session


def test_a_lost_connection_is_reopened_and_blames_no_filter(columns, prefix, caplog):
    owner = f"test-{prefix}"
    batch = [_row(columns, objectId=f"{prefix}_{i}", ndet=i) for i in range(5)]
    [fid] = _add_filters(owner, ["ndet >= 3"])
    with FilterEvaluator(refresh_seconds=0) as evaluator:
        assert _pairs(evaluator.evaluate(batch), [fid]) == {(fid, f"{prefix}_3"), (fid, f"{prefix}_4")}
        with db.engine("alerts").connect() as conn:  # e.g. a server restart or wait_timeout
            conn.exec_driver_sql(f"KILL CONNECTION {int(evaluator._conn.thread_id())}")
        assert _pairs(evaluator.evaluate(batch), [fid]) == {(fid, f"{prefix}_3"), (fid, f"{prefix}_4")}
    assert "retrying on a new connection" in caplog.text
    stored = _stored([fid])[fid]
    assert stored["active"] == 1 and stored["last_error"] is None and stored["nmatches"] == 4


def test_a_slow_filter_is_stopped_and_deactivated(columns, prefix):
    owner = f"test-{prefix}"
    base = random.randrange(10**12, 9 * 10**12)
    with db.engine("alerts").begin() as conn:
        conn.execute(sa.text("INSERT INTO detections (detectionId, objectId, survey, mjd, band, mag) "
                             "VALUES (:d, :o, 'ZTF', 60000, 'g', :m)"),
                     [dict(d=base + i, o=f"{prefix}_{i % 7}", m=15 + i % 50 / 10) for i in range(1000)])
    batch = [_row(columns, objectId=f"{prefix}_{i}", ndet=i) for i in range(50)]
    slow_where = ("(SELECT COUNT(*) FROM detections a, detections b, detections c "
                  f"WHERE a.objectId LIKE '{prefix}\\_%' AND a.mag + b.mag > c.mag) > 0")
    good_ids = _add_filters(owner, ["ndet < 2", f"objectId IN (SELECT objectId FROM detections WHERE "
                                                 f"detectionId = {base})"])
    [slow_id] = _add_filters(owner, [slow_where])
    with FilterEvaluator(refresh_seconds=0, max_seconds=0.5) as evaluator:
        started = time.monotonic()
        matches = evaluator.evaluate(batch)
        assert time.monotonic() - started < 6
    assert _pairs(matches, good_ids + [slow_id]) == {
        (good_ids[0], f"{prefix}_0"), (good_ids[0], f"{prefix}_1"), (good_ids[1], f"{prefix}_0")}
    stored = _stored([slow_id])[slow_id]
    assert stored["active"] == 0
    assert stored["last_error"] == "the filter ran longer than 0.5 s on a batch of 50 objects and was stopped"


TEMPLATES = [
    ("ndet >= {a} AND latest_mag < {m}",
     lambda r, v: r["ndet"] >= v["a"] and r["latest_mag"] is not None and r["latest_mag"] < v["m"]),
    ("g_minus_r < {x} AND survey = 'ZTF'", lambda r, v: r["g_minus_r"] < v["x"] and r["survey"] == "ZTF"),
    ("ABS(decl) > {d}", lambda r, v: abs(r["decl"]) > v["d"]),
    ("latest_mag IS NULL OR ndet BETWEEN {a} AND {b}",
     lambda r, v: r["latest_mag"] is None or v["a"] <= r["ndet"] <= v["b"]),
    ("objectId IN (SELECT objectId FROM annotations WHERE annotator = '{annotator}' AND classification = '{c}')",
     lambda r, v: r["class"] == v["c"]),
]


def test_a_thousand_filters_on_a_batch_of_500(columns, prefix):
    rng = random.Random(7)
    owner, annotator = f"test-{prefix}", f"fink-{prefix}"
    classes = ["SN", "AGN", "VS", "TDE"]
    batch = []
    for i in range(500):
        batch.append(_row(columns, objectId=f"{prefix}_{i:03d}", ndet=rng.randint(1, 40),
                          latest_mag=None if i % 50 == 0 else round(rng.uniform(14, 21), 3),
                          g_minus_r=round(rng.uniform(-1, 2), 3), decl=round(rng.uniform(-90, 90), 4),
                          survey=rng.choice(["ZTF", "LSST"])))
    klass = {r["objectId"]: rng.choice(classes + [None] * 8) for r in batch}
    with db.engine("alerts").begin() as conn:
        conn.execute(sa.text("INSERT INTO annotations (objectId, annotator, classification) VALUES (:o, :a, :c)"),
                     [dict(o=o, a=annotator, c=c) for o, c in klass.items() if c])
    wheres, tests = [], []
    for _ in range(1000):
        template, test = rng.choice(TEMPLATES)
        a = rng.randint(1, 35)
        values = dict(a=a, b=a + rng.randint(0, 5), m=round(rng.uniform(14, 21), 2), x=round(rng.uniform(-1, 2), 2),
                      d=round(rng.uniform(0, 90), 2), c=rng.choice(classes), annotator=annotator)
        wheres.append(template.format(**values))
        tests.append((test, values))
    ids = _add_filters(owner, wheres)
    expected = {(fid, r["objectId"]) for fid, (test, values) in zip(ids, tests)
                for r in batch if test(dict(r, **{"class": klass[r["objectId"]]}), values)}
    with FilterEvaluator() as evaluator:
        matches = evaluator.evaluate(batch)
    assert _pairs(matches, ids) == expected
    assert len(expected) > 1000
    assert [(m.filter_id, m.objectId) for m in matches] == sorted((m.filter_id, m.objectId) for m in matches)
    stored = _stored(ids)
    assert all(s["active"] == 1 for s in stored.values())
    assert sum(s["nmatches"] for s in stored.values()) == len(expected)


def _num(value):
    """None for NULL-to-be values (None, NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


HIT_FILTERS = ["objectId IN (SELECT objectId FROM watchlist_hits)",
               "EXISTS (SELECT 1 FROM area_hits h WHERE h.objectId = objects.objectId)"]


@pytest.fixture
def alices_hits(prefix):
    """Alice's watchlist with a hit of object 1 and her area with a hit of object 2: (alice, wl id, area id,
    objects); everything is removed afterwards, the other test users' filters and the shares included."""
    alice, objs = f"test-{prefix}", [f"{prefix}_1", f"{prefix}_2"]
    with db.engine("alerts").begin() as conn:
        wl = conn.exec_driver_sql("INSERT INTO watchlists (owner, name) VALUES (%s, 'mine')", (alice,)).lastrowid
        area = conn.exec_driver_sql("INSERT INTO areas (owner, name, moc) VALUES (%s, 'gw', '')", (alice,)).lastrowid
        conn.exec_driver_sql("INSERT INTO watchlist_hits (watchlist_id, cone_id, objectId, detectionId, arcsec, mjd) "
                             "VALUES (%s, 1, %s, 1, 0.5, 60000)", (wl, objs[0]))
        conn.exec_driver_sql("INSERT INTO area_hits (area_id, objectId, detectionId, mjd) VALUES (%s, %s, 2, 60000)",
                             (area, objs[1]))
    yield alice, wl, area, objs
    from alertlab.api import access

    access.forget("watchlist", wl)
    access.forget("area", area)
    with db.engine("alerts").begin() as conn:
        conn.exec_driver_sql("DELETE FROM watchlist_hits WHERE watchlist_id=%s", (wl,))
        conn.exec_driver_sql("DELETE FROM area_hits WHERE area_id=%s", (area,))
        conn.exec_driver_sql("DELETE FROM watchlists WHERE id=%s", (wl,))
        conn.exec_driver_sql("DELETE FROM areas WHERE id=%s", (area,))
        conn.exec_driver_sql("DELETE FROM filters WHERE owner LIKE %s", (f"{alice}-%",))


def test_a_filter_sees_only_its_owners_watchlist_and_area_hits(columns, alices_hits):
    """A filter may ask 'did it hit a watchlist?', but only of its owner's watchlists and areas."""
    alice, _, _, objs = alices_hits
    mine = _add_filters(alice, HIT_FILTERS)
    theirs = _add_filters(f"{alice}-bob", HIT_FILTERS)
    with FilterEvaluator(refresh_seconds=0) as evaluator:
        got = _pairs(evaluator.evaluate([_row(columns, objectId=o) for o in objs]), mine + theirs)
    assert got == {(mine[0], objs[0]), (mine[1], objs[1])}  # bob's identical filters see nothing of alice's


def test_a_filter_also_sees_the_hits_of_watchlists_and_areas_shared_with_its_owner(columns, alices_hits,
                                                                                     monkeypatch):
    """Sharing a watchlist or an area (by name, with a group, with everyone) lets the grantee's filters
    trigger on its hits, as the grantee's own SQL sees them; stopping the share stops that."""
    from alertlab.api import access, hubgroups

    alice, wl, area, objs = alices_hits
    bob, carol, dave, group = f"{alice}-bob", f"{alice}-carol", f"{alice}-dave", f"g-{alice}"
    monkeypatch.setattr(hubgroups, "of_names", lambda names: {carol: (group,)} if carol in names else {})
    watchlist, sky_area = access.Resource.of("watchlist", wl, alice), access.Resource.of("area", area, alice)
    ids = {who: _add_filters(who, HIT_FILTERS) for who in (bob, carol, dave)}
    batch = [_row(columns, objectId=o) for o in objs]

    def seen():
        with FilterEvaluator(refresh_seconds=0) as evaluator:
            got = _pairs(evaluator.evaluate(batch), [i for v in ids.values() for i in v])
        return {who: {(["watchlist", "area"][v.index(fid)], oid) for fid, oid in got if fid in v}
                for who, v in ids.items()}

    assert seen() == {bob: set(), carol: set(), dave: set()}
    access.grant(watchlist, "user", bob, "viewer", alice)
    access.grant(watchlist, "group", group, "viewer", alice)
    access.grant(sky_area, "all", None, "viewer", alice)
    assert seen() == {bob: {("watchlist", objs[0]), ("area", objs[1])},
                      carol: {("watchlist", objs[0]), ("area", objs[1])},
                      dave: {("area", objs[1])}}
    access.revoke(watchlist, "user", bob)
    access.revoke(sky_area, "all", None)
    assert seen() == {bob: set(), carol: {("watchlist", objs[0])}, dave: set()}
