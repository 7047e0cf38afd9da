"""The body of every migration directory's env.py: run online migrations on
the database the Config names, as the writer account."""

from __future__ import annotations

from alembic import context

from alertlab.core import db


def run() -> None:
    database = context.config.attributes["database"]
    engine = db.engine(database)
    with engine.connect() as connection:
        context.configure(connection=connection, version_table="alembic_version")
        with context.begin_transaction():
            context.run_migrations()
