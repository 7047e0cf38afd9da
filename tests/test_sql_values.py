"""The ingest's own SQL literals: what MariaDB stores is exactly what was meant (real MariaDB)."""

from __future__ import annotations

import numpy as np
import pytest

from alertlab.ingest import sql_values

TRICKY = ["it's", 'say "hi"', "back\\slash", "100% sure %s %(x)s", "ünïcödé ☄", "\x00nul", "semi; DROP TABLE t; --",
          "\n\r\t", "\\'", "'' OR 1=1 --", "", "ctrl-Z \x1a", "\\\\n \\0 \\Z", '{"a": "x\\"y", "b": "it\'s"}']
FLOATS = [0.1, -0.0, 1e-300, 1.7976931348623157e308, 2400000.5 - 1e-9, 123456789.123456789, 5e-324]


def test_literals_round_trip_through_mariadb(fresh_alerts_db):
    from alertlab.core import db

    rows = [(i, s, f, int(i * 10 ** 12)) for i, (s, f) in enumerate(zip(TRICKY, FLOATS + FLOATS))]
    rows += [(100, None, float("nan"), None), (101, "inf", float("inf"), np.int64(-7)),
             (102, "np", np.float32(0.5), np.int32(3)), (103, "npf", np.float64(1 / 3), True)]
    with db.engine("alerts").begin() as conn:
        conn.exec_driver_sql("CREATE TEMPORARY TABLE lit (i INT PRIMARY KEY, s TEXT, f DOUBLE, n BIGINT)")
        sql_values.insert(conn, "INSERT INTO lit (i, s, f, n) VALUES", rows)
        got = {r[0]: r[1:] for r in conn.exec_driver_sql("SELECT i, s, f, n FROM lit")}
    for i, s, f, n in rows[:len(TRICKY)]:
        assert got[i] == (s, f, n)
    assert got[100] == (None, None, None)   # NaN means unknown
    assert got[101] == ("inf", None, -7)
    assert got[102] == ("np", 0.5, 3)
    assert got[103] == ("npf", 1 / 3, 1)


@pytest.mark.parametrize("sql_mode", ["", "NO_BACKSLASH_ESCAPES"])
def test_text_round_trips_in_both_backslash_modes(fresh_alerts_db, sql_mode):
    from alertlab.core import db

    with db.engine("alerts").begin() as conn:
        conn.exec_driver_sql(f"SET SESSION sql_mode = CONCAT(@@sql_mode, '{',' + sql_mode if sql_mode else ''}')")
        conn.exec_driver_sql("CREATE TEMPORARY TABLE lit (i INT PRIMARY KEY, s TEXT)")
        sql_values.insert(conn, "INSERT INTO lit (i, s) VALUES", list(enumerate(TRICKY)))
        got = dict(conn.exec_driver_sql("SELECT i, s FROM lit").fetchall())
        conn.exec_driver_sql("SET SESSION sql_mode = DEFAULT")
    assert got == dict(enumerate(TRICKY))


def test_statements_are_cut_near_a_megabyte_and_lose_no_row(fresh_alerts_db):
    from alertlab.core import db

    text = "x" * 10_000
    parts = sql_values.statements("INSERT INTO lit (i, s) VALUES", [(i, text) for i in range(300)], repr)
    assert len(parts) == 4 and all(len(p) <= sql_values.MAX_STATEMENT + 20_000 for p in parts)
    with db.engine("alerts").begin() as conn:
        conn.exec_driver_sql("CREATE TEMPORARY TABLE lit (i INT PRIMARY KEY, s TEXT)")
        sql_values.insert(conn, "INSERT INTO lit (i, s) VALUES", [(i, text) for i in range(300)])
        assert conn.exec_driver_sql("SELECT COUNT(*), MIN(LENGTH(s)) FROM lit").one() == (300, 10_000)


def test_a_value_without_a_literal_is_refused():
    literal = sql_values.literal_writer(repr)
    for bad in (b"bytes", [1], {"a": 1}, object()):
        with pytest.raises(TypeError, match="no SQL literal"):
            literal(bad)
