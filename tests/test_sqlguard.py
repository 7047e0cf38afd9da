"""The SQL users type: the guard (api/sqlguard.py) and the read-only runner
(api/readonly.py), on pure logic and on the real MariaDB.

tests/hostile_queries.json is a corpus of hostile queries: each is either
rejected by the guard with a reason, or (resource exhaustion) accepted and
then stopped by the server's time limit; nothing may be written."""

from __future__ import annotations

import json
import random
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from alertlab.api.readonly import QueryTimeout, run_select, stream_select
from alertlab.api.sqlguard import USER_TABLES, RejectedQuery, check_filter_where, check_select
from alertlab.core import db, settings

CORPUS = json.loads((Path(__file__).parent / "hostile_queries.json").read_text())
REJECTED = [c for c in CORPUS if c["outcome"] == "rejected"]
STOPPED = [c for c in CORPUS if c["outcome"] == "stopped"]
NDETECTIONS = 3000


def _id(case):
    return f"{case['category']}: {case['sql'][:60]!r}"


# -- pure logic ------------------------------------------------------------------------------------

def test_corpus_is_large_and_varied():
    assert len(CORPUS) >= 100
    assert len({c["category"] for c in CORPUS}) >= 12


@pytest.mark.parametrize("case", REJECTED, ids=[_id(c) for c in REJECTED])
def test_hostile_query_is_rejected_with_a_reason(case):
    with pytest.raises(RejectedQuery) as info:
        check_select(case["sql"])
    reason = info.value.reason
    assert case["reason"] in reason
    assert "\n" not in reason and str(info.value) == reason


@pytest.mark.parametrize("sql,reason", [
    ("SELECT 1; SELECT 2", "only one SELECT statement is allowed (found 2 statements)"),
    ("SELECT * FROM information_schema.tables",
     "table information_schema.tables is not available: system schemas cannot be queried; allowed tables are "
     "annotations, annotations_history, area_hits, detections, forced_photometry, nondetections, objects, "
     "watchlist_hits"),
    ("SELECT SLEEP(1)", "function SLEEP is not allowed"),
    ("SELECT * FROM objects INTO OUTFILE '/tmp/x'", "INTO OUTFILE is not allowed: a query can only return rows"),
    ("SELECT @x", "user variables (@x) are not allowed"),
    ("SELECT @@version", "system variables (@@version) are not allowed"),
    ("SELECT * FROM objects FOR UPDATE", "locking clauses (FOR UPDATE / LOCK IN SHARE MODE) are not allowed"),
    ("SELECT 1 /*! , 2 */", "executable comments (/*! ... */) are not allowed"),
    ("CALL p()", "only SELECT statements are allowed (this is a CALL statement)"),
    ("SELECT * FROM cutouts", "table cutouts is not available: allowed tables are annotations, annotations_history, "
     "area_hits, detections, forced_photometry, nondetections, objects, watchlist_hits"),
])
def test_reasons_say_what_and_why(sql, reason):
    with pytest.raises(RejectedQuery) as info:
        check_select(sql)
    assert info.value.reason == reason


@pytest.mark.parametrize("sql,reason", [
    ("SELECT " + "(" * 3000 + "1" + ")" * 3000, "the query is too deeply nested"),
    ("SELECT " + "NOT " * 20000 + "1", "the query is too deeply nested"),
    ("SELECT 1" + " + 1" * 30000, "the query is too long (120,008 characters; at most 100,000)"),
])
def test_huge_or_deep_queries_are_refused_before_they_cost(sql, reason):
    started = time.monotonic()
    with pytest.raises(RejectedQuery) as info:
        check_select(sql)
    assert info.value.reason == reason
    assert time.monotonic() - started < 5


def test_comments_never_reach_the_server():
    assert check_select("SELECT 1 -- ; DROP TABLE objects") == "SELECT 1"
    assert check_select("SELECT /* ; DROP TABLE objects */ 1 # ; DELETE FROM filters") == "SELECT 1"


