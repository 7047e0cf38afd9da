"""Test fixtures: the real MariaDB and Kafka.

The session fixture ``services`` uses the servers named by ALERTLAB_DB_URL and
ALERTLAB_KAFKA when both are set, and otherwise starts a private MariaDB and
Kafka in a temporary ALERTLAB_HOME (stopped at the end of the session)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("ALERTLAB_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def services(tmp_path_factory):
    """Environment of running services: {'db_url', 'kafka', 'home'}; the schema is at head."""
    from alertlab.core import db, migrations

    started = []
    if os.environ.get("ALERTLAB_DB_URL") and os.environ.get("ALERTLAB_KAFKA"):
        home = Path(os.environ.get("ALERTLAB_HOME") or tmp_path_factory.mktemp("home"))
        os.environ["ALERTLAB_HOME"] = str(home)
    else:
        from alertlab.core.services import kafka, mariadb

        home = tmp_path_factory.mktemp("alertlab-home")
        os.environ["ALERTLAB_HOME"] = str(home)
        info = mariadb.up()
        started.append(mariadb)
        os.environ["ALERTLAB_DB_URL"] = info["url"]
        os.environ["ALERTLAB_DB_READER_URL"] = mariadb.url(mariadb.READER)
        kinfo = kafka.up()
        started.append(kafka)
        os.environ["ALERTLAB_KAFKA"] = kinfo["bootstrap"]
        os.environ["ALERTLAB_KAFKA_USERNAME"] = kinfo["username"]
        os.environ["ALERTLAB_KAFKA_PASSWORD"] = kinfo["password"]
    for database in migrations.DATABASES:
        migrations.upgrade(database)
    yield {"db_url": os.environ["ALERTLAB_DB_URL"], "kafka": os.environ["ALERTLAB_KAFKA"], "home": home}
    db.dispose_all()
    for svc in reversed(started):
        svc.down()


@pytest.fixture
def topic(services):
    """A fresh Kafka topic name (auto-created on first use)."""
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def artifacts():
    path = ROOT / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def fresh_alerts_db(services, monkeypatch):
    """An empty alert database of its own (alertlab_t<hex>) at head, dropped afterwards."""
    import sqlalchemy as sa

    from alertlab.core import db, migrations

    name = f"alertlab_t{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("ALERTLAB_ALERTS_DB", name)
    migrations.upgrade("alerts")
    yield name
    server = sa.create_engine(db.server_url())
    with server.begin() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    server.dispose()
