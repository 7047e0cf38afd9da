"""Migrations bring an empty database to head; again changes nothing."""

import uuid

import pytest
import sqlalchemy as sa

from alertlab.core import db, migrations

ALERT_TABLES = {"objects", "detections", "nondetections", "forced_photometry", "cutouts", "annotations",
                "annotations_history", "watchlists", "watchlist_cones", "watchlist_hits", "areas", "area_hits",
                "filters", "ingest_rejects"}


@pytest.mark.services
@pytest.mark.parametrize("database,setting,expected", [
    ("alerts", "ALERTLAB_ALERTS_DB", ALERT_TABLES),
    ("app", "ALERTLAB_APP_DB", {"app_meta"}),
])
def test_migrations_from_empty_to_head_twice(services, monkeypatch, database, setting, expected):
    name = f"alertlab_t{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(setting, name)
    server = sa.create_engine(db.server_url())
    try:
        migrations.upgrade(database)
        assert migrations.current(database) == migrations.head(database)
        migrations.upgrade(database)  # idempotent
        assert migrations.current(database) == migrations.head(database)
        with server.connect() as conn:
            tables = {r[0] for r in conn.exec_driver_sql(f"SHOW TABLES FROM `{name}`")}
        assert expected | {"alembic_version"} <= tables
    finally:
        with server.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        server.dispose()
        db.dispose_all()


@pytest.mark.services
def test_reader_account_reads_alerts_only(services):
    eng = db.engine("alerts", reader=True)
    with eng.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM objects").scalar() >= 0
        with pytest.raises(sa.exc.OperationalError, match="denied"):
            conn.exec_driver_sql("INSERT INTO filters (owner, name, where_sql) VALUES ('x','x','1')")
        with pytest.raises((sa.exc.OperationalError, sa.exc.ProgrammingError), match="denied"):
            conn.exec_driver_sql("SELECT * FROM alertlab.app_meta")