def test_allowed_tables_are_a_parameter():
    assert "cutouts" not in USER_TABLES and "filters" not in USER_TABLES
    assert check_select("SELECT * FROM cutouts", allowed_tables=USER_TABLES | {"cutouts"}) == \
        "SELECT * FROM cutouts"
    with pytest.raises(RejectedQuery, match="table objects is not available"):
        check_select("SELECT * FROM objects", allowed_tables=frozenset({"detections"}))


def test_cte_names_are_fine_where_mariadb_sees_them():
    assert check_select("WITH c AS (SELECT 1 AS x) SELECT * FROM c, (SELECT * FROM c) AS d")
    assert check_select("WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
                        "SELECT * FROM r")
    # a non-recursive CTE's own name, or a later CTE's, inside its body is the base table
    with pytest.raises(RejectedQuery, match="table cutouts is not available"):
        check_select("WITH cutouts AS (SELECT * FROM cutouts) SELECT * FROM cutouts")
    with pytest.raises(RejectedQuery, match="table filters is not available"):
        check_select("WITH a AS (SELECT * FROM filters), filters AS (SELECT 1) SELECT * FROM a")
    # a CTE is not visible outside the query that defines it
    with pytest.raises(RejectedQuery, match="table c is not available"):
        check_select("SELECT * FROM (WITH c AS (SELECT 1) SELECT * FROM c) AS t, c")


def test_the_alert_database_may_be_named():
    name = settings.get("ALERTLAB_ALERTS_DB")
    assert check_select(f"SELECT ndet FROM {name}.objects") == f"SELECT ndet FROM {name}.objects"


def test_regenerated_sql_is_stable_and_mariadb_flavoured():
    for sql in ["SELECT 'abc' REGEXP '^a'", "SELECT o.objectId FROM objects o JOIN detections d USING (objectId)",
                "SELECT JSON_EXTRACT(extra, '$.fid') FROM detections", "SELECT 1 FROM DUAL"]:
        once = check_select(sql)
        assert check_select(once) == once
    assert check_select("SELECT 'abc' RLIKE 'b'") == "SELECT 'abc' REGEXP 'b'"  # MariaDB has no REGEXP_LIKE()
    assert check_select("SELECT 1 + 1 FROM DUAL") == "SELECT 1 + 1"


def test_extra_filters_rewrite_every_read_of_the_table():
    sql = check_select(
        "SELECT h.objectId, watchlist_hits.mjd FROM watchlist_hits AS h JOIN watchlist_hits ON 1 "
        "WHERE EXISTS (SELECT 1 FROM watchlist_hits x WHERE x.objectId = h.objectId)",
        extra_filters={"watchlist_hits": "watchlist_id IN (1, 2)"})
    assert sql.count("(SELECT * FROM watchlist_hits WHERE watchlist_id IN (1, 2))") == 3
    assert "AS h " in sql and "AS watchlist_hits " in sql and "AS x " in sql
    # a CTE of that name is not the table
    cte = check_select("WITH watchlist_hits AS (SELECT 1 AS a) SELECT a FROM watchlist_hits",
                       extra_filters={"watchlist_hits": "watchlist_id = 1"})
    assert "watchlist_id" not in cte
    with pytest.raises(ValueError, match="extra_filters"):
        check_select("SELECT 1", extra_filters={"watchlist_hits": "1; DROP TABLE x"})


