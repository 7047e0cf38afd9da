"""Alembic migrations of this database."""
