"""Alembic migrations for the two databases, each its own script directory
(``alerts/`` and ``app/``), so the alert schema and the application schema
evolve and deploy independently. ``upgrade()`` is what `alertlab db init` runs."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from alertlab.core import db

DATABASES = ("alerts", "app")


def config(database: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("alertlab.core.migrations") / database))
    cfg.attributes["database"] = database
    return cfg


def ensure_database(database: str) -> None:
    """CREATE DATABASE IF NOT EXISTS, as the writer (which holds the grant for it)."""
    name = db.database_name(database)
    import sqlalchemy as sa

    eng = sa.create_engine(db.server_url())
    try:
        with eng.begin() as conn:
            conn.exec_driver_sql(
                f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        eng.dispose()


def upgrade(database: str, revision: str = "head") -> None:
    ensure_database(database)
    command.upgrade(config(database), revision)


def current(database: str) -> str | None:
    with db.engine(database).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head(database: str) -> str | None:
    return ScriptDirectory.from_config(config(database)).get_current_head()