@pytest.mark.parametrize("where,reason", [
    ("1=1; DROP TABLE objects", "only one SELECT statement"),
    ("1) UNION SELECT objectId FROM cutouts WHERE (1", "could not be parsed"),
    ("1 UNION SELECT objectId FROM objects", "a filter must be a single WHERE condition"),
    ("1 ORDER BY ndet", "a filter must be a single WHERE condition"),
    ("1 LIMIT 1", "a filter must be a single WHERE condition"),
    ("1 GROUP BY objectId", "a filter must be a single WHERE condition"),
    ("ndet > 1 INTO OUTFILE '/tmp/x'", "INTO OUTFILE is not allowed"),
    ("ndet > 1 FOR UPDATE", "locking clauses"),
    ("ndet > SLEEP(1)", "function SLEEP is not allowed"),
    ("objectId IN (SELECT objectId FROM cutouts)", "table cutouts is not available"),
    ("COUNT(*) > 1", "aggregate functions (COUNT) are only allowed inside a subquery"),
    ("ROW_NUMBER() OVER () = 1", "window functions"),
    ("", "the filter is empty"),
    ("ndet > 1 /*! OR 1 */", "executable comments"),
])
def test_filter_where_rejections(where, reason):
    with pytest.raises(RejectedQuery) as info:
        check_filter_where(where)
    assert reason in info.value.reason


def test_filter_where_is_normalised():
    assert check_filter_where("g_ndet>=3 AND latest_mag<18 -- bright") == "g_ndet >= 3 AND latest_mag < 18"
    assert check_filter_where(
        "g_ndet >= 3 AND objectId IN (SELECT objectId FROM annotations WHERE annotator='fink')"
    ) == "g_ndet >= 3 AND objectId IN (SELECT objectId FROM annotations WHERE annotator = 'fink')"
    assert check_filter_where("ndet > (SELECT AVG(ndet) FROM objects)") == "ndet > (SELECT AVG(ndet) FROM objects)"
    # a trailing comment cannot swallow what the evaluator appends
    assert check_filter_where("ndet > 1 -- ) OR (1") == "ndet > 1"


# -- the real database -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data(services):
    """Five objects, 3,000 detections (enough for a cross join to run for ever), annotations and hits,
    under a unique objectId prefix; removed afterwards."""
    p = f"sg{uuid.uuid4().hex[:8]}"
    base = random.randrange(10**12, 9 * 10**12)
    objects = [
        dict(objectId=f"{p}_1", survey="ZTF", ra=10.0, decl=-20.0, ndet=3, latest_mag=17.5, g_minus_r=0.3),
        dict(objectId=f"{p}_2", survey="ZTF", ra=11.0, decl=-5.0, ndet=10, latest_mag=19.25, g_minus_r=-0.2),
        dict(objectId=f"{p}_3", survey="LSST", ra=200.0, decl=-30.0, ndet=1, latest_mag=22.0, g_minus_r=None),
        dict(objectId=f"{p}_4", survey="LSST", ra=300.0, decl=45.0, ndet=25, latest_mag=16.0, g_minus_r=0.8),
        dict(objectId=f"{p}_5", survey="ZTF", ra=0.5, decl=0.0, ndet=7, latest_mag=18.0, g_minus_r=0.1),
    ]
    detections = [dict(detectionId=base + i, objectId=f"{p}_{i % 5 + 1}", survey="ZTF", mjd=60000 + i * 0.01,
                       band="g" if i % 2 == 0 else "r", mag=15 + (i % 100) / 10,
                       extra=json.dumps({"fid": 1 + i % 2, "field": 600 + i % 3})) for i in range(NDETECTIONS)]
    eng = db.engine("alerts")
    with eng.begin() as conn:
        conn.execute(sa.text("INSERT INTO objects (objectId, survey, ra, decl, healpix, ndet, latest_mag, g_minus_r) "
                             "VALUES (:objectId, :survey, :ra, :decl, 0, :ndet, :latest_mag, :g_minus_r)"), objects)
        conn.execute(sa.text("INSERT INTO detections (detectionId, objectId, survey, mjd, band, mag, extra) "
                             "VALUES (:detectionId, :objectId, :survey, :mjd, :band, :mag, :extra)"), detections)
        conn.execute(sa.text("INSERT INTO annotations (objectId, annotator, classification) VALUES (:o, :a, :c)"),
                     [dict(o=f"{p}_1", a="fink", c="SN candidate"), dict(o=f"{p}_2", a="fink", c="Variable star"),
                      dict(o=f"{p}_2", a="alerce", c="SNIa")])
        conn.execute(sa.text("INSERT INTO watchlist_hits (watchlist_id, cone_id, objectId, detectionId, arcsec, mjd) "
                             "VALUES (:w, :w, :o, :d, 0.5, 60000)"),
                     [dict(w=w, o=f"{p}_{w}", d=base + w) for w in (1, 2, 3)])
        conn.execute(sa.text("INSERT INTO area_hits (area_id, objectId, detectionId, mjd) VALUES (7, :o, :d, 60000)"),
                     dict(o=f"{p}_4", d=base + 3))
    yield {"p": p, "base": base, "objects": objects, "detections": detections}
    with eng.begin() as conn:
        for table in ("objects", "detections", "annotations", "watchlist_hits", "area_hits"):
            conn.exec_driver_sql(f"DELETE FROM {table} WHERE objectId LIKE %s", (p + "\\_%",))


def _snapshot() -> dict:
    """Row count and checksum of every alert table, as the writer sees them."""
    with db.engine("alerts").connect() as conn:
        tables = [r[0] for r in conn.exec_driver_sql("SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")]
        return {t: (conn.exec_driver_sql(f"SELECT COUNT(*) FROM `{t}`").scalar(),
                    conn.exec_driver_sql(f"CHECKSUM TABLE `{t}`").fetchone()[1]) for t in tables}


def _hostile_files() -> list[Path]:
    return sorted(Path("/tmp").glob("alertlab-hostile-*"))


def _run(sql, **kw):
    kw.setdefault("limit", 1000)
    kw.setdefault("max_seconds", 20)
    return run_select(check_select(sql), **kw)


@pytest.mark.services
@pytest.mark.slow
def test_hostile_corpus_writes_nothing(data):
    """Rejected queries never run; the resource-exhaustion ones run and are stopped by the time limit."""
    for stale in _hostile_files():
        stale.unlink()
    before = _snapshot()
    for case in REJECTED:
        with pytest.raises(RejectedQuery):
            run_select(check_select(case["sql"]), limit=10, max_seconds=1)
    for case in STOPPED:
        sql = check_select(case["sql"])
        started = time.monotonic()
        with pytest.raises(QueryTimeout) as info:
            run_select(sql, limit=10, max_seconds=1)
        assert str(info.value) == "the query ran longer than 1 s and was stopped"
        assert time.monotonic() - started < 10, "the server did not stop the query at its time limit"
    assert _snapshot() == before
    assert _hostile_files() == []


@pytest.mark.services
def test_the_reader_account_is_a_second_layer(data):
    """Even SQL that bypasses the guard cannot write through the read-only account."""
    before = _snapshot()
    target = "/tmp/alertlab-hostile-layer2.txt"
    with db.engine("alerts", reader=True).connect() as conn:
        for sql in ["INSERT INTO filters (owner, name, where_sql) VALUES ('x', 'x', '1')",
                    "UPDATE objects SET ndet = 0", "DELETE FROM detections", "CREATE TABLE x (a INT)",
                    "DROP TABLE objects", "CREATE TEMPORARY TABLE t (a INT)", "SELECT * FROM mysql.user",
                    f"SELECT objectId FROM objects INTO OUTFILE '{target}'"]:
            with pytest.raises(sa.exc.DBAPIError, match="denied"):
                conn.exec_driver_sql(sql)
        assert conn.exec_driver_sql("SELECT LOAD_FILE('/etc/passwd')").scalar() is None
    assert _snapshot() == before
    assert not Path(target).exists()


def _legit(p: str, data: dict) -> list[tuple[str, list[tuple]]]:
    dets = data["detections"]
    avg = {b: round(sum(d["mag"] for d in dets if d["band"] == b) / (len(dets) / 2), 3) for b in "gr"}
    fids = sorted({(str(json.loads(d["extra"])["fid"])) for d in dets})
    return [
        (f"SELECT objectId, ndet FROM objects WHERE objectId LIKE '{p}%' ORDER BY ndet DESC",
         [(f"{p}_4", 25), (f"{p}_2", 10), (f"{p}_5", 7), (f"{p}_1", 3), (f"{p}_3", 1)]),
        (f"SELECT o.objectId, COUNT(*) AS n FROM objects o JOIN detections d ON d.objectId = o.objectId "
         f"WHERE o.objectId LIKE '{p}%' GROUP BY o.objectId ORDER BY o.objectId",
         [(f"{p}_{i}", NDETECTIONS // 5) for i in range(1, 6)]),
        (f"SELECT objectId FROM objects WHERE objectId IN (SELECT objectId FROM annotations WHERE annotator = 'fink') "
         f"AND objectId LIKE '{p}%' ORDER BY objectId", [(f"{p}_1",), (f"{p}_2",)]),
        (f"SELECT o.objectId FROM objects o WHERE o.objectId LIKE '{p}%' AND EXISTS "
         "(SELECT 1 FROM annotations a WHERE a.objectId = o.objectId AND a.annotator = 'alerce')", [(f"{p}_2",)]),
        (f"SELECT ABS(decl), ROUND(latest_mag, 1), POW(10, -0.4 * (latest_mag - 17.5)), SQRT(16) FROM objects "
         f"WHERE objectId = '{p}_1'", [(20.0, 17.5, 1.0, 4.0)]),
        (f"SELECT JSON_EXTRACT(extra, '$.fid') AS fid, COUNT(*) FROM detections WHERE objectId LIKE '{p}%' "
         "GROUP BY fid ORDER BY fid", [(f, NDETECTIONS // 2) for f in fids]),
        (f"SELECT COUNT(*) FROM detections WHERE objectId LIKE '{p}%' AND JSON_VALUE(extra, '$.field') = 601",
         [(NDETECTIONS // 3,)]),
        (f"WITH bright AS (SELECT objectId FROM objects WHERE latest_mag < 18 AND objectId LIKE '{p}%') "
         "SELECT COUNT(*) FROM bright", [(2,)]),
        (f"SELECT objectId FROM objects WHERE objectId = '{p}_1' UNION SELECT objectId FROM annotations "
         f"WHERE objectId = '{p}_2' ORDER BY objectId", [(f"{p}_1",), (f"{p}_2",)]),
        (f"SELECT objectId, RANK() OVER (PARTITION BY survey ORDER BY ndet DESC), MEDIAN(ndet) OVER "
         f"(PARTITION BY survey) FROM objects WHERE objectId LIKE '{p}%' ORDER BY objectId",
         [(f"{p}_1", 3, 7), (f"{p}_2", 1, 7), (f"{p}_3", 2, 13), (f"{p}_4", 1, 13), (f"{p}_5", 2, 7)]),
        (f"SELECT objectId, CASE WHEN latest_mag < 18 THEN 'bright' ELSE 'faint' END FROM objects "
         f"WHERE objectId LIKE '{p}%' AND survey REGEXP '^Z' ORDER BY objectId",
         [(f"{p}_1", "bright"), (f"{p}_2", "faint"), (f"{p}_5", "faint")]),
        (f"SELECT survey, GROUP_CONCAT(objectId ORDER BY objectId SEPARATOR ',') FROM objects "
         f"WHERE objectId LIKE '{p}%' GROUP BY survey HAVING COUNT(*) > 2", [("ZTF", f"{p}_1,{p}_2,{p}_5")]),
        (f"SELECT t.band, ROUND(AVG(t.mag), 3) FROM (SELECT band, mag FROM detections WHERE objectId LIKE '{p}%') "
         "AS t GROUP BY t.band ORDER BY t.band", [("g", avg["g"]), ("r", avg["r"])]),
        ("SELECT DATE_FORMAT('2024-03-01', '%Y-%m'), DATEDIFF('2024-03-01', '2024-02-01'), 1 + 1 FROM DUAL",
         [("2024-03", 29, 2)]),
        (f"SELECT objectId FROM objects WHERE objectId LIKE '{p}%' AND (g_minus_r IS NULL OR g_minus_r "
         "BETWEEN 0 AND 0.2) ORDER BY objectId", [(f"{p}_3",), (f"{p}_5",)]),
        ("SELECT 'it''s', 'a\\'b', \"dq\", '100%', 'a\\\\b', '\\%'", [("it's", "a'b", "dq", "100%", "a\\b", "\\%")]),
        (f"SELECT objectId -- the id\nFROM objects /* all */ WHERE objectId = '{p}_1'", [(f"{p}_1",)]),
        (f"SELECT (SELECT COUNT(*) FROM watchlist_hits WHERE objectId LIKE '{p}%'), "
         f"(SELECT COUNT(*) FROM area_hits WHERE objectId LIKE '{p}%'), "
         f"(SELECT COUNT(*) FROM nondetections WHERE objectId LIKE '{p}%'), "
         f"(SELECT COUNT(*) FROM forced_photometry WHERE objectId LIKE '{p}%'), "
         f"(SELECT COUNT(*) FROM annotations_history WHERE objectId LIKE '{p}%')", [(3, 1, 0, 0, 0)]),
        (f"SELECT COUNT(*) FROM {settings.get('ALERTLAB_ALERTS_DB')}.objects WHERE objectId LIKE '{p}%'", [(5,)]),
        ("WITH RECURSIVE n AS (SELECT 1 AS i UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT SUM(i) FROM n",
         [(15,)]),
        # MariaDB resolves CTE names case-insensitively: this reads the CTE, not the blob table
        ("WITH CUTOUTS AS (SELECT 42 AS data) SELECT data FROM cutouts", [(42,)]),
        (f"SELECT objectId FROM annotations WHERE annotator = 'fink' AND objectId LIKE '{p}%' INTERSECT "
         f"SELECT objectId FROM objects WHERE survey = 'ztf' ORDER BY objectId", [(f"{p}_1",), (f"{p}_2",)]),
    ]


@pytest.mark.services
def test_legitimate_queries_return_the_right_rows(data):
    p = data["p"]
    with db.engine("alerts", reader=True).connect() as conn:
        raw = conn.execution_options(no_parameters=True)
        for sql, expected in _legit(p, data):
            result = _run(sql)
            assert result.rows == expected, sql
            assert not result.truncated
            # the regenerated SQL means what the user wrote
            assert [tuple(r) for r in raw.exec_driver_sql(sql)] == expected, sql


@pytest.mark.services
def test_limit_offset_and_truncation(data):
    p = data["p"]
    sql = f"SELECT objectId, ndet FROM objects WHERE objectId LIKE '{p}%' ORDER BY ndet DESC"
    every = [(f"{p}_4", 25), (f"{p}_2", 10), (f"{p}_5", 7), (f"{p}_1", 3), (f"{p}_3", 1)]
    r = _run(sql, limit=2)
    assert (r.rows, r.truncated) == (every[:2], True)
    assert r.columns == ["objectId", "ndet"] and r.elapsed >= 0
    r = _run(sql, limit=5)
    assert (r.rows, r.truncated) == (every, False)
    r = _run(sql, limit=2, offset=2)
    assert (r.rows, r.truncated) == (every[2:4], True)
    r = _run(sql, limit=10, offset=3)
    assert (r.rows, r.truncated) == (every[3:], False)
    # the query's own LIMIT/OFFSET is a window inside which ours applies
    own = sql + " LIMIT 3 OFFSET 1"
    assert (_run(own, limit=2).rows, _run(own, limit=2).truncated) == (every[1:3], True)
    assert (_run(own, limit=3).rows, _run(own, limit=3).truncated) == (every[1:4], False)
    assert (_run(own, limit=5, offset=2).rows, _run(own, limit=5, offset=2).truncated) == (every[3:4], False)
    assert _run(sql + " LIMIT 1, 2", limit=10).rows == every[1:3]
    # a union's ORDER BY survives; duplicate column names are fine
    r = _run(f"SELECT objectId, ndet AS n, ndet AS n FROM objects WHERE objectId LIKE '{p}%' UNION ALL "
             f"SELECT objectId, 0, 0 FROM annotations WHERE objectId LIKE '{p}%' ORDER BY 2 DESC, 1", limit=2)
    assert r.columns == ["objectId", "n", "n"] and r.rows == [(f"{p}_4", 25, 25), (f"{p}_2", 10, 10)]
    assert r.truncated


@pytest.mark.services
def test_timeout_and_server_errors_are_one_line(data):
    cross = "SELECT COUNT(*) FROM detections a, detections b, detections c WHERE a.mag + b.mag > c.mag"
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match=r"^the query ran longer than 0.5 s and was stopped$"):
        _run(cross, max_seconds=0.5)
    assert time.monotonic() - started < 5
    with pytest.raises(RejectedQuery) as info:
        _run("SELECT nope FROM objects")
    assert info.value.reason.startswith("the database refused the query: Unknown column 'nope'")
    assert "\n" not in info.value.reason
    assert _run("SELECT 1").rows == [(1,)]  # the pooled connection is still fine


@pytest.mark.services
def test_stream_select_streams_and_gives_the_connection_back(data):
    p, base = data["p"], data["base"]
    eng = db.engine("alerts", reader=True)
    sql = check_select(f"SELECT detectionId, mag FROM detections WHERE objectId LIKE '{p}%' ORDER BY detectionId")
    checked_out = eng.pool.checkedout()
    columns, rows = stream_select(sql, limit=2500, offset=100, max_seconds=10)
    assert columns == ["detectionId", "mag"]
    got = list(rows)
    assert len(got) == 2500 and got[0][0] == base + 100 and got[-1][0] == base + 2599
    assert eng.pool.checkedout() == checked_out
    columns, rows = stream_select(sql, limit=NDETECTIONS, offset=0, max_seconds=10)
    assert [next(rows)[0] for _ in range(3)] == [base, base + 1, base + 2]
    rows.close()  # abandoned half way: the connection is released too
    assert eng.pool.checkedout() == checked_out
    with pytest.raises(QueryTimeout):
        columns, rows = stream_select(check_select(
            "SELECT COUNT(*) FROM detections a, detections b, detections c WHERE a.mag + b.mag > c.mag"),
            limit=10, offset=0, max_seconds=0.5)
        list(rows)
    assert eng.pool.checkedout() == checked_out


@pytest.mark.services
def test_extra_filters_restrict_rows(data):
    p = data["p"]
    only = {"watchlist_hits": "watchlist_id IN (1, 2)"}
    r = run_select(check_select(f"SELECT objectId, watchlist_id FROM watchlist_hits WHERE objectId LIKE '{p}%' "
                                "ORDER BY objectId", extra_filters=only), limit=10, max_seconds=10)
    assert r.rows == [(f"{p}_1", 1), (f"{p}_2", 2)]
    r = run_select(check_select(
        f"SELECT o.objectId FROM objects o JOIN watchlist_hits h ON h.objectId = o.objectId "
        f"WHERE o.objectId LIKE '{p}%' AND h.watchlist_id > 0 AND EXISTS (SELECT 1 FROM watchlist_hits "
        "WHERE watchlist_hits.objectId = o.objectId) ORDER BY o.objectId", extra_filters=only),
        limit=10, max_seconds=10)
    assert r.rows == [(f"{p}_1",), (f"{p}_2",)]
    name = settings.get("ALERTLAB_ALERTS_DB")
    r = run_select(check_select(
        f"SELECT {name}.watchlist_hits.objectId FROM {name}.watchlist_hits "
        f"WHERE {name}.watchlist_hits.objectId LIKE '{p}%' ORDER BY 1", extra_filters=only), limit=10, max_seconds=10)
    assert r.rows == [(f"{p}_1",), (f"{p}_2",)]
    r = run_select(check_select(f"SELECT COUNT(*) FROM watchlist_hits WHERE objectId LIKE '{p}%'",
                                extra_filters={"watchlist_hits": "0"}), limit=10, max_seconds=10)
    assert r.rows == [(0,)]
